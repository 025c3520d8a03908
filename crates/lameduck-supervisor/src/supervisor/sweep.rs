//! Before lameduck exits, nothing it started may outlive it.
//!
//! As PID 1, the kernel kills whatever is left in the container when
//! lameduck exits. As a child subreaper (lameduck not PID 1: `docker run`
//! without `--init`, `shareProcessNamespace`), it does not: a hook's
//! `sleep 301 &`, or a daemon the app left behind in a group of its own,
//! would run on with no one to stop or reap it. Whatever is still a child of
//! lameduck (every such orphan was re-parented to it) is sent SIGTERM, then
//! SIGKILL at the kill deadline, within the exit deadline of the one plan.

use std::time::Instant;

use lameduck_core::duration::deadline_after;
use lameduck_core::{format_duration, Signal};
use tracing::warn;

use super::state::Clock;
use super::{Supervisor, GROUP_POLL};
use crate::error::Error;
use crate::sys::{self, Pid};

// === impl Supervisor ===

impl Supervisor {
    /// Stops every process still left among lameduck's children.
    pub(super) fn sweep(&mut self) -> Result<(), Error> {
        let mut told: Vec<Pid> = Vec::new();
        loop {
            self.reap();
            let left = sys::live_children(self.me);
            if left.is_empty() {
                return Ok(());
            }
            let d = self.clock.start(&self.config.timing);
            let now = Instant::now();
            let new: Vec<Pid> = left.iter().copied().filter(|p| !told.contains(p)).collect();
            if !new.is_empty() {
                warn!(
                    pids = ?new,
                    kill_in = %format_duration(d.until_kill(now)),
                    "processes started by the hooks or left behind by the app are still running: sending them SIGTERM"
                );
                // Their process groups too: a background job of a hook
                // shares the hook's group, and its own children with it.
                // (The hooks themselves were reaped: only their groups are
                // signalled, never their pids, which may be reused.)
                // SIGCONT after SIGTERM, as systemd does, so a suspended
                // process hears it now rather than at the SIGKILL.
                for signal in [Signal::TERM, Signal::CONT] {
                    for &pid in &new {
                        let _ = sys::kill(pid, signal);
                        let _ = sys::kill_group(pid, signal);
                    }
                    for hook in &self.hooks {
                        let _ = sys::kill_group(hook.pid, signal);
                    }
                }
                told.extend(new);
            }
            if now >= d.exit {
                warn!(pids = ?left, "still running at the exit deadline: leaving them");
                return Ok(());
            }
            if now >= d.kill {
                if let Clock::Running(d) = self.clock {
                    self.clock = Clock::Killed(d);
                    warn!(pids = ?left, "deadline reached: sending SIGKILL to what is left");
                }
                // Again for each one re-parented to us since.
                for &pid in &left {
                    let _ = sys::kill(pid, Signal::KILL);
                    let _ = sys::kill_group(pid, Signal::KILL);
                }
                for hook in &self.hooks {
                    let _ = sys::kill_group(hook.pid, Signal::KILL);
                }
            }
            // Children end with SIGCHLD; their own children, re-parented to
            // us as they go, only show up when we look again.
            let next = [
                Some(deadline_after(now, GROUP_POLL)),
                self.clock.next_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            self.wait_event(next)?;
        }
    }
}
