//! What the rules across objects need from every manifest of a run:
//! workloads, the Services and Ingresses in front of them, their
//! autoscalers and disruption budgets. The rules themselves are in
//! `rollout.rs`, `balancer.rs` and `disruption.rs`.

use super::pod::PodFacts;
use std::collections::HashMap;

use super::selector::{labels, Count, Labels, Selector};
use super::{balancer, disruption, rollout, serving};
use crate::finding::{Finding, Rule};
use crate::rules::LD201;
use crate::yaml::Node;

/// What the rules across objects need from every manifest of a run.
#[derive(Debug, Default)]
pub struct Inventory {
    pub(super) workloads: Vec<Workload>,
    pub(super) services: Vec<Service>,
    pub(super) ingresses: Vec<Ingress>,
    pub(super) budgets: Vec<Budget>,
    autoscalers: Vec<Autoscaler>,
}

/// Where a finding goes, and which objects' ignore annotations count.
#[derive(Clone, Debug, Default)]
pub(super) struct Place {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub ignore: Vec<String>,
}

impl Place {
    fn of(path: &str, node: &Node, ignore: &[String]) -> Place {
        Place {
            path: path.to_owned(),
            line: node.line,
            column: node.column,
            ignore: ignore.to_vec(),
        }
    }

    /// A finding of `rule` here, unless this object or one of `others`
    /// ignores it.
    pub fn finding(&self, rule: &Rule, others: &[&[String]], message: String) -> Option<Finding> {
        let ignored = self
            .ignore
            .iter()
            .chain(others.iter().copied().flatten())
            .any(|id| id.eq_ignore_ascii_case(rule.id));
        (!ignored).then(|| Finding {
            rule: rule.id,
            severity: rule.severity,
            path: self.path.clone(),
            line: self.line,
            column: self.column,
            message,
        })
    }
}

/// A Pod or an object with a pod template.
#[derive(Debug)]
pub(super) struct Workload {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// Its pods' labels.
    pub labels: Labels,
    /// Its name in the file.
    pub at: Place,
    pub pod: PodFacts,
    /// `spec.replicas` of a kind that has it: its value (unset: `None`)
    /// and place.
    pub replicas: Option<(Option<u64>, Option<Place>)>,
    /// A Deployment's `spec.strategy`.
    pub strategy: Option<Strategy>,
}

/// A Deployment's rollout strategy.
#[derive(Debug, Default)]
pub(super) struct Strategy {
    /// `type: Recreate`, where it says so.
    pub recreate: Option<Place>,
    pub max_surge: Option<(Count, Place)>,
    pub max_unavailable: Option<(Count, Place)>,
}

/// A Service with a selector.
#[derive(Debug)]
pub(super) struct Service {
    pub name: String,
    pub namespace: String,
    pub selector: Labels,
    /// Whether it routes traffic: not a headless Service without ports
    /// (which only publishes DNS records).
    pub routes: bool,
    /// The `targetPort`s of its ports (the `port` where unset).
    pub targets: Vec<String>,
    /// Its own target group deregistration delay.
    pub deregistration: Option<Delay>,
    pub ignore: Vec<String>,
}

/// An AWS target group's `deregistration_delay.timeout_seconds`.
#[derive(Clone, Debug)]
pub(super) struct Delay {
    pub seconds: f64,
    /// The annotation.
    pub at: Place,
}

/// An Ingress: the Services it sends to, and the delay it sets for them.
#[derive(Debug)]
pub(super) struct Ingress {
    pub namespace: String,
    pub backends: Vec<String>,
    pub deregistration: Option<Delay>,
}

/// A PodDisruptionBudget.
#[derive(Debug)]
pub(super) struct Budget {
    pub name: String,
    pub namespace: String,
    /// `None` selects nothing.
    pub selector: Option<Selector>,
    pub min_available: Option<(Count, Place)>,
    pub max_unavailable: Option<(Count, Place)>,
}

/// A HorizontalPodAutoscaler's target and lowest scale.
#[derive(Debug)]
struct Autoscaler {
    namespace: String,
    kind: String,
    name: String,
    min: u64,
}

