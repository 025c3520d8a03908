//! HTTP mode's kept connections: idle upstream connections per endpoint,
//! reused only while their endpoint is ready and closed as soon as it is
//! not (terminating, not serving, gone), so that a terminating pod sees its
//! idle keep-alive connections end instead of waiting for requests that
//! never come.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lameduck_proxy::dial::IDLE_TIMEOUT;
use lameduck_proxy::UpstreamConn;
use tokio::time::Instant;
use tracing::info;

use crate::endpoint::{lock, Endpoint, InFlight, Lease};
use crate::set::EndpointSet;
use crate::state::State;

/// The most idle connections kept per endpoint.
const KEEP: usize = 512;

/// What HTTP mode ties to each upstream connection: the endpoint's count
/// of open connections for the connection's life, and of requests in
/// flight while it carries one.
#[derive(Debug)]
pub(crate) struct Hold {
    pub(crate) lease: Lease,
    pub(crate) request: Option<InFlight>,
}

/// The idle connections to one address, each with when it became idle.
type Idle = Mutex<Vec<(UpstreamConn, Instant)>>;

/// Idle connections of every endpoint.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    pools: RwLock<HashMap<SocketAddr, Arc<Idle>>>,
}

/// The endpoint a connection of HTTP mode goes to.
pub(crate) fn endpoint_of(conn: &UpstreamConn) -> Option<&Arc<Endpoint>> {
    conn.tag()?
        .downcast_ref::<Hold>()
        .map(|hold| hold.lease.endpoint())
}

/// Whether a kept connection may serve another request.
fn reusable(conn: &UpstreamConn, since: Instant, now: Instant) -> bool {
    endpoint_of(conn).is_some_and(|e| e.state() == State::Ready)
        && now.saturating_duration_since(since) < IDLE_TIMEOUT
        && conn.is_open()
}

// === impl Kept ===

impl Kept {
    fn pool(&self, addr: SocketAddr) -> Option<Arc<Idle>> {
        self.pools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
            .cloned()
    }

    /// The most recently used live idle connection to `endpoint`, if it is
    /// ready (in the fallback to terminating endpoints every request gets a
    /// new connection: those are never kept).
    pub(crate) fn take(&self, endpoint: &Endpoint) -> Option<UpstreamConn> {
        if endpoint.state() != State::Ready {
            return None;
        }
        let pool = self.pool(endpoint.addr())?;
        let now = Instant::now();
        loop {
            let (conn, since) = lock(&pool).pop()?;
            if reusable(&conn, since, now) {
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` for the next request to its endpoint while that is
    /// ready; closes it otherwise.
    pub(crate) fn put(&self, conn: UpstreamConn) {
        let Some(endpoint) = endpoint_of(&conn) else {
            return;
        };
        if endpoint.state() != State::Ready {
            return;
        }
        let addr = endpoint.addr();
        let pool = match self.pool(addr) {
            Some(pool) => pool,
            None => self
                .pools
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(addr)
                .or_default()
                .clone(),
        };
        let mut idle = lock(&pool);
        if idle.len() < KEEP {
            idle.push((conn, Instant::now()));
        }
    }

    /// Closes the idle connections that may not be reused any more: their
    /// endpoint is no longer ready, they sat idle too long, or the app
    /// closed them. Forgets the pools left empty.
    pub(crate) fn sweep(&self) {
        let now = Instant::now();
        let pools: Vec<(SocketAddr, Arc<Idle>)> = self
            .pools
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(a, p)| (*a, p.clone()))
            .collect();
        let mut empty = Vec::new();
        for (addr, pool) in pools {
            let mut idle = lock(&pool);
            let before = idle.len();
            let mut left: Option<(String, State)> = None;
            idle.retain(|(conn, since)| {
                if let Some(e) = endpoint_of(conn).filter(|e| e.state() != State::Ready) {
                    left = Some((e.label(), e.state()));
                }
                reusable(conn, *since, now)
            });
            let closed = before - idle.len();
            if let (Some((name, state)), true) = (left, closed > 0) {
                info!(endpoint = %addr, %name, %state, closed, "kept connections to an endpoint that is no longer ready closed");
            }
            if idle.is_empty() {
                empty.push(addr);
            }
        }
        if !empty.is_empty() {
            let mut pools = self.pools.write().unwrap_or_else(|e| e.into_inner());
            for addr in empty {
                // Only if nothing was put back meanwhile.
                if pools.get(&addr).is_some_and(|p| lock(p).is_empty()) {
                    pools.remove(&addr);
                }
            }
        }
    }
}

/// Sweeps `kept` at every change of the endpoints and every second (health
/// checks and idle timeouts change nothing the set announces).
pub(crate) async fn sweep(kept: Arc<Kept>, set: Arc<EndpointSet>) {
    let mut changes = set.changes();
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        kept.sweep();
    }
}
