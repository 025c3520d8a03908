//! `--workers`: several single-threaded workers, each with its own
//! `SO_REUSEPORT` listener, take real clients' connections (h2load over
//! HTTP/1.1 and h2c) and drain as one on SIGTERM: no failed request, every
//! listener closed, in-flight work finished, exit 0; each has its own
//! upstream client under one upstream connection limit. `--workers auto`
//! and bad counts: proxy_workers_flags.rs.

mod support;

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::process::{Child, Command, Output, Stdio};

use support::net::{free_port, metric, refused, request, status, ProxiedApp};
use support::{wait_until, Lameduck, EVENT_TIMEOUT};

/// Connections worker `worker` accepted so far.
fn accepted(admin: SocketAddr, worker: usize) -> f64 {
    let prefix = format!("lameduck_worker_accepted_connections_total{{worker=\"{worker}\"}}");
    metric(admin, &prefix).unwrap_or(-1.0)
}

/// h2load against `listen` with `args` (HTTP/1.1 with `--h1`, else h2c
/// with prior knowledge), started in the background.
fn h2load(listen: SocketAddr, args: &[&str]) -> Child {
    Command::new("h2load")
        .args(args)
        .arg(format!("http://{listen}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("h2load (Debian's nghttp2-client)")
}

/// The numbers of h2load's `requests:` line: total, started, done,
/// succeeded, failed, errored, timeout.
fn requests_line(out: &Output) -> (String, Vec<u64>) {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let numbers = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    (text, numbers)
}

/// Asserts every request h2load finished succeeded and none got an error
/// status; returns how many. With `-D`, h2load itself abandons the one
/// request each client has in flight when its time is up: those are
/// started, not done, and not failures (at most one per client).
fn all_succeeded(out: &Output, clients: u64) -> u64 {
    let (text, n) = requests_line(out);
    assert!(out.status.success(), "{text}");
    let [total, started, done, succeeded, failed, errored, timeout] = n[..] else {
        panic!("no requests line: {text}");
    };
    assert!(succeeded > 0, "{text}");
    assert_eq!((failed, errored, timeout), (0, 0, 0), "{text}");
    assert_eq!(done, succeeded, "{text}");
    assert!(started - done <= clients, "{text}");
    assert!(total >= succeeded, "{text}");
    assert!(text.contains(" 0 4xx, 0 5xx"), "{text}");
    succeeded
}

#[test]
fn two_workers_share_the_clients_and_drain_as_one() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &[],
        &["--workers", "2", "--drain-delay", "4s"],
    );
    let line = app.lameduck.wait_log("proxy listening");
    assert!(line.contains("workers=2 source=\"--workers\""), "{line}");
    assert_eq!(metric(app.admin, "lameduck_workers "), Some(2.0));

    // h2c: 16 connections with prior knowledge, spread by the kernel; each
    // worker serves some (the chance that all land on one is 2^-15).
    let before = [accepted(app.admin, 0), accepted(app.admin, 1)];
    let h2 = h2load(app.listen, &["-n", "640", "-c", "16", "-m", "4"]);
    let h2 = h2.wait_with_output().expect("h2load");
    assert_eq!(all_succeeded(&h2, 0), 640);
    let after = [accepted(app.admin, 0), accepted(app.admin, 1)];
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "both workers serve h2c: {before:?} -> {after:?}"
    );
    assert_eq!(after[0] + after[1] - before[0] - before[1], 16.0);

    // A slow request in flight across the whole drain.
    let listen = app.listen;
    let slow = std::thread::spawn(move || request(listen, "GET", "/slow?ms=6000"));
    app.wait_in_flight("http1", 1.0);

    // HTTP/1.1 load from 32 keep-alive connections, then SIGTERM during it.
    let before = [accepted(app.admin, 0), accepted(app.admin, 1)];
    let h1 = h2load(app.listen, &["--h1", "-D", "2", "-c", "32"]);
    wait_until("both workers to take HTTP/1.1 connections", || {
        accepted(app.admin, 0) > before[0] && accepted(app.admin, 1) > before[1]
    });
    app.lameduck.signal(libc::SIGTERM);
    app.lameduck.wait_log("draining: readiness fails");
    // Answers from now on carry `Connection: close`; h2load reconnects to
    // the listeners still open during the delay, and nothing fails.
    let h1 = h1.wait_with_output().expect("h2load");
    all_succeeded(&h1, 32);

    // At the delay's end every worker's listener closes, while the slow
    // request still runs.
    wait_until("both listeners closed", || {
        app.lameduck.log().matches("listener closed").count() == 2
    });
    assert!(refused(app.listen), "a new connection is refused");
    let slow = slow.join().expect("slow client").expect("slow answer");
    assert_eq!((slow.status, slow.body.as_str()), (200, "slow done\n"));
    assert_eq!(app.lameduck.exit_code(), 0, "{}", app.lameduck.log());
    let log = app.lameduck.log();
    assert!(log.contains("drained: nothing is open any more"), "{log}");
}

