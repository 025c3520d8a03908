//! The endpoints the balancer routes to, and the lag with which a change
//! reaches it: what EndpointSlices and kube-proxy (or a cloud balancer's
//! controller) do between a pod's change and the first packet that heeds it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::ledger::{Ledger, PodEventKind, PodId};

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
        })
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
            this.apply(pod);
        });
    }

    fn apply(&self, pod: PodId) {
        let change = {
            let mut table = self.table();
            let Some(e) = table.iter_mut().find(|e| e.pod == pod) else {
                return;
            };
            if e.routed == e.wanted {
                None
            } else {
                e.routed = e.wanted;
                if !e.routed && self.reset_on_removal {
                    let _ = e.cut.send(true);
                }
                Some(e.routed)
            }
        };
        match change {
            Some(true) => self.ledger.event(pod, PodEventKind::EndpointAdded),
            Some(false) => self.ledger.event(pod, PodEventKind::EndpointRemoved),
            None => return,
        }
        self.changed.notify_waiters();
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
