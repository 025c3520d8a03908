//! The pods and what the kubelet does to them: create and probe them, and
//! end them in the kubelet's order (terminating, preStop, stop signal,
//! SIGKILL when the grace period, counted from the start of preStop, is
//! over), while the endpoint controllers remove them after the lag.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::endpoints::Endpoints;
use crate::ledger::{Ledger, PodEventKind, PodId};
use crate::plan::{Plan, PreStop};
use crate::pod::{self, Pod};
use crate::readiness;

/// A pod and its readiness.
struct Member {
    pod: Arc<Pod>,
    ready: watch::Receiver<bool>,
}

/// Every pod of the rehearsal.
pub struct Cluster {
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    endpoints: Arc<Endpoints>,
    members: Vec<Member>,
}

impl Cluster {
    /// No pods yet.
    pub fn new(plan: Arc<Plan>, ledger: Arc<Ledger>, endpoints: Arc<Endpoints>) -> Cluster {
        Cluster {
            plan,
            ledger,
            endpoints,
            members: Vec::new(),
        }
    }

    /// Starts a new pod and probes it.
    pub async fn create(&mut self) -> Result<PodId, String> {
        let id = self.members.len() + 1;
        let pod = Arc::new(Pod::start(id, &self.plan, &self.ledger).await?);
        self.endpoints.add(id, pod.addr);
        let ready = readiness::spawn(
            pod.clone(),
            self.plan.readiness.clone(),
            self.endpoints.clone(),
            self.ledger.clone(),
        );
        self.members.push(Member { pod, ready });
        Ok(id)
    }

    fn member(&self, id: PodId) -> Result<&Member, String> {
        self.members
            .get(id.wrapping_sub(1))
            .ok_or_else(|| format!("no {}", crate::pod_name(id)))
    }

    /// The pod.
    pub fn pod(&self, id: PodId) -> Option<Arc<Pod>> {
        self.members.get(id.wrapping_sub(1)).map(|m| m.pod.clone())
    }

    /// Every pod created so far.
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.members.iter().map(|m| m.pod.clone()).collect()
    }

    /// Waits until the pod is ready (within the plan's start timeout); when
    /// `routed`, also until the balancer sends it traffic.
    pub async fn ready(&self, id: PodId, routed: bool) -> Result<(), String> {
        let member = self.member(id)?;
        let mut ready = member.ready.clone();
        let name = crate::pod_name(id);
        let wait = async {
            tokio::select! {
                r = ready.wait_for(|r| *r) => r.map(|_| ()).map_err(|_| String::new()),
                status = member.pod.exited() => Err(status),
            }
        };
        match tokio::time::timeout(self.plan.start_timeout, wait).await {
            Ok(Ok(())) => {}
            Ok(Err(status)) => {
                return Err(format!(
                    "{name} exited ({status}) before it was ready{}",
                    pod::describe_logs(&member.pod)
                ))
            }
            Err(_) => {
                return Err(format!(
                    "{name} was not ready within {:?} (--start-timeout): is the app listening on {}? {}",
                    self.plan.start_timeout,
                    member.pod.addr,
                    pod::describe_logs(&member.pod)
                ))
            }
        }
        if routed {
            // A pod that dies within the lag is never added: do not wait
            // for it past the lag and its start timeout.
            let limit = self.plan.endpoint_lag + self.plan.start_timeout;
            let added = tokio::select! {
                biased;
                () = self.endpoints.wait_routed(id, true) => true,
                _ = member.pod.exited() => false,
                _ = tokio::time::sleep(limit) => false,
            };
            if !added {
                return Err(format!(
                    "{name} was ready but the balancer never added it (did it exit?){}",
                    pod::describe_logs(&member.pod)
                ));
            }
        }
        Ok(())
    }

    /// Deletes the pod as the kubelet and the endpoint controllers do; the
    /// returned future ends when the pod has exited and the balancer has
    /// removed it, or when the deletion could not be carried out.
    pub fn delete(
        &self,
        id: PodId,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        let pod = self.pod(id);
        let plan = self.plan.clone();
        let ledger = self.ledger.clone();
        let endpoints = self.endpoints.clone();
        async move {
            let pod = pod.ok_or_else(|| format!("no {} to delete", crate::pod_name(id)))?;
            terminate(pod, plan, ledger, endpoints.clone()).await?;
            endpoints.wait_routed(id, false).await;
            endpoints.remove_exited(id).await;
            Ok(())
        }
    }

    /// Ends every pod still running, out of the rehearsal's accounting, and
    /// removes their network namespaces: on every ending of the rehearsal,
    /// interrupted ones included.
    pub async fn shutdown(&self) {
        for m in &self.members {
            if !m.pod.has_exited() {
                self.ledger.event(m.pod.id, PodEventKind::Kept);
            }
            m.pod.end_kept();
        }
        for m in &self.members {
            // SIGKILL ends a PID namespace at once; the bound only guards
            // against a process stuck in the kernel.
            if tokio::time::timeout(SHUTDOWN_LIMIT, m.pod.exited())
                .await
                .is_err()
            {
                tracing::warn!(
                    "{} did not exit within {SHUTDOWN_LIMIT:?} of SIGKILL",
                    crate::pod_name(m.pod.id)
                );
            }
            m.pod.remove_network();
        }
    }
}

