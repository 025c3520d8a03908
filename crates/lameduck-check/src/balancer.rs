//! The balancer in front of the pods: a TCP (layer 4) balancer on loopback,
//! as kube-proxy's DNAT or a cloud balancer is. It picks a routed pod for
//! each new connection and then only moves bytes, so any client can go
//! through it, also one that is not the rehearsal's own.
//!
//! What the client sees follows what it would see in a cluster: a pod that
//! refuses, or no pod at all, resets the client's connection (as the REJECT
//! of a Service without endpoints does); a pod's FIN or RST reaches the
//! client as FIN or RST.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::endpoints::Endpoints;
use crate::ledger::PodId;

/// How long the balancer tries to reach a pod.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What became of the balancer's connection to the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The pod accepted.
    Connected,
    /// No pod was routed.
    NoEndpoint,
    /// The pod refused, or could not be reached.
    Failed(String),
}

/// One client connection's route, shared by the balancer and the client
/// that made it so that each loss is tied to a pod.
#[derive(Debug, Default)]
pub struct Route {
    /// The pod picked, if any.
    pub pod: Option<PodId>,
    /// The outcome of the balancer's connect.
    pub upstream: OnceLock<Upstream>,
    /// Set when the balancer reset the connection at the pod's removal.
    pub cut: OnceLock<()>,
}

/// Routes by the client's address, for the rehearsal's own clients to
/// claim once connected.
#[derive(Debug, Default)]
pub struct Routes {
    map: Mutex<HashMap<SocketAddr, Arc<Route>>>,
    added: Notify,
    /// The balancer is another process (`--balancer lameduck`): routes are
    /// its own business, and a connection it accepted counts as connected.
    unrouted: bool,
}

impl Routes {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Route>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes of a balancer that is another process and keeps its routes
    /// to itself: every claim is answered at once, with no pod.
    pub fn unrouted() -> Routes {
        Routes {
            unrouted: true,
            ..Routes::default()
        }
    }

    /// The route of the connection from `client`, once the balancer has
    /// accepted it.
    pub async fn claim(&self, client: SocketAddr, timeout: Duration) -> Arc<Route> {
        if self.unrouted {
            let route = Route::default();
            let _ = route.upstream.set(Upstream::Connected);
            return Arc::new(route);
        }
        let wait = async {
            loop {
                let added = self.added.notified();
                if let Some(route) = self.map().remove(&client) {
                    return route;
                }
                added.await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_default()
    }
}

/// Connects to the balancer at `target` and claims the connection's route.
/// The route is known even when the connect itself failed: a balancer that
/// finds no pod resets the connection at once, sometimes before the
/// client's connect has returned.
pub async fn connect(target: SocketAddr, routes: &Routes) -> (io::Result<TcpStream>, Arc<Route>) {
    let bound = async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let local = socket.local_addr()?;
        Ok::<_, io::Error>((socket, local))
    };
    let (socket, local) = match bound.await {
        Ok(s) => s,
        Err(e) => return (Err(e), Arc::default()),
    };
    match socket.connect(target).await {
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            (Ok(stream), routes.claim(local, CLAIM_TIMEOUT).await)
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
            (Err(e), routes.claim(local, CLAIM_TIMEOUT).await)
        }
        Err(e) => (Err(e), Arc::default()),
    }
}

/// How long a client waits for the balancer to have taken its connection.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(5);

/// What became of every connection the balancer took, whoever made it.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    connected: AtomicU64,
    refused: AtomicU64,
    no_endpoint: AtomicU64,
    cut: AtomicU64,
    reset: AtomicU64,
}

/// [`Stats`] read at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// Client connections accepted.
    pub accepted: u64,
    /// Relayed to a pod that accepted them.
    pub connected: u64,
    /// Reset because the pod refused or could not be reached.
    pub refused: u64,
    /// Reset because no pod was routed.
    pub no_endpoint: u64,
    /// Reset at the pod's removal (`--balancer reset`).
    pub cut: u64,
    /// Relayed, then reset by one side (the pod, mostly: a listener closed
    /// with connections still queued, a process killed).
    pub reset: u64,
    /// Connects that failed and were tried again on another pod (only
    /// `--balancer lameduck` retries).
    #[serde(default)]
    pub retried: u64,
}

