//! The supervisor's event loop: one thread, blocked signals taken with
//! `sigtimedwait`, every timer a timeout of that wait.

mod hooks;

use std::time::{Duration, Instant};

use lameduck_core::{format_duration, Deadlines, Phase, Signal};
use tracing::{debug, error, info, warn};

use crate::config::{Config, SignalTarget};
use crate::drainer::{Drainer, Waker};
use crate::error::Error;
use crate::hook::{start_hook, HookKind};
use crate::spawn::{spawn, SpawnOptions};
use crate::sys::{self, Pid, WaitStatus};

/// How often to look whether an exited app's process group is empty. Group
/// members that are not our children die without telling us.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// How long a drainer gets to answer and close its clients once the app is
/// gone: nothing can be served any more, so this only flushes 502s.
const DRAINER_AFTER_APP: Duration = Duration::from_secs(2);

/// Runs the app as `config` says until it and its process group are gone,
/// and returns the exit status lameduck should end with: the app's own code,
/// or 128+N when signal N ended it.
///
/// Blocks every catchable signal of the calling thread for good; call it from
/// a single-threaded program's main thread.
pub fn run(config: Config) -> Result<i32, Error> {
    Supervisor::new(config)?.run()
}

/// Like [`run`], with a [`Drainer`] in front of the app: the stop goes on to
/// the app only once the drainer is done, and a drain the drainer began by
/// itself stops the app the same way.
///
/// `start_drainer` is called once the signals are blocked, so threads it
/// starts inherit the mask and leave every signal to the supervisor. If it
/// fails, the app is not started.
pub fn run_with_drainer<E>(
    config: Config,
    start_drainer: impl FnOnce(Waker) -> Result<Box<dyn Drainer>, E>,
) -> Result<Result<i32, Error>, E> {
    let mut supervisor = match Supervisor::new(config) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    supervisor.drainer = Some(start_drainer(Waker::new())?);
    Ok(supervisor.run())
}

struct Supervisor {
    config: Config,
    waitset: libc::sigset_t,
    me: Pid,
    phase: Phase,
    /// The app's pid, which is also its process group id.
    app: Option<Pid>,
    app_status: Option<WaitStatus>,
    hooks: Vec<RunningHook>,
    /// Set when the stop was asked for, or when the app exited on its own.
    deadlines: Option<Deadlines>,
    stop: Option<Stop>,
    killed: bool,
    /// Processes re-parented to us and reaped, for the exit log line.
    orphans_reaped: u64,
    /// What drains in front of the app, if anything.
    drainer: Option<Box<dyn Drainer>>,
    app_exited_at: Option<Instant>,
}

struct Stop {
    requested_by: Signal,
    delay_over: Instant,
    skip_delay: bool,
    passed_on: bool,
}

struct RunningHook {
    kind: HookKind,
    pid: Pid,
    status: Option<WaitStatus>,
}

// === impl Supervisor ===

impl Supervisor {
    fn new(config: Config) -> Result<Self, Error> {
        if config.command.is_empty() {
            return Err(Error::NoCommand);
        }
        let waitset = sys::signal_set(Signal::catchable());
        sys::block_signals(&waitset).map_err(Error::Setup)?;
        let me = sys::getpid();
        if me != 1 {
            // Under shareProcessNamespace or plain docker without --init we
            // are not PID 1, yet orphans of the app must still be reaped.
            sys::become_subreaper().map_err(Error::Setup)?;
        }
        Ok(Supervisor {
            waitset,
            me,
            phase: Phase::Serving,
            app: None,
            app_status: None,
            hooks: Vec::new(),
            deadlines: None,
            stop: None,
            killed: false,
            orphans_reaped: 0,
            drainer: None,
            app_exited_at: None,
            config,
        })
    }

