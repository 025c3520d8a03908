//! The drain proxy against hostile or broken clients (issue 11): requests
//! it must refuse rather than pass on, connections that send nothing, and
//! methods it has no use for. Each answer is clear and counted.

mod support;

use support::net::{exchange, metric, ProxiedApp};

/// The count of requests refused before reaching the app.
fn rejected(app: &ProxiedApp) -> f64 {
    metric(app.admin, "lameduck_requests_total{outcome=\"rejected\"}").unwrap_or(-1.0)
}

#[test]
fn connect_gets_501_with_a_log_line() {
    let app = ProxiedApp::start("http_upstream.py", &[], &[]);
    let answer = exchange(
        app.listen,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .expect("answer");
    assert_eq!(answer.status, 501, "{answer:?}");
    assert!(answer.body.contains("reverse proxy"), "{answer:?}");
    app.lameduck.wait_log("CONNECT refused");
    assert_eq!(rejected(&app), 1.0);
}
