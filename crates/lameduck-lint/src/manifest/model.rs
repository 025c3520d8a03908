//! A typed model of the pods a manifest stream ships: each workload (Pod,
//! Deployment, StatefulSet, DaemonSet, ReplicaSet, and the items of a
//! `List`) with its replicas, its rolling update, and its pod spec's
//! containers (command, args, env, ports, readiness probe, preStop hook)
//! and `terminationGracePeriodSeconds`, read from the same YAML trees the
//! rules read. `lameduck check --manifest` rehearses it.
//!
//! ```
//! let text = "kind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n  template:\n    spec:\n      terminationGracePeriodSeconds: 10\n      containers:\n        - name: app\n          command: [./app]\n          ports: [{containerPort: 8080}]\n";
//! let workloads = lameduck_lint::manifest::model::workloads(text).unwrap();
//! assert_eq!(workloads[0].replicas, Some(3));
//! assert_eq!(workloads[0].pod.grace_period_seconds, Some(10));
//! assert_eq!(workloads[0].pod.containers[0].ports[0].number, 8080);
//! ```

use super::{objects, pod_spec};
use crate::yaml::{parse_stream, Node, YamlError};

pub use super::selector::Count;

/// A workload that makes pods.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Pod`, ...
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.replicas`, if written (a Pod is 1).
    pub replicas: Option<u64>,
    /// The rolling update's settings, for the kinds that have one.
    pub rolling_update: Option<RollingUpdate>,
    /// The pod template's spec.
    pub pod: PodSpec,
    /// Fields written but not readable (`terminationGracePeriodSeconds:
    /// soon`), with their lines: a user of the model must not take the
    /// default in their place without saying so.
    pub unreadable: Vec<String>,
}

/// `strategy.rollingUpdate` (Deployment) or `updateStrategy.rollingUpdate`
/// (StatefulSet, DaemonSet).
#[derive(Clone, Debug, PartialEq)]
pub struct RollingUpdate {
    /// `maxSurge`, if written (Kubernetes' default for a Deployment: 25%).
    pub max_surge: Option<Count>,
    /// `maxUnavailable`, if written (default for a Deployment: 25%).
    pub max_unavailable: Option<Count>,
}

/// A pod spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodSpec {
    /// `terminationGracePeriodSeconds`, if written (Kubernetes' default is
    /// 30).
    pub grace_period_seconds: Option<u64>,
    /// `containers` (init containers are not part of a pod's end).
    pub containers: Vec<Container>,
}

/// One container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Container {
    /// `name`.
    pub name: String,
    /// `image`.
    pub image: Option<String>,
    /// `command`: replaces the image's ENTRYPOINT.
    pub command: Option<Vec<String>>,
    /// `args`: replaces the image's CMD.
    pub args: Option<Vec<String>>,
    /// `env`, in order.
    pub env: Vec<EnvVar>,
    /// `ports`.
    pub ports: Vec<ContainerPort>,
    /// `readinessProbe`.
    pub readiness: Option<Probe>,
    /// `lifecycle.preStop`.
    pub pre_stop: Option<Handler>,
}

/// One variable of a container's `env`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    /// `name`.
    pub name: String,
    /// `value`; `None` for `valueFrom` (a Secret, a ConfigMap, the
    /// downward API), which only a cluster can resolve.
    pub value: Option<String>,
}

/// One of a container's `ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerPort {
    /// `name`, which probes and hooks may refer to.
    pub name: Option<String>,
    /// `containerPort`.
    pub number: u16,
}

/// A port as probes and hooks give it: a number or a port's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    /// A number.
    Number(u16),
    /// The name of one of the container's ports.
    Name(String),
}

/// What a probe or a lifecycle hook does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `exec.command`, run inside the container without a shell.
    Exec {
        /// The command and its arguments.
        command: Vec<String>,
    },
    /// `httpGet`.
    HttpGet {
        /// `port`.
        port: PortRef,
        /// `path`, `/` when left out.
        path: String,
    },
    /// `tcpSocket`.
    TcpSocket {
        /// `port`.
        port: PortRef,
    },
    /// `sleep.seconds` (a hook's sleep action, Kubernetes 1.30+).
    Sleep {
        /// `seconds`.
        seconds: u64,
    },
    /// `grpc` (a probe's gRPC health check).
    Grpc {
        /// `port`.
        port: u16,
    },
}

/// A readiness probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// What it does.
    pub handler: Handler,
    /// `periodSeconds`, if written (default 10).
    pub period_seconds: Option<u64>,
    /// `failureThreshold`, if written (default 3).
    pub failure_threshold: Option<u64>,
}

