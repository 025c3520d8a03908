//! End-to-end tests of `lameduck check --balancer lameduck`: the rehearsal
//! drives the real `lameduck balance` (this same binary) through
//! EndpointSlice files written on the kubelet's timeline, and its load goes
//! through that balancer's listen address. Real pods (PID and network
//! namespaces), a Python app as each pod's PID 1, the JSON report read back.

mod check_support;
mod support;

use check_support::{app_path, behind_lameduck_run, check, check_logged, count, findings, pod_app};
use serde_json::Value;
use support::python;

/// Two replicas, a 1s lag, steady HTTP load.
const LOAD: &[&str] = &[
    "--replicas",
    "2",
    "--endpoint-lag",
    "1s",
    "--clients",
    "4",
    "--rps",
    "150",
    "--settle",
    "500ms",
];

/// A connection count the balancer reported.
fn connections(report: &Value, field: &str) -> u64 {
    count(report, "connections", field)
}

#[test]
fn refusals_lost_behind_kube_proxy_are_retried_by_lameduck_balance() {
    let app = pod_app();
    // The app closes its listener at SIGTERM: while the balancer still
    // routes to it (the lag), every new connection to it is refused. The
    // other replica still takes them.
    let naive = [python(), &app, "--on-term", "close-wait"];
    // One request in five on a new connection: new connections meet the
    // lag.
    let delete = [
        LOAD,
        &[
            "--scenario",
            "delete",
            "--grace-period",
            "5s",
            "--new-connection-ratio",
            "0.2",
        ],
    ]
    .concat();
    let (code, report) = check(
        &[&delete[..], &["--balancer", "kube-proxy"]].concat(),
        &naive,
    );
    assert_eq!(code, 1, "kube-proxy loses them: {report:#}");
    assert!(count(&report, "requests", "refused") > 0, "{report:#}");

    let (_, report, log) =
        check_logged(&[&delete[..], &["--balancer", "lameduck"]].concat(), &naive);
    assert_eq!(report["plan"]["balancer"], "lameduck", "{report:#}");
    assert_eq!(
        count(&report, "requests", "refused"),
        0,
        "{report:#}\n{log}"
    );
    assert!(count(&report, "requests", "ok") > 100, "{report:#}");
    // The same refusals happened, at the balancer, which tried another pod.
    assert!(connections(&report, "retried") > 0, "{report:#}\n{log}");
    assert_eq!(connections(&report, "refused"), 0, "{report:#}");
    assert_eq!(connections(&report, "no_endpoint"), 0, "{report:#}");
    assert!(
        connections(&report, "accepted") >= connections(&report, "connected"),
        "{report:#}"
    );
    assert!(connections(&report, "connected") > 0, "{report:#}");
}

#[test]
fn behind_lameduck_balance_and_lameduck_run_a_rolling_update_loses_nothing() {
    let app = pod_app();
    let (code, report, log) = check_logged(
        &[
            LOAD,
            &[
                "--balancer",
                "lameduck",
                "--grace-period",
                "10s",
                "--readiness",
                "http:9901/ready",
            ],
        ]
        .concat(),
        &behind_lameduck_run(&["2s", "8s"], &[python(), &app, "--on-term", "close-wait"]),
    );
    assert_eq!(code, 0, "nothing lost: {report:#}\n{log}");
    assert_eq!(
        count(&report, "requests", "ok"),
        count(&report, "requests", "total"),
        "{report:#}"
    );
    assert!(count(&report, "requests", "ok") > 100, "{report:#}");
    assert!(findings(&report).is_empty(), "{report:#}");
    // Both old pods were deleted and neither was killed.
    for pod in &report["pods"].as_array().expect("pods")[..2] {
        assert!(pod["life"]["terminating"].is_number(), "{pod}");
        assert!(pod["life"]["killed"].is_null(), "{pod}");
    }
}

#[test]
fn websocket_sessions_ride_a_rolling_update_behind_lameduck_balance_and_lameduck_run() {
    let ws = app_path("ws_server.py");
    let (code, report, log) = check_logged(
        &[
            "--replicas",
            "2",
            "--endpoint-lag",
            "500ms",
            "--grace-period",
            "10s",
            "--readiness",
            "http:9901/ready",
            "--settle",
            "500ms",
            "--clients",
            "0",
            "--long",
            "websocket:4",
            "--balancer",
            "lameduck",
        ],
        &behind_lameduck_run(&["2s", "8s"], &[python(), &ws]),
    );
    assert_eq!(code, 0, "nothing lost: {report:#}\n{log}");
    assert_eq!(count(&report, "sessions", "cut"), 0, "{report:#}");
    // Every session on an old pod got its goodbye and reconnected, to a new
    // pod: the four are open at the end.
    assert!(count(&report, "sessions", "goodbye") >= 4, "{report:#}");
    assert_eq!(count(&report, "sessions", "still_open"), 4, "{report:#}");
    let goodbyes = report["session_list"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter(|s| s["end"]["kind"] == "goodbye")
        .all(|s| s["end"]["code"] == 1001);
    assert!(goodbyes, "{report:#}");
    assert_eq!(connections(&report, "no_endpoint"), 0, "{report:#}");
    assert_eq!(connections(&report, "refused"), 0, "{report:#}");
}

#[test]
fn a_balancer_that_cannot_listen_ends_the_rehearsal_without_a_verdict() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    // `.output()` reads stderr to its end: the whole log, no race.
    let (code, log) = support::run_to_end(&[
        "check",
        "--balancer",
        "lameduck",
        "--balancer-listen",
        &addr,
        "--",
        "true",
    ]);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("could not rehearse: lameduck balance did not start")
            && log.contains("Address already in use"),
        "{log}"
    );
}
