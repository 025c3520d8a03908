//! The drain proxy with long-lived work and clients not built on hyper:
//! nghttp's HTTP/2 stream gets GOAWAY and finishes, a grpcio
//! server-streaming call runs on through the delay, a `websockets` session
//! keeps working and gets close 1001 at the deadline, a TCP session drains
//! with half-close, and h2load's requests all succeed.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use support::net::{app as app_path, ProxiedApp};
use support::{python, wait_file, EVENT_TIMEOUT};

#[test]
fn an_http2_client_gets_goaway_and_finishes_its_stream() {
    let app = ProxiedApp::start("http_upstream.py", &[], &["--drain-delay", "500ms"]);
    let nghttp = Command::new("nghttp")
        .args(["-v", &format!("http://{}/slow?ms=2000", app.listen)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("nghttp (Debian's nghttp2-client)");
    app.wait_in_flight("http2", 1.0);
    app.lameduck.signal(libc::SIGTERM);
    let out = nghttp.wait_with_output().expect("nghttp output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // First the GOAWAY that still allows streams, then the final one that
    // names the last stream taken (nghttp's request is not stream 1: it
    // opens idle priority streams first).
    let goaways: Vec<&str> = text
        .split("recv GOAWAY")
        .skip(1)
        .filter_map(|f| f.split("last_stream_id=").nth(1))
        .filter_map(|f| f.split(',').next())
        .collect();
    assert_eq!(goaways.len(), 2, "{text}");
    assert_eq!(goaways[0], "2147483647", "a graceful GOAWAY first: {text}");
    assert_ne!(goaways[1], "2147483647", "then the final one: {text}");
    assert!(text.contains(":status: 200"), "{text}");
    assert!(text.contains("slow done"), "the stream finished: {text}");
    assert_eq!(app.lameduck.exit_code(), 0);
}

#[test]
fn a_grpc_server_stream_runs_on_through_the_delay() {
    let app = ProxiedApp::start(
        "grpc_server.py",
        &[],
        &["--upstream-protocol", "h2", "--drain-delay", "1s"],
    );
    let (out, ready) = (app.path("grpc.json"), app.path("grpc-ready"));
    let mut client = Command::new(python())
        .arg(app_path("grpc_client.py"))
        .args([
            "--target",
            &app.listen.to_string(),
            "--method",
            "server-stream",
        ])
        .args(["--count", "25", "--interval-ms", "100"])
        .arg("--out")
        .arg(&out)
        .arg("--ready")
        .arg(&ready)
        .spawn()
        .expect("grpc client");
    wait_file(&ready);
    app.lameduck.signal(libc::SIGTERM);
    let result = wait_file(&out);
    assert!(result.contains(r#""status": "OK""#), "{result}");
    assert!(result.contains(r#""received": 25"#), "{result}");
    assert_eq!(app.lameduck.exit_code(), 0);
    assert!(client.wait().expect("grpc client").success());
    let log = app.lameduck.log();
    assert!(log.contains("drained: nothing is open any more"), "{log}");
}

#[test]
fn a_grpc_bidi_call_goes_on_across_the_stop() {
    let app = ProxiedApp::start(
        "grpc_server.py",
        &[],
        &["--upstream-protocol", "h2", "--drain-delay", "500ms"],
    );
    let (out, ready) = (app.path("bidi.json"), app.path("bidi-ready"));
    let mut client = Command::new(python())
        .arg(app_path("grpc_client.py"))
        .args(["--target", &app.listen.to_string(), "--method", "bidi"])
        .args(["--count", "20", "--interval-ms", "100"])
        .arg("--out")
        .arg(&out)
        .arg("--ready")
        .arg(&ready)
        .spawn()
        .expect("grpc client");
    wait_file(&ready);
    app.lameduck.signal(libc::SIGTERM);
    let result = wait_file(&out);
    assert!(result.contains(r#""status": "OK""#), "{result}");
    assert!(result.contains(r#""received": 20"#), "{result}");
    assert!(client.wait().expect("grpc client").success());
    assert_eq!(app.lameduck.exit_code(), 0);
}

#[test]
fn a_websocket_keeps_working_through_the_delay_and_gets_1001_at_the_deadline() {
    // A 4s grace period: 1s margin, so the deadline comes 2.25s after the stop.
    let app = ProxiedApp::start(
        "ws_server.py",
        &[],
        &["--drain-delay", "1s", "--grace-period", "4s"],
    );
    let (out, ready) = (app.path("ws.json"), app.path("ws-ready"));
    let mut client = Command::new(python())
        .arg(app_path("ws_client.py"))
        .args([
            "--url",
            &format!("ws://{}/", app.listen),
            "--interval-ms",
            "50",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--ready")
        .arg(&ready)
        .spawn()
        .expect("websocket client");
    wait_file(&ready);
    app.lameduck.signal(libc::SIGTERM);
    let result = wait_file(&out);
    assert!(result.contains(r#""close_code": 1001"#), "{result}");
    assert!(result.contains(r#""error": null"#), "{result}");
    let count = |key: &str| -> u64 {
        let at = result.find(key).expect(key) + key.len();
        result[at..]
            .trim_start_matches([':', ' ', '"'])
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a count")
    };
    // Sent every 50 ms for the 2.25s from the stop to the deadline.
    assert!(
        count("\"sent\"") >= 20,
        "messages went on through the drain: {result}"
    );
    assert!(count("\"echoed\"") + 1 >= count("\"sent\""), "{result}");
    assert_eq!(app.lameduck.exit_code(), 0);
    assert!(client.wait().expect("websocket client").success());
    assert!(app.lameduck.log().contains("told the client to go away"));
}

#[test]
fn a_tcp_session_drains_with_half_close() {
    let app = ProxiedApp::start(
        "tcp_echo.py",
        &[],
        &["--mode", "tcp", "--drain-delay", "300ms"],
    );
    let mut session = TcpStream::connect(app.listen).expect("connect");
    session
        .set_read_timeout(Some(EVENT_TIMEOUT))
        .expect("timeout");
    session.write_all(b"before ").expect("write");
    let mut echo = [0u8; 7];
    session.read_exact(&mut echo).expect("echo");
    app.lameduck.signal(libc::SIGTERM);
    app.lameduck.wait_log("listener closed");
    // The session outlives the delay and works on.
    session.write_all(b"after").expect("write after the delay");
    let mut echo = [0u8; 5];
    session.read_exact(&mut echo).expect("echo after the delay");
    assert_eq!(&echo, b"after");
    // Our half-close reaches the app, whose goodbye and close come back.
    session
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut rest = String::new();
    session.read_to_string(&mut rest).expect("the rest");
    assert_eq!(rest, "bye\n");
    assert_eq!(app.lameduck.exit_code(), 0);
    assert!(app
        .lameduck
        .log()
        .contains("drained: nothing is open any more"));
}

#[test]
fn h2load_requests_all_succeed() {
    let app = ProxiedApp::start("http_upstream.py", &[], &[]);
    let out = Command::new("h2load")
        .args([
            "-n",
            "400",
            "-c",
            "4",
            "-m",
            "10",
            &format!("http://{}/", app.listen),
        ])
        .output()
        .expect("h2load (Debian's nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("400 succeeded, 0 failed, 0 errored"),
        "{text}"
    );
    assert!(text.contains("400 2xx"), "{text}");
}

#[test]
fn curl_upgrades_to_h2c_and_gets_its_first_answer_over_http2() {
    let app = ProxiedApp::start("http_upstream.py", &[], &[]);
    let out = Command::new("curl")
        .args(["-sS", "-v", "--http2", &format!("http://{}/", app.listen)])
        .output()
        .expect("curl");
    let (body, trace) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        trace.contains("< HTTP/1.1 101 Switching Protocols"),
        "{trace}"
    );
    assert!(trace.contains("< HTTP/2 200"), "{trace}");
    assert_eq!(body.len(), 100, "{body}");
    // With a body the request is not upgraded, and is answered in HTTP/1.1.
    let post = Command::new("curl")
        .args(["-sS", "-v", "--http2", "--data-binary", "ping"])
        .arg(format!("http://{}/echo", app.listen))
        .output()
        .expect("curl");
    let trace = String::from_utf8_lossy(&post.stderr);
    assert!(trace.contains("< HTTP/1.1 200"), "{trace}");
    assert_eq!(String::from_utf8_lossy(&post.stdout), "ping");
}