impl Stats {
    /// The counts now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            accepted: get(&self.accepted),
            connected: get(&self.connected),
            refused: get(&self.refused),
            no_endpoint: get(&self.no_endpoint),
            cut: get(&self.cut),
            reset: get(&self.reset),
            retried: 0,
        }
    }
}

/// A running balancer.
#[derive(Debug)]
pub struct Balancer {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Routes of accepted connections.
    pub routes: Arc<Routes>,
    /// Counts of every connection.
    pub stats: Arc<Stats>,
}

impl Balancer {
    /// Binds to `listen` and serves until the runtime ends.
    pub async fn start(listen: SocketAddr, endpoints: Arc<Endpoints>) -> io::Result<Balancer> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let routes = Arc::new(Routes::default());
        let stats = Arc::new(Stats::default());
        let accept_routes = routes.clone();
        let accept_stats = stats.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((client, peer)) => {
                        accept_stats.accepted.fetch_add(1, Ordering::Relaxed);
                        let target = endpoints.pick();
                        let route = Arc::new(Route {
                            pod: target.as_ref().map(|t| t.pod),
                            ..Route::default()
                        });
                        accept_routes.map().insert(peer, route.clone());
                        accept_routes.added.notify_waiters();
                        let routes = accept_routes.clone();
                        let stats = accept_stats.clone();
                        tokio::spawn(async move {
                            relay(client, target, &route, &stats).await;
                            // Clients that are not the rehearsal's own never
                            // claim their route; the rehearsal's own may
                            // claim it after the relay ended (a reset at
                            // once), so it is kept a while.
                            tokio::time::sleep(CLAIM_TIMEOUT).await;
                            let mut map = routes.map();
                            if map.get(&peer).is_some_and(|r| Arc::ptr_eq(r, &route)) {
                                map.remove(&peer);
                            }
                        });
                    }
                    Err(e) => {
                        tracing::warn!("balancer: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(Balancer {
            addr,
            routes,
            stats,
        })
    }
}

/// Records what became of the connection to the pod, and counts it.
fn settle(route: &Route, stats: &Stats, upstream: Upstream) {
    let counter = match upstream {
        Upstream::Connected => &stats.connected,
        Upstream::Failed(_) => &stats.refused,
        Upstream::NoEndpoint => &stats.no_endpoint,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    let _ = route.upstream.set(upstream);
}

async fn relay(
    mut client: TcpStream,
    target: Option<crate::endpoints::Target>,
    route: &Route,
    stats: &Stats,
) {
    let Some(mut target) = target else {
        settle(route, stats, Upstream::NoEndpoint);
        reset(&client);
        return;
    };
    let upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                settle(route, stats, Upstream::Failed(e.to_string()));
                reset(&client);
                return;
            }
            Err(_) => {
                settle(route, stats, Upstream::Failed("connect timed out".into()));
                reset(&client);
                return;
            }
        };
    settle(route, stats, Upstream::Connected);
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let mut upstream = upstream;
    let result = {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let up = async {
            tokio::io::copy(&mut cr, &mut uw).await?;
            uw.shutdown().await
        };
        let down = async {
            tokio::io::copy(&mut ur, &mut cw).await?;
            cw.shutdown().await
        };
        let cut = async {
            if target.cut.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = async { tokio::try_join!(up, down) } => r.err().map(|e| {
                stats.reset.fetch_add(1, Ordering::Relaxed);
                e.to_string()
            }),
            () = cut => {
                let _ = route.cut.set(());
                stats.cut.fetch_add(1, Ordering::Relaxed);
                Some("cut at removal".into())
            }
        }
    };
    if result.is_some() {
        // One side reset, or the balancer cut: both sides get a reset.
        reset(&client);
        reset(&upstream);
    }
}

/// Closes with RST instead of FIN.
fn reset(stream: &TcpStream) {
    // A zero linger never blocks: the close drops what is queued and sends
    // RST at once.
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}
