//! The endpoints the balancer routes to, and the lag with which a change
//! reaches it: what EndpointSlices and kube-proxy (or a cloud balancer's
//! controller) do between a pod's change and the first packet that heeds it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

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
    /// Set when the balancer drops the pod's established connections.
    cut: watch::Sender<bool>,
}

/// A pod the balancer picked for a new connection.
#[derive(Debug, Clone)]
pub struct Target {
    /// The pod.
    pub pod: PodId,
    /// Its app's address.
    pub addr: SocketAddr,
    /// Becomes true when the balancer resets the pod's connections.
    pub cut: watch::Receiver<bool>,
}

/// The endpoint table.
#[derive(Debug)]
pub struct Endpoints {
    table: Mutex<Vec<Endpoint>>,
    next: AtomicUsize,
    changed: Notify,
    lag: Duration,
    reset_on_removal: bool,
    ledger: Arc<Ledger>,
    /// The real balancer the table is written out to (`--balancer
    /// lameduck`), as the EndpointSlice controller writes slices.
    mirror: OnceLock<Arc<RealBalancer>>,
}

impl Endpoints {
    /// An empty table whose changes take `lag` to apply.
    pub fn new(lag: Duration, reset_on_removal: bool, ledger: Arc<Ledger>) -> Arc<Endpoints> {
        Arc::new(Endpoints {
            table: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            changed: Notify::new(),
            lag,
            reset_on_removal,
            ledger,
            mirror: OnceLock::new(),
        })
    }

    /// From now on every change is also written to `balancer`'s file, and
    /// a change counts as applied once the balancer has taken it.
    pub fn mirror_to(&self, balancer: Arc<RealBalancer>) {
        let _ = self.mirror.set(balancer);
    }

    /// Writes the table to the real balancer's file, if there is one, as
    /// the EndpointSlice controller would have it: a routed pod as ready; a
    /// deleted one as terminating from when the balancer heeds the deletion
    /// (the lag) until the lag has passed since it exited; the others left
    /// out.
    fn publish(&self, table: &[Endpoint]) {
        let Some(mirror) = self.mirror.get() else {
            return;
        };
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
        if let Err(e) = mirror.write(&listed) {
            tracing::warn!("the endpoints could not be written: {e}");
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Vec<Endpoint>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a pod, not yet routed.
    pub fn add(&self, pod: PodId, addr: SocketAddr) {
        let (cut, _) = watch::channel(false);
        self.table().push(Endpoint {
            pod,
            addr,
            routed: false,
            wanted: false,
            terminating: false,
            announced: false,
            gone: false,
            cut,
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
        {
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
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(this.lag).await;
            if let Some(routed) = this.apply(pod) {
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
                if !e.routed && self.reset_on_removal {
                    let _ = e.cut.send(true);
                }
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

    /// The next routed pod, round robin; `None` when no pod is routed.
    pub fn pick(&self) -> Option<Target> {
        let table = self.table();
        let routed: Vec<&Endpoint> = table.iter().filter(|e| e.routed).collect();
        if routed.is_empty() {
            return None;
        }
        let e = routed[self.next.fetch_add(1, Ordering::Relaxed) % routed.len()];
        Some(Target {
            pod: e.pod,
            addr: e.addr,
            cut: e.cut.subscribe(),
        })
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
