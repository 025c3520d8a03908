//! The summary printed at the end of a rehearsal: counts, each pod's ending,
//! each loss explained, and the verdict.

use std::fmt::Write;
use std::time::Duration;

use lameduck_core::format_duration;

use super::Report;
use crate::ledger::PodEventKind;
use crate::plan::Scenario;

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn replicas(n: usize) -> String {
    format!("{n} {}", if n == 1 { "replica" } else { "replicas" })
}

/// The summary as text, for a terminal or a log.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let p = &report.plan;
    let scenario = match p.scenario {
        Scenario::Rolling => format!(
            "rolling update of {} (maxSurge {}, maxUnavailable {})",
            replicas(p.replicas),
            p.rollout.max_surge,
            p.rollout.max_unavailable
        ),
        Scenario::Delete => format!("deletion of 1 of {}", replicas(p.replicas)),
    };
    let _ = writeln!(
        out,
        "lameduck check: {scenario}; balancer {} with an endpoint lag of {}; grace period {}{}",
        p.balancer,
        format_duration(p.endpoint_lag),
        format_duration(p.grace_period),
        p.pre_stop
            .as_ref()
            .map(|s| format!("; preStop {s}"))
            .unwrap_or_default()
    );
    let r = &report.requests;
    if r.total > 0 {
        let _ = writeln!(
            out,
            "\n  {:<9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9}",
            "requests", "total", "ok", "refused", "reset", "timed out", "5xx", "truncated"
        );
        let _ = writeln!(
            out,
            "  {:<9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9}",
            "", r.total, r.ok, r.refused, r.reset, r.timed_out, r.server_error, r.truncated
        );
    }
    let s = &report.sessions;
    if s.opened > 0 {
        let _ = writeln!(
            out,
            "\n  {:<9} {:>8} {:>10} {:>8} {:>8}",
            "sessions", "opened", "still open", "goodbye", "cut"
        );
        let _ = writeln!(
            out,
            "  {:<9} {:>8} {:>10} {:>8} {:>8}",
            "", s.opened, s.still_open, s.goodbye, s.cut
        );
    }
    if p.balancer == crate::plan::BalancerMode::Lameduck {
        let c = &report.connections;
        let _ = writeln!(
            out,
            "\n  balancer  lameduck balance: connections {}, connects retried on another pod {}, clients reset for want of a pod that accepted {}",
            c.accepted,
            c.retried,
            c.refused + c.no_endpoint
        );
    }
    if let Some(load) = report.load.asked_rps {
        let _ = writeln!(
            out,
            "\n  load      {:.0} requests/s reached of {load} asked{}",
            report.load.reached_rps,
            if report.load.shortfall {
                "  (SHORT)"
            } else {
                ""
            }
        );
    }
    if let Some(text) = report.load.shortfall_text() {
        let _ = writeln!(out, "  ! {text}");
    }
    let _ = writeln!(out);
    for pod in &report.pods {
        let _ = writeln!(
            out,
            "  {:<7} {:<21} PID 1 {:<12} {}",
            pod.name,
            pod.address,
            pod.life.pid1,
            pod_steps(pod)
        );
    }
    let given = p.given();
    if !given.is_empty() {
        let _ = writeln!(
            out,
            "\n  settings: {}; the rest are lameduck check's defaults",
            given.join("; ")
        );
    }
    for note in &p.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    for f in &report.findings {
        let mark = if f.severity.fails() { "x" } else { "!" };
        let _ = writeln!(out, "\n  {mark} {}", f.what);
        let _ = writeln!(out, "    why: {}", f.cause);
        let _ = writeln!(out, "    fix: {}", f.fix);
    }
    let _ = writeln!(
        out,
        "\n{}: {}",
        match (report.lost, report.failed) {
            (true, _) => "LOST",
            (false, true) => "FAILED",
            (false, false) => "OK",
        },
        report.verdict
    );
    out
}

/// A pod's ending in a few words: `deleted 2.00s, SIGTERM 2.00s, removed
/// 3.00s, killed (SIGKILL) at 12.0s`, or `kept`.
fn pod_steps(pod: &super::PodReport) -> String {
    let killed = pod.life.killed.is_some();
    let mut steps = Vec::new();
    for e in &pod.events {
        let step = match &e.event {
            PodEventKind::Terminating => format!("deleted {}", secs(e.at)),
            PodEventKind::EndpointRemoved if pod.life.terminating.is_some() => {
                format!("removed {}", secs(e.at))
            }
            PodEventKind::PreStopStarted => format!("preStop {}", secs(e.at)),
            PodEventKind::StopSignal {
                signal, handled, ..
            } => format!(
                "{signal} {}{}",
                secs(e.at),
                if *handled { "" } else { " (no handler)" }
            ),
            PodEventKind::Killed => format!("killed (SIGKILL) at {:.1}s", e.at.as_secs_f64()),
            // After a SIGKILL the status is unshare's, not the app's.
            PodEventKind::Exited { status } if pod.life.terminating.is_some() && !killed => {
                format!("{status} {}", secs(e.at))
            }
            PodEventKind::Exited { status } if pod.life.terminating.is_none() => {
                format!("exited on its own ({status}) {}", secs(e.at))
            }
            _ => continue,
        };
        steps.push(step);
    }
    if pod.life.kept && steps.is_empty() {
        return "kept".into();
    }
    steps.join(", ")
}