/// Every workload of a manifest stream (YAML or JSON, `---`-separated, as
/// `helm template` and `kubectl kustomize` print them).
pub fn workloads(text: &str) -> Result<Vec<Workload>, YamlError> {
    let mut found = Vec::new();
    for doc in parse_stream(text)? {
        for object in objects(&doc) {
            if let Some(w) = workload(object) {
                found.push(w);
            }
        }
    }
    Ok(found)
}

fn workload(object: &Node) -> Option<Workload> {
    let kind = object.get("kind")?.as_str()?.to_string();
    if matches!(kind.as_str(), "Job" | "CronJob") {
        // Pods that run to completion are not ended by a rollout.
        return None;
    }
    let pod = pod_spec(object)?;
    let replicas = match kind.as_str() {
        "Pod" => Some(1),
        _ => number(object.at(&["spec", "replicas"])),
    };
    let strategy = object
        .at(&["spec", "strategy"])
        .or_else(|| object.at(&["spec", "updateStrategy"]));
    let rolling_update = strategy
        .filter(|s| {
            s.get("type")
                .and_then(Node::as_str)
                .is_none_or(|t| t == "RollingUpdate")
        })
        .map(|s| RollingUpdate {
            max_surge: s.at(&["rollingUpdate", "maxSurge"]).and_then(Count::of),
            max_unavailable: s
                .at(&["rollingUpdate", "maxUnavailable"])
                .and_then(Count::of),
        })
        .or_else(|| {
            (kind == "Deployment" && strategy.is_none()).then_some(RollingUpdate {
                max_surge: None,
                max_unavailable: None,
            })
        });
    Some(Workload {
        unreadable: unreadable(object, pod),
        name: object
            .at(&["metadata", "name"])
            .and_then(Node::as_str)
            .unwrap_or_default()
            .to_string(),
        kind,
        replicas,
        rolling_update,
        pod: PodSpec {
            grace_period_seconds: number(pod.get("terminationGracePeriodSeconds")),
            containers: pod
                .get("containers")
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .map(container)
                .collect(),
        },
    })
}

fn container(node: &Node) -> Container {
    let text = |key: &str| node.get(key).and_then(Node::as_str).map(str::to_string);
    let list = |key: &str| {
        node.get(key).map(|n| {
            n.items()
                .iter()
                .filter_map(Node::as_str)
                .map(str::to_string)
                .collect()
        })
    };
    Container {
        name: text("name").unwrap_or_default(),
        image: text("image"),
        command: list("command"),
        args: list("args"),
        env: node
            .get("env")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                Some(EnvVar {
                    name: e.get("name")?.as_str()?.to_string(),
                    value: e.get("value").and_then(Node::as_str).map(str::to_string),
                })
            })
            .collect(),
        ports: node
            .get("ports")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                Some(ContainerPort {
                    name: p.get("name").and_then(Node::as_str).map(str::to_string),
                    number: port_number(p.get("containerPort")?)?,
                })
            })
            .collect(),
        readiness: node.get("readinessProbe").and_then(|p| {
            Some(Probe {
                handler: handler(p)?,
                period_seconds: number(p.get("periodSeconds")),
                failure_threshold: number(p.get("failureThreshold")),
            })
        }),
        pre_stop: node.at(&["lifecycle", "preStop"]).and_then(handler),
    }
}

fn handler(node: &Node) -> Option<Handler> {
    let port = |n: &Node| -> Option<PortRef> {
        let n = n.get("port")?;
        match port_number(n) {
            Some(p) => Some(PortRef::Number(p)),
            None => Some(PortRef::Name(n.as_str()?.to_string())),
        }
    };
    if let Some(exec) = node.get("exec") {
        let command = exec
            .get("command")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(Node::as_str)
            .map(str::to_string)
            .collect();
        return Some(Handler::Exec { command });
    }
    if let Some(get) = node.get("httpGet") {
        return Some(Handler::HttpGet {
            port: port(get)?,
            path: get
                .get("path")
                .and_then(Node::as_str)
                .unwrap_or("/")
                .to_string(),
        });
    }
    if let Some(tcp) = node.get("tcpSocket") {
        return Some(Handler::TcpSocket { port: port(tcp)? });
    }
    if let Some(sleep) = node.get("sleep") {
        return Some(Handler::Sleep {
            seconds: number(sleep.get("seconds"))?,
        });
    }
    if let Some(grpc) = node.get("grpc") {
        return Some(Handler::Grpc {
            port: port_number(grpc.get("port")?)?,
        });
    }
    None
}

