//! `--workers`: several single-threaded workers, each with its own
//! `SO_REUSEPORT` listener, take real clients' connections (h2load over
//! HTTP/1.1 and h2c) and drain as one on SIGTERM: no failed request, every
//! listener closed, in-flight work finished, exit 0. `--workers auto`
//! follows a cgroup CPU limit (a real cgroup the test makes where the
//! machine lets it, and a fake root given by the test-only variable), and
//! bad counts are refused with a usage error.

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
use support::{lameduck_bin, run_to_end, tempdir, wait_until, Lameduck, Options, EVENT_TIMEOUT};

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

/// `lameduck proxy --workers auto` in front of nothing: its start-up line.
fn auto_line(options: Options, wrap: Option<&str>) -> String {
    let (listen, upstream) = (free_port(), free_port());
    let args = [
        "proxy",
        "--listen",
        &format!("127.0.0.1:{listen}"),
        "--upstream",
        &format!("127.0.0.1:{upstream}"),
        "--workers",
        "auto",
    ];
    let lameduck = match wrap {
        None => Lameduck::start_with(&args, options),
        // `sh` moves itself into the cgroup, then becomes lameduck.
        Some(cgroup_procs) => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("echo $$ > {cgroup_procs} && exec \"$0\" \"$@\""))
                .arg(lameduck_bin())
                .args(args)
                .env_remove("KUBERNETES_SERVICE_HOST")
                .envs(options.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stderr(Stdio::piped());
            Lameduck::spawn(command, false)
        }
    };
    let line = lameduck.wait_log("proxy listening");
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0, "{}", lameduck.log());
    line
}

/// The cores this test may run on.
fn cores() -> usize {
    let out = Command::new("nproc").output().expect("nproc");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number of cores")
}

#[test]
fn auto_follows_a_fake_cgroup_root_given_for_tests() {
    let root = tempdir();
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, text).expect("fixture");
    };
    write("proc/self/cgroup", "0::/\n");
    write(
        "proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n",
    );
    let with_limit = |cpu_max: &str| {
        write("sys/fs/cgroup/cpu.max", cpu_max);
        let env = vec![(
            "LAMEDUCK_TEST_CGROUP_ROOT".to_owned(),
            root.path().display().to_string(),
        )];
        auto_line(
            Options {
                env,
                ..Options::default()
            },
            None,
        )
    };
    let line = with_limit("100000 100000\n");
    assert!(
        line.contains("workers=1 source=\"auto: cgroup v2 cpu.max 100000 100000 in "),
        "{line}"
    );
    // 1.5 CPUs round up to 2, never beyond the cores.
    let line = with_limit("150000 100000\n");
    let expected = format!("workers={} ", cores().min(2));
    assert!(line.contains(&expected), "{line}");
    let line = with_limit("max 100000\n");
    let expected = format!(
        "workers={} source=\"auto: {} cores, no cgroup CPU limit\"",
        cores(),
        cores()
    );
    assert!(line.contains(&expected), "{line}");
}

/// A cgroup this test made, removed when dropped.
struct RealCgroup {
    dir: std::path::PathBuf,
    procs: std::path::PathBuf,
    /// How lameduck names its limit.
    expected: &'static str,
}

/// Where `/proc/self/mountinfo` mounts a file system of `fstype` whose
/// super options satisfy `options`.
fn mount_point(fstype: &str, options: impl Fn(&str) -> bool) -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts
        .lines()
        .filter_map(|l| l.split_once(" - "))
        .find(|(_, right)| {
            let mut f = right.split(' ');
            f.next() == Some(fstype) && options(f.nth(1).unwrap_or(""))
        })
        .and_then(|(left, _)| left.split(' ').nth(4))
        .map(std::path::PathBuf::from)
}

impl RealCgroup {
    /// A cgroup of one CPU (cgroup v2 where its cpu controller can be
    /// enabled, else v1), if the machine lets root make one; else why not.
    fn one_cpu() -> Result<Self, String> {
        Self::v2().or_else(|v2| Self::v1().map_err(|v1| format!("{v2}; {v1}")))
    }

