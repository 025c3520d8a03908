//! End-to-end tests of `lameduck balance` with a file source: real pods (on
//! loopback addresses of their own, as pod IPs), the real balancer, real
//! clients (Python TCP and WebSocket clients, curl), and EndpointSlice files
//! written as Kubernetes prints them.

#[path = "balance/support.rs"]
mod balance_support;
mod support;

use std::collections::BTreeMap;
use std::process::Command;

use balance_support::{
    run_balance, short_connections, slice_yaml, write_atomic, Balance, Pod, Ports, Session,
    WsSession, NIL, READY, TERMINATING,
};
use serde_json::{json, Value};
use support::net::{refused, status};
use support::{tempdir, wait_until};

fn source(path: &std::path::Path) -> String {
    format!("file:{}", path.display())
}

fn by_pod(result: &Value) -> BTreeMap<String, u64> {
    assert_eq!(result["failures"], json!([]), "client failures: {result}");
    serde_json::from_value(result["by_pod"].clone()).expect("by_pod")
}

#[test]
fn a_terminating_endpoint_gets_no_new_connection_while_its_sessions_run_until_the_pod_says_goodbye()
{
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.61.0.2", ports);
    let mut b = Pod::start(dir.path(), "web-b", "127.61.0.3", ports);
    let file = dir.path().join("endpoints.yaml");
    let both = |b_conditions| {
        slice_yaml(
            "web-1",
            ports,
            &[
                ("web-a", "127.61.0.2", READY),
                ("web-b", "127.61.0.3", b_conditions),
            ],
        )
    };
    write_atomic(&file, &both(READY));
    let tcp = Balance::start(&source(&file), &["--port", "tcp"], &[], true);
    let ws = Balance::start(&source(&file), &["--port", "ws"], &[], true);

    // Least connections puts one session of each kind on each pod.
    let tcp_sessions = [
        Session::open(dir.path(), tcp.listen, "1"),
        Session::open(dir.path(), tcp.listen, "2"),
    ];
    let mut pods: Vec<&str> = tcp_sessions.iter().map(|s| s.pod.as_str()).collect();
    pods.sort();
    assert_eq!(pods, ["web-a", "web-b"]);
    let ws_sessions = [
        WsSession::open(dir.path(), ws.listen, "1"),
        WsSession::open(dir.path(), ws.listen, "2"),
    ];
    for pod in ["web-a", "web-b"] {
        assert_eq!(ws.endpoint(pod).expect(pod)["open_connections"], 1);
    }

    // The pod is deleted: the file says terminating.
    write_atomic(&file, &both(TERMINATING));
    tcp.wait_state("web-b", Some("terminating"));
    ws.wait_state("web-b", Some("terminating"));
    let given_before = tcp.endpoint("web-b").expect("web-b")["connections"].clone();
    let result = short_connections(dir.path(), tcp.listen, 40);
    assert_eq!(by_pod(&result), BTreeMap::from([("web-a".to_owned(), 40)]));
    let ws_new = WsSession::open(dir.path(), ws.listen, "new");
    let b_now = tcp.endpoint("web-b").expect("web-b");
    assert_eq!(
        b_now["connections"], given_before,
        "no new connection to web-b"
    );
    assert_eq!(b_now["open_connections"], 1, "its session is still open");
    let ws_b = ws.endpoint("web-b").expect("web-b");
    assert_eq!(
        (
            ws_b["connections"].as_u64(),
            ws_b["open_connections"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let metrics = support::net::request(tcp.admin, "GET", "/metrics")
        .expect("metrics")
        .body;
    assert!(
        metrics.contains(&format!(
            "lameduck_balance_endpoint_state{{endpoint=\"127.61.0.3:{}\",name=\"web-b\",state=\"terminating\"}} 1",
            ports.tcp
        )),
        "{metrics}"
    );

    // Its sessions keep working...
    let on_b = tcp_sessions
        .iter()
        .position(|s| s.pod == "web-b")
        .expect("a session on web-b");
    tcp_sessions[on_b].wait_more(5);
    assert!(!ws_sessions.iter().any(WsSession::ended));

    // ... until the pod itself says goodbye.
    b.terminate();
    let [s1, s2] = tcp_sessions;
    let (on_b, on_a) = if on_b == 0 { (s1, s2) } else { (s2, s1) };
    let ended = on_b.result();
    assert_eq!(ended["goodbye"], true, "{ended}");
    assert_eq!(ended["error"], Value::Null, "{ended}");
    assert_eq!(ended["sent"], ended["answered"], "{ended}");
    wait_until("the WebSocket session on web-b to end", || {
        ws_sessions.iter().any(WsSession::ended)
    });
    let [w1, w2] = ws_sessions;
    let (mut w_b, w_a) = if w1.ended() { (w1, w2) } else { (w2, w1) };
    let ws_ended = w_b.result();
    assert_eq!(
        ws_ended["close_code"], 1001,
        "closed by the pod: {ws_ended}"
    );
    assert_eq!(ws_ended["error"], Value::Null, "{ws_ended}");
    assert_eq!(ws_ended["sent"], ws_ended["echoed"], "{ws_ended}");
    // The sessions on web-a never noticed.
    on_a.wait_more(3);
    for w in [w_a, ws_new] {
        let r = w.stop();
        assert_eq!(
            (r["close_code"].clone(), r["error"].clone()),
            (json!(1000), Value::Null),
            "{r}"
        );
        assert_eq!(r["sent"], r["echoed"], "{r}");
    }
}

#[test]
fn only_terminating_endpoints_left_take_the_traffic_and_nothing_is_refused() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.62.0.2", ports);
    let _b = Pod::start(dir.path(), "web-b", "127.62.0.3", ports);
    let file = dir.path().join("endpoints.yaml");
    write_atomic(
        &file,
        &slice_yaml(
            "web-1",
            ports,
            &[
                ("web-a", "127.62.0.2", TERMINATING),
                ("web-b", "127.62.0.3", TERMINATING),
            ],
        ),
    );
    let tcp = Balance::start(&source(&file), &["--port", "tcp"], &[], true);
    let result = short_connections(dir.path(), tcp.listen, 20);
    assert_eq!(by_pod(&result).values().sum::<u64>(), 20);
    tcp.lameduck.wait_log(
        "no endpoint is ready: new connections fall back to serving terminating endpoints",
    );
    assert_eq!(tcp.metric("lameduck_balance_fallback "), 1.0);
    assert_eq!(tcp.metric("lameduck_balance_no_endpoint_total"), 0.0);

    // A new pod is ready (no conditions at all: read as ready).
    write_atomic(
        &file,
        &slice_yaml(
            "web-1",
            ports,
            &[
                ("web-a", "127.62.0.2", NIL),
                ("web-b", "127.62.0.3", TERMINATING),
            ],
        ),
    );
    tcp.wait_state("web-a", Some("ready"));
    let result = short_connections(dir.path(), tcp.listen, 10);
    assert_eq!(by_pod(&result), BTreeMap::from([("web-a".to_owned(), 10)]));
    tcp.lameduck
        .wait_log("the fallback to terminating endpoints ends");
    assert_eq!(tcp.metric("lameduck_balance_fallback "), 0.0);
}

#[test]
fn a_pod_that_refuses_before_the_file_says_so_costs_the_clients_nothing() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.63.0.2", ports);
    let mut b = Pod::start(dir.path(), "web-b", "127.63.0.3", ports);
    let file = dir.path().join("endpoints.yaml");
    write_atomic(
        &file,
        &slice_yaml(
            "web-1",
            ports,
            &[
                ("web-a", "127.63.0.2", READY),
                ("web-b", "127.63.0.3", READY),
            ],
        ),
    );
    // Round robin tries web-b every other connection when it is never
    // passed over (ejection 0s), and once only with the default ejection.
    let every_time = Balance::start(
        &source(&file),
        &[
            "--port",
            "http",
            "--algorithm",
            "round-robin",
            "--ejection-time",
            "0s",
        ],
        &[],
        true,
    );
    let ejecting = Balance::start(
        &source(&file),
        &["--port", "http", "--algorithm", "round-robin"],
        &[],
        true,
    );
    b.kill();
    for balance in [&every_time, &ejecting] {
        for i in 0..20 {
            let out = Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "10",
                    &format!("http://{}/", balance.listen),
                ])
                .output()
                .expect("curl");
            assert!(
                out.status.success(),
                "curl {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout), "web-a\n");
        }
    }
    let retries = every_time.metric("lameduck_balance_connect_retries_total");
    assert_eq!(retries, 10.0, "one retry every other connection");
    let b_view = every_time.endpoint("web-b").expect("web-b");
    assert_eq!(b_view["connect_failures"], 10);
    assert_eq!(
        every_time.metric("lameduck_balance_connect_failures_total"),
        0.0
    );

    assert_eq!(
        ejecting.metric("lameduck_balance_connect_retries_total"),
        1.0
    );
    assert_eq!(ejecting.metric("lameduck_balance_ejections_total"), 1.0);
    let b_view = ejecting.endpoint("web-b").expect("web-b");
    assert_eq!(
        (b_view["ejected"].clone(), b_view["ejections"].clone()),
        (json!(true), json!(1))
    );
    let metrics = support::net::request(ejecting.admin, "GET", "/metrics")
        .expect("metrics")
        .body;
    assert!(
        metrics.contains("lameduck_balance_endpoint_ejections_total{endpoint=\"127.63.0.3"),
        "{metrics}"
    );
}