    fn run(mut self) -> Result<i32, Error> {
        if let Some(status) = self.pre_start()? {
            return Ok(status);
        }
        let foreground = sys::owns_terminal_foreground();
        let pid = spawn(
            &self.config.command,
            SpawnOptions {
                foreground,
                ..SpawnOptions::default()
            },
        )?;
        self.app = Some(pid);
        info!(
            pid,
            command = ?self.config.command,
            drain_delay = %self.config.drain_delay,
            grace_period = %format_duration(self.config.budget.grace_period()),
            signal_target = %self.config.signal_target,
            pid1 = self.me == 1,
            "app started"
        );
        if let Some(warning) = self
            .config
            .budget
            .check_delay(self.config.drain_delay.delay)
        {
            warn!("{warning}");
        }

        self.supervise()?;
        self.post_stop()?;
        if foreground {
            // Hand the terminal back so the shell that started us gets it.
            let _ = sys::set_terminal_foreground(sys::getpgrp());
        }
        self.phase = Phase::Exited;
        let code = self
            .app_status
            .map_or(128 + Signal::KILL.number(), WaitStatus::code);
        info!(code, orphans_reaped = self.orphans_reaped, "exiting");
        Ok(code)
    }

    /// The deadlines of the current stop, started now if there is none yet.
    fn deadlines(&mut self) -> Deadlines {
        *self
            .deadlines
            .get_or_insert_with(|| self.config.budget.deadlines(Instant::now()))
    }

    /// Waits while the app runs, and after it exited while its process group
    /// and hooks still do.
    fn supervise(&mut self) -> Result<(), Error> {
        let app = self.app.ok_or(Error::NoCommand)?;
        let mut leftovers_told = false;
        loop {
            let now = Instant::now();
            if self.stop.is_none()
                && self.app_status.is_none()
                && self.drainer.as_ref().is_some_and(|d| d.requested())
            {
                self.begin_stop(Signal::TERM, None);
            }
            self.pass_on_stop_if_due(now);
            if let Some(d) = self.deadlines {
                if !self.killed && now >= d.kill {
                    self.kill_everything(app, d);
                }
            }
            let mut poll = None;
            if self.app_status.is_some() {
                let group_alive = sys::group_alive(app);
                if group_alive && !leftovers_told {
                    leftovers_told = true;
                    self.stop_leftovers(app);
                }
                let drained = self.drainer.as_ref().is_none_or(|d| d.is_done())
                    || self
                        .app_exited_at
                        .is_some_and(|t| now >= t + DRAINER_AFTER_APP);
                if !group_alive && !self.hooks_running() && drained {
                    return Ok(());
                }
                if !drained {
                    poll = self.app_exited_at.map(|t| t + DRAINER_AFTER_APP);
                }
                if self.killed && now >= self.deadlines().exit {
                    warn!(pgid = app, "processes of the app's group are still alive at the exit deadline; leaving them");
                    return Ok(());
                }
                if group_alive {
                    poll = Some(now + GROUP_POLL);
                }
            }
            let next = [poll, self.next_timer()].into_iter().flatten().min();
            self.wait_event(next)?;
        }
    }

    /// The next instant the loop must wake up at, whatever happens.
    fn next_timer(&self) -> Option<Instant> {
        let d = self.deadlines?;
        let now = Instant::now();
        let stop_due = self
            .stop
            .as_ref()
            .filter(|s| !s.passed_on && !s.skip_delay)
            .map(|s| s.delay_over)
            .map(|delay_over| {
                // Past the delay, only the on-drain hook holds the stop back:
                // its end wakes us (SIGCHLD), its wait limit is a timer.
                if now >= delay_over {
                    hook_wait_limit(d)
                } else {
                    delay_over
                }
            });
        let deadline = if self.killed { d.exit } else { d.kill };
        [stop_due, Some(deadline)].into_iter().flatten().min()
    }

    /// After the app exited on its own (or after it was stopped), whatever
    /// else is left in its process group gets the stop signal, then SIGKILL
    /// at the kill deadline.
    fn stop_leftovers(&mut self, app: Pid) {
        let signal = self.config.stop_signal.unwrap_or(Signal::TERM);
        let d = self.deadlines();
        info!(
            pgid = app,
            %signal,
            kill_in = %format_duration(d.until_kill(Instant::now())),
            "the app is gone but its process group is not: sending it the stop signal"
        );
        let _ = sys::kill_group(app, signal);
        self.phase = Phase::Stopping;
    }

