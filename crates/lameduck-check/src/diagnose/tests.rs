//! The diagnosis on recorded lives and losses, without pods.
use super::*;
use crate::ledger::{PodEvent, PodEventKind};
use crate::plan::{HttpLoad, Network, Probe, Readiness, Scenario};

fn plan() -> Plan {
    Plan {
        command: vec!["app".into()],
        port: 8080,
        replicas: 2,
        scenario: Scenario::Delete,
        balancer: BalancerMode::KubeProxy,
        endpoint_lag: Duration::from_secs(1),
        grace_period: Duration::from_secs(2),
        pre_stop: None,
        stop_signal: "TERM".parse().expect("a signal"),
        readiness: Readiness {
            probe: Probe::Tcp { port: None },
            period: Duration::from_secs(1),
            failure_threshold: 3,
        },
        network: Network::Loopback,
        http: HttpLoad {
            clients: 1,
            rps: None,
            new_connection_ratio: 0.0,
            http2: false,
            path: "/".into(),
            timeout: Duration::from_secs(5),
            max_requests: None,
        },
        sessions: Vec::new(),
        websocket_path: "/ws".into(),
        start_timeout: Duration::from_secs(5),
        warmup: Duration::ZERO,
        settle: Duration::ZERO,
        balancer_listen: None,
        env: Vec::new(),
        rollout: crate::plan::Rollout::default(),
        sources: Vec::new(),
        notes: Vec::new(),
    }
}

fn lives(pid1: &str, handled: bool) -> Vec<PodLife> {
    let ev = |at: u64, event| PodEvent {
        at: Duration::from_millis(at),
        pod: 1,
        event,
    };
    PodLife::from_events(&[
        ev(0, PodEventKind::Started { pid1: pid1.into() }),
        ev(1000, PodEventKind::Terminating),
        ev(
            1000,
            PodEventKind::StopSignal {
                signal: "SIGTERM".into(),
                pid1: pid1.into(),
                handled,
            },
        ),
        ev(2000, PodEventKind::EndpointRemoved),
        ev(3000, PodEventKind::Killed),
    ])
}

fn loss(at: u64, outcome: RequestOutcome) -> LostRequest {
    LostRequest {
        at: Duration::from_millis(at),
        sent: Duration::from_millis(at),
        outcome,
        pod: Some(1),
        fresh_connection: true,
        by_balancer: false,
        detail: String::new(),
    }
}

#[test]
fn refusals_while_routed_after_sigterm_name_the_lag_and_the_drain_delay() {
    let lost = [
        loss(1040, RequestOutcome::Refused),
        loss(1500, RequestOutcome::Refused),
    ];
    let found = diagnose(&plan(), &lives("app", true), &lost, &[]);
    assert_eq!(found.len(), 2, "the refusals and the kill: {found:#?}");
    let f = &found[0];
    assert_eq!(f.count, 2);
    assert_eq!(
        f.what,
        "2 requests refused 40 ms after SIGTERM while the balancer still routed to pod-1 (lag 1s)"
    );
    assert!(f.fix.contains("--drain-delay 2s"), "{}", f.fix);
    assert_eq!(f.phase, Some(Phase::AfterStopSignal));
}

#[test]
fn a_lameduck_run_inside_is_named_with_its_setting_that_fell_short() {
    let mut l = lives("lameduck", true);
    l[0].lameduck = Some(crate::timeline::InnerLameduck {
        drain_delay: Duration::ZERO,
        drain_delay_source: "default outside Kubernetes".into(),
        grace_period: Duration::from_secs(30),
    });
    let found = diagnose(&plan(), &l, &[loss(1040, RequestOutcome::Refused)], &[]);
    let refused = &found[0];
    assert!(
        refused
            .cause
            .starts_with("lameduck run inside pod-1 held the stop for 0s (default outside Kubernetes), the lag is 1s"),
        "{}",
        refused.cause
    );
    assert!(
        refused.fix.starts_with("set --drain-delay 2s"),
        "{}",
        refused.fix
    );
    assert!(
        !refused.fix.contains("run the app under"),
        "{}",
        refused.fix
    );
    // Its grace period of 30s against the pod's 2s: its own finding,
    // which does not fail the rehearsal; the kill names it as the cause.
    let warning = found
        .iter()
        .find(|f| f.severity == Severity::Warning)
        .expect("a warning");
    assert!(
        warning
            .what
            .contains("plans for a grace period of 30s, longer than the pod's 2s"),
        "{}",
        warning.what
    );
    let kill = found
        .iter()
        .find(|f| f.severity == Severity::Kill)
        .expect("a kill");
    assert_eq!(
        kill.what,
        "pod-1 was killed (SIGKILL) at 3.0s, when its grace period of 2s ran out"
    );
    assert!(
        kill.cause.contains("planned for a grace period of 30s"),
        "{}",
        kill.cause
    );
}

#[test]
fn a_kill_with_nothing_in_flight_is_still_a_finding_that_fails() {
    let found = diagnose(&plan(), &lives("python3", false), &[], &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Kill);
    assert!(found[0].severity.fails());
    assert!(
        found[0].cause.contains("has no handler for SIGTERM"),
        "{}",
        found[0].cause
    );
}

#[test]
fn cuts_at_sigkill_blame_the_shell_or_the_missing_handler() {
    let lost = [
        loss(3001, RequestOutcome::Reset),
        loss(3002, RequestOutcome::Truncated),
    ];
    let shell = diagnose(&plan(), &lives("sh", false), &lost, &[]);
    assert_eq!(
        shell[0].what,
        "2 requests were killed at the deadline on pod-1"
    );
    assert!(
        shell[0].cause.contains("PID 1 was a shell (`sh`)"),
        "{}",
        shell[0].cause
    );
    let unhandled = diagnose(&plan(), &lives("python3", false), &lost, &[]);
    assert!(unhandled[0].cause.contains("has no handler for SIGTERM"));
    let slow = diagnose(&plan(), &lives("python3", true), &lost, &[]);
    assert!(slow[0]
        .cause
        .contains("still working when the grace period (2s) ran out"));
}

#[test]
fn sessions_cut_by_the_balancer_and_at_sigkill_are_told_apart() {
    let session = |ended: u64, by_balancer: bool| SessionRecord {
        kind: SessionKind::Websocket,
        pod: Some(1),
        opened: Duration::ZERO,
        ended: Duration::from_millis(ended),
        echoes: 3,
        end: SessionEnd::Cut {
            detail: "reset".into(),
            by_balancer,
        },
    };
    let found = diagnose(
        &plan(),
        &lives("app", true),
        &[],
        &[
            session(2000, true),
            session(3000, false),
            session(3001, false),
        ],
    );
    assert_eq!(
        found[0].what,
        "2 WebSocket sessions cut at SIGKILL on pod-1"
    );
    assert_eq!(
        found[1].what,
        "1 WebSocket session reset by the balancer when it removed pod-1"
    );
}

#[test]
fn losses_behind_the_real_balancer_are_not_blamed_on_no_pod() {
    let plan = Plan {
        balancer: BalancerMode::Lameduck,
        ..plan()
    };
    let lost = [LostRequest {
        pod: None,
        ..loss(1040, RequestOutcome::Reset)
    }];
    let found = diagnose(&plan, &lives("app", true), &lost, &[]);
    let f = found
        .iter()
        .find(|f| f.severity == Severity::Loss)
        .expect("a loss finding");
    assert_eq!(f.what, "1 request cut through lameduck balance");
    assert!(!f.fix.contains("not about the pod's end"), "{}", f.fix);
    assert_eq!((f.pod.as_deref(), f.phase), (None, None));
}
