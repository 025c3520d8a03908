//! Rules across objects: a Service and the pods it selects (from any file
//! of the run), and Services whose load balancer cuts connections.

use std::collections::{BTreeMap, HashMap};

use crate::finding::{Finding, Rule};
use crate::rules::{LD206, LD301, LD302};
use crate::yaml::Node;

/// What the rules across objects need from every manifest of a run.
#[derive(Debug, Default)]
pub struct Inventory {
    workloads: Vec<Workload>,
    services: Vec<Service>,
}

#[derive(Debug)]
struct Workload {
    kind: String,
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    grace: f64,
    /// The Deployment's `spec.strategy.type`, and where it is.
    recreate_at: Option<(usize, usize)>,
    path: String,
    ignore: Vec<String>,
}

#[derive(Debug)]
struct Service {
    name: String,
    namespace: String,
    selector: BTreeMap<String, String>,
    /// Seconds a load balancer keeps a deregistered target, and where.
    deregistration: Option<(f64, usize, usize)>,
    path: String,
    ignore: Vec<String>,
}

fn strings(node: Option<&Node>) -> BTreeMap<String, String> {
    node.map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect()
}

fn namespace(object: &Node) -> String {
    object
        .at(&["metadata", "namespace"])
        .and_then(Node::as_str)
        .unwrap_or("default")
        .to_owned()
}

fn finding(rule: &Rule, path: &str, line: usize, column: usize, message: String) -> Finding {
    Finding {
        rule: rule.id,
        severity: rule.severity,
        path: path.to_owned(),
        line,
        column,
        message,
    }
}

// === impl Inventory ===

impl Inventory {
    pub(super) fn add_workload(
        &mut self,
        path: &str,
        object: &Node,
        grace: f64,
        ignore: &[String],
    ) {
        let name_node = object.at(&["metadata", "name"]).unwrap_or(object);
        let kind = object
            .get("kind")
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_owned();
        let labels = if kind == "Pod" {
            strings(object.at(&["metadata", "labels"]))
        } else {
            strings(object.at(&["spec", "template", "metadata", "labels"]))
        };
        let recreate_at = object
            .at(&["spec", "strategy", "type"])
            .filter(|t| kind == "Deployment" && t.as_str() == Some("Recreate"))
            .map(|t| (t.line, t.column));
        self.workloads.push(Workload {
            name: name_node.as_str().unwrap_or_default().to_owned(),
            namespace: namespace(object),
            kind,
            labels,
            grace,
            recreate_at,
            path: path.to_owned(),
            ignore: ignore.to_vec(),
        });
    }

    /// Notes the Service, and lints what it says on its own (LD301).
    pub(super) fn add_service(
        &mut self,
        path: &str,
        object: &Node,
        ignore: &[String],
        findings: &mut Vec<Finding>,
    ) {
        let annotations = object.at(&["metadata", "annotations"]);
        let annotation = |key: &str| annotations.and_then(|a| a.get(key));
        if let Some(direct) = annotation("service.cloud.tencent.com/direct-access")
            .filter(|v| v.as_str() == Some("true"))
        {
            let graceful = annotation("service.cloud.tencent.com/enable-grace-shutdown")
                .and_then(Node::as_str)
                == Some("true");
            if !graceful {
                findings.push(finding(&LD301, path, direct.line, direct.column, "the load balancer sends straight to pods but drops their established connections when they end: add `service.cloud.tencent.com/enable-grace-shutdown: \"true\"`".into()));
            }
        }
        let deregistration = [
            "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes",
            "alb.ingress.kubernetes.io/target-group-attributes",
        ]
        .iter()
        .filter_map(|key| annotation(key))
        .find_map(|node| {
            let value = node.as_str()?;
            let seconds = value
                .split(',')
                .find_map(|kv| {
                    kv.trim()
                        .strip_prefix("deregistration_delay.timeout_seconds=")
                })?
                .trim()
                .parse::<f64>()
                .ok()?;
            Some((seconds, node.line, node.column))
        });
        self.services.push(Service {
            name: object
                .at(&["metadata", "name"])
                .and_then(Node::as_str)
                .unwrap_or_default()
                .to_owned(),
            namespace: namespace(object),
            selector: strings(object.at(&["spec", "selector"])),
            deregistration,
            path: path.to_owned(),
            ignore: ignore.to_vec(),
        });
    }

    /// The workloads by namespace and label (`key`, `value`), in order: a
    /// Service's candidates are those with its selector's rarest label,
    /// not every workload of the run (4,000 Services by 6,000 workloads
    /// took 20 s).
    fn label_index(&self) -> HashMap<(&str, &str, &str), Vec<usize>> {
        let mut index: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for (i, w) in self.workloads.iter().enumerate() {
            for (k, v) in &w.labels {
                index
                    .entry((w.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        index
    }

    /// The workloads `service` selects, in the order they were added.
    fn selected<'a>(
        &'a self,
        index: &'a HashMap<(&str, &str, &str), Vec<usize>>,
        service: &'a Service,
    ) -> impl Iterator<Item = &'a Workload> + 'a {
        // The rarest label of the selector: `app.kubernetes.io/instance`
        // is on every workload of a release, `.../name` on a few.
        let candidates = service
            .selector
            .iter()
            .map(|(k, v)| {
                index
                    .get(&(service.namespace.as_str(), k.as_str(), v.as_str()))
                    .map(Vec::as_slice)
                    .unwrap_or_default()
            })
            .min_by_key(|workloads| workloads.len())
            .unwrap_or_default();
        candidates.iter().map(|&i| &self.workloads[i]).filter(|w| {
            service
                .selector
                .iter()
                .all(|(k, v)| w.labels.get(k) == Some(v))
        })
    }

    /// The findings across objects: each Service against the workloads it
    /// selects.
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        let index = self.label_index();
        for service in self.services.iter().filter(|s| !s.selector.is_empty()) {
            for workload in self.selected(&index, service) {
                let ignored = |rule: &Rule| {
                    workload
                        .ignore
                        .iter()
                        .chain(&service.ignore)
                        .any(|id| id.eq_ignore_ascii_case(rule.id))
                };
                if let (Some((line, column)), false) = (workload.recreate_at, ignored(&LD206)) {
                    findings.push(finding(&LD206, &workload.path, line, column, format!("{} {} is behind Service {} but `strategy: Recreate` stops every pod before new ones are ready: use RollingUpdate with maxUnavailable: 0", workload.kind, workload.name, service.name)));
                }
                if let (Some((delay, line, column)), false) =
                    (service.deregistration, ignored(&LD302))
                {
                    if delay > workload.grace {
                        findings.push(finding(&LD302, &service.path, line, column, format!("the load balancer keeps connections to a deregistered pod for {delay}s, but {} {} is killed after {}s: lower deregistration_delay.timeout_seconds or raise terminationGracePeriodSeconds above it", workload.kind, workload.name, workload.grace)));
                    }
                }
            }
        }
        findings
    }
}