    fn v2() -> Result<Self, String> {
        let root = mount_point("cgroup2", |_| true).ok_or("no cgroup v2 hierarchy is mounted")?;
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "cpu") {
            return Err(format!(
                "the cgroup v2 hierarchy at {} has no cpu controller",
                root.display()
            ));
        }
        std::fs::write(root.join("cgroup.subtree_control"), "+cpu")
            .map_err(|e| format!("cannot enable cpu under {}: {e}", root.display()))?;
        Self::make(
            &root,
            "cgroup v2 cpu.max 100000 100000 in ",
            &[("cpu.max", "100000 100000")],
        )
    }

    fn v1() -> Result<Self, String> {
        let point = mount_point("cgroup", |o| o.split(',').any(|o| o == "cpu"))
            .ok_or("no cgroup v1 cpu hierarchy is mounted")?;
        Self::make(
            &point,
            "cgroup v1 cpu.cfs_quota_us 100000 cpu.cfs_period_us 100000 in ",
            &[
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "100000"),
            ],
        )
    }

    /// A child of `parent` with `files` written.
    fn make(
        parent: &std::path::Path,
        expected: &'static str,
        files: &[(&str, &str)],
    ) -> Result<Self, String> {
        let dir = parent.join(format!("lameduck-test-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cgroup = RealCgroup {
            procs: dir.join("cgroup.procs"),
            dir,
            expected,
        };
        for (name, value) in files {
            std::fs::write(cgroup.dir.join(name), value)
                .map_err(|e| format!("cannot write {name} in {}: {e}", cgroup.dir.display()))?;
        }
        Ok(cgroup)
    }
}

impl Drop for RealCgroup {
    fn drop(&mut self) {
        // Empty once lameduck exited.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn auto_follows_a_real_cgroup_cpu_quota() {
    let cgroup = match RealCgroup::one_cpu() {
        Ok(cgroup) => cgroup,
        Err(why) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED auto_follows_a_real_cgroup_cpu_quota: {why}.\n\
                 !!!!!!!! Only the fake cgroup root covers --workers auto on this machine.\n"
            );
            return;
        }
    };
    let line = auto_line(
        Options::default(),
        Some(&cgroup.procs.display().to_string()),
    );
    let expected = format!("workers=1 source=\"auto: {}", cgroup.expected);
    assert!(line.contains(&expected), "{line}");
    assert!(line.contains(&cgroup.dir.display().to_string()), "{line}");
}

#[test]
fn bad_worker_counts_are_usage_errors() {
    let (listen, upstream) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    for (value, says) in [
        ("0", "at least one worker"),
        ("1025", "at most 1024 workers"),
        (
            "99999999999999999999999",
            "give a number from 1 to 1024, or auto",
        ),
        ("abc", "give a number from 1 to 1024, or auto"),
        ("2.5", "give a number from 1 to 1024, or auto"),
        ("", "give a number from 1 to 1024, or auto"),
    ] {
        let flag = format!("--workers={value}");
        for args in [
            vec!["proxy", "--listen", &listen, "--upstream", &upstream, &flag],
            vec![
                "run",
                "--listen",
                &listen,
                "--upstream",
                &upstream,
                &flag,
                "--",
                "true",
            ],
        ] {
            let (code, err) = run_to_end(&args);
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    // From the variable too.
    let out = Command::new(lameduck_bin())
        .args(["proxy", "--listen", &listen, "--upstream", &upstream])
        .env("LAMEDUCK_WORKERS", "many")
        .output()
        .expect("lameduck");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad worker count \"many\""), "{err}");
    // A port another proxy of the same user holds is not joined.
    let first = ProxiedApp::start("http_upstream.py", &[], &["--workers", "2"]);
    let taken = first.listen.to_string();
    let second = Lameduck::start(&[
        "proxy",
        "--listen",
        &taken,
        "--upstream",
        &upstream,
        "--workers",
        "2",
    ]);
    assert_eq!(second.exit_code(), 1, "{}", second.log());
    second.wait_log(&format!("cannot listen on {taken}"));
    // Without the proxy there is nothing to serve.
    let (code, err) = run_to_end(&["run", "--workers", "2", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--workers need --listen"), "{err}");
}