/// The numeric fields of a workload and its pod spec that are written but
/// are not whole numbers (ports: 1 to 65535).
fn unreadable(object: &Node, pod: &Node) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |node: Option<&Node>, field: &str, port: bool| {
        if let Some(n) = node {
            let ok = if port {
                port_number(n).is_some()
            } else {
                number(Some(n)).is_some()
            };
            if !ok {
                let what = if port { "a port" } else { "a whole number" };
                found.push(format!(
                    "line {}: {field} `{}` is not {what}",
                    n.line,
                    n.as_str().unwrap_or("(not a scalar)")
                ));
            }
        }
    };
    check(object.at(&["spec", "replicas"]), "replicas", false);
    check(
        pod.get("terminationGracePeriodSeconds"),
        "terminationGracePeriodSeconds",
        false,
    );
    for c in pod.get("containers").map(Node::items).unwrap_or_default() {
        for p in c.get("ports").map(Node::items).unwrap_or_default() {
            check(p.get("containerPort"), "containerPort", true);
        }
        let probe = c.get("readinessProbe");
        check(
            probe.and_then(|p| p.get("periodSeconds")),
            "periodSeconds",
            false,
        );
        check(
            probe.and_then(|p| p.get("failureThreshold")),
            "failureThreshold",
            false,
        );
        check(
            c.at(&["lifecycle", "preStop", "sleep", "seconds"]),
            "preStop.sleep.seconds",
            false,
        );
    }
    found
}

fn number(node: Option<&Node>) -> Option<u64> {
    node?.as_str()?.trim().parse().ok()
}

fn port_number(node: &Node) -> Option<u16> {
    node.as_str()?.trim().parse().ok().filter(|p| *p > 0)
}

impl Container {
    /// The number of a port given by number or by name.
    pub fn port(&self, port: &PortRef) -> Option<u16> {
        match port {
            PortRef::Number(n) => Some(*n),
            PortRef::Name(name) => self
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.number),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = r#"
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  strategy:
    rollingUpdate: {maxSurge: 25%, maxUnavailable: "0"}
  template:
    spec:
      terminationGracePeriodSeconds: 20
      containers:
        - name: app
          image: example/app:1
          args: ["--port", "8080"]
          env:
            - {name: MODE, value: prod}
            - name: TOKEN
              valueFrom: {secretKeyRef: {name: s, key: t}}
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {port: http, path: /ready}
            periodSeconds: 2
            failureThreshold: 1
          lifecycle:
            preStop: {sleep: {seconds: 5}}
        - name: sidecar
          command: [envoy]
          readinessProbe: {tcpSocket: {port: 9901}}
          lifecycle:
            preStop:
              exec: {command: [sh, -c, "sleep 3"]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
---
kind: StatefulSet
metadata: {name: db}
spec:
  updateStrategy: {type: OnDelete}
  template: {spec: {containers: [{name: db, command: [postgres]}]}}
"#;

    #[test]
    fn a_helm_stream_gives_each_workload_with_its_pod_spec() {
        let w = workloads(STREAM).expect("valid");
        assert_eq!(w.len(), 2, "the Service is no workload");
        let web = &w[0];
        assert_eq!(
            (web.kind.as_str(), web.name.as_str()),
            ("Deployment", "web")
        );
        assert_eq!(web.replicas, Some(4));
        let ru = web.rolling_update.as_ref().expect("rolling update");
        assert_eq!(ru.max_surge.map(|c| c.scaled(4, true)), Some(1));
        assert_eq!(ru.max_unavailable.map(|c| c.scaled(4, false)), Some(0));
        assert_eq!(web.pod.grace_period_seconds, Some(20));
        let app = &web.pod.containers[0];
        assert_eq!(app.command, None, "the image's ENTRYPOINT stays");
        assert_eq!(
            app.args.as_deref(),
            Some(&["--port".to_string(), "8080".into()][..])
        );
        assert_eq!(app.env[1].value, None, "valueFrom needs a cluster");
        let probe = app.readiness.as_ref().expect("probe");
        assert_eq!(probe.period_seconds, Some(2));
        match &probe.handler {
            Handler::HttpGet { port, path } => {
                assert_eq!(app.port(port), Some(8080));
                assert_eq!(path, "/ready");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(app.pre_stop, Some(Handler::Sleep { seconds: 5 }));
        let sidecar = &web.pod.containers[1];
        assert!(matches!(
            &sidecar.pre_stop,
            Some(Handler::Exec { command }) if command.len() == 3
        ));
        assert_eq!(w[1].rolling_update, None, "OnDelete rolls nothing");
        assert!(web.unreadable.is_empty(), "{:?}", web.unreadable);
    }

    #[test]
    fn numbers_that_cannot_be_read_are_named_with_their_lines() {
        let text = "kind: Pod\nmetadata: {name: p}\nspec:\n  terminationGracePeriodSeconds: soon\n  containers:\n    - name: a\n      ports: [{containerPort: 99999}]\n";
        let w = workloads(text).expect("valid YAML");
        assert_eq!(w[0].pod.grace_period_seconds, None);
        assert_eq!(
            w[0].unreadable,
            vec![
                "line 4: terminationGracePeriodSeconds `soon` is not a whole number".to_string(),
                "line 7: containerPort `99999` is not a port".to_string(),
            ]
        );
    }
}
