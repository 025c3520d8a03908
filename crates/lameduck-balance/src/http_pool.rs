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
/// of open connections for the connection's life, of requests in flight
/// while it carries one, and the watch that closes it when its endpoint
/// left and `--drain-timeout` passed.
#[derive(Debug)]
pub(crate) struct Hold {
    pub(crate) lease: Lease,
    pub(crate) request: Option<InFlight>,
    pub(crate) _leave: Option<crate::http_leave::LeaveWatch>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Backend;
    use crate::policy::Policy;
    use crate::state::Conditions;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A pod on loopback, and the balancer's connections to it.
    struct Pod {
        listener: TcpListener,
        set: Arc<EndpointSet>,
        metrics: lameduck_proxy::Metrics,
    }

    impl Pod {
        async fn start() -> Pod {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let set = EndpointSet::new(Policy::default());
            let pod = Pod {
                listener,
                set,
                metrics: lameduck_proxy::Metrics::new(),
            };
            pod.conditions(Conditions::default());
            pod
        }

        fn conditions(&self, conditions: Conditions) {
            let addr = self.listener.local_addr().expect("addr");
            self.set.update(&[Backend {
                addr,
                name: None,
                conditions,
            }]);
        }

        fn endpoint(&self) -> Arc<Endpoint> {
            self.set.endpoints().pop().expect("the endpoint")
        }

        /// A connection as HTTP mode opens it, and the pod's end of it.
        async fn connect(&self) -> (UpstreamConn, TcpStream) {
            let addr = self.listener.local_addr().expect("addr");
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (pod_end, _) = self.listener.accept().await.expect("accept");
            let hold = Hold {
                lease: Lease::new(self.endpoint()),
                request: None,
                _leave: None,
            };
            let conn = UpstreamConn::dialed(stream, &self.metrics, Box::new(hold));
            (conn, pod_end)
        }
    }

    async fn sees_close(mut pod_end: TcpStream) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), pod_end.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_ready_endpoint_reuses_its_kept_connections() {
        let pod = Pod::start().await;
        let kept = Kept::default();
        let (conn, _pod_end) = pod.connect().await;
        kept.put(conn);
        assert_eq!(pod.endpoint().open(), 1, "kept, still open");
        let again = kept.take(&pod.endpoint()).expect("reused");
        assert!(kept.take(&pod.endpoint()).is_none(), "taken once");
        kept.put(again);
        kept.sweep();
        assert!(kept.take(&pod.endpoint()).is_some(), "a live one stays");
    }

    #[tokio::test]
    async fn kept_connections_close_as_soon_as_the_endpoint_terminates() {
        let pod = Pod::start().await;
        let kept = Kept::default();
        let (idle, idle_pod_end) = pod.connect().await;
        let (busy, busy_pod_end) = pod.connect().await;
        kept.put(idle);
        pod.conditions(Conditions::new(false, true, true));
        assert!(kept.take(&pod.endpoint()).is_none(), "never reused");
        kept.sweep();
        assert!(sees_close(idle_pod_end).await, "the idle one is closed");
        // One that finishes its request afterwards is closed, not kept.
        kept.put(busy);
        assert!(sees_close(busy_pod_end).await);
        assert_eq!(pod.endpoint().open(), 0);
        // Ready again: kept again.
        pod.conditions(Conditions::default());
        let (conn, _pod_end) = pod.connect().await;
        kept.put(conn);
        assert!(kept.take(&pod.endpoint()).is_some());
    }

    #[tokio::test]
    async fn a_connection_the_pod_closed_while_idle_is_never_taken() {
        let pod = Pod::start().await;
        let kept = Kept::default();
        let (conn, pod_end) = pod.connect().await;
        kept.put(conn);
        drop(pod_end);
        // Taken (and put back) only until the runtime saw the FIN come in.
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(conn) = kept.take(&pod.endpoint()) {
                kept.put(conn);
                tokio::task::yield_now().await;
            }
        });
        assert!(closed.await.is_ok(), "a closed connection was kept");
        assert_eq!(pod.endpoint().open(), 0);
    }
}
