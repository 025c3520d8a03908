//! End-to-end tests of `lameduck check`: real pods (PID and network
//! namespaces), the real binary, a Python app as each pod's PID 1, and the
//! JSON report read back. Every rehearsal ends by itself; the test waits on
//! its exit, with a bound.

mod check_support;
mod support;

use std::process::Command;

use check_support::{
    app_path, behind_lameduck_run, check, count, finding_about, finding_of, findings, pod_app,
    REHEARSAL_LIMIT,
};
use serde_json::Value;
use support::{lameduck_bin, python, tempdir, Lameduck};

#[test]
fn a_server_that_closes_its_listener_at_sigterm_loses_requests_to_the_lag() {
    let app = pod_app();
    let (code, report) = check(
        &[
            "--replicas",
            "2",
            "--endpoint-lag",
            "1s",
            "--grace-period",
            "5s",
            "--clients",
            "4",
            "--rps",
            "150",
            "--settle",
            "500ms",
        ],
        &[python(), &app, "--on-term", "close-wait"],
    );
    assert_eq!(code, 1, "something was lost: {report:#}");
    assert!(count(&report, "requests", "refused") > 0, "{report:#}");
    assert!(count(&report, "requests", "ok") > 0, "{report:#}");
    let (what, cause, fix) = finding_about(&report, "refused");
    assert!(
        what.contains("after SIGTERM while the balancer still routed to pod-")
            && what.contains("(lag 1s)"),
        "{what}"
    );
    assert!(
        cause.contains("stopped accepting connections at once"),
        "{cause}"
    );
    assert!(fix.contains("lameduck run --drain-delay 2s"), "{fix}");
    // The refusals fall between SIGTERM and the endpoint's removal.
    for loss in report["lost_requests"].as_array().expect("losses") {
        let pod = loss["pod"].as_u64().expect("a pod") as usize;
        let events = &report["pods"][pod - 1]["life"];
        let at = loss["at"].as_f64().expect("at");
        assert!(
            at >= events["stop_signal"].as_f64().expect("signal"),
            "{loss}"
        );
        assert!(
            at <= events["removed"].as_f64().expect("removed") + 50.0,
            "{loss}"
        );
    }
}

