//! The balancer in front of the pods: a TCP (layer 4) balancer on loopback,
//! as kube-proxy's DNAT or a cloud balancer is. It is the engine of
//! `lameduck balance` under the policy of the `--balancer` mode
//! ([`policy`]): it picks a routed pod for each new connection and then
//! only moves bytes, so any client can go through it, also one that is not
//! the rehearsal's own.
//!
//! What the client sees follows what it would see in a cluster: a pod that
//! refuses, or no pod at all, resets the client's connection (as the REJECT
//! of a Service without endpoints does; kube-proxy tries no other pod); a
//! pod's FIN or RST reaches the client as FIN or RST.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lameduck::{accept_until_closing, Drain};
use lameduck_balance::{
    relay_tcp_observed, ConnectError, Connector, Metrics, OnLeave, Policy, RelayEnd, RelayObserver,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tracing::instrument::WithSubscriber;

use crate::endpoints::Endpoints;
use crate::ledger::PodId;
use crate::plan::BalancerMode;

/// How long the balancer tries to reach a pod.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The engine's policy for `mode`. Every emulated mode picks round robin
/// (iptables' random pick is the nearest), tries no other pod when a
/// connect fails and passes no pod over, and sends no new connection to a
/// terminating pod, not even when no other is left: the rehearsal shows
/// what a deleted pod costs when nothing else takes its traffic. kube-proxy
/// since 1.26 falls back to serving terminating endpoints when none is
/// ready (KEP-1669); `--balancer lameduck` does, as `lameduck balance` does.
///
/// - `kube-proxy`, `graceful`: established connections run on after their
///   pod left the endpoints (conntrack, a weight of 0), until the pod
///   closes them;
/// - `reset`: they are reset when their pod stops being ready.
pub fn policy(mode: BalancerMode) -> Policy {
    let strict = Policy {
        fallback_to_terminating: false,
        ..Policy::kube_proxy()
    };
    match mode {
        BalancerMode::Reset => Policy::reset(),
        BalancerMode::KubeProxy | BalancerMode::Graceful | BalancerMode::Lameduck => Policy {
            on_leave: OnLeave::Keep,
            ..strict
        },
    }
}

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
    /// Binds to `listen` and serves until the runtime ends, over the
    /// engine of `endpoints`.
    pub async fn start(listen: SocketAddr, endpoints: Arc<Endpoints>) -> io::Result<Balancer> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let routes = Arc::new(Routes::default());
        let stats = Arc::new(Stats::default());
        let connector = Arc::new(Connector {
            set: endpoints.engine(),
            metrics: Arc::new(Metrics::default()),
            timeout: CONNECT_TIMEOUT,
            retries: 0,
        });
        let books = Arc::new(Books {
            routes: routes.clone(),
            stats: stats.clone(),
            endpoints,
        });
        // The rehearsal's balancer never drains: it outlives the pods.
        let drain = Drain::new();
        let accept = accept_until_closing(listener, drain.watch(), move |client, peer, watch| {
            let connector = connector.clone();
            let mut account = Account {
                peer,
                books: books.clone(),
                route: None,
            };
            async move {
                relay_tcp_observed(client, peer, watch, connector, &mut account).await;
                account.forget_unclaimed().await;
            }
            // The engine's log lines are for an operator of `lameduck
            // balance`; the rehearsal's report tells what happened.
            .with_subscriber(tracing::subscriber::NoSubscriber::default())
        });
        tokio::spawn(async move {
            accept.await;
            drop(drain);
        });
        Ok(Balancer {
            addr,
            routes,
            stats,
        })
    }
}

/// What every connection's [`Account`] writes to.
#[derive(Debug)]
struct Books {
    routes: Arc<Routes>,
    stats: Arc<Stats>,
    endpoints: Arc<Endpoints>,
}

/// The rehearsal's accounts of one connection, kept as the engine relays
/// it.
struct Account {
    peer: SocketAddr,
    books: Arc<Books>,
    route: Option<Arc<Route>>,
}

impl RelayObserver for Account {
    fn reached(&mut self, reached: Result<SocketAddr, &ConnectError>, tried: &[SocketAddr]) {
        let books = &self.books;
        let stats = &books.stats;
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let (pod, upstream, counter) = match reached {
            Ok(addr) => (Some(addr), Upstream::Connected, &stats.connected),
            Err(ConnectError::NoEndpoint) => (None, Upstream::NoEndpoint, &stats.no_endpoint),
            Err(ConnectError::Failed { last, .. }) => (
                tried.last().copied(),
                Upstream::Failed(last.to_string()),
                &stats.refused,
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let route = Arc::new(Route {
            pod: pod.and_then(|addr| books.endpoints.pod_at(addr)),
            ..Route::default()
        });
        let _ = route.upstream.set(upstream);
        books.routes.map().insert(self.peer, route.clone());
        books.routes.added.notify_waiters();
        self.route = Some(route);
    }

    fn ending(&mut self, end: &RelayEnd) {
        let stats = &self.books.stats;
        match end {
            RelayEnd::Reset => {
                if let Some(route) = &self.route {
                    let _ = route.cut.set(());
                }
                stats.cut.fetch_add(1, Ordering::Relaxed);
            }
            RelayEnd::ResetPassedOn => {
                stats.reset.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl Account {
    /// Clients that are not the rehearsal's own never claim their route;
    /// the rehearsal's own may claim it after the relay ended (a reset at
    /// once), so it is kept a while.
    async fn forget_unclaimed(self) {
        let Some(route) = self.route else {
            return;
        };
        tokio::time::sleep(CLAIM_TIMEOUT).await;
        let mut map = self.books.routes.map();
        if map.get(&self.peer).is_some_and(|r| Arc::ptr_eq(r, &route)) {
            map.remove(&self.peer);
        }
    }
}
