//! The endpoint set: the source's view merged with health checks and
//! passive ejection, and the pick of an endpoint for each new connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::endpoint::{Backend, Endpoint, EndpointView, Lease, Leave};
use crate::policy::{Algorithm, OnLeave, Policy};
use crate::state::State;

/// Every endpoint the balancer knows, and the policy it follows.
#[derive(Debug)]
pub struct EndpointSet {
    policy: Policy,
    table: RwLock<Vec<Arc<Endpoint>>>,
    next: AtomicUsize,
    rng: AtomicU64,
    in_fallback: AtomicBool,
    /// Why the source's last read was not used, until one is.
    last_error: std::sync::Mutex<Option<String>>,
    /// Bumped at every change of membership; true once a source delivered.
    version: watch::Sender<(u64, bool)>,
}

// === impl EndpointSet ===

impl EndpointSet {
    /// An empty set that has not heard from its source yet.
    pub fn new(policy: Policy) -> Arc<Self> {
        let (version, _) = watch::channel((0, false));
        Arc::new(EndpointSet {
            policy,
            table: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            rng: AtomicU64::new(clock_entropy()),
            in_fallback: AtomicBool::new(false),
            last_error: std::sync::Mutex::new(None),
            version,
        })
    }

    /// The policy it follows.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Endpoint>>> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Endpoint>>> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the source's view with `backends`: new ones join, known
    /// ones take their new conditions, missing ones are gone. Logs every
    /// change of state.
    pub fn update(&self, backends: &[Backend]) {
        let mut table = self.write();
        let mut seen: HashMap<SocketAddr, ()> = HashMap::with_capacity(backends.len());
        for backend in backends {
            seen.insert(backend.addr, ());
            match table.iter().find(|e| e.addr() == backend.addr) {
                Some(e) => {
                    let before = e.state();
                    e.set_source(backend);
                    self.settle(e, before);
                }
                None => {
                    let e = Arc::new(Endpoint::new(backend));
                    info!(endpoint = %e.addr(), name = %e.label(), state = %e.state(), "endpoint added");
                    table.push(e);
                }
            }
        }
        for e in table.iter() {
            if !seen.contains_key(&e.addr()) && e.source_state() != State::Gone {
                let before = e.state();
                e.set_gone();
                self.settle(e, before);
            }
        }
        table.retain(|e| e.source_state() != State::Gone || e.open() > 0);
        drop(table);
        *crate::endpoint::lock(&self.last_error) = None;
        self.version.send_modify(|(v, synced)| {
            *v += 1;
            *synced = true;
        });
    }

    /// Records why the source's last read was not used (shown by `/ready`
    /// and `/endpoints` until a read is used).
    pub fn source_failed(&self, error: String) {
        *crate::endpoint::lock(&self.last_error) = Some(error);
    }

    /// Why the source's last read was not used, if it was not.
    pub fn source_error(&self) -> Option<String> {
        crate::endpoint::lock(&self.last_error).clone()
    }

    /// A health check changed its verdict on `addr`.
    pub fn set_healthy(&self, addr: SocketAddr, healthy: bool) {
        let table = self.read();
        if let Some(e) = table.iter().find(|e| e.addr() == addr) {
            let before = e.state();
            if e.set_healthy(healthy) {
                if healthy {
                    info!(endpoint = %addr, name = %e.label(), "health check passes again");
                } else {
                    warn!(endpoint = %addr, name = %e.label(), "health check fails: no new connections");
                }
                self.settle(e, before);
            }
        }
    }

