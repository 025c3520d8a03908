//! Running the hooks inside the supervisor's event loop, so signals are
//! still handled (and forwarded) while a hook runs.

use std::time::Instant;

use lameduck_core::Signal;
use tracing::{debug, error, info, warn};

use super::state::State;
use super::{RunningHook, Supervisor};
use crate::error::Error;
use crate::hook::{start_hook, HookKind};
use crate::sys::{self, Pid, WaitStatus};

// === impl Supervisor ===

impl Supervisor {
    /// Runs the pre-start hook. `Some(status)` means the app must not start.
    pub(super) fn pre_start(&mut self) -> Result<Option<i32>, Error> {
        let Some(command) = self.config.hooks.pre_start.clone() else {
            return Ok(None);
        };
        let status = self.run_hook(HookKind::PreStart, &command, None)?;
        if let State::PreStart { stop: Some(signal) } = self.state {
            info!(%signal, "stop requested during the pre-start hook: the app is not started");
            let code = if status.success() {
                128 + signal.number()
            } else {
                status.code()
            };
            return Ok(Some(code));
        }
        if !status.success() {
            error!(
                code = status.code(),
                "pre-start hook failed ({status}): the app is not started"
            );
            return Ok(Some(status.code()));
        }
        Ok(None)
    }

    pub(super) fn post_stop(&mut self) -> Result<(), Error> {
        let Some(command) = self.config.hooks.post_stop.clone() else {
            return Ok(());
        };
        let until = self.clock.start(&self.config.timing).exit;
        self.run_hook(HookKind::PostStop, &command, Some(until))?;
        Ok(())
    }

    /// Runs a hook to its end, handling signals meanwhile; kills its process
    /// group at `until` (or at the stop's kill deadline).
    fn run_hook(
        &mut self,
        kind: HookKind,
        command: &str,
        until: Option<Instant>,
    ) -> Result<WaitStatus, Error> {
        let pid = match start_hook(kind, command, self.state.app()) {
            Ok(pid) => pid,
            Err(e) => {
                error!(hook = %kind, "cannot start the {kind} hook: {e}");
                return Ok(WaitStatus::Exited(e.exit_code()));
            }
        };
        debug!(hook = %kind, pid, "hook started");
        self.hooks.push(RunningHook {
            kind,
            pid,
            status: None,
        });
        let mut killed = false;
        loop {
            if let Some(status) = self.hook_status(pid) {
                return Ok(status);
            }
            let deadline = match (until, self.clock.deadlines()) {
                (Some(u), _) => Some(u),
                (None, Some(d)) => Some(d.kill),
                (None, None) => None,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                if !killed {
                    warn!(hook = %kind, pid, "the {kind} hook is still running at its deadline: sending SIGKILL to its process group");
                    let _ = sys::kill_group(pid, Signal::KILL);
                    killed = true;
                }
                // A killed hook is reaped at once; wait for that, not for a timer.
                self.wait_event(None)?;
                continue;
            }
            self.wait_event(deadline)?;
        }
    }

    fn hook_status(&self, pid: Pid) -> Option<WaitStatus> {
        self.hooks
            .iter()
            .find(|h| h.pid == pid)
            .and_then(|h| h.status)
    }

    pub(super) fn hooks_running(&self) -> bool {
        self.hooks.iter().any(|h| h.status.is_none())
    }
}
