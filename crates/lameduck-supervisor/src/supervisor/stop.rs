//! The stop, as transitions of the supervisor's [`State`]: begun
//! (`Serving → Draining`), passed on to the app (`Draining → Stopping`), and
//! ended by SIGKILL at the kill deadline of the one timing plan.

use std::time::{Duration, Instant};

use lameduck_core::duration::deadline_after;
use lameduck_core::{format_duration, Deadlines, Signal};
use tracing::{debug, error, info, warn};

use super::state::{Clock, State};
use super::{RunningHook, Supervisor};
use crate::config::SignalTarget;
use crate::hook::{start_hook, HookKind};
use crate::sys::{self, Pid};

/// Why a signal is sent to the app, for the log.
#[derive(Clone, Copy)]
pub(super) enum Purpose {
    /// lameduck passes on a signal it received.
    Forward,
    /// lameduck passes on the stop.
    Stop,
}

// === impl Supervisor ===

impl Supervisor {
    /// The delay the supervisor holds the stop back by itself; a drainer
    /// keeps the plan's delay (fixed or auto) in front of the app instead.
    fn own_delay(&self) -> Duration {
        if self.drainer.is_some() {
            return Duration::ZERO;
        }
        self.config.timing.fixed_delay().unwrap_or(Duration::ZERO)
    }

    /// `Serving → Draining`: the stop asked for by `signal` from `sender`,
    /// or by the drainer (`POST /drain`) when `sender` is `None`. The stop
    /// and its plan are logged here, once.
    pub(super) fn begin_stop(&mut self, signal: Signal, sender: Option<Pid>) {
        let State::Serving { app } = self.state else {
            return;
        };
        let now = Instant::now();
        let d = self.clock.start(&self.config.timing);
        let plan = self.config.timing;
        let kill_in = format_duration(d.until_kill(now));
        match (sender, self.drainer.is_some()) {
            (Some(sender), false) => info!(
                %signal, sender, delay = %plan.delay, kill_in = %kill_in, "stop requested"
            ),
            (Some(sender), true) => info!(
                %signal,
                sender,
                delay = %plan.delay,
                deadline = %format_duration(plan.drain_deadline),
                kill_in = %kill_in,
                "stop requested"
            ),
            // The drain logged the request and its delay and deadline.
            (None, _) => info!(kill_in = %kill_in, "stop requested on the admin port"),
        }
        if let Some(drainer) = self.drainer.as_mut() {
            drainer.begin();
        }
        let delay = self.own_delay();
        self.state = State::Draining {
            app,
            requested_by: signal,
            delay_over: deadline_after(now, delay),
            hurried: false,
        };
        if !delay.is_zero() {
            info!(phase = %self.state.phase(), "drain delay begun: the app keeps running while balancers catch up");
        }
        if let Some(command) = self.config.hooks.on_drain.clone() {
            match start_hook(HookKind::OnDrain, &command, Some(app)) {
                Ok(pid) => self.hooks.push(RunningHook {
                    kind: HookKind::OnDrain,
                    pid,
                    status: None,
                }),
                Err(e) => error!(hook = "on-drain", "cannot start the on-drain hook: {e}"),
            }
        }
    }

    /// `Draining → Stopping` once the drain delay is over, the on-drain
    /// hook is done and the drainer has drained; a hook that takes longer
    /// than half the app's time is not waited for any more, so the app
    /// keeps time to stop by itself.
    pub(super) fn pass_on_stop_if_due(&mut self, now: Instant) {
        let State::Draining {
            app,
            requested_by,
            delay_over,
            hurried,
        } = self.state
        else {
            return;
        };
        let Some(deadlines) = self.clock.deadlines() else {
            return;
        };
        let on_drain_running = self
            .hooks
            .iter()
            .any(|h| h.kind == HookKind::OnDrain && h.status.is_none());
        let delay_over = now >= delay_over;
        let hook_waited_enough = now >= deadlines.halfway_to_kill();
        let drained = self.drainer.as_ref().is_none_or(|d| d.is_done());
        let due = drained && (hurried || (delay_over && (!on_drain_running || hook_waited_enough)));
        if !due {
            return;
        }
        let delay = self.own_delay();
        if !delay.is_zero() && delay_over {
            info!(delay = %format_duration(delay), "drain delay over");
        }
        if on_drain_running && !hurried {
            warn!("the on-drain hook is still running: passing the stop on anyway, so the app has time to stop");
        }
        self.state = State::Stopping { app };
        self.forward(
            self.config.stop_signal.unwrap_or(requested_by),
            Purpose::Stop,
        );
    }

