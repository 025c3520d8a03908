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

/// The summary as text, for a terminal or a log.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let p = &report.plan;
    let scenario = match p.scenario {
        Scenario::Rolling => format!("rolling update of {} replicas", p.replicas),
        Scenario::Delete => format!("deletion of 1 of {} replicas", p.replicas),
    };
    let _ = writeln!(
        out,
        "lameduck check: {scenario}; balancer {} with an endpoint lag of {}; grace period {}{}",
        p.balancer,
        format_duration(p.endpoint_lag),
        format_duration(p.grace_period),
        p.pre_stop
            .as_ref()
            .map(|s| format!("; preStop `{s}`"))
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
    let _ = writeln!(out);
    for pod in &report.pods {
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
                PodEventKind::Killed => format!("SIGKILL {}", secs(e.at)),
                PodEventKind::Exited { status } if pod.life.terminating.is_some() => {
                    format!("{status} {}", secs(e.at))
                }
                _ => continue,
            };
            steps.push(step);
        }
        let _ = writeln!(
            out,
            "  {:<7} {:<21} PID 1 {:<12} {}",
            pod.name,
            pod.address,
            pod.life.pid1,
            if steps.is_empty() {
                "kept".to_string()
            } else {
                steps.join(", ")
            }
        );
    }
    for f in &report.findings {
        let _ = writeln!(out, "\n  x {}", f.what);
        let _ = writeln!(out, "    why: {}", f.cause);
        let _ = writeln!(out, "    fix: {}", f.fix);
    }
    let _ = writeln!(
        out,
        "\n{}: {}",
        if report.lost { "LOST" } else { "OK" },
        report.verdict
    );
    out
}