/// An h2c server on loopback answering `ok`, counting the connections that
/// carried at least one request.
fn h2c_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let used = Arc::new(AtomicUsize::new(0));
    let counted = used.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                let first = Arc::new(AtomicBool::new(true));
                let counted = counted.clone();
                let service = service_fn(move |_req: hyper::Request<Incoming>| {
                    if first.swap(false, Ordering::Relaxed) {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    async {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("ok"))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
    });
    (addr, used)
}

#[test]
fn two_workers_forward_to_an_h2c_upstream_each_with_its_own_client() {
    let (upstream, used) = h2c_upstream();
    let [listen, admin] = [free_port(), free_port()].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
    let lameduck = Lameduck::start(&[
        "proxy",
        "--listen",
        &listen.to_string(),
        "--upstream",
        &upstream.to_string(),
        "--admin",
        &admin.to_string(),
        "--upstream-protocol",
        "h2",
        "--workers",
        "2",
    ]);
    wait_until("/ready to answer 200", || status(admin, "/ready") == 200);
    for args in [
        &["-n", "400", "-c", "16", "-m", "4"][..],
        &["--h1", "-n", "400", "-c", "16"],
    ] {
        let out = h2load(listen, args).wait_with_output().expect("h2load");
        assert_eq!(all_succeeded(&out, 0), 400);
    }
    assert!(
        accepted(admin, 0) > 0.0 && accepted(admin, 1) > 0.0,
        "both workers served"
    );
    // One multiplexed connection per worker's client, not one for the process.
    assert!(
        used.load(Ordering::Relaxed) >= 2,
        "{} upstream connections",
        used.load(Ordering::Relaxed)
    );
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0, "{}", lameduck.log());
}

/// Sends `GET path` on a keep-alive connection and reads the answer up to
/// the body's end `tail`.
fn keep_alive_get(stream: &mut TcpStream, path: &str, tail: &str) -> String {
    let mut got = Vec::new();
    let result: std::io::Result<()> = (|| {
        write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")?;
        let mut buf = [0u8; 4096];
        while !got.ends_with(tail.as_bytes()) {
            match stream.read(&mut buf)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    })();
    let got = String::from_utf8_lossy(&got).into_owned();
    match result {
        Ok(()) => got,
        Err(e) => format!("GET {path} failed: {e}; read {got:?}"),
    }
}

#[test]
fn idle_upstream_connections_of_one_worker_do_not_starve_another() {
    let app = ProxiedApp::start(
        "http_upstream.py",
        &[],
        &[
            "--workers",
            "2",
            "--max-upstream-connections",
            "4",
            "--connect-timeout",
            "3s",
        ],
    );
    // Client connections sorted by the worker the kernel gave them to:
    // four on worker 0, one on worker 1.
    let mut on: [Vec<TcpStream>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..200 {
        if on[0].len() >= 4 && !on[1].is_empty() {
            break;
        }
        let before = [accepted(app.admin, 0), accepted(app.admin, 1)];
        let stream = TcpStream::connect(app.listen).expect("connect");
        stream
            .set_read_timeout(Some(EVENT_TIMEOUT))
            .expect("timeout");
        wait_until("the connection to be accepted", || {
            accepted(app.admin, 0) + accepted(app.admin, 1) > before[0] + before[1]
        });
        let worker = usize::from(accepted(app.admin, 0) == before[0]);
        on[worker].push(stream);
    }
    assert!(
        on[0].len() >= 4 && !on[1].is_empty(),
        "the kernel used one listener"
    );
    // Four requests at once on worker 0 take every upstream slot; done,
    // their connections wait idle in worker 0's pool.
    let busy: Vec<_> = on[0]
        .drain(..)
        .take(4)
        .map(|mut stream| {
            std::thread::spawn(move || keep_alive_get(&mut stream, "/slow?ms=300", "slow done\n"))
        })
        .collect();
    for answer in busy {
        let answer = answer.join().expect("client");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(
        metric(app.admin, "lameduck_upstream_connections "),
        Some(4.0)
    );
    // Worker 1 needs a slot: worker 0 lets its idle connections go rather
    // than worker 1 waiting out the connect timeout for a 503.
    let answer = keep_alive_get(&mut on[1][0], "/", "x\n");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{answer}\n{}",
        app.lameduck.log()
    );
    assert_eq!(
        metric(app.admin, "lameduck_requests_total{outcome=\"overloaded\"}"),
        Some(0.0)
    );
}
