//! The HTTP/2 fan-out of issue 11: each HTTP/2 stream to an HTTP/1.1
//! upstream takes an upstream connection of its own, so a few client
//! connections with many streams could hold every file descriptor. The
//! proxy advertises a stream limit per connection, holds at most
//! `--max-upstream-connections` to the app, and answers what waits longer
//! than the connect timeout with 503, counted; the fan-out is driven by the
//! Python `h2` package, not by hyper.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::net::{app as app_path, metric, status, ProxiedApp};
use support::{python, wait_until};

/// Connections the app has accepted and not closed, as the kernel counts
/// them: established TCP sockets on its port.
fn established_at(addr: SocketAddr) -> usize {
    let port = format!(":{:04X}", addr.port());
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.len() > 3 && fields[1].ends_with(&port) && fields[3] == "01"
        })
        .count()
}

/// The fan-out client's latest tally.
fn tally(path: &std::path::Path) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

#[test]
fn an_http2_fan_out_is_held_to_the_upstream_connection_limit() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &[],
        &[
            "--max-upstream-connections",
            "20",
            "--connect-timeout",
            "1s",
        ],
    );
    let report = app.path("fanout.json");
    let listen = app.listen.to_string();
    let mut fanout = Command::new(python())
        .arg(app_path("h2_fanout.py"))
        .args(["--addr", &listen, "--connections", "2", "--streams", "150"])
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .spawn()
        .expect("the h2 fan-out client");
    // 2 connections x the 100 streams SETTINGS allow: 20 hold the upstream
    // connections (their bodies never come), 180 wait 1s and get 503.
    wait_until("180 streams answered 503", || {
        tally(&report)["statuses"]["503"] == 180
    });
    let t = tally(&report);
    assert_eq!(t["max_concurrent_streams"], 100, "{t}");
    assert_eq!(t["opened"], 200, "{t}");
    assert_eq!(t["waiting"], 20, "{t}");
    assert_eq!(
        metric(app.admin, "lameduck_upstream_connections"),
        Some(20.0)
    );
    assert_eq!(established_at(app.upstream), 20, "the app holds 20");
    // Other clients get answers, not a hang: probes and metrics at once, a
    // request a 503 after the bounded wait.
    assert_eq!(status(app.admin, "/ready"), 200);
    assert_eq!(status(app.listen, "/"), 503);
    assert_eq!(
        metric(app.admin, "lameduck_requests_total{outcome=\"overloaded\"}"),
        Some(181.0)
    );
    app.lameduck
        .wait_log("every upstream connection stayed busy: 503");
    // The fan-out sends its bodies: its 20 requests complete, connections
    // come free and others are served again.
    std::fs::write(report.with_extension("json.go"), b"").expect("go");
    wait_until("the fan-out to finish", || tally(&report)["done"] == true);
    assert_eq!(tally(&report)["statuses"]["200"], 20);
    assert!(fanout.wait().expect("fan-out exit").success());
    assert_eq!(status(app.listen, "/"), 200);
    assert!(metric(app.admin, "lameduck_upstream_connections").is_some_and(|n| n <= 20.0));
}
