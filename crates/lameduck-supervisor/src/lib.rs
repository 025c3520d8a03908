//! The container entrypoint of lameduck: `lameduck run -- COMMAND`.
//!
//! As PID 1 (or as a child subreaper when it is not), the supervisor starts
//! the app in a process group of its own, forwards every signal to it, reaps
//! every zombie, holds the stop back for the drain delay while balancers
//! catch up, and makes sure that whatever is still running is gone before the
//! kubelet's SIGKILL, so the container's exit code tells what happened.
//!
//! It is synchronous and single-threaded on purpose: a PID 1 that only waits
//! for signals needs no async runtime, starts in microseconds and stays small.
//!
//! ```no_run
//! use lameduck_core::Settings;
//! use lameduck_supervisor::{run, Config, Hooks, SignalTarget};
//!
//! let settings = Settings::from_vars(|name| std::env::var(name).ok()).expect("valid LAMEDUCK_* variables");
//! let config = Config {
//!     command: vec!["myapp".into(), "--port".into(), "8080".into()],
//!     signal_target: SignalTarget::Group,
//!     stop_signal: None,
//!     timing: settings.plan().expect("a plan"),
//!     hooks: Hooks::default(),
//! };
//! let code = run(config).unwrap_or_else(|e| e.exit_code());
//! std::process::exit(code);
//! ```
#![deny(rust_2018_idioms)]

mod config;
mod drainer;
mod error;
mod hook;
mod spawn;
mod supervisor;
mod sys;

pub use config::{Config, Hooks, SignalTarget};
pub use drainer::{Drainer, Waker};
pub use error::Error;
pub use hook::HookKind;
pub use supervisor::{run, run_with_drainer};
