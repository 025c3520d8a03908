//! The drain proxy under a stream of mutated requests, HTTP/1.1 and
//! HTTP/2, each from a fixed seed (`tests/apps/mutating_client.py`): every
//! connection ends once its client ends its side, the proxy still answers,
//! and afterwards its drain holds nothing (SIGTERM ends it with 0 at once).
//!
//! Run on the code before it, the HTTP/1.1 stream found the proxy holding
//! a lone `P` (part of the HTTP/2 preface) to the client timeout after the
//! client had ended its side.

mod support;

use std::process::Command;

use support::net::{app, status, ProxiedApp};
use support::python;

/// Sends `cases` inputs of `mode` (`h1`, `h2`) from `seed`; fails on any
/// connection the proxy kept open after its client ended its side.
fn mutated(app_under_test: &ProxiedApp, mode: &str, seed: u32, cases: u32) {
    let out = Command::new(python())
        .arg(app("mutating_client.py"))
        .args([
            &app_under_test.listen.to_string(),
            mode,
            &seed.to_string(),
            &cases.to_string(),
        ])
        .output()
        .expect("the mutating client");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report.lines().next(),
        Some(format!("cases={cases} ended={cases}").as_str()),
        "connections the proxy held after their client ended its side:\n{report}"
    );
}

/// The proxy still answers, and its drain has nothing left to wait for.
fn still_whole(proxied: ProxiedApp) {
    assert_eq!(status(proxied.listen, "/"), 200);
    proxied.lameduck.signal(libc::SIGTERM);
    assert_eq!(proxied.lameduck.exit_code(), 0);
    let log = proxied.lameduck.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("deadline reached"), "{log}");
}

/// A client timeout longer than the client's wait for a close: only the
/// client's end can close a connection in time.
const FLAGS: &[&str] = &["--client-timeout", "120s", "--drain-delay", "0s"];

#[test]
fn mutated_http1_requests_end_with_their_clients() {
    let proxied = ProxiedApp::start("http_upstream.py", &[], FLAGS);
    mutated(&proxied, "h1", 1, 3000);
    mutated(&proxied, "h1", 2, 3000);
    still_whole(proxied);
}

#[test]
fn mutated_http2_connections_end_with_their_clients() {
    let proxied = ProxiedApp::start("http_upstream.py", &[], FLAGS);
    mutated(&proxied, "h2", 1, 500);
    still_whole(proxied);
}
