//! Pod events in words, for the report's list of each pod's events and the
//! timeline's marks: what happened, and its detail.

use lameduck_core::format_duration;

use crate::ledger::PodEventKind;

/// The event's name and its detail (empty when it has none).
pub fn describe(event: &PodEventKind) -> (&'static str, String) {
    match event {
        PodEventKind::Started { pid1 } => ("started", format!("PID 1 `{pid1}`")),
        PodEventKind::Ready { pid1 } => {
            ("ready", format!("readiness probe passed; PID 1 `{pid1}`"))
        }
        PodEventKind::NotReady => (
            "not ready",
            "readiness probe failed failureThreshold times".into(),
        ),
        PodEventKind::EndpointAdded => (
            "endpoint added",
            "the balancer sends it new connections".into(),
        ),
        PodEventKind::Terminating => ("deleted", "marked terminating".into()),
        PodEventKind::EndpointRemoved => (
            "endpoint removed",
            "the balancer sends it no new connection".into(),
        ),
        PodEventKind::PreStopStarted => ("preStop began", String::new()),
        PodEventKind::PreStopEnded { result } => ("preStop ended", result.clone()),
        PodEventKind::StopSignal {
            signal,
            pid1,
            handled,
        } => (
            "stop signal",
            format!(
                "{signal} to PID 1 `{pid1}`{}",
                if *handled {
                    ""
                } else {
                    ", which has no handler: the kernel drops it"
                }
            ),
        ),
        PodEventKind::LameduckRun {
            drain_delay,
            drain_delay_source,
            grace_period,
        } => (
            "lameduck run started",
            format!(
                "drain delay {} ({drain_delay_source}), grace period {}",
                format_duration(*drain_delay),
                format_duration(*grace_period)
            ),
        ),
        PodEventKind::Killed => ("killed (SIGKILL)", "the grace period ran out".into()),
        PodEventKind::Kept => (
            "kept",
            "ran to the end of the rehearsal, stopped with it".into(),
        ),
        PodEventKind::Exited { status } => ("exited", status.clone()),
    }
}