    /// The next instant the loop must wake up at, whatever happens.
    pub(super) fn next_timer(&self, now: Instant) -> Option<Instant> {
        let d = self.clock.deadlines()?;
        let stop_due = match self.state {
            State::Draining {
                delay_over,
                hurried: false,
                ..
            } => Some(if now >= delay_over {
                // Past the delay, only the on-drain hook holds the stop
                // back: its end wakes us (SIGCHLD), its wait limit is a timer.
                d.halfway_to_kill()
            } else {
                delay_over
            }),
            _ => None,
        };
        [stop_due, self.clock.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// After the app exited on its own (or after it was stopped), whatever
    /// else is left in its process group gets the stop signal, then SIGKILL
    /// at the kill deadline.
    pub(super) fn stop_leftovers(&mut self, app: Pid) {
        if let State::Exited { leftovers_told, .. } = &mut self.state {
            *leftovers_told = true;
        }
        let signal = self.config.stop_signal.unwrap_or(Signal::TERM);
        let d = self.clock.start(&self.config.timing);
        info!(
            pgid = app,
            %signal,
            kill_in = %format_duration(d.until_kill(Instant::now())),
            "the app is gone but its process group is not: sending it the stop signal"
        );
        let _ = sys::kill_group(app, signal);
    }

    /// At the kill deadline: SIGKILL to the app's group and every hook
    /// still running; the clock now counts to the exit deadline.
    pub(super) fn kill_everything(&mut self, app: Pid, d: Deadlines) {
        self.clock = Clock::Killed(d);
        let after = format_duration(d.kill.saturating_duration_since(d.start));
        if self.state.exit_status().is_none() || sys::group_alive(app) {
            warn!(
                pgid = app,
                after = %after,
                "deadline reached: sending SIGKILL to the app's process group"
            );
            let _ = sys::kill_group(app, Signal::KILL);
        }
        for hook in self.hooks.iter().filter(|h| h.status.is_none()) {
            warn!(hook = %hook.kind, pid = hook.pid, after = %after, "deadline reached: sending SIGKILL to the {} hook", hook.kind);
            let _ = sys::kill_group(hook.pid, Signal::KILL);
        }
    }

    /// Sends `signal` to the app (its group or itself, as configured), or to
    /// the pre-start hook while the app has not started.
    pub(super) fn forward(&self, signal: Signal, purpose: Purpose) {
        let (target, pid, result) = match self.state {
            State::PreStart { .. } => match self.hooks.iter().find(|h| h.status.is_none()) {
                Some(hook) => (
                    "hook's process group",
                    hook.pid,
                    sys::kill_group(hook.pid, signal),
                ),
                None => return debug!(%signal, "no process to forward to"),
            },
            State::Serving { app } | State::Draining { app, .. } | State::Stopping { app }
                if self.config.signal_target == SignalTarget::Child =>
            {
                ("app", app, sys::kill(app, signal))
            }
            State::Serving { app }
            | State::Draining { app, .. }
            | State::Stopping { app }
            | State::Exited { app, .. } => {
                ("app's process group", app, sys::kill_group(app, signal))
            }
        };
        if let Err(e) = result {
            return debug!(%signal, pid, "could not send to the {target}: {e}");
        }
        match purpose {
            Purpose::Stop => {
                info!(%signal, pid, phase = %self.state.phase(), "stop passed on to the {target}")
            }
            // Terminal resizes come in bursts and say nothing about the app's end.
            Purpose::Forward if signal.number() == libc::SIGWINCH => {
                debug!(%signal, pid, "forwarded to the {target}")
            }
            Purpose::Forward => info!(%signal, pid, "forwarded to the {target}"),
        }
    }
}
