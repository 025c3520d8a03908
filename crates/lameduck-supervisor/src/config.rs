//! What the supervisor is asked to do.

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

use lameduck_core::{Plan, Signal};

/// Everything `lameduck run` needs to supervise one app.
#[derive(Clone, Debug)]
pub struct Config {
    /// The app and its arguments, run as is (exec form).
    pub command: Vec<OsString>,
    /// Who hears forwarded signals.
    pub signal_target: SignalTarget,
    /// What the app is sent when the stop is passed on; `None` passes on the
    /// signal that asked for the stop (SIGTERM, SIGINT or SIGQUIT). Take it
    /// from [`Signal::parse_stop_signal`]: the signals that cannot stop an
    /// app (SIGSTOP, SIGKILL, ...) are refused, here too.
    pub stop_signal: Option<Signal>,
    /// When each step of the stop happens: the delay the stop is held back
    /// by, the kill and exit deadlines; from
    /// [`Settings::plan`](lameduck_core::Settings::plan), the one timing
    /// model the drain proxy follows too.
    pub timing: Plan,
    /// Shell commands run around the app's life.
    pub hooks: Hooks,
}

/// Who forwarded signals go to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignalTarget {
    /// The app's whole process group, so that `sh -c` wrappers and the
    /// processes they start hear the stop too.
    #[default]
    Group,
    /// The app's process alone, for apps that manage their own children.
    Child,
}

impl FromStr for SignalTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "group" => Ok(SignalTarget::Group),
            "child" => Ok(SignalTarget::Child),
            other => Err(format!(
                "unknown signal target {other:?}: use `group` (the app's process group) or `child` (the app alone)"
            )),
        }
    }
}

impl fmt::Display for SignalTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignalTarget::Group => "group",
            SignalTarget::Child => "child",
        })
    }
}

/// The shell commands run around the app, each with `sh -c`.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    /// Runs before the app; if it fails the app never starts.
    pub pre_start: Option<String>,
    /// Runs when the stop begins, alongside the drain delay: deregister from a
    /// registry, tell clients to move.
    pub on_drain: Option<String>,
    /// Runs after the app and its process group are gone.
    pub post_stop: Option<String>,
}