/// How long a pod's PID 1 may take to be gone after SIGKILL.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

async fn terminate(
    pod: Arc<Pod>,
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    endpoints: Arc<Endpoints>,
) -> Result<(), String> {
    let id = pod.id;
    let deadline = Instant::now()
        .checked_add(plan.grace_period)
        .ok_or_else(|| {
            format!(
                "the grace period of {} is past what this machine's clock can count",
                crate::pod_name(id)
            )
        })?;
    ledger.event(id, PodEventKind::Terminating);
    endpoints.set_terminating(id);
    if let Some(hook) = &plan.pre_stop {
        ledger.event(id, PodEventKind::PreStopStarted);
        let result = tokio::select! {
            r = pre_stop(&pod, hook) => r,
            _ = tokio::time::sleep_until(deadline) => "cut at the end of the grace period".into(),
        };
        ledger.event(id, PodEventKind::PreStopEnded { result });
    }
    if !pod.has_exited() && Instant::now() < deadline {
        let handled = pod.handles(plan.stop_signal);
        ledger.event(
            id,
            PodEventKind::StopSignal {
                signal: plan.stop_signal.to_string(),
                pid1: pod.current_pid1_name(),
                handled,
            },
        );
        pod.signal(plan.stop_signal);
    }
    tokio::select! {
        _ = pod.exited() => {}
        _ = tokio::time::sleep_until(deadline) => {
            ledger.event(id, PodEventKind::Killed);
            pod.kill();
            if tokio::time::timeout(SHUTDOWN_LIMIT, pod.exited()).await.is_err() {
                return Err(format!(
                    "{} did not exit within {SHUTDOWN_LIMIT:?} of SIGKILL",
                    crate::pod_name(id)
                ));
            }
        }
    }
    Ok(())
}

/// Runs the preStop hook as the kubelet does, and says how it ended.
async fn pre_stop(pod: &Pod, hook: &PreStop) -> String {
    match hook {
        PreStop::Exec { command } => pod.exec(command).await.description,
        PreStop::HttpGet { port, path } => {
            let addr = std::net::SocketAddr::new(pod.addr.ip(), port.unwrap_or(pod.addr.port()));
            match crate::readiness::http_get(addr, path).await {
                Some(status) => format!("answered {status}"),
                None => format!("no answer from {addr}"),
            }
        }
        PreStop::Sleep { duration } => {
            tokio::time::sleep(*duration).await;
            "slept".into()
        }
    }
}
