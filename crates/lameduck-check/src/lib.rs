//! `lameduck check`: runs an app the way Kubernetes ends it, under real
//! load, behind an emulated balancer with its lag, and reports every lost
//! request and cut session with its cause and its fix.
//!
//! The parts: [`pod`] (the app as PID 1 of its own namespaces),
//! [`endpoints`] and [`balancer`] (how traffic reaches pods, and how late it
//! stops), [`cluster`] (the kubelet's order of ending a pod), [`load`] (HTTP
//! clients and long sessions), [`ledger`] (every outcome on one clock),
//! [`diagnose`] and [`report`].
#![deny(rust_2018_idioms)]

pub mod balancer;
pub mod cluster;
pub mod diagnose;
pub mod endpoints;
pub mod ledger;
pub mod load;
pub mod plan;
pub mod pod;
pub mod progress;
pub mod readiness;
pub mod report;
pub mod timeline;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use plan::Plan;
pub use report::Report;

use balancer::Balancer;
use cluster::Cluster;
use endpoints::Endpoints;
use ledger::Ledger;
use load::Load;
use plan::{BalancerMode, Scenario};
use progress::Progress;

/// `pod-N`.
pub fn pod_name(id: ledger::PodId) -> String {
    format!("pod-{id}")
}

/// Runs the rehearsal. An error means it could not run (a pod never got
/// ready, the balancer could not bind), not that something was lost.
pub async fn rehearse(plan: Plan, show_progress: bool) -> Result<Report, String> {
    plan.validate().map_err(|e| e.to_string())?;
    pod::remove_stale_networks();
    let plan = Arc::new(plan);
    let ledger = Arc::new(Ledger::new());
    let progress = Progress::start(ledger.clone(), show_progress);
    let endpoints = Endpoints::new(
        plan.endpoint_lag,
        plan.balancer == BalancerMode::Reset,
        ledger.clone(),
    );
    let listen = plan
        .balancer_listen
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let balancer = Balancer::start(listen, endpoints.clone())
        .await
        .map_err(|e| format!("the balancer could not listen on {listen}: {e}"))?;
    tracing::info!("balancer listening on {}", balancer.addr);
    let mut cluster = Cluster::new(plan.clone(), ledger.clone(), endpoints.clone());
    let result = run(&plan, &mut cluster, &balancer, &ledger, &progress).await;
    progress.stage("stopping the pods left");
    cluster.shutdown().await;
    drop(progress);
    result?;
    let duration = ledger.now();
    let records = ledger.take();
    let pods = cluster
        .pods()
        .iter()
        .map(|p| (pod_name(p.id), p.addr.to_string(), p.logs()))
        .collect();
    Ok(Report::build(
        (*plan).clone(),
        balancer.addr.to_string(),
        balancer.stats.snapshot(),
        duration,
        records,
        pods,
    ))
}

async fn run(
    plan: &Plan,
    cluster: &mut Cluster,
    balancer: &Balancer,
    ledger: &Arc<Ledger>,
    progress: &Progress,
) -> Result<(), String> {
    progress.stage(format!("starting {} pods", plan.replicas));
    let mut old = Vec::new();
    for _ in 0..plan.replicas {
        old.push(cluster.create().await?);
    }
    for &id in &old {
        cluster.ready(id, true).await?;
    }
    let load = Load::start(plan, balancer.addr, balancer.routes.clone(), ledger.clone());
    progress.stage("load running");
    tokio::time::sleep(plan.warmup).await;
    let mut endings = tokio::task::JoinSet::new();
    let outcome = async {
        match plan.scenario {
            Scenario::Rolling => {
                for &id in &old {
                    let new = cluster.create().await?;
                    progress.stage(format!("rolling: {} starting", pod_name(new)));
                    cluster.ready(new, false).await?;
                    progress.stage(format!(
                        "rolling: {} ready, deleting {}",
                        pod_name(new),
                        pod_name(id)
                    ));
                    endings.spawn(cluster.delete(id));
                }
            }
            Scenario::Delete => {
                progress.stage(format!("deleting {}", pod_name(old[0])));
                endings.spawn(cluster.delete(old[0]));
            }
        }
        Ok::<(), String>(())
    }
    .await;
    progress.stage("waiting for the deleted pods to exit");
    while endings.join_next().await.is_some() {}
    if outcome.is_ok() {
        progress.stage("settling");
        tokio::time::sleep(plan.settle).await;
    }
    progress.stage("stopping the load");
    load.stop().await;
    outcome
}
