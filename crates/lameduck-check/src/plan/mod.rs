//! What a rehearsal does: the pods, the balancer in front of them, the way
//! Kubernetes ends them, and the load. Built by the CLI from its flags and
//! checked before anything starts.

use std::fmt;
use std::time::Duration;

use lameduck_core::Signal;

/// How pods are taken out of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// For each old replica start a new one, wait until it is ready, then
    /// delete the old one: a Deployment with maxSurge 1, maxUnavailable 0.
    Rolling,
    /// Delete the first of the replicas; nothing replaces it.
    Delete,
}

/// How the emulated balancer treats a pod whose endpoint is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BalancerMode {
    /// kube-proxy with iptables: no new connections after the lag;
    /// established ones keep flowing (conntrack) until the pod is gone.
    KubeProxy,
    /// A load balancer without graceful shutdown: removal also resets the
    /// established connections.
    Reset,
    /// A load balancer with graceful shutdown: established connections are
    /// kept until they end or the pod is gone.
    Graceful,
}

impl fmt::Display for BalancerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BalancerMode::KubeProxy => "kube-proxy",
            BalancerMode::Reset => "reset",
            BalancerMode::Graceful => "graceful",
        })
    }
}

/// How readiness is probed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// A TCP connect to the app's port.
    Tcp,
    /// An HTTP GET; 200 to 399 is ready.
    Http {
        /// The port to probe; `None` is the app's port.
        port: Option<u16>,
        /// The path, starting with `/`.
        path: String,
    },
}

/// A readinessProbe: what, how often, and after how many failures the pod
/// is taken out of the endpoints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Readiness {
    /// What is probed.
    pub probe: Probe,
    /// `periodSeconds`.
    #[serde(serialize_with = "crate::report::ser_ms")]
    pub period: Duration,
    /// `failureThreshold`.
    pub failure_threshold: u32,
}

/// Where pods live on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// Each pod has a network namespace and an address of its own, and
    /// every pod binds the same port (needs root).
    Namespace,
    /// Pods share the loopback interface, each on a port of its own.
    Loopback,
}

/// The kind of a long-lived session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    /// A WebSocket that sends a text message every 100 ms and expects it
    /// back.
    Websocket,
    /// A TCP connection that sends a line every 100 ms and expects it back.
    Tcp,
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionKind::Websocket => "WebSocket",
            SessionKind::Tcp => "TCP",
        })
    }
}

/// The HTTP load.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HttpLoad {
    /// Keep-alive clients, each with one connection at a time.
    pub clients: usize,
    /// Requests per second over all clients; `None` sends as fast as the
    /// answers come.
    pub rps: Option<u32>,
    /// The share of requests sent on a fresh connection.
    pub new_connection_ratio: f64,
    /// HTTP/2 (prior knowledge, h2c) instead of HTTP/1.1.
    pub http2: bool,
    /// The path requested.
    pub path: String,
    /// How long an answer may take before it counts as timed out.
    #[serde(serialize_with = "crate::report::ser_ms")]
    pub timeout: Duration,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
}

/// The whole rehearsal.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plan {
    /// The pod's command; `{port}` in it is replaced by the pod's port.
    pub command: Vec<String>,
    /// The port the app listens on (in every pod when each has its own
    /// address).
    pub port: u16,
    /// Replicas before the scenario starts.
    pub replicas: usize,
    /// What happens to them.
    pub scenario: Scenario,
    /// The balancer's behaviour at removal.
    pub balancer: BalancerMode,
    /// How long after a change the balancer applies it.
    #[serde(serialize_with = "crate::report::ser_ms")]
    pub endpoint_lag: Duration,
    /// terminationGracePeriodSeconds, counted from the start of preStop.
    #[serde(serialize_with = "crate::report::ser_ms")]
    pub grace_period: Duration,
    /// A preStop exec hook, run with `sh -c` inside the pod.
    pub pre_stop: Option<String>,
    /// The signal the kubelet sends to PID 1.
    #[serde(serialize_with = "ser_signal")]
    pub stop_signal: Signal,
    /// Readiness.
    pub readiness: Readiness,
    /// Where pods live.
    pub network: Network,
    /// The HTTP load; `clients == 0` sends none.
    pub http: HttpLoad,
    /// Long-lived sessions.
    pub sessions: Vec<(SessionKind, usize)>,
    /// The path of WebSocket sessions.
    pub websocket_path: String,
    /// How long pods get to become ready.
    #[serde(serialize_with = "crate::report::ser_ms")]
    pub start_timeout: Duration,
    /// Load before the first pod is ended.
    #[serde(serialize_with = "crate::report::ser_ms")]
    pub warmup: Duration,
    /// Load after the last deleted pod has exited.
    #[serde(serialize_with = "crate::report::ser_ms")]
    pub settle: Duration,
    /// Where the balancer listens, for load of the user's own besides (or
    /// instead of) the rehearsal's; `None` is a free port on loopback.
    pub balancer_listen: Option<std::net::SocketAddr>,
}

fn ser_signal<S: serde::Serializer>(signal: &Signal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&signal.to_string())
}

/// A plan that cannot run, with what to change.
#[derive(Debug)]
pub struct PlanError(pub String);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

impl Plan {
    /// Checks what flags alone cannot.
    pub fn validate(&self) -> Result<(), PlanError> {
        let fail = |m: String| Err(PlanError(m));
        if self.command.is_empty() {
            return fail("no command: give the app's command after `--`".into());
        }
        if self.replicas == 0 {
            return fail("--replicas must be at least 1".into());
        }
        if self.replicas > 60 {
            return fail("--replicas is at most 60 on one machine".into());
        }
        if !(0.0..=1.0).contains(&self.http.new_connection_ratio) {
            return fail(format!(
                "--new-connection-ratio must be between 0 and 1, not {}",
                self.http.new_connection_ratio
            ));
        }
        if self.grace_period.is_zero() {
            return fail("--grace-period must be longer than 0s".into());
        }
        if self.readiness.period.is_zero() {
            return fail("--readiness-period must be longer than 0s".into());
        }
        if self.readiness.failure_threshold == 0 {
            return fail("--readiness-failure-threshold must be at least 1".into());
        }
        for path in [&self.http.path, &self.websocket_path] {
            if !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err() {
                return fail(format!(
                    "`{path}` is not a request path: it starts with `/` and has no spaces"
                ));
            }
        }
        if self.http.clients == 0
            && self.sessions.iter().all(|(_, n)| *n == 0)
            && self.balancer_listen.is_none()
        {
            return fail(
                "no load: give --clients or --long, or --balancer-listen and send your own".into(),
            );
        }
        if let (Network::Loopback, Probe::Http { port: Some(p), .. }) =
            (self.network, &self.readiness.probe)
        {
            if *p != self.port {
                return fail(format!(
                    "--readiness names port {p}, but on loopback each pod has a port of its own: \
                     probe the app's port, or run as root for a network namespace per pod"
                ));
            }
        }
        Ok(())
    }
}
