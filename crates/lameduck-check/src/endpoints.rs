//! The endpoints the balancer routes to, and the lag with which a change
//! reaches it: what EndpointSlices and kube-proxy (or a cloud balancer's
//! controller) do between a pod's change and the first packet that heeds it.
//!
//! Each change, once the lag has passed, is given to the balancer as the
//! EndpointSlice controller would list it: to the emulated balancer's engine
//! (the `lameduck balance` engine under the mode's policy) and, with
//! `--balancer lameduck`, to the real balancer's file.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lameduck_balance::{Backend, Conditions, EndpointSet, Policy};
use tokio::sync::{watch, Notify};

use crate::ledger::{Ledger, PodEventKind, PodId};
use crate::real_balancer::{Listed, RealBalancer, Taken};

#[derive(Debug)]
struct Endpoint {
    pod: PodId,
    addr: SocketAddr,
    /// What the balancer does now.
    routed: bool,
    /// What it will do once the lag has passed.
    wanted: bool,
    /// Once terminating, a pod is never routed again.
    terminating: bool,
    /// Routed at least once: a real balancer's file lists it as
    /// terminating, once deleted, until it is gone.
    announced: bool,
    /// The pod exited and the lag since has passed: the EndpointSlice
    /// controller has dropped it.
    gone: bool,
}

/// The endpoint table.
#[derive(Debug)]
pub struct Endpoints {
    table: Mutex<Vec<Endpoint>>,
    changed: Notify,
    lag: Duration,
    /// The emulated balancer's engine: picks, and what established
    /// connections get when their pod leaves.
    engine: Arc<EndpointSet>,
    ledger: Arc<Ledger>,
    /// The real balancer the table is written out to (`--balancer
    /// lameduck`), as the EndpointSlice controller writes slices.
    mirror: OnceLock<Arc<RealBalancer>>,
    /// The number given to the last change made: changes are applied in
    /// the order they were made.
    made: AtomicU64,
    /// The number of the last change applied.
    applied: watch::Sender<u64>,
}

impl Endpoints {
    /// An empty table whose changes take `lag` to apply, for a balancer
    /// that follows `policy`.
    pub fn new(lag: Duration, policy: Policy, ledger: Arc<Ledger>) -> Arc<Endpoints> {
        Arc::new(Endpoints {
            table: Mutex::new(Vec::new()),
            changed: Notify::new(),
            lag,
            engine: EndpointSet::new(policy),
            ledger,
            mirror: OnceLock::new(),
            made: AtomicU64::new(0),
            applied: watch::Sender::new(0),
        })
    }

    /// From now on every change is also written to `balancer`'s file, and
    /// a change counts as applied once the balancer has taken it.
    pub fn mirror_to(&self, balancer: Arc<RealBalancer>) {
        let _ = self.mirror.set(balancer);
    }

    /// The emulated balancer's endpoint set.
    pub fn engine(&self) -> Arc<EndpointSet> {
        self.engine.clone()
    }