#[test]
fn a_broken_endpoints_file_keeps_the_last_good_set() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.64.0.2", ports);
    let _b = Pod::start(dir.path(), "web-b", "127.64.0.3", ports);
    let file = dir.path().join("endpoints.yaml");
    let good = slice_yaml(
        "web-1",
        ports,
        &[
            ("web-a", "127.64.0.2", READY),
            ("web-b", "127.64.0.3", READY),
        ],
    );
    write_atomic(&file, &good);
    let tcp = Balance::start(&source(&file), &["--port", "tcp"], &[], true);
    assert_eq!(tcp.metric("lameduck_balance_source_reloads_total"), 1.0);

    // A half-written file, then an object of the wrong kind.
    std::fs::write(&file, &good[..good.len() / 2]).expect("write");
    wait_until("the broken file to be counted", || {
        tcp.metric("lameduck_balance_source_errors_total") == 1.0
    });
    write_atomic(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: oops}\n",
    );
    wait_until("the wrong kind to be counted", || {
        tcp.metric("lameduck_balance_source_errors_total") == 2.0
    });
    tcp.lameduck
        .wait_log("document 1 is a ConfigMap, not an EndpointSlice");
    tcp.lameduck
        .wait_log("endpoints file not used: the last good set stays");
    let page = tcp.endpoints();
    assert_eq!(
        page["endpoints"].as_array().map(Vec::len),
        Some(2),
        "{page}"
    );
    assert!(
        page["source_error"]
            .as_str()
            .is_some_and(|e| e.contains("ConfigMap")),
        "{page}"
    );
    assert_eq!(status(tcp.admin, "/ready"), 200);
    let result = short_connections(dir.path(), tcp.listen, 10);
    assert_eq!(by_pod(&result).values().sum::<u64>(), 10);

    // Mended, and read again on SIGHUP even without a change.
    write_atomic(&file, &good);
    wait_until("the mended file to be taken", || {
        tcp.metric("lameduck_balance_source_reloads_total") == 2.0
    });
    tcp.lameduck.signal(libc::SIGHUP);
    wait_until("SIGHUP to read it again", || {
        tcp.metric("lameduck_balance_source_reloads_total") == 3.0
    });
    tcp.lameduck
        .wait_log("SIGHUP: reading the endpoints file again");
    assert_eq!(tcp.endpoints()["source_error"], Value::Null);
}

