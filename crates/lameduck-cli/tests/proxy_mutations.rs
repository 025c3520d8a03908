//! The drain proxy and the balancer's HTTP mode under a stream of mutated
//! requests, HTTP/1.1 and HTTP/2, each a fixed series
//! (`tests/apps/mutating_client.py`): every connection ends once its
//! client ends its side, the server still answers, and afterwards its
//! drain holds nothing (SIGTERM ends it with 0).
//!
//! Run on the code before it, the HTTP/1.1 stream found both holding a
//! lone `P` (part of the HTTP/2 preface) to the client timeout after the
//! client had ended its side.

#[path = "balance/support.rs"]
mod balance_support;
mod support;

use std::net::SocketAddr;
use std::process::Command;

use balance_support::{slice_yaml, write_atomic, Balance, Pod, Ports, READY};
use support::net::{app, status, ProxiedApp};
use support::{python, tempdir, Lameduck};

/// Sends `cases` inputs of `mode` (`h1`, `h2`) of `series` to `listen`;
/// fails on any connection kept open after its client ended its side.
fn mutated(listen: SocketAddr, mode: &str, series: u32, cases: u32) {
    let out = Command::new(python())
        .arg(app("mutating_client.py"))
        .args([
            &listen.to_string(),
            mode,
            &series.to_string(),
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

/// The server at `listen` still answers, and its drain has nothing left
/// to wait for.
fn still_whole(listen: SocketAddr, lameduck: &Lameduck) {
    assert_eq!(status(listen, "/"), 200);
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0);
    let log = lameduck.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("deadline reached"), "{log}");
}

/// A client timeout longer than the client's wait for a close: only the
/// client's end can close a connection in time.
const FLAGS: &[&str] = &["--client-timeout", "120s", "--drain-delay", "0s"];

#[test]
fn mutated_http1_requests_end_with_their_clients() {
    let proxied = ProxiedApp::start("http_upstream.py", &[], FLAGS);
    mutated(proxied.listen, "h1", 1, 3000);
    mutated(proxied.listen, "h1", 2, 3000);
    still_whole(proxied.listen, &proxied.lameduck);
}

#[test]
fn mutated_http2_connections_end_with_their_clients() {
    let proxied = ProxiedApp::start("http_upstream.py", &[], FLAGS);
    mutated(proxied.listen, "h2", 1, 500);
    still_whole(proxied.listen, &proxied.lameduck);
}

#[test]
fn the_balancers_http_mode_ends_mutated_connections_with_their_clients() {
    let dir = tempdir();
    let ports = Ports::free();
    let _pod = Pod::start(dir.path(), "web-a", "127.0.0.1", ports);
    let slices = dir.path().join("slices.yaml");
    let slice = slice_yaml("web-1", ports, &[("web-a", "127.0.0.1", READY)]);
    write_atomic(&slices, &slice);
    let source = format!("file:{}", slices.display());
    let balance = Balance::start(&source, &["--mode", "http", "--port", "http"], &[], true);
    mutated(balance.listen, "h1", 3, 2000);
    mutated(balance.listen, "h2", 2, 300);
    still_whole(balance.listen, &balance.lameduck);
}
