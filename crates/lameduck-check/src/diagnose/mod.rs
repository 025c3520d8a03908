//! From losses to causes: each group of losses (same kind, same pod, same
//! phase) gets a sentence saying what happened, why, and what fixes it; and
//! what went wrong with a pod although nothing was lost (a kill at the
//! deadline, a `lameduck run` inside planning for a longer grace period).

mod pods;

use std::collections::BTreeMap;
use std::time::Duration;

use lameduck_core::format_duration;
use serde::{Deserialize, Serialize};

use crate::ledger::{LostRequest, PodId, RequestOutcome, SessionEnd, SessionRecord};
use crate::plan::{BalancerMode, Plan, SessionKind};
use crate::timeline::{Phase, PodLife};

/// One explained group of losses.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// How many requests or sessions.
    pub count: u64,
    /// What was lost, when: "31 requests refused 40 ms after SIGTERM ...".
    pub what: String,
    /// Why.
    pub cause: String,
    /// What to change.
    pub fix: String,
    /// The pod, if one.
    pub pod: Option<String>,
    /// The phase of its ending.
    pub phase: Option<Phase>,
    /// Whether it fails the rehearsal.
    pub severity: Severity,
}

/// How much a finding weighs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Requests or sessions were lost: the rehearsal fails.
    Loss,
    /// A pod had to be killed at the deadline: the rehearsal fails, for in
    /// a cluster every rollout step waits the whole grace period and
    /// whatever is in flight then is cut.
    Kill,
    /// A setting that will lose requests on another day: told, but the
    /// rehearsal passes.
    Warning,
}

impl Severity {
    /// Whether a finding of this weight fails the rehearsal.
    pub fn fails(self) -> bool {
        self != Severity::Warning
    }
}

/// What went wrong with a group of requests, as far as causes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Refused,
    Cut,
    BalancerReset,
    TimedOut,
    ServerError,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: Kind,
    pod: Option<PodId>,
    phase: Phase,
    routed: bool,
}

/// Explains every lost request and every cut session.
pub fn diagnose(
    plan: &Plan,
    lives: &[PodLife],
    lost: &[LostRequest],
    sessions: &[SessionRecord],
) -> Vec<Finding> {
    let life = |pod: Option<PodId>| pod.and_then(|p| lives.iter().find(|l| l.pod == p));
    let mut groups: BTreeMap<Key, Vec<&LostRequest>> = BTreeMap::new();
    for loss in lost {
        let l = life(loss.pod);
        let kind = match loss.outcome {
            RequestOutcome::Refused => Kind::Refused,
            RequestOutcome::ServerError => Kind::ServerError,
            RequestOutcome::TimedOut if l.is_none_or(|l| l.phase(loss.at) != Phase::AtKill) => {
                Kind::TimedOut
            }
            _ if loss.by_balancer => Kind::BalancerReset,
            _ => Kind::Cut,
        };
        let key = Key {
            kind,
            pod: loss.pod,
            phase: l.map_or(Phase::Serving, |l| l.phase(loss.at)),
            routed: l.is_none_or(|l| l.routed(loss.at)),
        };
        groups.entry(key).or_default().push(loss);
    }
    let mut findings: Vec<Finding> = groups
        .iter()
        .map(|(key, losses)| explain_requests(plan, *key, life(key.pod), losses))
        .collect();

    let mut cut: BTreeMap<(SessionKind, Option<PodId>, Phase, bool), Vec<&SessionRecord>> =
        BTreeMap::new();
    for s in sessions {
        if let SessionEnd::Cut { by_balancer, .. } = &s.end {
            let phase = life(s.pod).map_or(Phase::Serving, |l| l.phase(s.ended));
            cut.entry((s.kind, s.pod, phase, *by_balancer))
                .or_default()
                .push(s);
        }
    }
    for ((kind, pod, phase, by_balancer), list) in cut {
        findings.push(explain_sessions(plan, kind, pod, phase, by_balancer, &list));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.count));
    findings.extend(pods::kills(plan, lives));
    findings.extend(pods::settings(plan, lives));
    findings
}