#[test]
fn sessions_of_a_gone_endpoint_are_closed_at_the_drain_timeout() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.65.0.2", ports);
    let _b = Pod::start(dir.path(), "web-b", "127.65.0.3", ports);
    let file = dir.path().join("endpoints.yaml");
    write_atomic(
        &file,
        &slice_yaml(
            "web-1",
            ports,
            &[
                ("web-a", "127.65.0.2", READY),
                ("web-b", "127.65.0.3", READY),
            ],
        ),
    );
    let tcp = Balance::start(
        &source(&file),
        &["--port", "tcp", "--drain-timeout", "1s"],
        &[],
        true,
    );
    let s1 = Session::open(dir.path(), tcp.listen, "1");
    let s2 = Session::open(dir.path(), tcp.listen, "2");
    let (on_a, on_b) = if s1.pod == "web-a" {
        (s1, s2)
    } else {
        (s2, s1)
    };
    assert_eq!(on_b.pod, "web-b");
    write_atomic(
        &file,
        &slice_yaml("web-1", ports, &[("web-a", "127.65.0.2", READY)]),
    );
    tcp.wait_state("web-b", Some("gone"));
    on_b.wait_more(3);
    let ended = on_b.result();
    // Closed by the balancer, not by the pod: a FIN, or a reset when one
    // of the client's lines was still unread.
    let error = ended["error"].as_str().unwrap_or_default();
    assert!(
        error == "closed without a goodbye" || error.contains("reset"),
        "{ended}"
    );
    assert_eq!(ended["goodbye"], false, "{ended}");
    tcp.wait_state("web-b", None);
    assert_eq!(
        tcp.metric("lameduck_balance_closed_at_drain_timeout_total"),
        1.0
    );
    on_a.wait_more(3);
}