    /// Passes the stop on once the drain delay is over and the on-drain
    /// hook is done; a hook that takes longer than half the app's time is
    /// not waited for any more, so the app keeps time to stop by itself.
    fn pass_on_stop_if_due(&mut self, now: Instant) {
        let on_drain_running = self
            .hooks
            .iter()
            .any(|h| h.kind == HookKind::OnDrain && h.status.is_none());
        let Some(deadlines) = self.deadlines else {
            return;
        };
        let delay = self.own_delay();
        let Some(stop) = self.stop.as_mut() else {
            return;
        };
        if stop.passed_on || self.app_status.is_some() {
            return;
        }
        let delay_over = now >= stop.delay_over;
        let hook_waited_enough = now >= hook_wait_limit(deadlines);
        let drained = self.drainer.as_ref().is_none_or(|d| d.is_done());
        let due = drained
            && (stop.skip_delay || (delay_over && (!on_drain_running || hook_waited_enough)));
        if !due {
            return;
        }
        stop.passed_on = true;
        let requested_by = stop.requested_by;
        if !delay.is_zero() && delay_over {
            info!(delay = %format_duration(delay), "drain delay over");
        }
        if on_drain_running && !stop.skip_delay {
            warn!("the on-drain hook is still running: passing the stop on anyway, so the app has time to stop");
        }
        let signal = self.config.stop_signal.unwrap_or(requested_by);
        self.phase = Phase::Stopping;
        self.forward(signal, Purpose::Stop);
    }

