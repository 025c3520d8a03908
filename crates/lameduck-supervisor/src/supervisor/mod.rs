//! The supervisor's event loop: one thread, blocked signals taken with
//! `sigtimedwait`, every timer a timeout of that wait. Where the app is in
//! the drain sequence is one [`State`]; the stop's clock is one [`Clock`].

mod hooks;
mod state;
mod stop;
mod sweep;

use std::time::{Duration, Instant};

use lameduck_core::duration::deadline_after;
use lameduck_core::{format_duration, Signal};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::drainer::{Drainer, Waker};
use crate::error::Error;
use crate::hook::HookKind;
use crate::spawn::{spawn, SpawnOptions};
use crate::sys::{self, Pid, WaitStatus};

use state::{Clock, State};
use stop::Purpose;

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
    /// Where the app is in the drain sequence.
    state: State,
    /// The stop's deadlines, once a stop began or the app exited.
    clock: Clock,
    hooks: Vec<RunningHook>,
    /// Processes re-parented to us and reaped, for the exit log line.
    orphans_reaped: u64,
    /// What drains in front of the app, if anything.
    drainer: Option<Box<dyn Drainer>>,
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
        if let Some(signal) = config.stop_signal {
            signal.check_stop_signal().map_err(Error::Usage)?;
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
            state: State::PreStart { stop: None },
            clock: Clock::Idle,
            hooks: Vec::new(),
            orphans_reaped: 0,
            drainer: None,
            config,
        })
    }

    fn run(mut self) -> Result<i32, Error> {
        if let Some(status) = self.pre_start()? {
            self.sweep()?;
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
        self.state = State::Serving { app: pid };
        info!(
            pid,
            command = ?self.config.command,
            drain_delay = %self.config.timing.describe_delay(),
            grace_period = %format_duration(self.config.timing.budget.grace_period()),
            signal_target = %self.config.signal_target,
            pid1 = self.me == 1,
            "app started"
        );
        if let Some(warning) = self.config.timing.check_delay() {
            warn!("{warning}");
        }

        self.supervise(pid)?;
        self.post_stop()?;
        self.sweep()?;
        if foreground {
            // Hand the terminal back so the shell that started us gets it.
            let _ = sys::set_terminal_foreground(sys::getpgrp());
        }
        let code = self
            .state
            .exit_status()
            .map_or(128 + Signal::KILL.number(), WaitStatus::code);
        info!(code, orphans_reaped = self.orphans_reaped, "exiting");
        Ok(code)
    }

    /// Waits while the app runs, and after it exited while its process group
    /// and hooks still do.
    fn supervise(&mut self, app: Pid) -> Result<(), Error> {
        loop {
            let now = Instant::now();
            if matches!(self.state, State::Serving { .. })
                && self.drainer.as_ref().is_some_and(|d| d.requested())
            {
                self.begin_stop(Signal::TERM, None);
            }
            self.pass_on_stop_if_due(now);
            if let Clock::Running(d) = self.clock {
                if now >= d.kill {
                    self.kill_everything(app, d);
                }
            }
            let mut poll = None;
            if let State::Exited {
                at, leftovers_told, ..
            } = self.state
            {
                let group_alive = sys::group_alive(app);
                if group_alive && !leftovers_told {
                    self.stop_leftovers(app);
                }
                let drainer_given_up = deadline_after(at, DRAINER_AFTER_APP);
                let drained =
                    self.drainer.as_ref().is_none_or(|d| d.is_done()) || now >= drainer_given_up;
                if !group_alive && !self.hooks_running() && drained {
                    return Ok(());
                }
                if !drained {
                    poll = Some(drainer_given_up);
                }
                if let Clock::Killed(d) = self.clock {
                    if now >= d.exit {
                        warn!(pgid = app, "processes of the app's group are still alive at the exit deadline; leaving them");
                        return Ok(());
                    }
                }
                if group_alive {
                    poll = Some(deadline_after(now, GROUP_POLL));
                }
            }
            let next = [poll, self.next_timer(now)].into_iter().flatten().min();
            self.wait_event(next)?;
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
            if Some(pid) == self.state.app() {
                self.app_exited(pid, status);
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

    /// The app is gone, whatever the state was: what is left finishes
    /// within the stop's clock (started now if no stop was asked for).
    fn app_exited(&mut self, app: Pid, status: WaitStatus) {
        self.state = State::Exited {
            app,
            status,
            at: Instant::now(),
            leftovers_told: false,
        };
        self.clock.start(&self.config.timing);
        if let Some(drainer) = self.drainer.as_mut() {
            // Requests in flight get their 502 and clients are told to close
            // before the process ends.
            drainer.app_exited();
        }
        info!(pid = app, code = status.code(), "app {status}");
    }

    fn on_signal(&mut self, signal: Signal, sender: Pid) {
        if !signal.is_stop_request() {
            return self.forward(signal, Purpose::Forward);
        }
        match &mut self.state {
            State::PreStart { stop: stop @ None } => {
                // The pre-start hook hears the stop at once; the app will
                // never start.
                *stop = Some(signal);
                let d = self.clock.start(&self.config.timing);
                info!(%signal, sender, kill_in = %format_duration(d.until_kill(Instant::now())), "stop requested while the pre-start hook runs: passing it on to the hook");
                self.forward(self.config.stop_signal.unwrap_or(signal), Purpose::Stop);
            }
            State::Serving { .. } => self.begin_stop(signal, Some(sender)),
            State::Draining { hurried, .. } => {
                if signal == Signal::INT {
                    info!(%signal, "second SIGINT: skipping the rest of the drain delay");
                    *hurried = true;
                    if let Some(drainer) = self.drainer.as_mut() {
                        drainer.hurry();
                    }
                } else {
                    info!(%signal, "already draining: the stop goes on to the app when the drain delay is over");
                }
            }
            State::Exited { .. } => {
                // Late to the party: the app is gone and lameduck is
                // finishing (leftovers, post-stop hook) within the budget
                // already running.
                info!(%signal, "stop requested, but the app has exited already: finishing");
            }
            State::PreStart { stop: Some(_) } | State::Stopping { .. } => {
                self.forward(signal, Purpose::Forward)
            }
        }
    }
}
