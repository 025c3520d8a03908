//! The release binary, as `scripts/release.sh` makes it: static, summed, and
//! working as each of its commands, also where no shared library exists (a
//! `FROM scratch` image). The script runs once per test binary; it is
//! incremental, so a second run only checks that nothing changed.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::net::{exchange, free_port};
use support::{python, tempdir, wait_until, EVENT_TIMEOUT};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("the repository root")
}

/// Runs `scripts/release.sh` once and returns the binary for this machine.
fn release_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Quick: the release flags without full LTO and the layout rounds
        // (scripts/release.sh says why); bench/supervisor.sh builds it whole.
        let out = Command::new(repo().join("scripts/release.sh"))
            .env("RELEASE_QUICK", "1")
            .current_dir(repo())
            .stdin(Stdio::null())
            .output()
            .expect("scripts/release.sh runs");
        assert!(
            out.status.success(),
            "scripts/release.sh failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => panic!("no release build for {other}"),
        };
        let bin = repo().join("dist").join(format!("lameduck-linux-{arch}"));
        assert!(bin.is_file(), "{} was not made", bin.display());
        bin
    })
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn the_release_binary_is_static() {
    let bin = release_bin();
    let out = Command::new("ldd").arg(bin).output().expect("ldd runs");
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("statically linked") || said.contains("not a dynamic executable"),
        "ldd {}: {said}",
        bin.display()
    );
    // The same question asked of a dynamic binary gets the other answer.
    let out = Command::new("ldd")
        .arg(python())
        .output()
        .expect("ldd runs");
    assert!(text(&out.stdout).contains("libc.so"), "ldd python3");
}

#[test]
fn the_checksum_file_verifies_and_catches_a_changed_byte() {
    let bin = release_bin();
    let dist = bin.parent().expect("dist/");
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).expect("dist/SHA256SUMS");
    let names: Vec<&str> = sums
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(
        names.contains(&bin.file_name().and_then(|n| n.to_str()).expect("a name")),
        "{sums}"
    );
    let ok = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dist)
        .output()
        .expect("sha256sum runs");
    assert!(ok.status.success(), "{}", text(&ok.stdout));

    // A copy with one byte changed fails the same check.
    let dir = tempdir();
    std::fs::copy(dist.join("SHA256SUMS"), dir.path().join("SHA256SUMS")).expect("copy");
    for name in &names {
        let mut bytes = std::fs::read(dist.join(name)).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(dir.path().join(name), bytes).expect("write");
    }
    let bad = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .expect("sha256sum runs");
    assert!(!bad.status.success(), "{}", text(&bad.stdout));
}

