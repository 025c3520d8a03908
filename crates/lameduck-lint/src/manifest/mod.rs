//! The Kubernetes rules: whether a pod's containers can end without losing
//! traffic, within `terminationGracePeriodSeconds`; and, across objects,
//! whether the Services, Ingresses, load balancers, rollouts and disruption
//! budgets around them let them.

use crate::finding::Finding;
use crate::yaml::{documents_in, Node, YamlError};

mod balancer;
mod disruption;
mod inventory;
mod lameduck;
pub mod model;
mod pod;
mod rollout;
mod selector;
mod serving;

pub use inventory::Inventory;

/// Lints a stream of manifests (YAML or JSON) found at `path`, the
/// rules across objects included.
pub fn lint(path: &str, text: &str) -> Result<Vec<Finding>, YamlError> {
    let mut inventory = Inventory::default();
    let mut findings = collect(path, text, &mut inventory)?;
    findings.extend(inventory.findings());
    Ok(findings)
}

/// Lints each object of the stream at `path` on its own, and notes in
/// `inventory` what the rules across objects (a Service and the pods it
/// selects, maybe from other files) need.
pub fn collect(
    path: &str,
    text: &str,
    inventory: &mut Inventory,
) -> Result<Vec<Finding>, YamlError> {
    let mut findings = Vec::new();
    collect_documents(path, documents_in(text), inventory, &mut findings)?;
    Ok(findings)
}

/// [`collect`] over documents as they are parsed (see
/// [`crate::yaml::documents`]): each is linted and dropped before the next
/// is read. The findings of the documents before an error are kept.
pub fn collect_documents(
    path: &str,
    documents: impl Iterator<Item = Result<Node, YamlError>>,
    inventory: &mut Inventory,
    findings: &mut Vec<Finding>,
) -> Result<(), YamlError> {
    for doc in documents {
        let doc = doc?;
        for object in objects(&doc) {
            let ignore = ignored_rules(object);
            let mut found = Vec::new();
            if let Some(pod) = pod_spec(object) {
                let facts = pod::lint(path, pod, single_replica(object), &mut found);
                inventory.add_workload(path, object, facts, &ignore);
            }
            match object.get("kind").and_then(Node::as_str) {
                Some("Service") => inventory.add_service(path, object, &ignore, &mut found),
                Some("Ingress") => inventory.add_ingress(path, object, &ignore),
                Some("PodDisruptionBudget") => inventory.add_budget(path, object, &ignore),
                Some("HorizontalPodAutoscaler") => inventory.add_autoscaler(object),
                _ => {}
            }
            found.retain(|f| !ignore.iter().any(|id| id.eq_ignore_ascii_case(f.rule)));
            findings.extend(found);
        }
    }
    Ok(())
}

/// The rules an object's `lameduck.io/ignore: "ID,ID"` annotation turns
/// off (on the object or on its pod template).
fn ignored_rules(object: &Node) -> Vec<String> {
    [
        object.at(&["metadata", "annotations", "lameduck.io/ignore"]),
        object.at(&[
            "spec",
            "template",
            "metadata",
            "annotations",
            "lameduck.io/ignore",
        ]),
    ]
    .into_iter()
    .flatten()
    .filter_map(Node::as_str)
    .flat_map(|ids| ids.split([',', ' ']))
    .filter(|id| !id.is_empty())
    .map(str::to_owned)
    .collect()
}

/// Whether a workload runs a single pod: a Pod, or a kind with replicas
/// that sets 1 or none.
fn single_replica(object: &Node) -> bool {
    match object.get("kind").and_then(Node::as_str) {
        Some("Pod") => true,
        Some("Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController") => object
            .at(&["spec", "replicas"])
            .and_then(Node::as_str)
            .is_none_or(|r| r.trim() == "1"),
        _ => false,
    }
}

/// The objects of a document: itself, or the items of a `List`.
fn objects(doc: &Node) -> Vec<&Node> {
    match doc.get("kind").and_then(Node::as_str) {
        Some(kind) if kind.ends_with("List") => doc
            .get("items")
            .map(|i| i.items().iter().collect())
            .unwrap_or_default(),
        _ => vec![doc],
    }
}

/// The pod spec of a workload, wherever its kind keeps it.
fn pod_spec(object: &Node) -> Option<&Node> {
    match object.get("kind")?.as_str()? {
        "Pod" => object.get("spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => object.at(&["spec", "template", "spec"]),
        "CronJob" => object.at(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}