#[test]
fn the_same_server_behind_lameduck_run_with_a_longer_drain_delay_loses_nothing() {
    let app = pod_app();
    let (code, report) = check(
        &[
            "--replicas",
            "2",
            "--endpoint-lag",
            "1s",
            "--grace-period",
            "10s",
            "--clients",
            "4",
            "--rps",
            "150",
            "--settle",
            "500ms",
            "--readiness",
            "http:9901/ready",
        ],
        &[
            lameduck_bin(),
            "run",
            "--listen",
            "0.0.0.0:{port}",
            "--upstream",
            "127.0.0.1:9000",
            "--admin",
            "0.0.0.0:9901",
            "--drain-delay",
            "2s",
            "--grace-period",
            "10s",
            "--",
            python(),
            &app,
            "--port",
            "9000",
            "--on-term",
            "close-wait",
        ],
    );
    assert_eq!(code, 0, "nothing lost: {report:#}");
    assert_eq!(
        count(&report, "requests", "ok"),
        count(&report, "requests", "total")
    );
    assert!(count(&report, "requests", "ok") > 100, "{report:#}");
    assert!(findings(&report).is_empty());
    // Both old pods were deleted, and neither was killed.
    for pod in &report["pods"].as_array().expect("pods")[..2] {
        assert!(pod["life"]["terminating"].is_number(), "{pod}");
        assert!(pod["life"]["killed"].is_null(), "{pod}");
        assert_eq!(pod["life"]["pid1"], "lameduck");
    }
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_at_the_deadline_with_its_requests() {
    let app = pod_app();
    let (code, report) = check(
        &[
            "--scenario",
            "delete",
            "--replicas",
            "2",
            "--endpoint-lag",
            "200ms",
            "--grace-period",
            "2s",
            "--clients",
            "6",
            "--new-connection-ratio",
            "0",
            "--settle",
            "500ms",
        ],
        &[python(), &app, "--on-term", "ignore", "--delay", "0.3"],
    );
    assert_eq!(code, 1, "{report:#}");
    let deleted = &report["pods"][0]["life"];
    assert!(deleted["killed"].is_number(), "{deleted}");
    assert_eq!(deleted["signal_handled"], false);
    let cut = count(&report, "requests", "reset") + count(&report, "requests", "truncated");
    assert!(cut > 0, "{report:#}");
    let (what, cause, fix) = finding_about(&report, "killed at the deadline on pod-1");
    assert!(
        what.starts_with(&format!("{cut} request")),
        "every cut request was cut at SIGKILL: {what} ({cut})"
    );
    assert!(cause.contains("has no handler for SIGTERM"), "{cause}");
    assert!(fix.contains("lameduck run"), "{fix}");
    // The kill is a finding of its own, which names the pod and its cause.
    let kill = finding_of(&report, "kill");
    assert!(
        kill["what"]
            .as_str()
            .is_some_and(|w| w.starts_with("pod-1 was killed (SIGKILL) at ")),
        "{kill}"
    );
    assert_eq!(report["failed"], true);
}

/// Sessions on the pod that is deleted, under the given balancer: the app
/// keeps them for 1.5 s after SIGTERM and then says goodbye (FIN).
fn sessions_through(balancer: &str) -> Value {
    let app = pod_app();
    let (_, report) = check(
        &[
            "--scenario",
            "delete",
            "--replicas",
            "2",
            "--endpoint-lag",
            "300ms",
            "--grace-period",
            "5s",
            "--balancer",
            balancer,
            "--clients",
            "0",
            "--long",
            "tcp:6",
            "--settle",
            "300ms",
        ],
        &[
            python(),
            &app,
            "--tcp",
            "--on-term",
            "close-wait",
            "--linger",
            "1.5",
        ],
    );
    report
}

#[test]
fn a_resetting_balancer_cuts_long_sessions_that_a_graceful_one_keeps() {
    let reset = sessions_through("reset");
    let cut_by_balancer = reset["session_list"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["end"]["kind"] == "cut" && s["end"]["by_balancer"] == true)
        .count();
    assert!(cut_by_balancer > 0, "{reset:#}");
    assert!(
        findings(&reset).iter().any(
            |(what, ..)| what.contains("TCP session") && what.contains("reset by the balancer")
        ),
        "{reset:#}"
    );

    let graceful = sessions_through("graceful");
    assert_eq!(count(&graceful, "sessions", "cut"), 0, "{graceful:#}");
    assert!(count(&graceful, "sessions", "goodbye") > 0, "{graceful:#}");
    assert_eq!(count(&graceful, "connections", "cut"), 0);
}

/// Deleting one of two pods whose command is [`check_support::behind_lameduck_run`]:
/// readiness is the proxy's.
const DELETE_ONE_BEHIND_LAMEDUCK_RUN: &[&str] = &[
    "--scenario",
    "delete",
    "--replicas",
    "2",
    "--endpoint-lag",
    "300ms",
    "--grace-period",
    "4s",
    "--readiness",
    "http:9901/ready",
    "--settle",
    "300ms",
];

#[test]
fn http2_clients_ride_through_lameduck_run() {
    let app = pod_app();
    let (code, report) = check(
        &[
            DELETE_ONE_BEHIND_LAMEDUCK_RUN,
            &["--clients", "3", "--rps", "100", "--http2"],
        ]
        .concat(),
        &behind_lameduck_run(&["1s", "4s"], &[python(), &app, "--on-term", "close-wait"]),
    );
    assert_eq!(code, 0, "{report:#}");
    assert!(count(&report, "requests", "ok") > 50, "{report:#}");
}

#[test]
fn websocket_sessions_get_a_goodbye_through_lameduck_run_and_reconnect() {
    let ws = app_path("ws_server.py");
    let (code, report) = check(
        &[
            DELETE_ONE_BEHIND_LAMEDUCK_RUN,
            &["--clients", "0", "--long", "websocket:4"],
        ]
        .concat(),
        &behind_lameduck_run(&["1s", "4s"], &[python(), &ws]),
    );
    assert_eq!(code, 0, "{report:#}");
    // Sessions on the deleted pod got a close frame 1001 and reconnected.
    let goodbyes: Vec<&Value> = report["session_list"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["end"]["kind"] == "goodbye")
        .collect();
    assert!(!goodbyes.is_empty(), "{report:#}");
    assert!(
        goodbyes
            .iter()
            .all(|s| s["end"]["code"] == 1001 && s["pod"] == 1),
        "{goodbyes:#?}"
    );
    assert_eq!(count(&report, "sessions", "still_open"), 4);
}

/// What the page's own script wrote once the browser had laid it out:
/// `timelines N bars N markers N legend N event-rows N scales S/P ...`.
fn rendered(page: &std::path::Path) -> (String, String) {
    let dir = tempdir();
    let profile = dir.path().join("chromium");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("Debian's chromium (scripts/test.sh installs it)");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let rendered = dom
        .split("data-rendered=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the page did not mark itself rendered:\n{dom}"))
        .to_string();
    (rendered, dom)
}