    /// Gives the table to the balancer as the EndpointSlice controller
    /// would list it: a routed pod as ready; a deleted one as terminating
    /// from when the balancer heeds the deletion (the lag) until the lag has
    /// passed since it exited; the others left out. The emulated engine
    /// takes it at once; the real balancer's file is written, if there is
    /// one.
    fn publish(&self, table: &[Endpoint]) {
        let listed: Vec<_> = table
            .iter()
            .filter_map(|e| {
                let listed = if e.routed {
                    Listed::Ready
                } else if e.terminating && e.announced && !e.gone {
                    Listed::Terminating
                } else {
                    return None;
                };
                Some((e.pod, e.addr, listed))
            })
            .collect();
        let backends: Vec<Backend> = listed
            .iter()
            .map(|&(pod, addr, listed)| Backend {
                addr,
                name: Some(crate::pod_name(pod)),
                conditions: match listed {
                    Listed::Ready => Conditions::new(true, true, false),
                    Listed::Terminating => Conditions::new(false, true, true),
                },
            })
            .collect();
        // The engine's log lines are for an operator of `lameduck balance`;
        // the rehearsal's ledger tells what its balancer did.
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            self.engine.update(&backends)
        });
        let Some(mirror) = self.mirror.get() else {
            return;
        };
        if let Err(e) = mirror.write(&listed) {
            tracing::warn!("the endpoints could not be written: {e}");
        }
    }

    /// The pod at `addr`.
    pub fn pod_at(&self, addr: SocketAddr) -> Option<PodId> {
        self.table().iter().find(|e| e.addr == addr).map(|e| e.pod)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Vec<Endpoint>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a pod, not yet routed.
    pub fn add(&self, pod: PodId, addr: SocketAddr) {
        self.table().push(Endpoint {
            pod,
            addr,
            routed: false,
            wanted: false,
            terminating: false,
            announced: false,
            gone: false,
        });
    }

    /// Readiness changed: after the lag the pod is routed or not.
    pub fn set_ready(self: &Arc<Self>, pod: PodId, ready: bool) {
        self.want(pod, ready, false);
    }

    /// The pod was deleted: after the lag it gets no new connections.
    pub fn set_terminating(self: &Arc<Self>, pod: PodId) {
        self.want(pod, false, true);
    }

    fn want(self: &Arc<Self>, pod: PodId, routed: bool, terminating: bool) {
        // Numbered under the table's lock: in the order the changes were made.
        let turn = {
            let mut table = self.table();
            let Some(e) = table.iter_mut().find(|e| e.pod == pod) else {
                return;
            };
            let routed = routed && !e.terminating;
            e.terminating |= terminating;
            if e.wanted == routed {
                return;
            }
            e.wanted = routed;
            self.made.fetch_add(1, Ordering::SeqCst) + 1
        };
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(this.lag).await;
            // Every change waits the same lag, so two made a moment apart
            // (a new pod ready, then an old one deleted, in a rolling
            // update) fall due together, and their timers may fire in
            // either order: a balancer learns them in the order they were
            // made, so they are applied in that order.
            let mut applied = this.applied.subscribe();
            let _ = applied.wait_for(|&last| last + 1 >= turn).await;
            let change = this.apply(pod);
            this.applied.send_modify(|last| *last = (*last).max(turn));
            if let Some(routed) = change {
                if let Some(mirror) = this.mirror.get() {
                    let taken = match routed {
                        true => Taken::Ready,
                        false => Taken::NoNewConnections,
                    };
                    mirror.wait_taken(pod, taken).await;
                }
                this.changed.notify_waiters();
            }
        });
    }

    /// Applies the wanted state; says whether the pod is now routed, or
    /// `None` when nothing changed.
    fn apply(&self, pod: PodId) -> Option<bool> {
        let change = {
            let mut table = self.table();
            let e = table.iter_mut().find(|e| e.pod == pod)?;
            if e.routed == e.wanted {
                None
            } else {
                e.routed = e.wanted;
                e.announced |= e.routed;
                let routed = e.routed;
                self.publish(&table);
                Some(routed)
            }
        };
        match change {
            Some(true) => self.ledger.event(pod, PodEventKind::EndpointAdded),
            Some(false) => self.ledger.event(pod, PodEventKind::EndpointRemoved),
            None => {}
        }
        change
    }

    /// The pod has exited: with a real balancer, once the lag has passed
    /// its endpoint leaves the file, and this returns when the balancer has
    /// taken that. Without one, nothing is left to do.
    pub async fn remove_exited(&self, pod: PodId) {
        let Some(mirror) = self.mirror.get() else {
            return;
        };
        tokio::time::sleep(self.lag).await;
        {
            let mut table = self.table();
            let Some(e) = table.iter_mut().find(|e| e.pod == pod) else {
                return;
            };
            e.gone = true;
            self.publish(&table);
        }
        mirror.wait_taken(pod, Taken::Gone).await;
    }

    /// The routed pods.
    pub fn routed(&self) -> Vec<PodId> {
        self.table()
            .iter()
            .filter(|e| e.routed)
            .map(|e| e.pod)
            .collect()
    }

    /// Waits until the balancer routes to `pod` (`routed`) or no longer
    /// does.
    pub async fn wait_routed(&self, pod: PodId, routed: bool) {
        loop {
            let changed = self.changed.notified();
            if self.table().iter().any(|e| e.pod == pod && e.routed) == routed {
                return;
            }
            changed.await;
        }
    }
}
