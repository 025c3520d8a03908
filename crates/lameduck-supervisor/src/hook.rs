//! The hooks: shell commands run at fixed points of the app's life.

use std::fmt;

use crate::error::Error;
use crate::spawn::{spawn, SpawnOptions};
use crate::sys::Pid;

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    /// Before the app starts.
    PreStart,
    /// When the stop begins.
    OnDrain,
    /// After the app is gone.
    PostStop,
}

impl HookKind {
    /// The name used in flags, logs and `$LAMEDUCK_HOOK`.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::PreStart => "pre-start",
            HookKind::OnDrain => "on-drain",
            HookKind::PostStop => "post-stop",
        }
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Starts `sh -c COMMAND` in its own process group, its output on lameduck's
/// standard error, with `LAMEDUCK_HOOK` set to the hook's name and
/// `LAMEDUCK_APP_PID` to the app's pid once there is one.
pub fn start_hook(kind: HookKind, command: &str, app: Option<Pid>) -> Result<Pid, Error> {
    let mut env = vec![("LAMEDUCK_HOOK", kind.name().to_owned())];
    if let Some(pid) = app {
        env.push(("LAMEDUCK_APP_PID", pid.to_string()));
    }
    let argv = ["sh".into(), "-c".into(), command.into()];
    spawn(
        &argv,
        SpawnOptions {
            foreground: false,
            stdout_to_stderr: true,
            env,
        },
    )
}
