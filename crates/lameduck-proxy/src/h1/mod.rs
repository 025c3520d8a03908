//! The proxy's own HTTP/1.1 engine, on `httparse`.
//!
//! hyper serves a connection with two state machines (its server, and the
//! pooled client it hands each request over to through a channel) and
//! keeps 16 KiB of buffers per connection for the connection's life, idle
//! or not (hyperium/hyper#2303). Measured against HAProxy on the same
//! machine that cost a quarter of the requests per second and eleven times
//! the memory per idle connection (bench/RESULTS.md). Here one task drives
//! both sides of a client connection: it waits for readiness holding no
//! buffer, borrows one from its thread while bytes move, forwards to an
//! upstream connection taken from its thread's pool, and gives both back.
//!
//! HTTP/2 (prior knowledge, and `Upgrade: h2c`) stays on hyper: the
//! preface is told apart before this engine sees a byte, and an h2c
//! upgrade request is replayed to hyper's server with the bytes read.

mod buffers;
pub mod chunked;
mod conn;
mod exchange;
mod fields;
mod heads;
pub mod parse;
pub(crate) mod pool;
pub(crate) mod streams;
mod transfer;
mod turn;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use lameduck::http::HttpServer;
use lameduck::{Drain, Phase, PhaseView};
use tokio::sync::Notify;

pub use conn::serve;
pub use wake::TICK;

use crate::forward::Shared;
use crate::metrics::Metrics;
use crate::upstream::Connector;

/// What every HTTP/1.1 connection of a listener shares.
#[derive(Debug)]
pub struct Engine {
    /// Dials the upstream, within the connection limit.
    pub connector: Connector,
    /// Where requests are counted.
    pub metrics: Arc<Metrics>,
    /// The drain, for the phase in logs.
    pub drain: Drain,
    /// The drain's phase, read without a lock on the request path (one
    /// for all connections).
    pub phase: PhaseView,
    /// `host:port` of the upstream, the `Host` of requests that bring none.
    pub upstream: Authority,
    /// How long the upstream may take to answer a request sent whole.
    pub upstream_timeout: Option<Duration>,
    /// The limits on request heads.
    pub limits: parse::Limits,
    /// Timeouts towards clients, and hyper's server for h2c upgrades.
    pub server: Arc<HttpServer>,
    /// hyper's forwarding service, for h2c upgrades.
    pub shared: Arc<Shared>,
    /// Wakes the connections that wait (idle, or with a request in
    /// flight) at every [`TICK`], at Closing and at Stopping: one wait on
    /// the drain and one timer for all of them ([`tick`]) rather than a
    /// watch's future and a timer in each (see `wake`).
    pub wake: Notify,
    /// The coarse clock of every deadline of the engine's connections.
    pub ticks: wake::Ticks,
}

/// Advances the coarse clock of `engine` and wakes its waiting
/// connections at every [`TICK`], and at Closing and Stopping: spawn it
/// beside the listener. It ends at Stopping, when every connection was
/// told to end.
pub async fn tick(engine: Arc<Engine>) {
    let mut tick = tokio::time::interval(TICK);
    // Late ticks are delayed rather than caught up: ticks stay at least a
    // TICK apart, which keeps deadlines from passing early.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = std::pin::pin!(engine.drain.reached(Phase::Closing));
    let mut stopping = std::pin::pin!(engine.drain.reached(Phase::Stopping));
    let mut closed = false;
    loop {
        tokio::select! {
            biased;
            () = &mut stopping => break,
            () = &mut closing, if !closed => closed = true,
            _ = tick.tick() => engine.ticks.advance(),
        }
        engine.wake.notify_waiters();
    }
    engine.wake.notify_waiters();
}