#[test]
fn the_version_names_the_commit_it_was_built_from() {
    let out = Command::new(release_bin())
        .arg("--version")
        .output()
        .expect("--version");
    let version = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        version.starts_with(&format!("lameduck {} (", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let head = Command::new("git")
        .args(["log", "-1", "--format=%h %cs"])
        .current_dir(repo())
        .output()
        .expect("git log");
    let head = text(&head.stdout);
    let (hash, date) = head.trim().split_once(' ').expect("hash and date");
    assert!(
        version.contains(&format!("({hash}, {date}, ")),
        "{version} is not {hash} of {date}"
    );
}

#[test]
fn run_as_pid_1_passes_the_app_exit_code_and_sigterm_on() {
    let bin = release_bin();
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(bin)
        .args([
            "--quiet",
            "run",
            "--drain-delay",
            "0",
            "--",
            "sh",
            "-c",
            "exit 7",
        ])
        .output()
        .expect("unshare runs");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));

    // SIGTERM to lameduck reaches the app (sleep), which it ends: 128+15.
    let mut run = Command::new(bin)
        .args(["run", "--drain-delay", "0", "--", "sleep", "600"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("lameduck run");
    let pid = run.id();
    let children = format!("/proc/{pid}/task/{pid}/children");
    wait_until("sleep started under lameduck run", || {
        let child = std::fs::read_to_string(&children).unwrap_or_default();
        let child = child.split_whitespace().next().unwrap_or("").to_owned();
        !child.is_empty()
            && std::fs::read_to_string(format!("/proc/{child}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
    });
    // SAFETY: kill(2) with a pid this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut run, EVENT_TIMEOUT);
    let mut log = String::new();
    if let Some(err) = run.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
}

/// As in a `FROM scratch` image: the binary alone in a root of its own (no
/// shared library, no nsswitch.conf, no /proc), with an /etc/hosts. The proxy
/// finds its upstream by host name (glibc's built-in `files` service for a
/// static glibc build, musl's resolver for a musl one), serves a request,
/// and drains on SIGTERM.
#[test]
fn proxy_resolves_a_host_name_and_serves_in_an_empty_root() {
    let bin = release_bin();
    let dir = tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).expect("root/etc");
    std::fs::copy(bin, root.join("lameduck")).expect("the binary in the root");
    std::fs::write(root.join("etc/hosts"), "127.0.0.1 app.internal\n").expect("hosts");
    std::fs::write(dir.path().join("index.html"), "from the upstream\n").expect("page");
    let upstream_port = free_port();
    let listen_port = free_port();
    let mut upstream = Command::new(python())
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(upstream_port.to_string())
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");

    // chroot(8) execs lameduck: the pid this test signals is lameduck's.
    let mut proxy = Command::new("chroot")
        .arg(&root)
        .args(["/lameduck", "proxy", "--drain-delay", "0", "--listen"])
        .arg(format!("127.0.0.1:{listen_port}"))
        .arg("--upstream")
        .arg(format!("app.internal:{upstream_port}"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("chroot");
    let addr = format!("127.0.0.1:{listen_port}")
        .parse()
        .expect("an address");
    let mut answer = None;
    wait_until("an answer through the proxy", || {
        if let Ok(Some(status)) = proxy.try_wait() {
            panic!("the proxy exited: {status}");
        }
        match exchange(
            addr,
            "GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) {
            Ok(a) if a.status == 200 => {
                answer = Some(a);
                true
            }
            _ => false,
        }
    });
    let answer = answer.expect("an answer");
    assert!(answer.body.contains("from the upstream"), "{answer:?}");

    // SAFETY: kill(2) with a pid this test started.
    assert_eq!(unsafe { libc::kill(proxy.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut proxy, EVENT_TIMEOUT);
    let _ = upstream.kill();
    let _ = upstream.wait();
    let mut log = String::new();
    if let Some(err) = proxy.stderr.take() {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            log.push_str(&line);
            log.push('\n');
        }
    }
    assert!(status.success(), "{status}: {log}");
    assert!(log.contains("upstream=app.internal"), "{log}");
    assert!(log.contains("drained"), "{log}");
}

#[test]
fn lint_passes_the_repository_files_and_fails_a_shell_form_cmd() {
    let bin = release_bin();
    let out = Command::new(bin)
        .args(["lint", "Dockerfile", "deploy/examples", ".github/workflows"])
        .current_dir(repo())
        .output()
        .expect("lameduck lint");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let dir = tempdir();
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM debian:12\nCMD python3 -m http.server\n").expect("write");
    let out = Command::new(bin)
        .arg("lint")
        .arg(&bad)
        .output()
        .expect("lameduck lint");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("LD101"), "{}", text(&out.stdout));
}

/// A short rehearsal with the release binary in both roles: `check` deletes
/// a pod whose PID 1 is the same binary's `run` with its drain proxy, and
/// nothing is lost.
#[test]
fn check_rehearses_a_pod_behind_run_and_loses_nothing() {
    let bin = release_bin().display().to_string();
    let app = repo()
        .join("examples/rehearsal/app.py")
        .display()
        .to_string();
    let dir = tempdir();
    let json = dir.path().join("report.json");
    let log = dir.path().join("check.log");
    let mut child = Command::new(&bin)
        .args(["check", "--json"])
        .arg(&json)
        .args([
            "--scenario",
            "delete",
            "--replicas",
            "2",
            "--endpoint-lag",
            "300ms",
            "--grace-period",
            "5s",
            "--clients",
            "2",
            "--rps",
            "100",
            "--settle",
            "300ms",
            "--readiness",
            "http:9901/ready",
            "--",
            &bin,
            "run",
            "--listen",
            "0.0.0.0:{port}",
            "--upstream",
            "127.0.0.1:9000",
            "--admin",
            "0.0.0.0:9901",
            "--drain-delay",
            "1s",
            "--grace-period",
            "5s",
            "--",
            python(),
            &app,
            "--port",
            "9000",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("lameduck check");
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let report = std::fs::read_to_string(&json).unwrap_or_default();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{log}\n{report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    let ok = report["requests"]["ok"].as_u64().expect("requests.ok");
    assert!(ok > 20, "{report:#}");
    assert_eq!(report["requests"]["ok"], report["requests"]["total"]);
}
