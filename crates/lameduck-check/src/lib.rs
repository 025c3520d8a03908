//! `lameduck check`: runs an app the way Kubernetes ends it, under real
//! load, behind an emulated balancer with its lag, and reports every lost
//! request and cut session with its cause and its fix.
//!
//! The parts: [`pod`] (the app as PID 1 of its own namespaces),
//! [`endpoints`] and [`balancer`] (how traffic reaches pods, and how late it
//! stops; [`real_balancer`] puts the real `lameduck balance` there instead), [`cluster`] (the kubelet's order of ending a pod), [`load`] (HTTP
//! clients and long sessions), [`ledger`] (every outcome on one clock),
//! [`diagnose`] and [`report`].
#![deny(rust_2018_idioms)]

pub mod balancer;
pub mod cluster;
pub mod diagnose;
pub mod endpoints;
mod entry;
pub mod ledger;
pub mod load;
pub mod manifest;
pub mod plan;
pub mod pod;
pub mod progress;
pub mod readiness;
pub mod real_balancer;
pub mod report;
pub mod settings;
pub mod timeline;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use entry::{main, Invocation, Outputs};
pub use plan::Plan;
pub use report::Report;
pub use settings::Settings;

use balancer::Balancer;
use cluster::Cluster;
use endpoints::Endpoints;
use ledger::Ledger;
use load::Load;
use plan::{BalancerMode, Scenario};
use progress::Progress;
use real_balancer::RealBalancer;

/// `pod-N`.
pub fn pod_name(id: ledger::PodId) -> String {
    format!("pod-{id}")
}

/// Why a rehearsal gave no verdict.
#[derive(Debug)]
pub enum RehearsalError {
    /// A signal ended it; every pod was removed.
    Interrupted(lameduck_core::Signal),
    /// Something of the rehearsal's own failed: a pod that never got ready,
    /// a task that panicked, load that could not start. Nothing it measured
    /// can be trusted.
    Failed(String),
}

impl std::fmt::Display for RehearsalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RehearsalError::Interrupted(signal) => write!(f, "interrupted by {signal}"),
            RehearsalError::Failed(why) => f.write_str(why),
        }
    }
}

/// Runs the rehearsal until it is over or `interrupt` yields a signal; on
/// every ending the pods, their processes and their network namespaces are
/// gone when this returns.
pub async fn rehearse(
    plan: Plan,
    show_progress: bool,
    interrupt: impl std::future::Future<Output = lameduck_core::Signal>,
) -> Result<Report, RehearsalError> {
    let failed = RehearsalError::Failed;
    plan.validate().map_err(|e| failed(e.to_string()))?;
    pod::remove_stale_networks();
    let plan = Arc::new(plan);
    let ledger = Arc::new(Ledger::new());
    let progress = Progress::start(ledger.clone(), show_progress);
    let endpoints = Endpoints::new(
        plan.endpoint_lag,
        balancer::policy(plan.balancer),
        ledger.clone(),
    );
    let listen = plan
        .balancer_listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let front = Front::start(plan.balancer, listen, &endpoints)
        .await
        .map_err(failed)?;
    tracing::info!("balancer listening on {}", front.addr);
    let mut cluster = Cluster::new(plan.clone(), ledger.clone(), endpoints.clone());
    let result = tokio::select! {
        r = run(&plan, &mut cluster, &front, &ledger, &progress) => r.map_err(failed),
        signal = interrupt => Err(RehearsalError::Interrupted(signal)),
    };
    progress.stage("stopping the pods left");
    cluster.shutdown().await;
    drop(progress);
    let stats = front.stats().await;
    result?;
    let duration = ledger.now();
    let records = ledger.take();
    let pods = cluster
        .pods()
        .iter()
        .map(|p| (pod_name(p.id), p.addr.to_string(), p.logs()))
        .collect();
    let report = Report::build(
        (*plan).clone(),
        front.addr.to_string(),
        stats,
        duration,
        records,
        pods,
    );
    if plan.http.clients > 0 && report.requests.total == 0 {
        return Err(failed(
            "the load sent no request: no verdict can be given on nothing".into(),
        ));
    }
    Ok(report)
}

