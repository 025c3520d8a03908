//! The drain sequence for Rust servers: when the pod ends, nothing in flight
//! is lost.
//!
//! - [`Drain`] (from [`Drain::builder`] or `LAMEDUCK_*` variables with
//!   [`Drain::from_env`]) hears SIGTERM and SIGINT, runs the service's hooks
//!   at their phase, and moves a server through the phases of the sequence
//!   (`Serving → Draining → Closing → Stopping`) on a trigger, with a delay
//!   while balancers catch up and a deadline before the kubelet's SIGKILL;
//!   every listener and connection holds a [`Watch`], and the drain is over
//!   as soon as none is left.
//! - [`accept_until_closing`] accepts TCP connections while the drain allows.
//! - [`http::HttpServer`] serves HTTP/1.1 and HTTP/2 so that clients are told
//!   to move (`Connection: close`, GOAWAY) and no request is cut.
//! - [`tunnel()`] carries upgraded connections and TCP sessions, and tells a
//!   WebSocket client "going away" (1001) at the deadline.
//!
//! ```
//! use std::time::Duration;
//! use lameduck::{Drain, Phase};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> std::io::Result<()> {
//! let drain = Drain::builder().drain_delay(Duration::from_secs(5)).build();
//! drain.listen_for_signals()?; // SIGTERM or SIGINT starts the drain
//! drain.on(Phase::Draining, "deregister", || async {
//!     // Tell a service registry, a pub/sub broker, ... that we leave.
//!     Ok::<_, std::io::Error>(())
//! });
//! # drain.trigger();
//! let report = drain.run().await;
//! // Nothing was open: the server ends right after the delay.
//! assert_eq!(report.duration, Duration::from_secs(5));
//! # Ok(())
//! # }
//! ```
#![deny(rust_2018_idioms)]

mod accept;
pub mod admin;
pub mod buffers;
mod drain;
#[cfg(feature = "tonic")]
pub mod grpc;
pub mod http;
mod signals;
mod tunnel;
pub mod websocket;

pub use accept::accept_until_closing;
pub use drain::{
    Builder, ConfigError, Delay, Drain, HookOutcome, HookResult, PhaseView, Report, Timing, Watch,
};
pub use lameduck_core::{AutoDelay, Phase};
pub use tunnel::{try_tunnel, tunnel, TunnelEnd, TunnelKind};
