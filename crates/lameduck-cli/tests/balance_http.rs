//! End-to-end tests of `lameduck balance --mode http` with a file source:
//! HTTP/1.1 keep-alive pods on loopback addresses of their own (as pod
//! IPs, `tests/balance/http_pod.py`, each writing what it sees to an events
//! file), the real balancer, and real clients (Python's `http.client`,
//! curl, h2load for h2c).

#[path = "balance/support.rs"]
mod balance_support;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use balance_support::{
    fixture, run_balance, slice_yaml, write_atomic, Balance, Pod, Ports, WsSession, READY,
    TERMINATING,
};
use serde_json::{json, Value};
use support::net::{exchange, free_port, refused, status};
use support::{python, tempdir, wait_file, wait_until};

fn source(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// An HTTP pod: `tests/balance/http_pod.py`.
struct HttpPod {
    events: PathBuf,
    child: Child,
}

impl HttpPod {
    fn start(dir: &Path, name: &str, ip: &str, ports: Ports, extra: &[&str]) -> HttpPod {
        let ready = dir.join(format!("{name}.ready"));
        let events = dir.join(format!("{name}.events"));
        let child = Command::new(python())
            .arg(fixture("http_pod.py"))
            .args(["--name", name, "--host", ip])
            .args(["--port", &ports.http.to_string()])
            .arg("--events")
            .arg(&events)
            .arg("--ready")
            .arg(&ready)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .expect("start http_pod.py");
        wait_file(&ready);
        HttpPod { events, child }
    }

    /// Its events, one per line.
    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many events begin with `word`.
    fn count(&self, word: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.split(' ').next() == Some(word))
            .count()
    }

    /// SIGKILL: its port refuses from now on.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HttpPod {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `http_client.py spread`: `count` GETs over `connections` keep-alive
/// connections; answers by pod, with no failure.
fn spread(
    dir: &Path,
    listen: SocketAddr,
    count: usize,
    connections: usize,
) -> BTreeMap<String, u64> {
    let out = dir.join(format!("spread-{}.json", free_port()));
    let status = Command::new(python())
        .arg(fixture("http_client.py"))
        .args(["spread", "--addr", &listen.to_string()])
        .args(["--count", &count.to_string()])
        .args(["--connections", &connections.to_string()])
        .arg("--out")
        .arg(&out)
        .status()
        .expect("http_client.py spread");
    assert!(status.success());
    let result: Value = serde_json::from_str(&wait_file(&out)).expect("client output");
    assert_eq!(result["failures"], json!([]), "client failures: {result}");
    serde_json::from_value(result["by_pod"].clone()).expect("by_pod")
}

/// `http_client.py sequence`: the requests one after the other on one
/// keep-alive connection (`--h2`: HTTP/2 streams on one connection);
/// `[status, body]` of each.
fn sequence(dir: &Path, listen: SocketAddr, flags: &[&str], requests: &[&str]) -> Value {
    let out = dir.join(format!("sequence-{}.json", free_port()));
    let status = Command::new(python())
        .arg(fixture("http_client.py"))
        .args(["sequence", "--addr", &listen.to_string()])
        .args(flags)
        .arg("--out")
        .arg(&out)
        .args(requests)
        .status()
        .expect("http_client.py sequence");
    assert!(status.success());
    serde_json::from_str(&wait_file(&out)).expect("client output")
}

/// A slow request in flight with curl: `GET /slow?ms=MS` (or another
/// method).
struct Slow(Child);

impl Slow {
    fn start(listen: SocketAddr, ms: u32) -> Slow {
        Slow::start_with(listen, ms, "GET")
    }

    fn start_with(listen: SocketAddr, ms: u32, method: &str) -> Slow {
        Slow(
            Command::new("curl")
                .args([
                    "-sS",
                    "--max-time",
                    "30",
                    "-w",
                    " %{http_code}",
                    "-X",
                    method,
                ])
                .arg(format!("http://{listen}/slow?ms={ms}"))
                .stdout(Stdio::piped())
                .spawn()
                .expect("curl"),
        )
    }

    /// Its body and status, once it ended.
    fn answer(self) -> String {
        let out = self.0.wait_with_output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn in_flight(balance: &Balance) -> u64 {
    balance.endpoints()["endpoints"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|e| e["in_flight_requests"].as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn one_pod(dir: &Path, ip: &str, ports: Ports, extra: &[&str]) -> (HttpPod, PathBuf) {
    let pod = HttpPod::start(dir, "web-a", ip, ports, extra);
    let file = dir.join("endpoints.yaml");
    write_atomic(&file, &slice_yaml("web-1", ports, &[("web-a", ip, READY)]));
    (pod, file)
}

fn two_pods(dir: &Path, net: &str, ports: Ports, extra: &[&str]) -> (HttpPod, HttpPod, PathBuf) {
    let a = HttpPod::start(dir, "web-a", &format!("{net}.2"), ports, extra);
    let b = HttpPod::start(dir, "web-b", &format!("{net}.3"), ports, extra);
    let file = dir.join("endpoints.yaml");
    write_atomic(&file, &both(net, ports, READY, READY));
    (a, b, file)
}

fn both(net: &str, ports: Ports, a: [Option<bool>; 3], b: [Option<bool>; 3]) -> String {
    let (ip_a, ip_b) = (format!("{net}.2"), format!("{net}.3"));
    slice_yaml("web-1", ports, &[("web-a", &ip_a, a), ("web-b", &ip_b, b)])
}

fn http_balance(file: &Path, flags: &[&str]) -> Balance {
    let mut all = vec!["--mode", "http", "--port", "http"];
    all.extend_from_slice(flags);
    Balance::start(&source(file), &all, &[], true)
}

#[test]
fn a_terminating_endpoint_gets_no_new_request_its_slow_one_completes_and_its_idle_connections_close(
) {
    let dir = tempdir();
    let ports = Ports::free();
    let (a, b, file) = two_pods(dir.path(), "127.81.0", ports, &[]);
    let balance = http_balance(&file, &[]);

    // Two slow requests: least connections puts one on each pod.
    let slow_1 = Slow::start(balance.listen, 8000);
    wait_until("the first slow request in flight", || {
        in_flight(&balance) == 1
    });
    let slow_2 = Slow::start(balance.listen, 8000);
    wait_until("the second slow request in flight", || {
        in_flight(&balance) == 2
    });
    for pod in ["web-a", "web-b"] {
        assert_eq!(balance.endpoint(pod).expect(pod)["in_flight_requests"], 1);
    }

    // Requests spread over both ready pods, on kept connections.
    let by_pod = spread(dir.path(), balance.listen, 60, 4);
    assert_eq!(by_pod.values().sum::<u64>(), 60);
    assert!(by_pod.len() == 2, "both pods get requests: {by_pod:?}");
    let b_page = balance.endpoint("web-b").expect("web-b");
    let b_open = b_page["open_connections"].as_u64().expect("open");
    assert!(b_open >= 2, "the slow one and kept ones: {b_page}");
    assert!(
        b_page["connections"].as_u64() < b_page["requests"].as_u64(),
        "connections are reused: {b_page}"
    );

    // web-b is deleted: terminating in the file.
    write_atomic(&file, &both("127.81.0", ports, READY, TERMINATING));
    balance.wait_state("web-b", Some("terminating"));
    let requests_b = b.count("request");
    // Its idle kept connections are closed at once: web-b sees each close
    // but that of the slow request's connection.
    wait_until("web-b to see its idle connections closed", || {
        b.count("closed") + 1 == b.count("accept")
    });
    balance
        .lameduck
        .wait_log("kept connections to an endpoint that is no longer ready closed");
    let b_page = balance.endpoint("web-b").expect("web-b");
    assert_eq!(
        (
            b_page["open_connections"].as_u64(),
            b_page["in_flight_requests"].as_u64()
        ),
        (Some(1), Some(1)),
        "{b_page}"
    );

    // No new request reaches it.
    let by_pod = spread(dir.path(), balance.listen, 40, 4);
    assert_eq!(by_pod, BTreeMap::from([("web-a".to_owned(), 40)]));
    assert_eq!(b.count("request"), requests_b, "{:?}", b.events());
    assert_eq!(
        balance.metric(&format!(
            "lameduck_balance_endpoint_in_flight_requests{{endpoint=\"127.81.0.3:{}\"",
            ports.http
        )),
        1.0
    );

    // The slow requests complete, the one on the terminating pod too.
    let mut answers = [slow_1.answer(), slow_2.answer()];
    answers.sort();
    assert_eq!(answers, ["web-a\n 200", "web-b\n 200"]);
    // Its connection is not kept: closed once the answer went.
    wait_until("web-b's last connection to close", || {
        b.count("closed") == b.count("accept")
    });
    assert!(a.count("closed") < a.count("accept"), "web-a's are kept");
    assert_eq!(
        balance.metric("lameduck_requests_total{outcome=\"success\"}"),
        102.0
    );
}

#[test]
fn only_terminating_endpoints_left_take_the_requests_and_nothing_is_refused() {
    let dir = tempdir();
    let ports = Ports::free();
    let (a, b, file) = two_pods(dir.path(), "127.82.0", ports, &[]);
    write_atomic(&file, &both("127.82.0", ports, TERMINATING, TERMINATING));
    let balance = http_balance(&file, &[]);
    let by_pod = spread(dir.path(), balance.listen, 40, 4);
    assert_eq!(by_pod.values().sum::<u64>(), 40);
    assert_eq!(by_pod.len(), 2, "both terminating pods serve: {by_pod:?}");
    assert_eq!(balance.endpoints()["fallback"], true);
    assert_eq!(balance.metric("lameduck_balance_fallback"), 1.0);
    balance.lameduck.wait_log(
        "no endpoint is ready: new connections fall back to serving terminating endpoints",
    );
    // A terminating pod's connections are never kept: one per request.
    wait_until("every connection to close", || {
        a.count("closed") == a.count("accept") && b.count("closed") == b.count("accept")
    });
    assert_eq!(a.count("accept") + b.count("accept"), 40);
}

#[test]
fn a_pod_that_refuses_before_the_file_says_so_costs_the_clients_nothing() {
    let dir = tempdir();
    let ports = Ports::free();
    let (_a, mut b, file) = two_pods(dir.path(), "127.83.0", ports, &[]);
    let balance = http_balance(&file, &[]);
    // Connections to both are kept...
    let by_pod = spread(dir.path(), balance.listen, 20, 2);
    assert_eq!(by_pod.len(), 2, "{by_pod:?}");
    // ... and web-b dies: its kept connections are dead, its port refuses,
    // and the file still says ready.
    b.kill();
    let by_pod = spread(dir.path(), balance.listen, 40, 4);
    assert_eq!(by_pod.values().sum::<u64>(), 40);
    assert!(balance.metric("lameduck_balance_connect_retries_total") >= 1.0);
    assert!(balance.metric("lameduck_balance_ejections_total") >= 1.0);
    assert_eq!(
        balance.metric("lameduck_balance_connect_failures_total"),
        0.0
    );
    let b_page = balance.endpoint("web-b").expect("web-b");
    assert!(b_page["connect_failures"].as_u64() >= Some(1), "{b_page}");
    assert_eq!(
        balance.metric("lameduck_requests_total{outcome=\"upstream_error\"}"),
        0.0
    );
}

#[test]
fn a_request_still_in_flight_to_a_gone_endpoint_is_cut_at_the_drain_timeout() {
    let dir = tempdir();
    let ports = Ports::free();
    let (a, _b, file) = two_pods(dir.path(), "127.88.0", ports, &[]);
    let only = |ip: &str, name: &str| slice_yaml("web-1", ports, &[(name, ip, READY)]);
    write_atomic(&file, &only("127.88.0.3", "web-b"));
    let balance = http_balance(&file, &["--drain-timeout", "1s"]);
    // A POST: once cut, it cannot go to another pod (a GET would).
    let slow = Slow::start_with(balance.listen, 15000, "POST");
    wait_until("the slow request in flight", || in_flight(&balance) == 1);
    // web-b is gone from the file; web-a takes over.
    write_atomic(&file, &only("127.88.0.2", "web-a"));
    balance.wait_state("web-b", Some("gone"));
    assert_eq!(
        spread(dir.path(), balance.listen, 10, 2),
        BTreeMap::from([("web-a".to_owned(), 10)])
    );
    // Its request ran on for the drain timeout, then its connection was
    // closed: the client gets 502 long before the pod would have answered
    // (15s).
    assert_eq!(slow.answer(), "upstream unavailable\n 502");
    assert_eq!(
        balance.metric("lameduck_balance_closed_at_drain_timeout_total"),
        1.0
    );
    // Its last connection closed: forgotten.
    balance.wait_state("web-b", None);
    assert_eq!(
        a.count("closed"),
        0,
        "web-a's connections are kept: {:?}",
        a.events()
    );
}

#[test]
fn a_kept_connection_the_pod_closed_is_sent_again_for_idempotent_requests_only() {
    let dir = tempdir();
    let ports = Ports::free();
    // The pod answers the first request of each connection and closes the
    // connection on the second, once it read it whole: a keep-alive
    // timeout that hits a request already on its way.
    let (pod, file) = one_pod(dir.path(), "127.84.0.2", ports, &["--drop-second"]);
    let balance = http_balance(&file, &[]);
    let requests = [
        "GET /1",
        // On the kept connection: dropped, sent again on a new one.
        "GET /2",
        // Written on the kept connection and dropped: never sent twice.
        "POST /3 order=1",
        // On a new connection.
        "DELETE /4",
        // Idempotent: sent again.
        "DELETE /5",
        // A POST without a body is no more idempotent: never sent twice.
        "POST /6",
        // On a new connection.
        "POST /7",
    ];
    let expected = json!([
        [200, "web-a"],
        [200, "web-a"],
        [502, "upstream unavailable"],
        [200, "web-a"],
        [200, "web-a"],
        [502, "upstream unavailable"],
        [200, "web-a"],
    ]);
    let seen = || {
        [1, 2, 3, 4, 5, 6, 7].map(|n| {
            pod.events()
                .iter()
                .filter(|e| e.starts_with("request") && e.ends_with(&format!(" /{n}")))
                .count()
        })
    };
    // HTTP/1.1 from the client (the engine's path)...
    assert_eq!(
        sequence(dir.path(), balance.listen, &[], &requests),
        expected
    );
    assert_eq!(seen(), [1, 2, 1, 1, 2, 1, 1], "{:?}", pod.events());
    // ... and h2c (hyper's path): the same rule.
    assert_eq!(
        sequence(dir.path(), balance.listen, &["--h2"], &requests),
        expected
    );
    // Its first GET took the connection the HTTP/1.1 run kept: sent again.
    assert_eq!(seen(), [3, 4, 2, 2, 4, 2, 2], "{:?}", pod.events());
    assert_eq!(
        balance.metric("lameduck_requests_total{outcome=\"upstream_error\"}"),
        4.0
    );
}

#[test]
fn h2c_clients_are_spread_per_request_over_http11_connections() {
    let dir = tempdir();
    let ports = Ports::free();
    let (a, b, file) = two_pods(dir.path(), "127.85.0", ports, &[]);
    let balance = http_balance(&file, &[]);
    // One HTTP/2 connection, ten streams at a time.
    let out = Command::new("h2load")
        .args(["-n", "200", "-c", "1", "-m", "10"])
        .arg(format!("http://{}/h2", balance.listen))
        .output()
        .expect("h2load");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("200 succeeded, 0 failed, 0 errored"),
        "{text}"
    );
    assert!(text.contains("200 2xx"), "{text}");
    let (on_a, on_b) = (a.count("request"), b.count("request"));
    assert_eq!(on_a + on_b, 200);
    assert!(
        on_a > 0 && on_b > 0,
        "one h2c connection, both pods: {on_a} {on_b}"
    );
    assert_eq!(
        balance.metric("lameduck_in_flight_requests{protocol=\"http2\"}"),
        0.0
    );
    // And curl's h2c upgrade from HTTP/1.1.
    let out = Command::new("curl")
        .args(["-sS", "--http2", "-w", " %{http_version}"])
        .arg(format!("http://{}/upgrade", balance.listen))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text == "web-a\n 2" || text == "web-b\n 2", "{text}");
}

#[test]
fn a_websocket_keeps_its_upstream_connection_when_its_pod_terminates() {
    let dir = tempdir();
    let ports = Ports::free();
    let _a = Pod::start(dir.path(), "web-a", "127.89.0.2", ports);
    let file = dir.path().join("endpoints.yaml");
    let slice = |c| slice_yaml("web-1", ports, &[("web-a", "127.89.0.2", c)]);
    write_atomic(&file, &slice(READY));
    let balance = Balance::start(
        &source(&file),
        &["--mode", "http", "--port", "ws"],
        &[],
        true,
    );
    let ws = WsSession::open(dir.path(), balance.listen, "1");
    // The upgraded connection counts as a request in flight on its pod.
    wait_until("the WebSocket in flight", || in_flight(&balance) == 1);
    write_atomic(&file, &slice(TERMINATING));
    balance.wait_state("web-a", Some("terminating"));
    let open = |b: &Balance| b.endpoint("web-a").expect("web-a")["open_connections"].clone();
    assert_eq!(open(&balance), 1, "the tunnel's connection is not closed");
    assert_eq!(
        balance.metric("lameduck_open_connections{protocol=\"websocket\"}"),
        1.0
    );
    // The client ends it, with every message echoed: the session outlived
    // the change.
    let result = ws.stop();
    assert_eq!(
        (result["close_code"].clone(), result["error"].clone()),
        (json!(1000), Value::Null),
        "{result}"
    );
    assert!(result["sent"].as_u64() > Some(0), "{result}");
    assert_eq!(result["sent"], result["echoed"], "{result}");
    wait_until("the tunnel's connection to close", || open(&balance) == 0);
}

#[test]
fn sigterm_drains_the_balancer_as_the_proxy_drains() {
    let dir = tempdir();
    let ports = Ports::free();
    let (pod, file) = one_pod(dir.path(), "127.86.0.2", ports, &[]);
    let balance = http_balance(&file, &["--drain-delay", "2s", "--grace-period", "30s"]);
    let slow = Slow::start(balance.listen, 4000);
    wait_until("the slow request in flight", || in_flight(&balance) == 1);
    balance.lameduck.signal(libc::SIGTERM);
    wait_until("/ready to fail", || status(balance.admin, "/ready") == 503);
    // Still served during the delay, told to go elsewhere next time.
    let answer = exchange(balance.listen, "GET /late HTTP/1.1\r\nHost: web\r\n\r\n")
        .expect("a request during the delay");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("connection: close"),
        "{answer:?}"
    );
    balance
        .lameduck
        .wait_log("listener closed: new connections are refused");
    assert!(refused(balance.listen));
    // The request in flight completes; then the balancer is done at once.
    assert_eq!(slow.answer(), "web-a\n 200");
    assert_eq!(balance.lameduck.exit_code(), 0);
    assert!(balance
        .lameduck
        .log()
        .contains("drained: nothing is open any more"));
    assert_eq!(pod.count("request"), 2);
}

#[test]
fn bad_input_gets_a_clear_answer() {
    let dir = tempdir();
    let ports = Ports::free();
    let (_pod, file) = one_pod(dir.path(), "127.87.0.2", ports, &[]);
    let src = source(&file);
    let listen = "127.0.0.1:0";
    for (args, expected) in [
        (
            vec![
                "balance",
                "--listen",
                listen,
                "--endpoints",
                &src,
                "--mode",
                "udp",
            ],
            "invalid value 'udp' for '--mode <MODE>'",
        ),
        (
            vec![
                "balance",
                "--mode",
                "http",
                "--listen",
                listen,
                "--endpoints",
                "file:/does/not/exist.yaml",
            ],
            "cannot read /does/not/exist.yaml",
        ),
        (
            vec![
                "balance",
                "--mode",
                "http",
                "--listen",
                listen,
                "--endpoints",
                &src,
            ],
            "several ports (tcp, ws, http): choose one with --port",
        ),
    ] {
        let (code, stderr) = run_balance(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    // Bad HTTP from a client: refused before any pod sees it.
    let balance = http_balance(&file, &[]);
    let answer = exchange(
        balance.listen,
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    )
    .expect("an answer");
    assert_eq!(answer.status, 400, "{answer:?}");
    let answer = exchange(
        balance.listen,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .expect("an answer");
    assert_eq!(answer.status, 501, "{answer:?}");
    // No endpoint at all: 502 with a log line that says so.
    write_atomic(&file, &slice_yaml("web-1", ports, &[]));
    balance.wait_state("web-a", None);
    let answer = exchange(
        balance.listen,
        "GET /x HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n",
    )
    .expect("an answer");
    assert_eq!(answer.status, 502, "{answer:?}");
    balance.lameduck.wait_log("no endpoint is ready or serving");
    assert_eq!(balance.metric("lameduck_balance_no_endpoint_total"), 1.0);
}