    /// Logs a change of state and tells the endpoint's connections what to
    /// do.
    fn settle(&self, e: &Endpoint, before: State) {
        let after = e.state();
        if after == before {
            return;
        }
        let open = e.open();
        let leave = match self.policy.on_leave {
            // Without graceful shutdown there is no terminating: an endpoint
            // that is not ready is out, and so are its connections.
            OnLeave::Reset if after != State::Ready => Leave::Now,
            OnLeave::CloseAfter(d) if after.is_leaving() => Leave::At(from_now(d)),
            _ => Leave::Stay,
        };
        e.set_leave(leave);
        let (endpoint, name) = (e.addr(), e.label());
        match after {
            State::Ready => {
                info!(%endpoint, %name, from = %before, "endpoint ready: gets new connections")
            }
            State::Terminating if leave == Leave::Now => {
                info!(%endpoint, %name, from = %before, open, "endpoint terminating: its connections are reset")
            }
            State::Terminating => {
                info!(%endpoint, %name, from = %before, open, "endpoint terminating: no new connections, established ones carry on")
            }
            State::NotServing | State::Gone => match self.policy.on_leave {
                OnLeave::CloseAfter(d) => {
                    info!(%endpoint, %name, from = %before, state = %after, open, drain_timeout = ?d, "endpoint left: no new connections, established ones run until closed or the drain timeout")
                }
                OnLeave::Keep => {
                    info!(%endpoint, %name, from = %before, state = %after, open, "endpoint left: no new connections, established ones run until closed")
                }
                OnLeave::Reset => {
                    info!(%endpoint, %name, from = %before, state = %after, open, "endpoint left: its connections are reset")
                }
            },
        }
    }

    /// Resolves once the source delivered its first set.
    pub async fn synced(&self) {
        let mut rx = self.version.subscribe();
        let _ = rx.wait_for(|(_, synced)| *synced).await;
    }

    /// Whether the source delivered its first set.
    pub fn is_synced(&self) -> bool {
        self.version.borrow().1
    }

    /// Changes of membership, for the health checker.
    pub fn changes(&self) -> watch::Receiver<(u64, bool)> {
        self.version.subscribe()
    }

    /// Every endpoint now (those gone with nothing open left out).
    pub fn endpoints(&self) -> Vec<Arc<Endpoint>> {
        self.read()
            .iter()
            .filter(|e| e.source_state() != State::Gone || e.open() > 0)
            .cloned()
            .collect()
    }

    /// Every endpoint's view, by address.
    pub fn views(&self) -> Vec<EndpointView> {
        let mut views: Vec<_> = self.endpoints().iter().map(|e| e.view()).collect();
        views.sort_by_key(|v| v.address);
        views
    }

    /// Whether new connections go to terminating endpoints because none is
    /// ready.
    pub fn is_in_fallback(&self) -> bool {
        self.in_fallback.load(Ordering::Relaxed)
    }

    /// Picks an endpoint for a new connection, other than those in
    /// `exclude` (tried already): a ready one; when none is ready and the
    /// policy allows, a serving-and-terminating one. Endpoints passed over
    /// after a failed connect are avoided while another is left.
    pub fn pick(&self, exclude: &[SocketAddr]) -> Option<Lease> {
        let e = self.choose_endpoint(exclude)?;
        e.count_connection();
        Some(Lease::new(e))
    }

    /// The endpoint [`pick`](Self::pick) would take, neither counted nor
    /// held: HTTP mode chooses per request and may reuse a kept
    /// connection to it rather than open one.
    pub fn choose_endpoint(&self, exclude: &[SocketAddr]) -> Option<Arc<Endpoint>> {
        let table = self.read();
        let now = Instant::now();
        let usable = |state: State| {
            let table = &table;
            move || {
                table
                    .iter()
                    .filter(move |e| e.state() == state && !exclude.contains(&e.addr()))
            }
        };
        let ready = usable(State::Ready);
        let mut fallback = false;
        let chosen = if ready().next().is_some() {
            self.choose(ready, now, !exclude.is_empty())
        } else if self.policy.fallback_to_terminating {
            let terminating = usable(State::Terminating);
            fallback = terminating().next().is_some();
            self.choose(terminating, now, !exclude.is_empty())
        } else {
            None
        };
        // Log entering and leaving the fallback, not every pick in it; a
        // pick that found nothing at all says so where it fails.
        if chosen.is_some() && self.in_fallback.swap(fallback, Ordering::Relaxed) != fallback {
            if fallback {
                warn!("no endpoint is ready: new connections fall back to serving terminating endpoints");
            } else {
                info!("an endpoint is ready again: the fallback to terminating endpoints ends");
            }
        }
        chosen
    }

