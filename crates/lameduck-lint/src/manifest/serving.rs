//! Which containers LD201 is about: those that serve a Service's traffic.
//! Ports that only the kubelet's probes use serve nobody unless a Service
//! targets them; a single replica of a datastore or broker cannot be saved
//! by a preStop sleep, so it gets a note instead of a warning.

use crate::finding::{Finding, Severity};
use crate::rules::LD201;
use crate::yaml::Node;

/// A container port: its number and name, as strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Port {
    /// `containerPort`.
    pub number: String,
    /// `name`, if any.
    pub name: Option<String>,
}

/// A container LD201 waits on a Service for: one without `ports` that a
/// Service would send to, or one whose only ports are its probes' (LD201
/// only if a Service selecting its pod targets one of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pending {
    /// The container's name, and where it is.
    pub name: String,
    pub line: usize,
    pub column: usize,
    /// Its ports (none: any Service selecting the pod sends to it).
    pub ports: Vec<Port>,
    /// Its image, for the datastore note.
    pub image: String,
}

/// The ports of a container.
pub(super) fn ports(container: &Node) -> Vec<Port> {
    container
        .get("ports")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .map(|p| Port {
            number: p
                .get("containerPort")
                .and_then(Node::as_str)
                .unwrap_or_default()
                .to_owned(),
            name: p.get("name").and_then(Node::as_str).map(str::to_owned),
        })
        .collect()
}

/// Whether every port of `container` is one its probes use (by number or
/// name), so only the kubelet sends to it.
pub(super) fn probe_only(container: &Node, ports: &[Port]) -> bool {
    let probed: Vec<&str> = ["livenessProbe", "readinessProbe", "startupProbe"]
        .iter()
        .filter_map(|probe| container.get(probe))
        .flat_map(|probe| {
            ["httpGet", "tcpSocket", "grpc"]
                .iter()
                .filter_map(move |kind| probe.at(&[kind, "port"]))
        })
        .filter_map(Node::as_str)
        .collect();
    !ports.is_empty()
        && ports.iter().all(|p| {
            probed
                .iter()
                .any(|q| *q == p.number || Some(*q) == p.name.as_deref())
        })
}

/// Whether a Service port's `targetPort` (or its `port`, when unset)
/// reaches one of `ports`.
pub(super) fn targets(targets: &[String], ports: &[Port]) -> bool {
    targets.iter().any(|t| {
        ports
            .iter()
            .any(|p| *t == p.number || Some(t.as_str()) == p.name.as_deref())
    })
}

/// Images of datastores and brokers: their clients fail while a single
/// replica restarts, whatever preStop does.
const DATASTORES: &[&str] = &[
    "postgres",
    "postgresql",
    "mysql",
    "mariadb",
    "mongo",
    "mongodb",
    "redis",
    "valkey",
    "keydb",
    "memcached",
    "elasticsearch",
    "opensearch",
    "cassandra",
    "scylla",
    "couchdb",
    "neo4j",
    "influxdb",
    "clickhouse",
    "etcd",
    "zookeeper",
    "kafka",
    "cp-kafka",
    "rabbitmq",
    "nats",
    "pulsar",
    "activemq",
    "artemis",
    "minio",
    "cockroach",
    "timescaledb",
    "mosquitto",
    "emqx",
    "redpanda",
];

/// Whether `image` is a datastore's or a broker's (not an exporter, proxy
/// or operator named after one).
pub(super) fn is_datastore(image: &str) -> bool {
    let repo = image.split(['@', ':']).next().unwrap_or(image);
    let name = repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase();
    let helper = [
        "exporter", "operator", "proxy", "client", "ui", "admin", "backup",
    ]
    .iter()
    .any(|h| name.contains(h));
    !helper
        && DATASTORES
            .iter()
            .any(|d| name == *d || name.starts_with(&format!("{d}-")))
}

/// LD201 for a container, as a warning; as a note for a single replica
/// of a datastore or broker.
pub(super) fn ld201(
    path: &str,
    at: (usize, usize),
    image: &str,
    single: bool,
    warning: String,
) -> Finding {
    let (severity, message) = if single && is_datastore(image) {
        (Severity::Info, format!("{image} runs as a single replica: while it stops and restarts its clients fail whatever preStop does, so a preStop sleep cannot save them; run replicas with failover (an operator, a replicated StatefulSet) if that downtime matters"))
    } else {
        (LD201.severity, warning)
    };
    Finding {
        rule: LD201.id,
        severity,
        path: path.to_owned(),
        line: at.0,
        column: at.1,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_stream;

    #[test]
    fn probe_ports_and_datastores() {
        let c = &parse_stream("ports: [{name: health, containerPort: 8081}]\nlivenessProbe: {httpGet: {path: /healthz, port: health}}\n").expect("yaml")[0];
        assert!(probe_only(c, &ports(c)));
        let c = &parse_stream("ports: [{containerPort: 8080}, {containerPort: 8081}]\nreadinessProbe: {tcpSocket: {port: 8081}}\n").expect("yaml")[0];
        assert!(!probe_only(c, &ports(c)));
        assert!(is_datastore("postgres:16.4"));
        assert!(is_datastore("docker.io/bitnami/redis:7.2"));
        assert!(!is_datastore("prometheuscommunity/postgres-exporter:v0.15"));
        assert!(!is_datastore("example/shop-api:1"));
    }
}
