//! LD208 and LD209: PodDisruptionBudgets, missing or blocking node drains.

use super::inventory::{Inventory, Service, Workload};
use crate::finding::Finding;
use crate::rules::{LD208, LD209};

/// Budgets against the workloads they select.
pub(super) fn check(
    inventory: &Inventory,
    served: &[(&Service, &Workload)],
    findings: &mut Vec<Finding>,
) {
    let selects = |w: &Workload| {
        inventory.budgets.iter().any(|b| {
            b.namespace == w.namespace && b.selector.as_ref().is_some_and(|s| s.matches(&w.labels))
        })
    };
    for (service, workload) in served {
        let several = inventory.replicas(workload).filter(|r| *r > 1);
        let kind_fits = matches!(workload.kind.as_str(), "Deployment" | "StatefulSet");
        if let (Some(replicas), true) = (several, kind_fits) {
            if !selects(workload) {
                findings.extend(workload.at.finding(&LD208, &[&service.ignore], format!("{} {} runs {replicas} pods behind Service {} and no PodDisruptionBudget limits how many a node drain may evict at once: add one with maxUnavailable: 1", workload.kind, workload.name, service.name)));
            }
        }
    }
    for budget in &inventory.budgets {
        let Some(selector) = &budget.selector else {
            continue;
        };
        let selected: Vec<(&Workload, u64)> = inventory
            .workloads
            .iter()
            .filter(|w| w.namespace == budget.namespace && selector.matches(&w.labels))
            .filter_map(|w| Some((w, inventory.replicas(w)?)))
            .collect();
        let total = selected.iter().fold(0u64, |t, (_, r)| t.saturating_add(*r));
        let ignores: Vec<&[String]> = selected
            .iter()
            .map(|(w, _)| w.at.ignore.as_slice())
            .collect();
        let names: Vec<String> = selected
            .iter()
            .map(|(w, _)| format!("{} {}", w.kind, w.name))
            .collect();
        let of = if names.is_empty() {
            String::new()
        } else {
            format!(" of {} ({total} pods)", names.join(", "))
        };
        // Kubernetes rounds both percentages up.
        if let Some((count, at)) = &budget.max_unavailable {
            if count.scaled(total.max(1), true) == 0 {
                findings.extend(at.finding(&LD209, &ignores, format!("PodDisruptionBudget {} allows no pod{of} to be evicted (maxUnavailable 0): node drains hang on it until someone deletes it; use maxUnavailable: 1", budget.name)));
            }
        } else if let Some((count, at)) = &budget.min_available {
            let needed = count.scaled(total, true);
            if total > 0 && needed >= total {
                findings.extend(at.finding(&LD209, &ignores, format!("PodDisruptionBudget {} wants {needed} pods available{of}: no pod may be evicted, so node drains hang on it; use maxUnavailable: 1, or run more replicas than minAvailable", budget.name)));
            }
        }
    }
}