    /// `retry`: a pick for a client whose first connect failed, which does
    /// not take another client's turn in the round.
    fn choose<'a, I>(
        &self,
        candidates: impl Fn() -> I,
        now: Instant,
        retry: bool,
    ) -> Option<Arc<Endpoint>>
    where
        I: Iterator<Item = &'a Arc<Endpoint>>,
    {
        // All passed over: ignore the ejection rather than refuse (Envoy's
        // panic threshold at its extreme). No list is collected: a pick is
        // made for every new connection.
        let fresh = candidates().filter(|e| !e.is_ejected(now)).count();
        let nth = |i: usize| {
            if fresh > 0 {
                candidates().filter(|e| !e.is_ejected(now)).nth(i)
            } else {
                candidates().nth(i)
            }
        };
        let n = if fresh > 0 {
            fresh
        } else {
            candidates().count()
        };
        if n == 0 {
            return None;
        }
        let e = match self.policy.algorithm {
            Algorithm::RoundRobin => {
                let turn = if retry {
                    self.next.load(Ordering::Relaxed)
                } else {
                    self.next.fetch_add(1, Ordering::Relaxed)
                };
                nth(turn % n)?
            }
            Algorithm::LeastConnections if n == 1 => nth(0)?,
            Algorithm::LeastConnections => {
                let r = self.random();
                let a = (r % n as u64) as usize;
                let b = (a + 1 + ((r >> 32) % (n as u64 - 1)) as usize) % n;
                let (a, b) = (nth(a)?, nth(b)?);
                if b.load() < a.load() {
                    b
                } else {
                    a
                }
            }
        };
        Some(e.clone())
    }

    /// Passes `endpoint` over for the policy's ejection time after a failed
    /// connect; returns whether it was not passed over already.
    pub fn eject(&self, endpoint: &Endpoint) -> bool {
        endpoint.count_failure();
        if self.policy.ejection.is_zero() {
            // A policy without passive ejection (kube-proxy's).
            return false;
        }
        let ejected = endpoint.eject(from_now(self.policy.ejection));
        if ejected {
            warn!(endpoint = %endpoint.addr(), name = %endpoint.label(), for_ = ?self.policy.ejection, "connect failed: endpoint passed over for a while");
        }
        ejected
    }

    /// splitmix64 over a shared counter: good enough to spread picks,
    /// lock-free.
    fn random(&self) -> u64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `d` from now, with the deadline arithmetic every lameduck part shares
/// (durations are bounded where they are parsed; this never panics).
fn from_now(d: Duration) -> Instant {
    Instant::from_std(lameduck_core::duration::deadline_after(
        Instant::now().into_std(),
        d,
    ))
}

