//! Each pod's life on the rehearsal's clock, and the phase of its ending
//! that a moment falls in.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ledger::{PodEvent, PodEventKind, PodId};

/// The step of a pod's ending a moment falls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Not being deleted.
    Serving,
    /// Marked terminating, before preStop or the stop signal.
    Terminating,
    /// While its preStop hook ran.
    PreStop,
    /// After the stop signal, before any SIGKILL.
    AfterStopSignal,
    /// At or after the SIGKILL of the grace period's end.
    AtKill,
}

impl Phase {
    /// Words for sentences.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Serving => "before the pod was deleted",
            Phase::Terminating => "as the pod was marked terminating",
            Phase::PreStop => "during preStop",
            Phase::AfterStopSignal => "after the stop signal",
            Phase::AtKill => "at SIGKILL",
        }
    }
}

/// What happened to one pod, when.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PodLife {
    /// The pod.
    pub pod: PodId,
    /// PID 1's name.
    pub pid1: String,
    /// Deleted.
    #[serde(with = "crate::report::opt_ms")]
    pub terminating: Option<Duration>,
    /// Removed from the balancer.
    #[serde(with = "crate::report::opt_ms")]
    pub removed: Option<Duration>,
    /// preStop began.
    #[serde(with = "crate::report::opt_ms")]
    pub pre_stop: Option<Duration>,
    /// The stop signal was sent.
    #[serde(with = "crate::report::opt_ms")]
    pub stop_signal: Option<Duration>,
    /// PID 1 had a handler for the stop signal.
    pub signal_handled: bool,
    /// SIGKILL at the end of the grace period.
    #[serde(with = "crate::report::opt_ms")]
    pub killed: Option<Duration>,
    /// PID 1 exited.
    #[serde(with = "crate::report::opt_ms")]
    pub exited: Option<Duration>,
    /// Kept running to the end of the rehearsal.
    pub kept: bool,
    /// What a `lameduck run` inside the pod decided, if one ran.
    pub lameduck: Option<InnerLameduck>,
}

/// The timing a `lameduck run` inside a pod started with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerLameduck {
    /// Its drain delay.
    #[serde(with = "crate::report::ms")]
    pub drain_delay: Duration,
    /// Why that long, in its words.
    pub drain_delay_source: String,
    /// The grace period it plans for.
    #[serde(with = "crate::report::ms")]
    pub grace_period: Duration,
}

impl PodLife {
    /// Every pod's life from the event list.
    pub fn from_events(events: &[PodEvent]) -> Vec<PodLife> {
        let mut lives: Vec<PodLife> = Vec::new();
        for e in events {
            let i = match lives.iter().position(|l| l.pod == e.pod) {
                Some(i) => i,
                None => {
                    lives.push(PodLife {
                        pod: e.pod,
                        ..PodLife::default()
                    });
                    lives.len() - 1
                }
            };
            let life = &mut lives[i];
            let at = Some(e.at);
            match &e.event {
                PodEventKind::Started { pid1 } | PodEventKind::Ready { pid1 } => {
                    life.pid1 = pid1.clone()
                }
                PodEventKind::Terminating => life.terminating = at,
                PodEventKind::EndpointRemoved if life.terminating.is_some() => life.removed = at,
                PodEventKind::PreStopStarted => life.pre_stop = at,
                PodEventKind::StopSignal { handled, pid1, .. } => {
                    life.pid1 = pid1.clone();
                    life.stop_signal = at;
                    life.signal_handled = *handled;
                }
                PodEventKind::Killed => life.killed = at,
                PodEventKind::Kept => life.kept = true,
                PodEventKind::LameduckRun {
                    drain_delay,
                    drain_delay_source,
                    grace_period,
                } => {
                    // The first one is PID 1's (or the outermost); one run
                    // inside another is not the pod's timing.
                    life.lameduck.get_or_insert(InnerLameduck {
                        drain_delay: *drain_delay,
                        drain_delay_source: drain_delay_source.clone(),
                        grace_period: *grace_period,
                    });
                }
                PodEventKind::Exited { .. } => life.exited = at,
                _ => {}
            }
        }
        lives.sort_by_key(|l| l.pod);
        lives
    }

