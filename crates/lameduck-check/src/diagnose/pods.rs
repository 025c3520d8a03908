//! What went wrong with a pod whether or not a request was lost: a SIGKILL
//! at the deadline, and a `lameduck run` inside that plans for another grace
//! period than the pod's.

use std::time::Duration;

use lameduck_core::format_duration;

use super::{Finding, Severity};
use crate::plan::{Plan, PreStop};
use crate::timeline::PodLife;

/// Why a pod was still running when its grace period ran out, and what
/// fixes it, from what its life shows: a preStop hook that used the time
/// up, a shell as PID 1, no handler, a `lameduck run` planning for a longer
/// grace period, or an app still at work.
pub fn kill_cause(plan: &Plan, life: Option<&PodLife>) -> (String, String) {
    let grace = format_duration(plan.grace_period);
    let signal = plan.stop_signal;
    match life {
        Some(l) if l.stop_signal.is_none() => (
            format!("the preStop hook used up the grace period ({grace}), so the app never got {signal}"),
            "shorten the preStop hook or raise terminationGracePeriodSeconds".to_string(),
        ),
        Some(l) if l.pid1_is_shell() => (
            format!(
                "the stop signal never reached the app: PID 1 was a shell (`{}`), which does not pass {signal} on (the shell-form CMD pitfall)",
                l.pid1
            ),
            format!("make the app PID 1 (exec-form CMD, `exec` in scripts) and handle {signal}, or start it with `lameduck run`, which forwards it"),
        ),
        Some(l) if !l.signal_handled => (
            format!(
                "PID 1 (`{}`) has no handler for {signal}, and the kernel drops a signal the init process of a PID namespace does not handle",
                l.pid1
            ),
            format!("make the app PID 1 (exec-form CMD, `exec` in scripts) and handle {signal}, or start it with `lameduck run`, which forwards it"),
        ),
        Some(PodLife {
            lameduck: Some(inner),
            ..
        }) if inner.grace_period > plan.grace_period => (
            format!(
                "lameduck run inside the pod planned for a grace period of {}, the pod's is {grace}: it had not ended the app when the kubelet's SIGKILL came",
                format_duration(inner.grace_period)
            ),
            format!("give lameduck run --grace-period {grace} (LAMEDUCK_GRACE_PERIOD in the container's env): the kubelet does not tell it terminationGracePeriodSeconds"),
        ),
        _ => (
            format!("the app got {signal} but was still working when the grace period ({grace}) ran out"),
            "raise terminationGracePeriodSeconds, or make the app finish its work sooner".to_string(),
        ),
    }
}

/// A finding for every pod killed at the deadline, also when no request
/// happened to be in flight: in a cluster every rollout step would wait the
/// whole grace period, and cut whatever is in flight then.
pub fn kills(plan: &Plan, lives: &[PodLife]) -> Vec<Finding> {
    lives
        .iter()
        .filter_map(|l| {
            let at = l.killed?;
            let name = crate::pod_name(l.pod);
            let (cause, fix) = kill_cause(plan, Some(l));
            let cause = format!(
                "{cause}; in a cluster every rollout step then waits the whole grace period, and whatever is in flight at the kill is cut"
            );
            Some(Finding {
                count: 0,
                what: format!(
                    "{name} was killed (SIGKILL) at {:.1}s, when its grace period of {} ran out",
                    at.as_secs_f64(),
                    format_duration(plan.grace_period)
                ),
                cause,
                fix,
                pod: Some(name),
                phase: Some(crate::timeline::Phase::AtKill),
                severity: Severity::Kill,
            })
        })
        .collect()
}

/// Settings of a `lameduck run` inside the pods that disagree with the
/// pod's: its grace period longer than the pod's. One finding for all the
/// pods it concerns.
pub fn settings(plan: &Plan, lives: &[PodLife]) -> Vec<Finding> {
    // The kubelet counts the grace period from the start of preStop: a
    // preStop sleep is time lameduck run does not have.
    let pre_stop = match &plan.pre_stop {
        Some(PreStop::Sleep { duration }) => *duration,
        _ => Duration::ZERO,
    };
    let budget = plan.grace_period.saturating_sub(pre_stop);
    let mut findings = Vec::new();
    let longer: Vec<&PodLife> = lives
        .iter()
        .filter(|l| l.lameduck.as_ref().is_some_and(|i| i.grace_period > budget))
        .collect();
    if let Some(first) = longer.first().and_then(|l| l.lameduck.as_ref()) {
        let names: Vec<String> = longer.iter().map(|l| crate::pod_name(l.pod)).collect();
        let grace = format_duration(plan.grace_period);
        let (pods, fits) = if pre_stop.is_zero() {
            (format!("the pod's {grace}"), format_duration(budget))
        } else {
            (
                format!(
                    "the pod's {grace} less its preStop sleep of {}",
                    format_duration(pre_stop)
                ),
                format_duration(budget),
            )
        };
        findings.push(Finding {
            count: 0,
            what: format!(
                "lameduck run inside {} plans for a grace period of {}, longer than {pods}",
                names.join(", "),
                format_duration(first.grace_period)
            ),
            cause: format!(
                "the kubelet does not tell the container its terminationGracePeriodSeconds, and lameduck run's default is {}: an app slower to stop than {fits} is killed by the kubelet before lameduck's own deadline, with what it had in flight",
                format_duration(lameduck_core::Budget::DEFAULT_GRACE_PERIOD)
            ),
            fix: format!(
                "give lameduck run --grace-period {fits} (or LAMEDUCK_GRACE_PERIOD={fits} in the container's env)"
            ),
            pod: None,
            phase: None,
            severity: Severity::Warning,
        });
    }
    findings
}
