//! End-to-end tests that `lameduck check` tells the truth: the README's
//! example behind `lameduck run` as a cluster would run it (the kubelet's
//! environment in every pod), a kill that fails the rehearsal even with
//! nothing in flight, a load that falls short and says so, and a rehearsal
//! ended by SIGTERM or SIGHUP that leaves no process and no namespace.

mod check_support;
mod support;

use std::path::Path;

use check_support::{
    check_logged, count, finding_about, finding_of, findings, pod_app, REHEARSAL_LIMIT,
};
use serde_json::Value;
use support::{lameduck_bin, python, tempdir, wait_until, Lameduck};

/// The README's example: `lameduck run` with the proxy in front of
/// `python3 -m http.server`, `extra` added to lameduck run's flags.
fn readme_example(extra: &[&str]) -> (i32, Value, String) {
    let mut command = vec![
        lameduck_bin(),
        "run",
        "--listen",
        "0.0.0.0:{port}",
        "--upstream",
        "127.0.0.1:9000",
        "--admin",
        "0.0.0.0:9901",
    ];
    command.extend_from_slice(extra);
    command.extend_from_slice(&["--", python(), "-m", "http.server", "9000"]);
    check_logged(
        &[
            "--replicas",
            "2",
            "--endpoint-lag",
            "1s",
            "--grace-period",
            "10s",
            "--readiness",
            "http:9901/ready",
            "--rps",
            "200",
            "--settle",
            "300ms",
        ],
        &command,
    )
}

#[test]
fn the_readme_example_passes_with_lameduck_runs_defaults_inside_a_pod_that_looks_like_kubernetes() {
    let (code, report, log) = readme_example(&[]);
    assert_eq!(code, 0, "nothing lost: {report:#}\n{log}");
    assert!(count(&report, "requests", "ok") > 100, "{report:#}");
    // The kubelet's KUBERNETES_SERVICE_HOST made lameduck run take its 5s
    // default, which the rehearsal read from its start-up line.
    let inner = &report["pods"][0]["life"]["lameduck"];
    assert_eq!(inner["drain_delay"], 5000.0, "{inner}");
    assert!(
        inner["drain_delay_source"]
            .as_str()
            .is_some_and(|s| s.contains("default inside Kubernetes")),
        "{inner}"
    );
    // Its grace period (30s) is longer than the pod's (10s): a warning of
    // its own, which does not fail the rehearsal.
    let warning = finding_of(&report, "warning");
    assert!(
        warning["what"].as_str().is_some_and(
            |w| w.contains("plans for a grace period of 30s, longer than the pod's 10s")
        ),
        "{warning}"
    );
    assert!(
        warning["fix"]
            .as_str()
            .is_some_and(|f| f.contains("--grace-period 10s")),
        "{warning}"
    );
}

#[test]
fn the_readme_example_with_a_drain_delay_below_the_lag_names_that_setting() {
    let (code, report, _) = readme_example(&["--drain-delay", "300ms", "--grace-period", "10s"]);
    assert_eq!(code, 1, "{report:#}");
    assert!(count(&report, "requests", "refused") > 0, "{report:#}");
    let (_, cause, fix) = finding_about(&report, "refused");
    let found = findings(&report);
    assert!(
        cause.contains("lameduck run inside pod-")
            && cause.contains("held the stop for 300ms (configured), the lag is 1s"),
        "{cause}"
    );
    assert!(
        fix.starts_with("set --drain-delay 2s on lameduck run"),
        "{fix}"
    );
    assert!(!fix.contains("run the app under"), "{fix}");
    // Its grace period matches the pod's: no warning about it.
    assert!(
        !found
            .iter()
            .any(|(what, ..)| what.contains("plans for a grace period")),
        "{found:#?}"
    );
}

#[test]
fn a_pod_killed_at_its_deadline_fails_the_rehearsal_with_nothing_in_flight() {
    let app = pod_app();
    // A trickle of requests answered at once: none is in flight at the kill.
    let (code, report, log) = check_logged(
        &[
            "--scenario",
            "delete",
            "--replicas",
            "2",
            "--endpoint-lag",
            "200ms",
            "--grace-period",
            "1500ms",
            "--clients",
            "1",
            "--rps",
            "5",
            "--settle",
            "300ms",
        ],
        &[python(), &app, "--on-term", "ignore", "--delay", "0"],
    );
    assert_eq!(code, 1, "a kill fails: {report:#}\n{log}");
    assert_eq!(report["failed"], true);
    let kill = finding_of(&report, "kill");
    assert!(
        kill["what"]
            .as_str()
            .is_some_and(|w| w.starts_with("pod-1 was killed (SIGKILL) at ")
                && w.ends_with("when its grace period of 1.5s ran out")),
        "{kill}"
    );
    assert!(
        kill["cause"]
            .as_str()
            .is_some_and(|c| c.contains("has no handler for SIGTERM")),
        "{kill}"
    );
}