/// A different start for the picker's random numbers in each process.
fn clock_entropy() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Conditions;

    fn backend(port: u16, c: Conditions) -> Backend {
        Backend {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            name: Some(format!("pod-{port}")),
            conditions: c,
        }
    }

    fn ready(port: u16) -> Backend {
        backend(port, Conditions::default())
    }

    fn terminating(port: u16) -> Backend {
        backend(port, Conditions::new(false, true, true))
    }

    #[tokio::test(start_paused = true)]
    async fn a_terminating_endpoint_gets_no_new_connection_while_one_is_ready() {
        let set = EndpointSet::new(Policy::default());
        set.update(&[ready(1), terminating(2)]);
        for _ in 0..100 {
            let lease = set.pick(&[]).expect("a pick");
            assert_eq!(lease.endpoint().addr().port(), 1);
        }
        assert!(!set.is_in_fallback());
    }

    #[tokio::test(start_paused = true)]
    async fn only_terminating_endpoints_left_take_connections_in_fallback() {
        let set = EndpointSet::new(Policy::default());
        set.update(&[
            terminating(1),
            backend(2, Conditions::new(false, false, true)),
        ]);
        let lease = set.pick(&[]).expect("fallback pick");
        assert_eq!(lease.endpoint().addr().port(), 1);
        assert!(set.is_in_fallback());
        let strict = EndpointSet::new(Policy {
            fallback_to_terminating: false,
            ..Policy::default()
        });
        strict.update(&[terminating(1)]);
        assert!(strict.pick(&[]).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn least_connections_sends_to_the_emptier_endpoint() {
        let set = EndpointSet::new(Policy::default());
        set.update(&[ready(1), ready(2)]);
        let held: Vec<_> = (0..10).map(|_| set.pick(&[]).expect("pick")).collect();
        let on = |port| {
            held.iter()
                .filter(|l| l.endpoint().addr().port() == port)
                .count()
        };
        // With two endpoints both are always compared: perfectly balanced.
        assert_eq!((on(1), on(2)), (5, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn round_robin_takes_each_in_turn() {
        let set = EndpointSet::new(Policy {
            algorithm: Algorithm::RoundRobin,
            ..Policy::default()
        });
        set.update(&[ready(1), ready(2), ready(3)]);
        let ports: Vec<u16> = (0..6)
            .map(|_| set.pick(&[]).expect("pick").endpoint().addr().port())
            .collect();
        assert_eq!(ports, [1, 2, 3, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ejected_endpoint_is_passed_over_for_a_while_unless_it_is_the_last() {
        let set = EndpointSet::new(Policy::default());
        set.update(&[ready(1), ready(2)]);
        let e1 = set
            .endpoints()
            .into_iter()
            .find(|e| e.addr().port() == 1)
            .expect("endpoint 1");
        assert!(set.eject(&e1));
        for _ in 0..20 {
            assert_eq!(set.pick(&[]).expect("pick").endpoint().addr().port(), 2);
        }
        // Excluding the only fresh one leaves the ejected one: still used.
        let only = set.pick(&[SocketAddr::from(([127, 0, 0, 1], 2))]);
        assert_eq!(only.expect("pick").endpoint().addr().port(), 1);
        tokio::time::advance(Duration::from_secs(11)).await;
        let picked: Vec<u16> = (0..20)
            .map(|_| set.pick(&[]).expect("pick").endpoint().addr().port())
            .collect();
        assert!(picked.contains(&1), "back after the ejection time");
        assert_eq!(e1.view().ejections, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn leaving_endpoints_tell_their_connections_when_to_close() {
        let set = EndpointSet::new(Policy::default());
        set.update(&[ready(1)]);
        let lease = set.pick(&[]).expect("pick");
        let leave = lease.endpoint().leave();
        set.update(&[terminating(1)]);
        assert_eq!(*leave.borrow(), Leave::Stay, "terminating: carry on");
        set.update(&[]);
        let at = match *leave.borrow() {
            Leave::At(at) => at,
            other => panic!("expected a deadline, got {other:?}"),
        };
        assert_eq!(at - Instant::now(), Duration::from_secs(300));
        // Gone but still open: listed until its last connection closes.
        assert_eq!(set.views().len(), 1);
        assert_eq!(set.views()[0].state, State::Gone);
        drop(lease);
        assert!(set.views().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_reset_policy_resets_at_once_and_keep_never_does() {
        for (on_leave, expected) in [(OnLeave::Reset, Leave::Now), (OnLeave::Keep, Leave::Stay)] {
            let set = EndpointSet::new(Policy {
                on_leave,
                ..Policy::default()
            });
            set.update(&[ready(1)]);
            let lease = set.pick(&[]).expect("pick");
            set.update(&[]);
            assert_eq!(*lease.endpoint().leave().borrow(), expected);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_timeouts_never_come_and_never_panic() {
        let set = EndpointSet::new(Policy {
            on_leave: OnLeave::CloseAfter(Duration::MAX),
            ejection: Duration::MAX,
            ..Policy::default()
        });
        set.update(&[ready(1), ready(2)]);
        let lease = set.pick(&[]).expect("pick");
        assert!(set.eject(lease.endpoint()));
        set.update(&[]);
        assert!(matches!(*lease.endpoint().leave().borrow(), Leave::At(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_health_check_takes_a_ready_endpoint_out() {
        let set = EndpointSet::new(Policy::default());
        set.update(&[ready(1), ready(2)]);
        set.set_healthy(SocketAddr::from(([127, 0, 0, 1], 1)), false);
        for _ in 0..20 {
            assert_eq!(set.pick(&[]).expect("pick").endpoint().addr().port(), 2);
        }
        let view = &set.views()[0];
        assert_eq!(
            (view.state, view.source_state),
            (State::NotServing, State::Ready)
        );
    }
}