fn ms(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "40 ms after SIGTERM": the first loss against the event its phase began
/// with.
fn when(plan: &Plan, phase: Phase, life: Option<&PodLife>, first: Duration) -> String {
    let since = |e: Option<Duration>, what: String| match e {
        Some(e) if first >= e => format!("{} after {what}", ms(first - e)),
        _ => phase.describe().to_string(),
    };
    match (phase, life) {
        (Phase::AtKill, _) => "at SIGKILL".to_string(),
        (Phase::AfterStopSignal, Some(l)) => since(l.stop_signal, plan.stop_signal.to_string()),
        (Phase::PreStop, Some(l)) => since(l.pre_stop, "preStop began".into()),
        (Phase::Terminating, Some(l)) => since(l.terminating, "deletion".into()),
        _ => phase.describe().to_string(),
    }
}

fn explain_requests(
    plan: &Plan,
    key: Key,
    life: Option<&PodLife>,
    losses: &[&LostRequest],
) -> Finding {
    let count = losses.len() as u64;
    if key.pod.is_none() && plan.balancer == BalancerMode::Lameduck {
        return through_real_balancer(key.kind, count);
    }
    let first = losses.first().map_or(Duration::ZERO, |l| l.at);
    let pod = key.pod.map(crate::pod_name);
    let pod_name = pod.clone().unwrap_or_else(|| "no pod".into());
    let at = when(plan, key.phase, life, first);
    let lag = format_duration(plan.endpoint_lag);
    let suggested_delay = format_duration(plan.endpoint_lag + Duration::from_secs(1));
    let routed = if key.routed && key.phase != Phase::Serving {
        format!(" while the balancer still routed to {pod_name} (lag {lag})")
    } else {
        String::new()
    };
    let (what, cause, fix) = match key.kind {
        Kind::Refused if key.pod.is_none() => (
            format!("{} refused: no pod was routed", plural(count, "request", "requests")),
            "the balancer had no endpoint: every pod was deleted, not ready, or not yet added".to_string(),
            "keep a ready replica through the rollout: more replicas, maxUnavailable 0, a readiness probe that passes only when the app serves".to_string(),
        ),
        Kind::Refused if key.phase == Phase::Serving => (
            format!("{} refused by {pod_name} before it was deleted", plural(count, "request", "requests")),
            "the app refused connections while it was routed and not ending: it was not listening yet, or its backlog was full".to_string(),
            "make readiness pass only once the app accepts, and give it the capacity for the load".to_string(),
        ),
        Kind::Refused if key.routed => {
            let held = life.is_some_and(|l| l.lameduck.is_some());
            let stopped = format!(
                "{pod_name} stopped accepting connections {}, before the balancer had removed it",
                match (key.phase, held) {
                    (Phase::AtKill, _) => "when it was killed",
                    (_, true) => "then",
                    _ => "at once",
                }
            );
            let (cause, fix) = match life.and_then(|l| l.lameduck.as_ref()) {
                // A lameduck run is there: name its setting that fell short.
                Some(inner) if inner.drain_delay < plan.endpoint_lag => (
                    format!(
                        "lameduck run inside {pod_name} held the stop for {} ({}), the lag is {lag}: {stopped}",
                        format_duration(inner.drain_delay),
                        inner.drain_delay_source
                    ),
                    format!("set --drain-delay {suggested_delay} on lameduck run (LAMEDUCK_DRAIN_DELAY in the container's env), longer than the lag"),
                ),
                Some(inner) => (
                    format!(
                        "lameduck run inside {pod_name} held the stop for {}, but the balancer took longer than that to remove it: {stopped}",
                        format_duration(inner.drain_delay)
                    ),
                    format!("raise lameduck run's --drain-delay to {suggested_delay} or more, or `--drain-delay auto` with --listen, which waits until no new connection comes"),
                ),
                // PID 1 is lameduck but its start-up line was not seen
                // (`--quiet`): still no advice to add what is there.
                None if life.is_some_and(|l| l.pid1 == "lameduck") => (
                    stopped,
                    format!("raise the --drain-delay of the lameduck run inside {pod_name} to {suggested_delay} or more, longer than the lag"),
                ),
                None => (
                    stopped,
                    format!(
                        "keep accepting for longer than the lag: run the app under `lameduck run --drain-delay {suggested_delay}`, or add a preStop `sleep` of {suggested_delay}"
                    ),
                ),
            };
            (format!("{} refused {at}{routed}", plural(count, "request", "requests")), cause, fix)
        }
        Kind::Refused => (
            format!("{} refused by {pod_name} {at}, after its removal", plural(count, "request", "requests")),
            "connections the balancer had already routed arrived after the app closed its listener".to_string(),
            "keep accepting a little longer than the balancer's removal takes (`lameduck run --drain-delay`)".to_string(),
        ),
        Kind::Cut if key.phase == Phase::AtKill => {
            let (why, fix) = pods::kill_cause(plan, life);
            (
                format!("{} killed at the deadline on {pod_name}", plural(count, "request was", "requests were")),
                why,
                fix,
            )
        }
        Kind::Cut => (
            format!("{} cut {at} on {pod_name}{routed}", plural(count, "request", "requests")),
            if key.phase == Phase::Serving {
                "the connection was closed or reset before the answer was whole, while the pod was not ending".to_string()
            } else {
                "the app closed connections (or exited) with requests in flight".to_string()
            },
            if key.phase == Phase::Serving {
                "look at the app's logs: this loss is not about the pod's end".to_string()
            } else {
                "wait for requests in flight before exiting, and close keep-alive connections only between requests: `lameduck run --listen` does both in front of the app".to_string()
            },
        ),
        Kind::BalancerReset => (
            format!("{} reset by the balancer when it removed {pod_name}", plural(count, "request was", "requests were")),
            format!("a balancer without graceful shutdown (--balancer {}) resets established connections at removal", BalancerMode::Reset),
            "enable graceful shutdown on the load balancer (for direct-to-pod balancers, e.g. `service.cloud.tencent.com/enable-grace-shutdown: \"true\"`)".to_string(),
        ),
        Kind::TimedOut => (
            format!("{} timed out {at} on {pod_name}{routed}", plural(count, "request", "requests")),
            "no whole answer came within the timeout: the app stopped answering without closing the connection".to_string(),
            "answer or close every accepted request while draining; a process that is stopped or stuck holds clients until they give up".to_string(),
        ),
        Kind::ServerError => (
            format!("{} answered 5xx {at} by {pod_name}", plural(count, "request", "requests")),
            if key.phase == Phase::Serving {
                "the app answered 5xx while serving: not a termination problem".to_string()
            } else {
                "the app answered 5xx while ending instead of finishing its work".to_string()
            },
            "keep serving until in-flight work is done and fail readiness instead of requests".to_string(),
        ),
    };
    Finding {
        count,
        what,
        cause,
        fix,
        pod,
        phase: key.pod.map(|_| key.phase),
        severity: Severity::Loss,
    }
}

/// Losses behind the real `lameduck balance`: which pod a connection went
/// to is the balancer's own, so the finding says what the client saw and
/// where to look.
fn through_real_balancer(kind: Kind, count: u64) -> Finding {
    let requests = plural(count, "request", "requests");
    let (what, cause) = match kind {
        Kind::TimedOut => (
            format!("{requests} timed out through lameduck balance"),
            "no whole answer came within the timeout: a pod stopped answering without closing the connection",
        ),
        Kind::ServerError => (
            format!("{requests} answered 5xx through lameduck balance"),
            "a pod answered 5xx",
        ),
        _ => (
            format!("{requests} cut through lameduck balance"),
            "the connection was reset or closed before the answer was whole: a pod exited with requests in flight, or the balancer reached no pod (its log and its connect_failures count say which)",
        ),
    };
    Finding {
        count,
        what,
        cause: cause.to_string(),
        fix: "wait for requests in flight before exiting and keep accepting until the balancer has heeded the deletion: `lameduck run --listen` does both in front of the app".to_string(),
        pod: None,
        phase: None,
        severity: Severity::Loss,
    }
}

fn explain_sessions(
    plan: &Plan,
    kind: SessionKind,
    pod: Option<PodId>,
    phase: Phase,
    by_balancer: bool,
    list: &[&SessionRecord],
) -> Finding {
    let count = list.len() as u64;
    let pod_name = pod.map(crate::pod_name);
    let on = pod_name.clone().unwrap_or_else(|| "no pod".into());
    let sessions = plural(
        count,
        &format!("{kind} session"),
        &format!("{kind} sessions"),
    );
    let (what, cause, fix) = if pod.is_none() && plan.balancer == BalancerMode::Lameduck {
        (
            format!("{sessions} cut through lameduck balance"),
            "the sessions ended without a goodbye: a pod closed them or exited, or the balancer reached no pod or closed them at --drain-timeout (its log says which)".to_string(),
            "say goodbye before closing (WebSocket close 1001, HTTP/2 GOAWAY) so clients reconnect elsewhere: `lameduck run` does it at its deadline".to_string(),
        )
    } else if by_balancer {
        (
            format!("{sessions} reset by the balancer when it removed {on}"),
            "a balancer without graceful shutdown resets established connections at removal".to_string(),
            "enable graceful shutdown on the load balancer so that established sessions stay until they end".to_string(),
        )
    } else {
        match phase {
            Phase::AtKill => (
                format!("{sessions} cut at SIGKILL on {on}"),
                format!(
                    "the sessions were still open when the grace period ({}) ran out",
                    format_duration(plan.grace_period)
                ),
                match kind {
                    SessionKind::Websocket => "raise the grace period, or tell clients to reconnect before it ends (a close frame 1001, which `lameduck run` sends at its deadline)".to_string(),
                    SessionKind::Tcp => "raise the grace period, or tell clients to reconnect before it ends (close your side first, which `lameduck run --mode tcp` does at its deadline)".to_string(),
                },
            ),
            Phase::AfterStopSignal => (
                format!("{sessions} cut after {} on {on}", plan.stop_signal),
                "the app ended its sessions without a goodbye when it stopped".to_string(),
                "say goodbye before closing (WebSocket close 1001, HTTP/2 GOAWAY) so clients reconnect elsewhere".to_string(),
            ),
            Phase::Serving => (
                format!("{sessions} cut on {on} before it was deleted"),
                "the sessions ended without a goodbye while the pod was not ending".to_string(),
                "look at the app's logs: this loss is not about the pod's end".to_string(),
            ),
            _ => (
                format!("{sessions} cut {} on {on}", phase.describe()),
                "the sessions ended without a goodbye while the pod was ending".to_string(),
                "keep sessions until the drain's deadline and say goodbye before closing".to_string(),
            ),
        }
    };
    Finding {
        count,
        what,
        cause,
        fix,
        pod: pod_name,
        phase: pod.map(|_| phase),
        severity: Severity::Loss,
    }
}

#[cfg(test)]
mod tests;
