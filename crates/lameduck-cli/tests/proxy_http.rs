//! The drain proxy with HTTP/1.1 clients: keep-alive clients in a tight
//! loop lose nothing across the stop, a long request completes, readiness
//! flips, the listener refuses after the delay, an idle proxy leaves at once,
//! and faults (a dead upstream, bad requests) get clear answers.

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::net::{exchange, free_port, refused, request, status, ProxiedApp};
use support::{tempdir, wait_until, Lameduck};

const BODY: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";

/// One keep-alive client's tally.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    told_to_close: AtomicUsize,
    ok_after_close: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

#[test]
fn keep_alive_clients_in_a_tight_loop_lose_nothing_across_the_stop() {
    let app = ProxiedApp::start("http_upstream.py", &[], &["--drain-delay", "3s"]);
    let url: hyper::Uri = format!("http://{}/", app.listen).parse().expect("url");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Arc<Tally>> = (0..4).map(|_| Arc::default()).collect();
    let mut clients = Vec::new();
    for tally in &tallies {
        let (tally, stop, url) = (tally.clone(), stop.clone(), url.clone());
        // A strict client: no retry of a request on a connection the
        // server closed, so such a loss would show.
        let client = Client::builder(TokioExecutor::new())
            .retry_canceled_requests(false)
            .build_http::<Empty<Bytes>>();
        clients.push(rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let result = async {
                    let res = client
                        .get(url.clone())
                        .await
                        .map_err(|e| format!("{e:?}"))?;
                    let close = res
                        .headers()
                        .get("connection")
                        .is_some_and(|v| v == "close");
                    let status = res.status();
                    let body = res
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| format!("body: {e}"))?;
                    if status != 200 || body.to_bytes() != BODY.as_bytes() {
                        return Err(format!("status {status} or a body cut short"));
                    }
                    Ok(close)
                }
                .await;
                match result {
                    Ok(close) => {
                        tally.ok.fetch_add(1, Ordering::Relaxed);
                        if tally.told_to_close.load(Ordering::Relaxed) > 0 {
                            tally.ok_after_close.fetch_add(1, Ordering::Relaxed);
                        }
                        if close {
                            tally.told_to_close.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => tally.failures.lock().expect("tally").push(e),
                }
            }
        }));
    }
    let clients_thread = std::thread::spawn(move || {
        rt.block_on(async {
            for c in clients {
                c.await.expect("client task");
            }
        })
    });
    let all = |f: &dyn Fn(&Tally) -> bool| tallies.iter().all(|t| f(t));
    wait_until("every client to have requests answered", || {
        all(&|t| t.ok.load(Ordering::Relaxed) >= 20)
    });
    app.lameduck.signal(libc::SIGTERM);
    app.lameduck.wait_log("draining: readiness fails");
    // Through the delay: every client is told to close, reconnects, and
    // goes on being served.
    wait_until("every client to be told to close and served again", || {
        all(&|t| t.ok_after_close.load(Ordering::Relaxed) >= 5)
    });
    assert_eq!(status(app.admin, "/ready"), 503);
    stop.store(true, Ordering::Relaxed);
    clients_thread.join().expect("clients");
    for (i, t) in tallies.iter().enumerate() {
        let failures = t.failures.lock().expect("tally");
        assert!(failures.is_empty(), "client {i} saw failures: {failures:?}");
    }
    assert_eq!(app.lameduck.exit_code(), 0);
    assert!(app
        .lameduck
        .log()
        .contains("drained: nothing is open any more"));
}

#[test]
fn a_long_request_completes_while_readiness_fails_and_the_listener_closes() {
    let app = ProxiedApp::start("http_upstream.py", &[], &["--drain-delay", "500ms"]);
    let curl = Command::new("curl")
        .args(["-sS", "-i", &format!("http://{}/slow?ms=3000", app.listen)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    app.wait_in_flight("http1", 1.0);
    assert_eq!(status(app.admin, "/ready"), 200);
    app.lameduck.signal(libc::SIGTERM);
    app.lameduck.wait_log("draining: readiness fails");
    assert_eq!(
        status(app.admin, "/ready"),
        503,
        "readiness flips at SIGTERM"
    );
    app.lameduck.wait_log("listener closed");
    assert!(
        refused(app.listen),
        "a new connection after the delay is refused"
    );
    let out = curl.wait_with_output().expect("curl output");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(out.status.success(), "curl failed: {text}");
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.ends_with("slow done\n"), "{text}");
    assert_eq!(app.lameduck.exit_code(), 0);
}

#[test]
fn an_idle_proxy_stops_the_app_right_after_the_delay() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &["--exit-code", "7"],
        &["--drain-delay", "1s"],
    );
    app.lameduck.signal(libc::SIGTERM);
    assert_eq!(app.lameduck.exit_code(), 7, "the app's own code");
    let log = app.lameduck.log();
    assert!(log.contains("drained: nothing is open any more"), "{log}");
    assert!(!log.contains("deadline reached"), "{log}");
    let drained = log.find("drained:").expect("drained");
    let passed = log.find("stop passed on").expect("stop passed on");
    assert!(
        drained < passed,
        "the app heard the stop only once drained: {log}"
    );
}

