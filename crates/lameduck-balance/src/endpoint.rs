//! One endpoint: its state, its counts, and the signal its established
//! connections follow when it leaves.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::state::{Conditions, State};

/// One backend as a source describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Who it is (the pod of `targetRef`), for logs and metrics.
    pub name: Option<String>,
    /// Its EndpointSlice conditions.
    pub conditions: Conditions,
}

/// What an endpoint's established connections are to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// Carry on.
    Stay,
    /// Close at this instant, unless they ended before.
    At(Instant),
    /// Reset now.
    Now,
}

/// One endpoint of the set. Shared by the set and every connection to it.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    name: Mutex<Option<String>>,
    conditions: Mutex<Conditions>,
    /// The state the source gave (a [`State`] as `u8`).
    source: AtomicU8,
    healthy: AtomicBool,
    ejected_until: Mutex<Option<Instant>>,
    pub(crate) open: AtomicUsize,
    connections: AtomicU64,
    /// HTTP mode: requests in flight to it, and requests it was given.
    in_flight: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
    ejections: AtomicU64,
    closed_at_timeout: AtomicU64,
    leave: watch::Sender<Leave>,
}

/// An endpoint as `/endpoints` and the metrics show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EndpointView {
    /// `ip:port`.
    pub address: SocketAddr,
    /// The pod, when the source named it.
    pub name: Option<String>,
    /// What the balancer does with it.
    pub state: State,
    /// What the source says (before health checks).
    pub source_state: State,
    /// The conditions as the source gave them (null: not set).
    pub conditions: Conditions,
    /// Whether its health check passes (true without health checks).
    pub healthy: bool,
    /// Whether connect failures have it passed over right now.
    pub ejected: bool,
    /// Connections open to it now (HTTP mode: upstream connections, busy
    /// or kept idle).
    pub open_connections: usize,
    /// New connections it was given.
    pub connections: u64,
    /// HTTP mode: requests in flight to it now.
    pub in_flight_requests: usize,
    /// HTTP mode: requests it was given.
    pub requests: u64,
    /// Connects to it that failed (refused, reset, timed out).
    pub connect_failures: u64,
    /// Times it was passed over after a failed connect.
    pub ejections: u64,
    /// Connections closed by the drain timeout after it left.
    pub closed_at_drain_timeout: u64,
}

// === impl Endpoint ===

impl Endpoint {
    pub(crate) fn new(backend: &Backend) -> Self {
        let (leave, _) = watch::channel(Leave::Stay);
        Endpoint {
            addr: backend.addr,
            name: Mutex::new(backend.name.clone()),
            conditions: Mutex::new(backend.conditions),
            source: AtomicU8::new(backend.conditions.state() as u8),
            healthy: AtomicBool::new(true),
            ejected_until: Mutex::new(None),
            open: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            closed_at_timeout: AtomicU64::new(0),
            leave,
        }
    }

    /// Where it is.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pod's name, or its address when the source gave none.
    pub fn label(&self) -> String {
        lock(&self.name)
            .clone()
            .unwrap_or_else(|| self.addr.to_string())
    }

    /// What the source says.
    pub fn source_state(&self) -> State {
        State::ALL
            .get(usize::from(self.source.load(Ordering::Acquire)))
            .copied()
            .unwrap_or(State::Gone)
    }

    /// What the balancer does with it: the source's state, with a failing
    /// health check taking a ready or terminating endpoint out.
    pub fn state(&self) -> State {
        match self.source_state() {
            State::Ready | State::Terminating if !self.is_healthy() => State::NotServing,
            s => s,
        }
    }

    /// Whether its health check passes.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Connections open to it now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// What least-connections compares: open connections, and in HTTP
    /// mode the requests in flight on them too, so that an endpoint busy
    /// with requests weighs more than one merely keeping idle connections.
    pub fn load(&self) -> usize {
        self.open()
            .saturating_add(self.in_flight.load(Ordering::Acquire))
    }

    /// Whether connect failures have it passed over at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        lock(&self.ejected_until).is_some_and(|until| now < until)
    }

    /// What its connections are told to do when it leaves.
    pub fn leave(&self) -> watch::Receiver<Leave> {
        self.leave.subscribe()
    }

    pub(crate) fn set_source(&self, backend: &Backend) -> State {
        *lock(&self.name) = backend.name.clone();
        *lock(&self.conditions) = backend.conditions;
        let state = backend.conditions.state();
        self.source.store(state as u8, Ordering::Release);
        state
    }

    pub(crate) fn set_gone(&self) {
        self.source.store(State::Gone as u8, Ordering::Release);
    }

    pub(crate) fn set_healthy(&self, healthy: bool) -> bool {
        self.healthy.swap(healthy, Ordering::AcqRel) != healthy
    }

    pub(crate) fn set_leave(&self, leave: Leave) {
        self.leave.send_if_modified(|now| {
            // A deadline set once is kept: a later update of a leaving
            // endpoint does not push it out.
            let keep = matches!((*now, leave), (Leave::At(_), Leave::At(_)));
            let changed = !keep && *now != leave;
            if changed {
                *now = leave;
            }
            changed
        });
    }

    pub(crate) fn count_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_closed_at_timeout(&self) {
        self.closed_at_timeout.fetch_add(1, Ordering::Relaxed);
    }

    /// Passes it over until `until`; returns whether it was not already.
    pub(crate) fn eject(&self, until: Instant) -> bool {
        let mut ejected = lock(&self.ejected_until);
        let was = ejected.is_some_and(|u| Instant::now() < u);
        *ejected = Some(until);
        if !was {
            self.ejections.fetch_add(1, Ordering::Relaxed);
        }
        !was
    }

    /// Its view for `/endpoints` and the metrics.
    pub fn view(&self) -> EndpointView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EndpointView {
            address: self.addr,
            name: lock(&self.name).clone(),
            state: self.state(),
            source_state: self.source_state(),
            conditions: *lock(&self.conditions),
            healthy: self.is_healthy(),
            ejected: self.is_ejected(Instant::now()),
            open_connections: self.open(),
            connections: get(&self.connections),
            in_flight_requests: self.in_flight.load(Ordering::Acquire),
            requests: get(&self.requests),
            connect_failures: get(&self.failures),
            ejections: get(&self.ejections),
            closed_at_drain_timeout: get(&self.closed_at_timeout),
        }
    }
}

/// A connection's hold on its endpoint: counted as open while it lives.
#[derive(Debug)]
pub struct Lease {
    endpoint: Arc<Endpoint>,
}

// === impl Lease ===

impl Lease {
    pub(crate) fn new(endpoint: Arc<Endpoint>) -> Self {
        endpoint.open.fetch_add(1, Ordering::AcqRel);
        Lease { endpoint }
    }

    /// The endpoint held.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.endpoint
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.endpoint.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A request's hold on its endpoint (HTTP mode): counted in flight while
/// it lives.
#[derive(Debug)]
pub struct InFlight {
    endpoint: Arc<Endpoint>,
}

// === impl InFlight ===

impl InFlight {
    /// Counts a request given to `endpoint` and in flight until dropped.
    pub fn new(endpoint: Arc<Endpoint>) -> Self {
        endpoint.requests.fetch_add(1, Ordering::Relaxed);
        endpoint.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight { endpoint }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Locks, also after a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