#[test]
fn a_load_that_falls_short_of_its_rps_says_so() {
    let app = pod_app();
    // One client, each answer taking 50 ms: at most 20 requests/s of 400.
    let (_, report, _) = check_logged(
        &[
            "--scenario",
            "delete",
            "--replicas",
            "1",
            "--endpoint-lag",
            "200ms",
            "--grace-period",
            "3s",
            "--clients",
            "1",
            "--rps",
            "400",
            "--settle",
            "300ms",
        ],
        &[python(), &app, "--on-term", "close-wait", "--delay", "0.05"],
    );
    let load = &report["load"];
    assert_eq!(load["asked_rps"], 400, "{load}");
    assert_eq!(load["shortfall"], true, "{load}");
    let reached = load["reached_rps"].as_f64().expect("reached");
    // Refusals after the only pod is gone are fast, and count too.
    assert!(reached > 1.0 && reached < 200.0, "{load}");
}

/// Processes whose command line names `marker`.
fn processes_naming(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = entry.path().join("cmdline");
        if let Ok(bytes) = std::fs::read(&cmdline) {
            let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if text.contains(marker) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Network namespaces a rehearsal of process `pid` made.
fn namespaces_of(pid: i32) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("lameduck-check-{pid}-")))
        .collect()
}

/// Starts a long rehearsal of an app copied under a name of its own,
/// sends `signal` once the load runs, and checks that nothing is left.
fn interrupted_by(signal: i32, name: &str) {
    let dir = tempdir();
    let app = dir.path().join(format!("interrupted_{name}_app.py"));
    std::fs::copy(pod_app(), &app).expect("a copy of the app");
    let app = app.to_string_lossy().into_owned();
    let run = Lameduck::start(&[
        "check",
        "--replicas",
        "2",
        "--grace-period",
        "30s",
        "--warmup",
        "60s",
        "--rps",
        "50",
        "--",
        python(),
        &app,
        "--on-term",
        "ignore",
    ]);
    run.wait_log("load running");
    // Each pod: its PID 1 and the `unshare` that started it.
    assert!(
        processes_naming(&app).len() >= 2,
        "{:?}",
        processes_naming(&app)
    );
    if Path::new("/run/netns").exists() {
        assert!(!namespaces_of(run.pid).is_empty(), "namespaces made");
    }
    run.signal(signal);
    let status = run.wait_for(REHEARSAL_LIMIT);
    assert_eq!(status.code(), Some(128 + signal), "{}", run.log());
    // The log is read on a thread of its own: wait for the line, do not
    // assume it was read by the time the exit was seen.
    run.wait_log("every pod and its network namespace were removed");
    // SIGKILL ends a pod's processes at once, but their exit is the
    // kernel's to finish: wait for it, with a bound.
    wait_until("the pods' processes to be gone", || {
        processes_naming(&app).is_empty()
    });
    assert_eq!(namespaces_of(run.pid), Vec::<String>::new());
}

#[test]
fn sigterm_to_a_running_rehearsal_leaves_no_process_and_no_namespace() {
    interrupted_by(libc::SIGTERM, "term");
}

#[test]
fn sigint_to_a_running_rehearsal_leaves_no_process_and_no_namespace() {
    interrupted_by(libc::SIGINT, "int");
}

#[test]
fn sighup_to_a_running_rehearsal_leaves_no_process_and_no_namespace() {
    interrupted_by(libc::SIGHUP, "hup");
}

#[test]
fn an_absurd_duration_is_refused_at_parse_with_exit_2() {
    let run = Lameduck::start(&[
        "check",
        "--grace-period",
        "2600000000000000h",
        "--",
        python(),
        "-m",
        "http.server",
    ]);
    run.wait_log("longer than 8760h (365 days)");
    assert_eq!(run.exit_code(), 2, "{}", run.log());
}

#[test]
fn a_rehearsal_that_cannot_run_gives_no_verdict_and_exits_1() {
    // The balancer's address is taken: no load can start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let run = Lameduck::start(&[
        "check",
        "--balancer-listen",
        &addr,
        "--",
        python(),
        "-m",
        "http.server",
    ]);
    run.wait_log("could not rehearse: the balancer could not listen");
    assert_eq!(run.exit_code(), 1, "{}", run.log());
    // A pod that exits before it is ready.
    let run = Lameduck::start(&["check", "--replicas", "1", "--", "false"]);
    // Gone before its PID 1 was seen, or before it was ready: either way.
    run.wait_log("could not rehearse: pod-1 ");
    assert_eq!(run.exit_code(), 1, "{}", run.log());
}