async fn run(
    plan: &Plan,
    cluster: &mut Cluster,
    front: &Front,
    ledger: &Arc<Ledger>,
    progress: &Progress,
) -> Result<(), String> {
    progress.stage(match plan.replicas {
        1 => "starting 1 pod".to_string(),
        n => format!("starting {n} pods"),
    });
    let mut old = Vec::new();
    for _ in 0..plan.replicas {
        old.push(cluster.create().await?);
    }
    for &id in &old {
        cluster.ready(id, true).await?;
    }
    let load = Load::start(plan, front.addr, front.routes.clone(), ledger.clone());
    progress.stage("load running");
    tokio::time::sleep(plan.warmup).await;
    let mut endings = tokio::task::JoinSet::new();
    let outcome = match plan.scenario {
        Scenario::Rolling => roll(plan, cluster, old, &mut endings, progress).await,
        Scenario::Delete => {
            progress.stage(format!("deleting {}", pod_name(old[0])));
            endings.spawn(cluster.delete(old[0]));
            Ok(())
        }
    };
    progress.stage("waiting for the deleted pods to exit");
    let mut failures = Vec::new();
    while let Some(ended) = endings.join_next().await {
        match ended {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("a pod's deletion failed: {}", panic_text(e))),
        }
    }
    if outcome.is_ok() && failures.is_empty() {
        progress.stage("settling");
        tokio::time::sleep(plan.settle).await;
    }
    progress.stage("stopping the load");
    if let Err(e) = load.stop().await {
        failures.push(e);
    }
    outcome?;
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ")),
    }
}

/// What the load goes through: the rehearsal's own balancer, or the real
/// `lameduck balance` (`--balancer lameduck`).
struct Front {
    addr: SocketAddr,
    routes: Arc<balancer::Routes>,
    kind: FrontKind,
}

enum FrontKind {
    Emulated(Arc<balancer::Stats>),
    Real(Arc<RealBalancer>),
}

impl Front {
    async fn start(
        mode: BalancerMode,
        listen: SocketAddr,
        endpoints: &Arc<Endpoints>,
    ) -> Result<Front, String> {
        if mode == BalancerMode::Lameduck {
            let real = Arc::new(RealBalancer::start(listen).await?);
            endpoints.mirror_to(real.clone());
            return Ok(Front {
                addr: real.listen,
                routes: Arc::new(balancer::Routes::unrouted()),
                kind: FrontKind::Real(real),
            });
        }
        let emulated = Balancer::start(listen, endpoints.clone())
            .await
            .map_err(|e| format!("the balancer could not listen on {listen}: {e}"))?;
        Ok(Front {
            addr: emulated.addr,
            routes: emulated.routes,
            kind: FrontKind::Emulated(emulated.stats),
        })
    }

    /// The connection counts; the real balancer is stopped after.
    async fn stats(&self) -> balancer::StatsSnapshot {
        match &self.kind {
            FrontKind::Emulated(stats) => stats.snapshot(),
            FrontKind::Real(real) => {
                let stats = real.stats().await;
                real.stop().await;
                stats
            }
        }
    }
}

/// A rolling update as the Deployment controller makes it: new pods are
/// started while the total stays within replicas + maxSurge, old ones are
/// deleted while the ready ones stay at replicas - maxUnavailable or more.
async fn roll(
    plan: &Plan,
    cluster: &mut Cluster,
    old: Vec<ledger::PodId>,
    endings: &mut tokio::task::JoinSet<Result<(), String>>,
    progress: &Progress,
) -> Result<(), String> {
    let total_allowed = plan.replicas + plan.rollout.max_surge;
    let min_ready = plan.replicas.saturating_sub(plan.rollout.max_unavailable);
    let mut old: std::collections::VecDeque<_> = old.into();
    let mut pending = std::collections::VecDeque::new();
    let (mut created, mut ready) = (0, 0);
    while !old.is_empty() || !pending.is_empty() {
        let mut changed = false;
        while created < plan.replicas && old.len() + created < total_allowed {
            let new = cluster.create().await?;
            progress.stage(format!("rolling: {} starting", pod_name(new)));
            pending.push_back(new);
            created += 1;
            changed = true;
        }
        while !old.is_empty() && old.len() - 1 + ready >= min_ready {
            if let Some(id) = old.pop_front() {
                progress.stage(format!("rolling: deleting {}", pod_name(id)));
                endings.spawn(cluster.delete(id));
                changed = true;
            }
        }
        if !changed {
            let Some(new) = pending.pop_front() else {
                return Err("the rollout cannot go on: no new pod is starting".into());
            };
            cluster.ready(new, false).await?;
            progress.stage(format!("rolling: {} ready", pod_name(new)));
            ready += 1;
        }
    }
    Ok(())
}

/// What a task that failed said.
fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .map_or("it panicked".into(), |m| format!("it panicked: {m}")),
        Err(e) => e.to_string(),
    }
}