    /// The phase at `t`.
    pub fn phase(&self, t: Duration) -> Phase {
        let after = |e: Option<Duration>| e.is_some_and(|e| t >= e);
        if !after(self.terminating) {
            Phase::Serving
        } else if after(self.killed) {
            Phase::AtKill
        } else if after(self.stop_signal) {
            Phase::AfterStopSignal
        } else if after(self.pre_stop) {
            Phase::PreStop
        } else {
            Phase::Terminating
        }
    }

    /// Whether the balancer still sent new connections to the pod at `t`
    /// (true before it was deleted too).
    pub fn routed(&self, t: Duration) -> bool {
        self.removed.is_none_or(|r| t < r)
    }

    /// Whether PID 1 had exited by `t`.
    pub fn exited_by(&self, t: Duration) -> bool {
        self.exited.is_some_and(|e| t >= e)
    }

    /// Whether PID 1 is a shell, which does not pass signals on.
    pub fn pid1_is_shell(&self) -> bool {
        matches!(
            self.pid1.as_str(),
            "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh" | "busybox"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn event(at: u64, event: PodEventKind) -> PodEvent {
        PodEvent {
            at: ms(at),
            pod: 1,
            event,
        }
    }

    /// Deleted at 1000, preStop until 1500, SIGTERM at 1500, removed at
    /// 2000 (lag 1s), SIGKILL at 3000.
    fn life() -> PodLife {
        let events = [
            event(0, PodEventKind::Started { pid1: "sh".into() }),
            event(100, PodEventKind::Ready { pid1: "app".into() }),
            event(200, PodEventKind::EndpointAdded),
            event(1000, PodEventKind::Terminating),
            event(1000, PodEventKind::PreStopStarted),
            event(
                1500,
                PodEventKind::PreStopEnded {
                    result: "exit 0".into(),
                },
            ),
            event(
                1500,
                PodEventKind::StopSignal {
                    signal: "SIGTERM".into(),
                    pid1: "app".into(),
                    handled: false,
                },
            ),
            event(2000, PodEventKind::EndpointRemoved),
            event(3000, PodEventKind::Killed),
            event(
                3001,
                PodEventKind::Exited {
                    status: "killed by SIGKILL".into(),
                },
            ),
        ];
        let mut lives = PodLife::from_events(&events);
        assert_eq!(lives.len(), 1);
        lives.remove(0)
    }

    #[test]
    fn each_moment_falls_in_the_step_of_the_ending_it_belongs_to() {
        let l = life();
        assert_eq!(l.phase(ms(999)), Phase::Serving);
        assert_eq!(l.phase(ms(1000)), Phase::PreStop);
        assert_eq!(l.phase(ms(1499)), Phase::PreStop);
        assert_eq!(l.phase(ms(1500)), Phase::AfterStopSignal);
        assert_eq!(l.phase(ms(2999)), Phase::AfterStopSignal);
        assert_eq!(l.phase(ms(3000)), Phase::AtKill);
        assert_eq!(l.phase(ms(9000)), Phase::AtKill);
    }

    #[test]
    fn routed_until_the_removal_after_the_deletion_not_the_first_add() {
        let l = life();
        assert!(l.routed(ms(50)));
        assert!(l.routed(ms(1999)));
        assert!(!l.routed(ms(2000)));
        assert!(l.exited_by(ms(3001)) && !l.exited_by(ms(3000)));
    }

    #[test]
    fn the_last_name_of_pid1_counts_and_shells_are_told_apart() {
        let l = life();
        assert_eq!(
            l.pid1, "app",
            "the stop signal's reading wins over the wrapper's"
        );
        assert!(!l.pid1_is_shell());
        assert!(!l.signal_handled);
        let shell = PodLife {
            pid1: "dash".into(),
            ..PodLife::default()
        };
        assert!(shell.pid1_is_shell());
    }
}