#[test]
fn an_upstream_crash_mid_drain_ends_with_the_apps_code() {
    let app = ProxiedApp::start("http_upstream.py", &[], &["--drain-delay", "5s"]);
    let curl = Command::new("curl")
        .args(["-sS", "-i", &format!("http://{}/slow?ms=10000", app.listen)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    app.wait_in_flight("http1", 1.0);
    app.lameduck.signal(libc::SIGTERM);
    app.lameduck.wait_log("draining: readiness fails");
    let bye = request(app.listen, "GET", "/crash?code=3").expect("crash request");
    assert_eq!(bye.status, 200);
    assert_eq!(app.lameduck.exit_code(), 3);
    let out = curl.wait_with_output().expect("curl output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1.1 502"),
        "the request in flight gets 502: {text}"
    );
    assert!(app
        .lameduck
        .log()
        .contains("upstream failed while draining"));
}

#[test]
fn a_dead_upstream_gets_502_and_readiness_stays_failed() {
    let (listen, admin) = (free_port(), free_port());
    let (l, a) = (format!("127.0.0.1:{listen}"), format!("127.0.0.1:{admin}"));
    let u = format!("127.0.0.1:{}", free_port());
    let lameduck = Lameduck::start(&["proxy", "--listen", &l, "--upstream", &u, "--admin", &a]);
    let admin = a.parse().expect("admin");
    wait_until("the admin port", || status(admin, "/live") == 200);
    let answer = request(l.parse().expect("listen"), "GET", "/").expect("answer");
    assert_eq!(answer.status, 502);
    assert_eq!(answer.body, "upstream unavailable\n");
    assert_eq!(status(admin, "/ready"), 503);
    lameduck.wait_log("upstream failed: 502");
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0);
}

#[test]
fn bad_requests_get_4xx_and_hop_by_hop_headers_stop_at_the_proxy() {
    let app = ProxiedApp::start("http_upstream.py", &[], &[]);
    let garbage = exchange(app.listen, "NOT HTTP AT ALL\r\n\r\n").expect("answer");
    assert_eq!(garbage.status, 400, "{garbage:?}");
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let too_many = exchange(
        app.listen,
        &format!("GET / HTTP/1.1\r\nHost: t\r\n{many}Connection: close\r\n\r\n"),
    )
    .expect("answer");
    assert_eq!(too_many.status, 431, "{too_many:?}");
    let headers = exchange(
        app.listen,
        "GET /headers HTTP/1.1\r\nHost: t\r\nConnection: close, x-secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nX-Kept: yes\r\n\r\n",
    )
    .expect("answer");
    let seen = headers.body.to_lowercase();
    assert!(seen.contains("x-kept: yes"), "{seen}");
    assert!(seen.contains("x-forwarded-for: 127.0.0.1"), "{seen}");
    assert!(!seen.contains("x-secret"), "{seen}");
    assert!(!seen.contains("keep-alive"), "{seen}");
}

#[test]
fn curl_streams_chunked_bodies_both_ways_with_expect_100_continue() {
    let app = ProxiedApp::start("http_upstream.py", &[], &[]);
    let dir = tempdir();
    let upload = dir.path().join("upload");
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&upload, &data).expect("upload file");
    let echo = Command::new("curl")
        .args([
            "-sS",
            "-H",
            "Expect: 100-continue",
            "-H",
            "Transfer-Encoding: chunked",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", upload.display()))
        .arg(format!("http://{}/echo", app.listen))
        .output()
        .expect("curl");
    assert!(
        echo.status.success(),
        "{}",
        String::from_utf8_lossy(&echo.stderr)
    );
    assert!(
        echo.stdout == data,
        "the echoed body differs ({} bytes back)",
        echo.stdout.len()
    );
    let stream = Command::new("curl")
        .args([
            "-sS",
            &format!("http://{}/stream?chunks=5&ms=50", app.listen),
        ])
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&stream.stdout),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n"
    );
}