    fn kill_everything(&mut self, app: Pid, d: Deadlines) {
        self.killed = true;
        let after = format_duration(d.kill.saturating_duration_since(d.start));
        if self.app_status.is_none() || sys::group_alive(app) {
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

    /// Waits for one signal or until `until`, and acts on it.
    fn wait_event(&mut self, until: Option<Instant>) -> Result<(), Error> {
        let timeout = until.map(|t| t.saturating_duration_since(Instant::now()));
        let Some(received) = sys::wait_signal(&self.waitset, timeout).map_err(Error::Setup)? else {
            return Ok(());
        };
        if received.sender == self.me {
            // Raised by ourselves (SIGPIPE from a write to a closed stderr):
            // not meant for the app.
            return Ok(());
        }
        if received.signal == Signal::CHLD {
            self.reap();
            if !received.from_user {
                return Ok(());
            }
        }
        self.on_signal(received.signal, received.sender);
        Ok(())
    }

    fn reap(&mut self) {
        loop {
            let (pid, status) = match sys::reap_one() {
                Ok(Some(reaped)) => reaped,
                Ok(None) => return,
                Err(e) => {
                    error!("waitpid failed: {e}");
                    return;
                }
            };
            if Some(pid) == self.app {
                self.app_status = Some(status);
                self.app_exited_at = Some(Instant::now());
                if let Some(drainer) = self.drainer.as_mut() {
                    // Requests in flight get their 502 and clients are told
                    // to close before the process ends.
                    drainer.app_exited();
                }
                info!(pid, code = status.code(), "app {status}");
            } else if let Some(hook) = self.hooks.iter_mut().find(|h| h.pid == pid) {
                hook.status = Some(status);
                if status.success() {
                    info!(hook = %hook.kind, "{} hook succeeded", hook.kind);
                } else {
                    warn!(hook = %hook.kind, code = status.code(), "{} hook failed: {status}", hook.kind);
                }
            } else {
                self.orphans_reaped += 1;
                debug!(pid, "reaped orphan: {status}");
            }
        }
    }

    fn on_signal(&mut self, signal: Signal, sender: Pid) {
        if !signal.is_stop_request() {
            return self.forward(signal, Purpose::Forward);
        }
        if self.app_status.is_some() {
            // Late to the party: the app is gone and lameduck is finishing
            // (leftovers, post-stop hook) within the budget already running.
            return info!(%signal, "stop requested, but the app has exited already: finishing");
        }
        match self.stop.as_mut() {
            None => self.begin_stop(signal, Some(sender)),
            Some(stop) if !stop.passed_on && self.app.is_some() => {
                if signal == Signal::INT {
                    info!(%signal, "second SIGINT: skipping the rest of the drain delay");
                    stop.skip_delay = true;
                    if let Some(drainer) = self.drainer.as_mut() {
                        drainer.hurry();
                    }
                } else {
                    info!(%signal, "already draining: the stop goes on to the app when the drain delay is over");
                }
            }
            Some(_) => self.forward(signal, Purpose::Forward),
        }
    }

    /// The delay the supervisor holds the stop back by itself; a drainer
    /// keeps its own.
    fn own_delay(&self) -> Duration {
        if self.drainer.is_some() {
            Duration::ZERO
        } else {
            self.config.drain_delay.delay
        }
    }

    /// Begins the stop asked for by `signal` from `sender`, or by the
    /// drainer when `sender` is `None`.
    fn begin_stop(&mut self, signal: Signal, sender: Option<Pid>) {
        let now = Instant::now();
        let deadlines = self.deadlines();
        let delay = self.own_delay();
        match sender {
            Some(sender) => info!(
                %signal,
                sender,
                drain_delay = %format_duration(delay),
                kill_in = %format_duration(deadlines.until_kill(now)),
                "stop requested"
            ),
            None => info!(
                kill_in = %format_duration(deadlines.until_kill(now)),
                "stop requested on the admin port"
            ),
        }
        if let Some(drainer) = self.drainer.as_mut() {
            drainer.begin();
        }
        self.stop = Some(Stop {
            requested_by: signal,
            delay_over: now + delay,
            skip_delay: false,
            passed_on: false,
        });
        if self.app.is_none() {
            // Still in the pre-start hook: it hears the stop at once.
            self.forward(self.config.stop_signal.unwrap_or(signal), Purpose::Stop);
            return;
        }
        self.phase = Phase::Draining;
        if !delay.is_zero() {
            info!(delay = %format_duration(delay), phase = %self.phase, "drain delay begun: the app keeps running while balancers catch up");
        }
        if let Some(command) = self.config.hooks.on_drain.clone() {
            match start_hook(HookKind::OnDrain, &command, self.app) {
                Ok(pid) => self.hooks.push(RunningHook {
                    kind: HookKind::OnDrain,
                    pid,
                    status: None,
                }),
                Err(e) => error!(hook = "on-drain", "cannot start the on-drain hook: {e}"),
            }
        }
    }

    /// Sends `signal` to the app (its group or itself, as configured), or to
    /// the pre-start hook while the app has not started.
    fn forward(&self, signal: Signal, purpose: Purpose) {
        let (target, pid, result) = match self.app {
            None => match self.hooks.iter().find(|h| h.status.is_none()) {
                Some(hook) => (
                    "hook's process group",
                    hook.pid,
                    sys::kill_group(hook.pid, signal),
                ),
                None => return debug!(%signal, "no process to forward to"),
            },
            Some(app)
                if self.config.signal_target == SignalTarget::Child
                    && self.app_status.is_none() =>
            {
                ("app", app, sys::kill(app, signal))
            }
            Some(app) => ("app's process group", app, sys::kill_group(app, signal)),
        };
        if let Err(e) = result {
            return debug!(%signal, pid, "could not send to the {target}: {e}");
        }
        match purpose {
            Purpose::Stop => {
                info!(%signal, pid, phase = %self.phase, "stop passed on to the {target}")
            }
            // Terminal resizes come in bursts and say nothing about the app's end.
            Purpose::Forward if signal.number() == libc::SIGWINCH => {
                debug!(%signal, pid, "forwarded to the {target}")
            }
            Purpose::Forward => info!(%signal, pid, "forwarded to the {target}"),
        }
    }
}

/// Until when the stop waits for the on-drain hook: half of the app's time.
fn hook_wait_limit(d: Deadlines) -> Instant {
    d.start + (d.kill - d.start) / 2
}

/// Why a signal is sent to the app, for the log.
#[derive(Clone, Copy)]
enum Purpose {
    /// lameduck passes on a signal it received.
    Forward,
    /// lameduck passes on the stop.
    Stop,
}