/// The number after `word` in the rendered mark.
fn after(rendered: &str, word: &str) -> u64 {
    let mut words = rendered.split_whitespace();
    words
        .find(|w| *w == word)
        .and_then(|_| words.next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{word} in {rendered}"))
}

#[test]
fn the_report_pages_of_a_run_and_of_a_comparison_render_in_headless_chromium() {
    let app = pod_app();
    let dir = tempdir();
    let page = dir.path().join("report.html");
    let page_arg = page.to_string_lossy().into_owned();
    let run = |on_term: &str, page: Option<&str>| {
        let mut args = vec![
            "--scenario",
            "delete",
            "--replicas",
            "2",
            "--endpoint-lag",
            "500ms",
            "--grace-period",
            "2s",
            "--rps",
            "100",
            "--settle",
            "300ms",
        ];
        if let Some(page) = page {
            args.extend(["--report", page]);
        }
        check(&args, &[python(), &app, "--on-term", on_term])
    };
    let (_, before) = run("exit", Some(&page_arg));
    assert!(count(&before, "requests", "total") > 0);
    let (one, dom) = rendered(&page);
    assert!(one.starts_with("timelines 1 "), "{one}");
    assert!(
        after(&one, "bars") > 0 && after(&one, "markers") > 0,
        "{one}"
    );
    // Every mark of the timeline has its key in the legend.
    assert_eq!(after(&one, "legend"), 12, "{one}");
    // Every pod event is a row of time, event, detail: no raw JSON.
    let events: usize = before["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .map(|p| p["events"].as_array().map_or(0, Vec::len) + 1)
        .sum();
    assert_eq!(after(&one, "event-rows") as usize, events, "{one}");
    assert!(!dom.contains("{&quot;kind&quot;"), "raw JSON on the page");
    assert!(!dom.contains("sigprocmask"), "unshare's noise on the page");
    assert!(
        dom.contains("kept to the end"),
        "the pod kept is shown as kept"
    );
    assert!(
        dom.contains("<title>lameduck check: lost "),
        "the verdict is the title"
    );

    // The same app, ignoring SIGTERM: killed at the deadline. Compared.
    let (_, after_run) = run("ignore", None);
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, before.to_string()).expect("a.json");
    std::fs::write(&b, after_run.to_string()).expect("b.json");
    let compared = dir.path().join("compare.html");
    let run = Lameduck::start(&[
        "check",
        "--compare",
        &a.to_string_lossy(),
        &b.to_string_lossy(),
        "--report",
        &compared.to_string_lossy(),
    ]);
    assert_eq!(
        run.wait_for(REHEARSAL_LIMIT).code(),
        Some(0),
        "{}",
        run.log()
    );
    let (two, dom) = rendered(&compared);
    assert!(two.starts_with("timelines 2 "), "{two}");
    let scales: Vec<&str> = two
        .split(" scales ")
        .nth(1)
        .expect("scales")
        .split_whitespace()
        .collect();
    assert_eq!(scales.len(), 2, "{two}");
    assert_eq!(scales[0], scales[1], "both runs on one scale: {two}");
    assert!(dom.contains("killed (SIGKILL) at "), "the kill is shown");
}

#[test]
fn the_balancers_counts_agree_with_an_independent_clients_counts() {
    let app = pod_app();
    let dir = tempdir();
    let json = dir.path().join("report.json");
    let stop = dir.path().join("stop");
    let port = support::net::free_port();
    let listen = format!("127.0.0.1:{port}");
    let run = Lameduck::start(&[
        "check",
        "--json",
        &json.to_string_lossy(),
        "--replicas",
        "2",
        "--endpoint-lag",
        "1s",
        "--grace-period",
        "5s",
        "--clients",
        "0",
        "--balancer-listen",
        &listen,
        "--settle",
        "1s",
        "--",
        python(),
        &app,
        "--on-term",
        "close-wait",
    ]);
    let client = Command::new(python())
        .arg(app_path("count_client.py"))
        .arg(&listen)
        .arg(&stop)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the client");
    run.wait_log("settling");
    std::fs::write(&stop, "").expect("stop file");
    let out = client.wait_with_output().expect("the client's counts");
    assert_eq!(
        run.wait_for(REHEARSAL_LIMIT).code(),
        Some(0),
        "{}",
        run.log()
    );
    let theirs: Value = serde_json::from_slice(&out.stdout).expect("client JSON");
    let ours: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    let (ok, failed) = (
        theirs["ok"].as_u64().expect("ok"),
        theirs["failed"].as_u64().expect("failed"),
    );
    assert!(ok > 50 && failed > 0, "the client saw both: {theirs}");
    let c = &ours["connections"];
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {c}"));
    // Relayed and answered; or refused, unroutable, or reset on the way.
    assert_eq!(n("connected") - n("reset"), ok, "{c} vs {theirs}");
    assert_eq!(
        n("refused") + n("no_endpoint") + n("reset"),
        failed,
        "{c} vs {theirs}"
    );
    assert_eq!(c["accepted"].as_u64(), Some(ok + failed));
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["check", "--replicas", "0", "--", "true"][..],
        &["check", "--new-connection-ratio", "2", "--", "true"],
        &["check", "--long", "carrier-pigeon:3", "--", "true"],
        &["check", "--readiness", "http:99999/x", "--", "true"],
        &["check", "--clients", "0", "--", "true"],
        &["check", "--path", "/a b", "--", "true"],
        &["check", "--replicas", "2"],
        &["check", "--grace-period", "2600000000000000h", "--", "true"],
        &["check", "--endpoint-lag", "9000h", "--", "true"],
        &["check", "--container", "app", "--", "true"],
        &["check", "--max-surge", "lots", "--", "true"],
        &["check", "--manifest", "/nonexistent.yaml"],
    ] {
        let run = Lameduck::start(args);
        assert_eq!(run.exit_code(), 2, "{args:?}: {}", run.log());
    }
    // The environment twin of a flag is read too.
    let run = support::Lameduck::start_with(
        &["check", "--", "true"],
        support::Options {
            env: vec![("LAMEDUCK_CHECK_REPLICAS".into(), "0".into())],
            ..support::Options::default()
        },
    );
    run.wait_log("--replicas must be at least 1");
    assert_eq!(run.exit_code(), 2, "{}", run.log());
}
