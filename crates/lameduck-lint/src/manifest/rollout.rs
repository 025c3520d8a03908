//! LD206 and LD207: rollouts that leave a Service with no ready pod.

use super::inventory::{Inventory, Service, Workload};
use super::selector::Count;
use crate::finding::Finding;
use crate::rules::{LD206, LD207};

/// Kubernetes' default `maxSurge` and `maxUnavailable`: 25%.
const DEFAULT: Count = Count::Percent(25.0);

/// The rollout of a Deployment that `service` selects.
pub(super) fn check(
    inventory: &Inventory,
    service: &Service,
    workload: &Workload,
    findings: &mut Vec<Finding>,
) {
    let Some(strategy) = &workload.strategy else {
        return;
    };
    let ignores: &[&[String]] = &[&service.ignore];
    let (kind, name) = (&workload.kind, &workload.name);
    if let Some(at) = &strategy.recreate {
        findings.extend(at.finding(&LD206, ignores, format!("{kind} {name} is behind Service {} but `strategy: Recreate` stops every pod before new ones are ready: use RollingUpdate with maxUnavailable: 0", service.name)));
        return;
    }
    let Some(replicas) = inventory.replicas(workload).filter(|r| *r > 0) else {
        return;
    };
    let surge = strategy.max_surge.as_ref().map_or(DEFAULT, |(c, _)| *c);
    let unavailable = strategy
        .max_unavailable
        .as_ref()
        .map_or(DEFAULT, |(c, _)| *c);
    // maxSurge rounds up, maxUnavailable down; when both come to 0 the
    // controller takes 1 pod down anyway.
    let surge_pods = surge.scaled(replicas, true);
    let mut down = unavailable.scaled(replicas, false);
    let fencepost = surge_pods == 0 && down == 0;
    if fencepost {
        down = 1;
    }
    if down < replicas {
        return;
    }
    let at = match (&strategy.max_unavailable, &strategy.max_surge) {
        (Some((_, at)), _) if !fencepost => at,
        (_, Some((_, at))) if fencepost => at,
        _ => match workload.replicas.as_ref().and_then(|(_, at)| at.as_ref()) {
            Some(at) => at,
            None => &workload.at,
        },
    };
    let why = if fencepost {
        "maxSurge and maxUnavailable both round to 0, so the controller takes 1 down".to_owned()
    } else {
        format!("maxUnavailable allows {down}")
    };
    let (s, all) = if replicas == 1 {
        ("", "it")
    } else {
        ("s", "them all")
    };
    findings.extend(at.finding(&LD207, ignores, format!("{kind} {name} runs {replicas} pod{s} and its rolling update may take {all} down at once ({why}): Service {} is left with no ready pod; set maxUnavailable: 0 and maxSurge: 1", service.name)));
}
