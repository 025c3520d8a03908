//! `kubernetes:NAMESPACE/SERVICE[:PORT]`: the Service's EndpointSlices
//! (label `kubernetes.io/service-name`), listed and watched through kube's
//! watcher, which re-lists after a broken watch or a 410 Gone and backs off
//! while the API server cannot be reached. The balancer's readiness waits
//! for the first complete list.

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, reflector, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Config};
use tracing::{info, warn};

use super::slice::resolve;
use super::PortSelector;
use crate::metrics::Metrics;
use crate::set::EndpointSet;

/// The label the EndpointSlice controller puts on a Service's slices.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A watch of one Service's EndpointSlices, not started yet.
#[derive(Clone)]
pub struct KubernetesSource {
    client: Client,
    namespace: String,
    service: String,
    port: Option<PortSelector>,
}

impl std::fmt::Debug for KubernetesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSource")
            .field("namespace", &self.namespace)
            .field("service", &self.service)
            .field("port", &self.port)
            .finish()
    }
}

impl KubernetesSource {
    /// Finds the cluster's configuration: `KUBECONFIG` (or
    /// `~/.kube/config`), else the pod's service account. Fails when there
    /// is none or it is unusable; an API server that does not answer is
    /// found later, by the watch.
    pub async fn new(
        namespace: String,
        service: String,
        port: Option<PortSelector>,
    ) -> Result<Self, String> {
        let config = Config::infer().await.map_err(|e| {
            format!("no usable Kubernetes configuration (in-cluster service account or KUBECONFIG): {e}")
        })?;
        let client = Client::try_from(config)
            .map_err(|e| format!("cannot make a Kubernetes client: {e}"))?;
        Ok(KubernetesSource {
            client,
            namespace,
            service,
            port,
        })
    }

    /// Watches the slices and updates `set` after each change, for as long
    /// as the balancer runs.
    pub async fn watch(self, set: Arc<EndpointSet>, metrics: Arc<Metrics>) {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &self.namespace);
        let selector = format!("{SERVICE_NAME_LABEL}={}", self.service);
        let (store, writer) = reflector::store();
        let stream = reflector(
            writer,
            watcher(api, watcher::Config::default().labels(&selector)),
        )
        .default_backoff();
        let mut stream = std::pin::pin!(stream);
        let what = format!("{}/{}", self.namespace, self.service);
        info!(service = %what, selector, "watching EndpointSlices");
        let mut listed = false;
        let mut failing = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => {}
                Ok(Event::InitApply(_)) => {}
                Ok(Event::InitDone) => {
                    if !listed {
                        info!(service = %what, "first list of EndpointSlices received");
                    }
                    listed = true;
                    failing = false;
                    self.take(&store, &set, &metrics, &what);
                }
                Ok(Event::Apply(_) | Event::Delete(_)) if listed => {
                    self.take(&store, &set, &metrics, &what);
                }
                Ok(Event::Apply(_) | Event::Delete(_)) => {}
                Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                    // The API server compacted the version the watch was at:
                    // routine, and the watcher lists again.
                    info!(service = %what, "EndpointSlice watch expired (410 Gone): listing again");
                }
                Err(e) => {
                    metrics.source_errors.inc();
                    set.source_failed(format!("EndpointSlice watch: {e}"));
                    let state = if set.is_synced() {
                        "the last good set stays"
                    } else {
                        "not ready until a list arrives"
                    };
                    if failing {
                        tracing::debug!(service = %what, error = %e, "EndpointSlice watch failed again");
                    } else {
                        warn!(service = %what, error = %e, "EndpointSlice watch failed, retrying with backoff: {state}");
                    }
                    failing = true;
                }
            }
        }
    }

    fn take(&self, store: &Store<EndpointSlice>, set: &EndpointSet, metrics: &Metrics, what: &str) {
        let slices: Vec<EndpointSlice> = store.state().iter().map(|s| (**s).clone()).collect();
        match resolve(&slices, self.port.as_ref()) {
            Ok(resolved) => {
                for skipped in &resolved.skipped {
                    warn!(service = %what, "{skipped}: left out");
                }
                set.update(&resolved.backends);
                metrics.source_reloads.inc();
                info!(service = %what, slices = slices.len(), endpoints = resolved.backends.len(), "endpoints updated");
            }
            Err(e) => {
                metrics.source_errors.inc();
                set.source_failed(e.clone());
                warn!(service = %what, error = %e, "EndpointSlices not used: the last good set stays");
            }
        }
    }
}