#[test]
fn sigterm_runs_the_drain_sequence_of_the_proxy() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.66.0.2", ports);
    let file = dir.path().join("endpoints.yaml");
    write_atomic(
        &file,
        &slice_yaml("web-1", ports, &[("web-a", "127.66.0.2", READY)]),
    );
    let tcp = Balance::start(
        &source(&file),
        &[
            "--port",
            "tcp",
            "--drain-delay",
            "3s",
            "--grace-period",
            "20s",
        ],
        &[],
        true,
    );
    let session = Session::open(dir.path(), tcp.listen, "1");
    tcp.lameduck.signal(libc::SIGTERM);
    wait_until("/ready to fail", || status(tcp.admin, "/ready") == 503);
    // Still accepting while balancers in front catch up.
    let result = short_connections(dir.path(), tcp.listen, 1);
    assert_eq!(by_pod(&result).values().sum::<u64>(), 1);
    tcp.lameduck
        .wait_log("listener closed: new connections are refused");
    assert!(refused(tcp.listen));
    session.wait_more(3);
    assert_eq!(
        status(tcp.admin, "/live"),
        200,
        "the admin port answers while draining"
    );
    // The last session ends: the balancer exits at once, well before the
    // deadline.
    drop(session);
    assert_eq!(tcp.lameduck.exit_code(), 0);
    assert!(tcp
        .lameduck
        .log()
        .contains("drained: nothing is open any more"));
}

#[test]
fn a_failing_health_check_takes_a_pod_out_whatever_the_file_says() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.67.0.2", ports);
    let mut b = Pod::start(dir.path(), "web-b", "127.67.0.3", ports);
    let file = dir.path().join("endpoints.yaml");
    write_atomic(
        &file,
        &slice_yaml(
            "web-1",
            ports,
            &[
                ("web-a", "127.67.0.2", READY),
                ("web-b", "127.67.0.3", READY),
            ],
        ),
    );
    let flags = [
        "--port",
        "http",
        "--health-check",
        "http:/healthz",
        "--health-interval",
        "100ms",
        "--health-threshold",
        "2",
    ];
    let tcp = Balance::start(&source(&file), &flags, &[], true);
    b.kill();
    tcp.wait_state("web-b", Some("not_serving"));
    let view = tcp.endpoint("web-b").expect("web-b");
    assert_eq!(
        (view["source_state"].clone(), view["healthy"].clone()),
        (json!("ready"), json!(false))
    );
    tcp.lameduck
        .wait_log("health check fails: no new connections");
    let b2 = Pod::start(dir.path(), "web-b", "127.67.0.3", ports);
    tcp.wait_state("web-b", Some("ready"));
    drop(b2);
}

#[test]
fn bad_input_gets_a_clear_message_and_status_2() {
    let dir = tempdir();
    let ports = Ports::free();
    let file = dir.path().join("endpoints.yaml");
    write_atomic(
        &file,
        &slice_yaml("web-1", ports, &[("web-a", "127.68.0.2", READY)]),
    );
    let src = source(&file);
    let listen = "127.0.0.1:0";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--bogus",
            ],
            "unexpected argument '--bogus'",
        ),
        (vec!["balance", "--listen", listen], "--endpoints <SOURCE>"),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                "file:/does/not/exist.yaml",
            ],
            "cannot read /does/not/exist.yaml",
        ),
        (
            vec!["balance", "--listen", listen, "--endpoints", "consul:web"],
            "use file:PATH or kubernetes:NAMESPACE/SERVICE[:PORT]",
        ),
        (
            vec!["balance", "--listen", listen, "--endpoints", &src],
            "several ports (tcp, ws, http): choose one with --port",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--port",
                "grpc",
            ],
            "no EndpointSlice has a TCP port named \"grpc\"",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--port",
                "70000",
            ],
            "out of range",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--connect-retries",
                "1000",
            ],
            "1000 is not in 0..=10",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--health-check",
                "grpc",
            ],
            "use tcp or http:PATH",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--drain-timeout",
                "forever",
            ],
            "forever",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                "kubernetes:shop/web",
            ],
            "no usable Kubernetes configuration",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--port",
                "tcp",
                "--health-interval",
                "48h",
            ],
            "--health-interval is longer than a day",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--port",
                "tcp",
                "--health-interval",
                "100000h",
            ],
            "longer than 8760h (365 days)",
        ),
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--port",
                "tcp",
                "--threads",
                "0",
            ],
            "0 is not in 1..=1024",
        ),
    ];
    for (args, needle) in cases {
        let (code, stderr) = run_balance(&args, &[("KUBECONFIG", "/does/not/exist")]);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
