//! The supervisor's state: where the app is in the drain sequence, and where
//! the stop's clock is. Each variant holds only what is true in it, so a
//! transition is one assignment and no combination of flags can contradict
//! another.

use std::time::Instant;

use lameduck_core::{Deadlines, Phase, Plan, Signal};

use crate::sys::{Pid, WaitStatus};

/// Where the app is in the drain sequence.
///
/// ```text
/// PreStart ──app started──▶ Serving ──stop asked──▶ Draining ──delay, hook and drainer done──▶ Stopping
///                              └────────────────────────┴───────────app exited───────────────────┴──▶ Exited
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// The pre-start hook runs; the app is not started. `stop` is the signal
    /// that asked for a stop meanwhile: the app will then never start.
    PreStart { stop: Option<Signal> },
    /// The app runs and no stop was asked for.
    Serving { app: Pid },
    /// A stop was asked for by `requested_by`: it is held back until
    /// `delay_over` (or a second SIGINT, `hurried`), the on-drain hook and
    /// the drainer are done, while balancers catch up.
    Draining {
        app: Pid,
        requested_by: Signal,
        delay_over: Instant,
        hurried: bool,
    },
    /// The stop was passed on to the app; it is finishing.
    Stopping { app: Pid },
    /// The app exited at `at` with `status`; what is left of its process
    /// group (told to stop once, `leftovers_told`), the hooks and the drainer
    /// are finishing.
    Exited {
        app: Pid,
        status: WaitStatus,
        at: Instant,
        leftovers_told: bool,
    },
}

impl State {
    /// The phase of the drain sequence, for the logs.
    pub(super) fn phase(&self) -> Phase {
        match self {
            State::PreStart { .. } | State::Serving { .. } => Phase::Serving,
            State::Draining { .. } => Phase::Draining,
            State::Stopping { .. } => Phase::Stopping,
            State::Exited { .. } => Phase::Exited,
        }
    }

    /// The app's pid (also its process group id), once it was started.
    pub(super) fn app(&self) -> Option<Pid> {
        match *self {
            State::PreStart { .. } => None,
            State::Serving { app }
            | State::Draining { app, .. }
            | State::Stopping { app }
            | State::Exited { app, .. } => Some(app),
        }
    }

    /// How the app ended, once it did.
    pub(super) fn exit_status(&self) -> Option<WaitStatus> {
        match *self {
            State::Exited { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// The clock of the stop: started when the stop is asked for (or the app
/// exits on its own), with the deadlines of the one timing plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Clock {
    /// No stop yet: nothing is timed.
    Idle,
    /// The stop runs: at `kill`, whatever still runs is killed.
    Running(Deadlines),
    /// SIGKILL was sent: lameduck leaves at `exit` whatever happens.
    Killed(Deadlines),
}

impl Clock {
    /// The deadlines, once the clock runs.
    pub(super) fn deadlines(&self) -> Option<Deadlines> {
        match *self {
            Clock::Idle => None,
            Clock::Running(d) | Clock::Killed(d) => Some(d),
        }
    }

    /// Starts the clock now if it does not run yet; returns its deadlines.
    pub(super) fn start(&mut self, plan: &Plan) -> Deadlines {
        match *self {
            Clock::Idle => {
                let d = plan.deadlines(Instant::now());
                *self = Clock::Running(d);
                d
            }
            Clock::Running(d) | Clock::Killed(d) => d,
        }
    }

    /// The next deadline of the clock: the kill, then the exit.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match *self {
            Clock::Idle => None,
            Clock::Running(d) => Some(d.kill),
            Clock::Killed(d) => Some(d.exit),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lameduck_core::Settings;

    use super::*;

    #[test]
    fn the_clock_starts_once_and_counts_to_the_kill_then_the_exit() {
        let plan = Settings::default().plan().expect("plan");
        let mut clock = Clock::Idle;
        assert_eq!(clock.next_deadline(), None);
        let d = clock.start(&plan);
        assert_eq!(
            clock.start(&plan),
            d,
            "a second start keeps the first deadlines"
        );
        assert_eq!(clock.next_deadline(), Some(d.kill));
        assert_eq!(d.kill - d.start, Duration::from_secs(28));
        clock = Clock::Killed(d);
        assert_eq!(clock.next_deadline(), Some(d.exit));
    }

    #[test]
    fn each_state_is_one_phase_of_the_drain_sequence() {
        let now = Instant::now();
        let states = [
            State::PreStart { stop: None },
            State::Serving { app: 7 },
            State::Draining {
                app: 7,
                requested_by: Signal::TERM,
                delay_over: now,
                hurried: false,
            },
            State::Stopping { app: 7 },
            State::Exited {
                app: 7,
                status: WaitStatus::Exited(0),
                at: now,
                leftovers_told: false,
            },
        ];
        let phases: Vec<Phase> = states.iter().map(State::phase).collect();
        assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{phases:?}");
        assert_eq!(states[0].app(), None);
        assert!(states[1..].iter().all(|s| s.app() == Some(7)));
        assert_eq!(states[4].exit_status(), Some(WaitStatus::Exited(0)));
    }
}
