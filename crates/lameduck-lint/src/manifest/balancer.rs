//! LD301, LD302 and LD303: load balancers in front of the pods, and how
//! long they keep sending to a pod that is ending.

use super::inventory::{Delay, Inventory, Service, Workload};
use crate::finding::Finding;
use crate::rules::{LD301, LD302, LD303};
use crate::yaml::Node;

/// LD301: a Service whose load balancer sends straight to pods, without
/// graceful shutdown.
pub(super) fn direct_access(path: &str, object: &Node) -> Option<Finding> {
    let annotations = object.at(&["metadata", "annotations"])?;
    let direct = annotations
        .get("service.cloud.tencent.com/direct-access")
        .filter(|v| v.as_str() == Some("true"))?;
    let graceful = annotations
        .get("service.cloud.tencent.com/enable-grace-shutdown")
        .and_then(Node::as_str)
        == Some("true");
    (!graceful).then(|| Finding {
        rule: LD301.id,
        severity: LD301.severity,
        path: path.to_owned(),
        line: direct.line,
        column: direct.column,
        message: "the load balancer sends straight to pods but drops their established connections when they end: add `service.cloud.tencent.com/enable-grace-shutdown: \"true\"`".into(),
    })
}

/// The deregistration delays in front of `service`: its own annotation, or
/// else those of the Ingresses that send to it (a Service's annotation
/// overrides an Ingress's for its target group).
fn delays<'a>(inventory: &'a Inventory, service: &'a Service) -> Vec<&'a Delay> {
    if let Some(own) = &service.deregistration {
        return vec![own];
    }
    inventory
        .ingresses
        .iter()
        .filter(|i| i.namespace == service.namespace && i.backends.contains(&service.name))
        .filter_map(|i| i.deregistration.as_ref())
        .collect()
}

/// LD302 and LD303: each delay against how long the selected pods live and
/// keep serving. One delay gets one of them at most.
pub(super) fn check(
    inventory: &Inventory,
    service: &Service,
    workload: &Workload,
    findings: &mut Vec<Finding>,
) {
    let ignores: &[&[String]] = &[&service.ignore, &workload.at.ignore];
    let (kind, name) = (&workload.kind, &workload.name);
    let (grace, hold) = (workload.pod.grace, workload.pod.hold);
    for delay in delays(inventory, service) {
        let seconds = delay.seconds;
        if seconds > grace {
            findings.extend(delay.at.finding(&LD302, ignores, format!("the load balancer keeps connections to a deregistered pod for {seconds}s, but {kind} {name} is killed after {grace}s: lower deregistration_delay.timeout_seconds or raise terminationGracePeriodSeconds above it")));
        } else if hold < seconds {
            findings.extend(delay.at.finding(&LD303, ignores, format!("the load balancer drains a deregistered pod for {seconds}s and may still send to it, but {kind} {name} stops serving after {hold}s (preStop sleep and drain delay): sleep {seconds}s in preStop, with terminationGracePeriodSeconds above it, or lower deregistration_delay.timeout_seconds to {hold}")));
        }
    }
}