fn namespace(object: &Node) -> String {
    object
        .at(&["metadata", "namespace"])
        .and_then(Node::as_str)
        .unwrap_or("default")
        .to_owned()
}

fn name(object: &Node) -> String {
    object
        .at(&["metadata", "name"])
        .and_then(Node::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `deregistration_delay.timeout_seconds=N` in the target group attribute
/// annotations of `object`.
fn deregistration(path: &str, object: &Node, ignore: &[String]) -> Option<Delay> {
    let annotations = object.at(&["metadata", "annotations"])?;
    [
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes",
        "alb.ingress.kubernetes.io/target-group-attributes",
    ]
    .iter()
    .filter_map(|key| annotations.get(key))
    .find_map(|node| {
        let seconds = node
            .as_str()?
            .split(',')
            .find_map(|kv| {
                kv.trim()
                    .strip_prefix("deregistration_delay.timeout_seconds=")
            })?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite())?;
        Some(Delay {
            seconds,
            at: Place::of(path, node, ignore),
        })
    })
}

// === impl Inventory ===

impl Inventory {
    pub(super) fn add_workload(
        &mut self,
        path: &str,
        object: &Node,
        pod: PodFacts,
        ignore: &[String],
    ) {
        let kind = object
            .get("kind")
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_owned();
        let labels = if kind == "Pod" {
            labels(object.at(&["metadata", "labels"]))
        } else {
            labels(object.at(&["spec", "template", "metadata", "labels"]))
        };
        let place = |node: &Node| Place::of(path, node, ignore);
        let scalable = matches!(
            kind.as_str(),
            "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController"
        );
        let replicas = scalable.then(|| {
            let node = object.at(&["spec", "replicas"]);
            let value = node.and_then(Node::as_str).and_then(|s| s.parse().ok());
            (value, node.map(place))
        });
        let count = |key: &str| {
            let node = object.at(&["spec", "strategy", "rollingUpdate", key])?;
            Some((Count::of(node)?, place(node)))
        };
        let strategy = (kind == "Deployment").then(|| Strategy {
            recreate: object
                .at(&["spec", "strategy", "type"])
                .filter(|t| t.as_str() == Some("Recreate"))
                .map(place),
            max_surge: count("maxSurge"),
            max_unavailable: count("maxUnavailable"),
        });
        self.workloads.push(Workload {
            name: name(object),
            namespace: namespace(object),
            at: place(object.at(&["metadata", "name"]).unwrap_or(object)),
            kind,
            labels,
            pod,
            replicas,
            strategy,
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
        findings.extend(balancer::direct_access(path, object));
        let ports = object
            .at(&["spec", "ports"])
            .map(Node::items)
            .unwrap_or_default();
        let headless = object.at(&["spec", "clusterIP"]).and_then(Node::as_str) == Some("None");
        let targets = ports
            .iter()
            .filter_map(|p| p.get("targetPort").or(p.get("port")))
            .filter_map(Node::as_str)
            .map(str::to_owned)
            .collect();
        self.services.push(Service {
            name: name(object),
            namespace: namespace(object),
            selector: labels(object.at(&["spec", "selector"])),
            routes: !(headless && ports.is_empty()),
            targets,
            deregistration: deregistration(path, object, ignore),
            ignore: ignore.to_vec(),
        });
    }

    /// Notes an Ingress: its backend Services and their delay.
    pub(super) fn add_ingress(&mut self, path: &str, object: &Node, ignore: &[String]) {
        let spec = object.get("spec");
        let mut backends = Vec::new();
        let mut backend = |b: Option<&Node>| {
            let service = b.and_then(|b| {
                b.at(&["service", "name"])
                    .or_else(|| b.get("serviceName"))
                    .and_then(Node::as_str)
            });
            if let Some(s) = service {
                backends.push(s.to_owned());
            }
        };
        backend(spec.and_then(|s| s.get("defaultBackend").or(s.get("backend"))));
        for rule in spec
            .and_then(|s| s.get("rules"))
            .map(Node::items)
            .unwrap_or_default()
        {
            for p in rule
                .at(&["http", "paths"])
                .map(Node::items)
                .unwrap_or_default()
            {
                backend(p.get("backend"));
            }
        }
        self.ingresses.push(Ingress {
            namespace: namespace(object),
            backends,
            deregistration: deregistration(path, object, ignore),
        });
    }

    /// Notes a PodDisruptionBudget.
    pub(super) fn add_budget(&mut self, path: &str, object: &Node, ignore: &[String]) {
        let count = |key: &str| {
            let node = object.at(&["spec", key])?;
            Some((Count::of(node)?, Place::of(path, node, ignore)))
        };
        self.budgets.push(Budget {
            name: name(object),
            namespace: namespace(object),
            selector: Selector::of(object.at(&["spec", "selector"])),
            min_available: count("minAvailable"),
            max_unavailable: count("maxUnavailable"),
        });
    }

    /// Notes a HorizontalPodAutoscaler's target and `minReplicas`.
    pub(super) fn add_autoscaler(&mut self, object: &Node) {
        let target = |key: &str| {
            object
                .at(&["spec", "scaleTargetRef", key])
                .and_then(Node::as_str)
                .map(str::to_owned)
        };
        let (Some(kind), Some(name)) = (target("kind"), target("name")) else {
            return;
        };
        let min = object
            .at(&["spec", "minReplicas"])
            .and_then(Node::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        self.autoscalers.push(Autoscaler {
            namespace: namespace(object),
            kind,
            name,
            min,
        });
    }

    /// How many pods a workload runs at its lowest: `spec.replicas`, else
    /// its autoscaler's `minReplicas`, else 1. `None` for kinds without
    /// replicas.
    pub(super) fn replicas(&self, w: &Workload) -> Option<u64> {
        let (value, _) = w.replicas.as_ref()?;
        Some(value.unwrap_or_else(|| {
            self.autoscalers
                .iter()
                .find(|a| a.namespace == w.namespace && a.kind == w.kind && a.name == w.name)
                .map_or(1, |a| a.min)
        }))
    }

    /// Each Service with a selector and each workload it selects. A
    /// Service's candidates are the workloads with its selector's rarest
    /// label, not every workload of the run (4,000 Services by 6,000
    /// workloads took 20 s).
    pub(super) fn served(&self) -> Vec<(&Service, &Workload)> {
        let mut index: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for (i, w) in self.workloads.iter().enumerate() {
            for (k, v) in &w.labels {
                index
                    .entry((w.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        let mut pairs = Vec::new();
        // A headless Service without ports routes nothing: only DNS.
        for service in self
            .services
            .iter()
            .filter(|s| !s.selector.is_empty() && s.routes)
        {
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
            for &i in candidates {
                let workload = &self.workloads[i];
                if service
                    .selector
                    .iter()
                    .all(|(k, v)| workload.labels.get(k) == Some(v))
                {
                    pairs.push((service, workload));
                }
            }
        }
        pairs
    }

    /// The findings across objects.
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        let served = self.served();
        for (service, workload) in &served {
            let single = workload.kind == "Pod" || self.replicas(workload) == Some(1);
            let pending = workload.pod.unprotected.iter().chain(
                workload
                    .pod
                    .probe_only
                    .iter()
                    .filter(|p| serving::targets(&service.targets, &p.ports)),
            );
            for p in pending {
                let ignored = service
                    .ignore
                    .iter()
                    .chain(&workload.at.ignore)
                    .any(|id| id.eq_ignore_ascii_case(LD201.id));
                if ignored {
                    continue;
                }
                let why = match p.ports.is_empty() {
                    true => "has no `ports` but",
                    false => "serves only its probes' ports, but",
                };
                findings.push(serving::ld201(&workload.at.path, (p.line, p.column), &p.image, single, format!("container {} {why} Service {} sends to it, and nothing holds its stop back while the endpoint is removed: add a preStop `sleep: {{seconds: 5}}` or run it under `lameduck run`", p.name, service.name)));
            }
            rollout::check(self, service, workload, &mut findings);
            balancer::check(self, service, workload, &mut findings);
        }
        disruption::check(self, &served, &mut findings);
        // A workload behind two Services is one finding, not two.
        let mut seen = std::collections::HashSet::new();
        findings.retain(|f| seen.insert((f.rule, f.path.clone(), f.line, f.column)));
        findings
    }
}
