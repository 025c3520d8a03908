//! The drain sequence of lameduck, with no sockets and no processes.
//!
//! Every part of lameduck (the supervisor, the drain proxy, the library for
//! Rust services and the rehearsal) ends a pod the same way. This crate holds
//! what they share and what needs no sockets or processes to be decided:
//!
//! - [`Phase`]: where in the drain sequence a server is;
//! - [`Budget`]: the time left before the kubelet's SIGKILL, planned
//!   backwards from the grace period;
//! - [`timing`]: the one timing model, [`Settings::plan`], from which every
//!   part takes its delay, drain deadline, close grace and kill time;
//! - [`DrainDelay`]: how long to keep accepting after the stop was asked for;
//! - [`duration`]: durations written as `500ms`, `5s`, `2m`, all within one
//!   bound, [`MAX_DURATION`];
//! - [`Signal`]: signal names and numbers as users write them;
//! - [`cpus`]: how many CPUs the container may keep busy (its cgroup's CPU
//!   limit), the one part that reads files.
//!
//! ```
//! use std::time::Duration;
//! use lameduck_core::{parse_duration, Budget};
//!
//! let grace = parse_duration("30s").unwrap();
//! let budget = Budget::new(grace);
//! // The app is killed a safety margin before the kubelet would kill the pod.
//! assert_eq!(budget.app_timeout(), Duration::from_secs(28));
//! ```
#![deny(rust_2018_idioms)]

mod budget;
pub mod cpus;
mod delay;
pub mod duration;
pub mod grace;
mod phase;
mod signal;
pub mod timing;

pub use budget::Budget;
pub use cpus::Cpus;
pub use delay::{AutoDelay, DrainDelay, DrainDelaySource};
pub use duration::{
    format as format_duration, parse as parse_duration, DurationError, MAX_DURATION,
};
pub use phase::Phase;
pub use signal::{Signal, SignalError};
pub use timing::{Deadlines, Delay, DelaySetting, Plan, Settings, TimingError};
