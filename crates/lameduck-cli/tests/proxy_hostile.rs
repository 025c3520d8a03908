//! The drain proxy against hostile or broken clients (issue 11): requests
//! it must refuse rather than pass on, connections that send nothing, and
//! methods it has no use for. Each answer is clear and counted.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use support::net::{exchange, free_port, metric, status, ProxiedApp};
use support::{wait_until, Lameduck, EVENT_TIMEOUT};

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

/// A connection that never sends a byte, and one that sends part of a
/// request head and stops (a slowloris), both open before the stop.
fn silent_and_slowloris(listen: std::net::SocketAddr) -> [TcpStream; 2] {
    let silent = TcpStream::connect(listen).expect("connect");
    let mut slow = TcpStream::connect(listen).expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .expect("write");
    for c in [&silent, &slow] {
        c.set_read_timeout(Some(EVENT_TIMEOUT)).expect("timeout");
    }
    [silent, slow]
}

/// Reads until the proxy closes `conn`; fails if it answered anything.
fn closed_without_answer(mut conn: TcpStream) {
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)
        .expect("the proxy closes the connection");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

#[test]
fn connections_without_a_request_do_not_hold_the_sidecars_drain() {
    let [listen, upstream, admin] =
        [free_port(), free_port(), free_port()].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    let (l, u, a) = (listen.to_string(), upstream.to_string(), admin.to_string());
    let lameduck = Lameduck::start(&[
        "proxy",
        "--listen",
        &l,
        "--upstream",
        &u,
        "--admin",
        &a,
        "--drain-delay",
        "1s",
    ]);
    wait_until("the admin port", || status(admin, "/live") == 200);
    let conns = silent_and_slowloris(listen);
    wait_until("both connections counted", || {
        metric(admin, "lameduck_open_connections{protocol=\"http1\"}") == Some(1.0)
    });
    lameduck.signal(libc::SIGTERM);
    for c in conns {
        closed_without_answer(c);
    }
    assert_eq!(lameduck.exit_code(), 0);
    let log = lameduck.log();
    assert!(log.contains("drained: nothing is open any more"), "{log}");
    assert!(!log.contains("deadline reached"), "{log}");
}

#[test]
fn connections_without_a_request_do_not_hold_the_apps_sigterm() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &["--exit-code", "7"],
        &["--drain-delay", "1s"],
    );
    let conns = silent_and_slowloris(app.listen);
    wait_until("the slowloris to be counted", || {
        metric(app.admin, "lameduck_open_connections{protocol=\"http1\"}") == Some(1.0)
    });
    app.lameduck.signal(libc::SIGTERM);
    for c in conns {
        closed_without_answer(c);
    }
    assert_eq!(app.lameduck.exit_code(), 7, "the app's own code");
    let log = app.lameduck.log();
    assert!(!log.contains("deadline reached"), "{log}");
    let drained = log.find("drained:").expect("drained");
    let passed = log.find("stop passed on").expect("stop passed on");
    assert!(
        drained < passed,
        "the app heard the stop once drained: {log}"
    );
}
