//! What a rehearsal does: the pods, the balancer in front of them, the way
//! Kubernetes ends them, and the load. Built from the command line's
//! settings (and a manifest's pod spec) by [`crate::settings`], and checked
//! once, here, before anything starts.

mod parse;

use std::fmt;
use std::time::Duration;

use lameduck_core::{format_duration, Signal};

pub use parse::{NetworkChoice, SessionSpec};

/// How pods are taken out of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// For each old replica start a new one, wait until it is ready, then
    /// delete the old one: a Deployment with maxSurge 1, maxUnavailable 0.
    Rolling,
    /// Delete the first of the replicas; nothing replaces it.
    Delete,
}

/// How the emulated balancer treats a pod whose endpoint is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The real `lameduck balance` (this executable), fed EndpointSlice
    /// files on the kubelet's timeline: terminating endpoints get no new
    /// connections, refused connects are retried on another pod.
    Lameduck,
}

impl fmt::Display for BalancerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BalancerMode::KubeProxy => "kube-proxy",
            BalancerMode::Reset => "reset",
            BalancerMode::Graceful => "graceful",
            BalancerMode::Lameduck => "lameduck",
        })
    }
}

/// How readiness is probed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Probe {
    /// A TCP connect.
    Tcp {
        /// The port to probe; `None` is the app's port.
        port: Option<u16>,
    },
    /// An HTTP GET; 200 to 399 is ready.
    Http {
        /// The port to probe; `None` is the app's port.
        port: Option<u16>,
        /// The path, starting with `/`.
        path: String,
    },
    /// A command run inside the pod; exit 0 is ready.
    Exec {
        /// The command and its arguments, run as is (no shell added).
        command: Vec<String>,
    },
}

/// A preStop hook, as the kubelet runs it before the stop signal.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PreStop {
    /// A command run inside the pod's namespaces (no shell added).
    Exec {
        /// The command and its arguments.
        command: Vec<String>,
    },
    /// An HTTP GET to the pod; the answer is not looked at.
    HttpGet {
        /// The port; `None` is the app's port.
        port: Option<u16>,
        /// The path, starting with `/`.
        path: String,
    },
    /// The kubelet's own `sleep` action (Kubernetes 1.30+): no command,
    /// no shell needed in the image.
    Sleep {
        /// How long.
        #[serde(with = "crate::report::ms")]
        duration: Duration,
    },
}

impl fmt::Display for PreStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreStop::Exec { command } => match command.as_slice() {
                [sh, c, script] if sh == "sh" && c == "-c" => write!(f, "exec `{script}`"),
                _ => write!(f, "exec `{}`", command.join(" ")),
            },
            PreStop::HttpGet {
                port: Some(p),
                path,
            } => write!(f, "httpGet :{p}{path}"),
            PreStop::HttpGet { port: None, path } => write!(f, "httpGet {path}"),
            PreStop::Sleep { duration } => write!(f, "sleep {}", format_duration(*duration)),
        }
    }
}

/// How a rolling update replaces pods: a Deployment's `maxSurge` and
/// `maxUnavailable`, as pod counts (percentages already rounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rollout {
    /// New pods started above the replica count at once.
    pub max_surge: usize,
    /// Old pods deleted before their replacements are ready.
    pub max_unavailable: usize,
}

impl Default for Rollout {
    /// Kubernetes' default is 25%/25%; the rehearsal's default is the
    /// careful 1/0, which loses nothing to capacity.
    fn default() -> Self {
        Rollout {
            max_surge: 1,
            max_unavailable: 0,
        }
    }
}

/// Where a setting of the plan came from, for the summary.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SettingSource {
    /// The setting, as its flag is named (`--grace-period`).
    pub setting: String,
    /// Its value, as the summary writes it.
    pub value: String,
    /// `command line`, `manifest (FIELD)` or `default`.
    pub from: String,
}

/// A readinessProbe: what, how often, and after how many failures the pod
/// is taken out of the endpoints.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Readiness {
    /// What is probed.
    pub probe: Probe,
    /// `periodSeconds`.
    #[serde(with = "crate::report::ms")]
    pub period: Duration,
    /// `failureThreshold`.
    pub failure_threshold: u32,
}

/// Where pods live on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// Each pod has a network namespace and an address of its own, and
    /// every pod binds the same port (needs root).
    Namespace,
    /// Pods share the loopback interface, each on a port of its own.
    Loopback,
}

/// The kind of a long-lived session.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
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
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
    #[serde(with = "crate::report::ms")]
    pub timeout: Duration,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
}

/// The whole rehearsal.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
    #[serde(with = "crate::report::ms")]
    pub endpoint_lag: Duration,
    /// terminationGracePeriodSeconds, counted from the start of preStop.
    #[serde(with = "crate::report::ms")]
    pub grace_period: Duration,
    /// The preStop hook.
    pub pre_stop: Option<PreStop>,
    /// The container's `env`, set in every pod besides what the kubelet
    /// sets.
    pub env: Vec<(String, String)>,
    /// How a rolling update replaces pods.
    pub rollout: Rollout,
    /// The signal the kubelet sends to PID 1.
    #[serde(with = "signal_name")]
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
    #[serde(with = "crate::report::ms")]
    pub start_timeout: Duration,
    /// Load before the first pod is ended.
    #[serde(with = "crate::report::ms")]
    pub warmup: Duration,
    /// Load after the last deleted pod has exited.
    #[serde(with = "crate::report::ms")]
    pub settle: Duration,
    /// Where the balancer listens, for load of the user's own besides (or
    /// instead of) the rehearsal's; `None` is a free port on loopback.
    pub balancer_listen: Option<std::net::SocketAddr>,
    /// Where each setting came from.
    pub sources: Vec<SettingSource>,
    /// Notes on what was read and how (a manifest's image entrypoint that
    /// could not be read, a field left out).
    pub notes: Vec<String>,
}

/// A signal as its name in JSON (`SIGTERM`), and back.
mod signal_name {
    use lameduck_core::Signal;
    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(signal: &Signal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&signal.to_string())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Signal, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
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
    /// The settings that were given (on the command line or in the
    /// manifest), as `--grace-period 10s (manifest: FIELD)`.
    pub fn given(&self) -> Vec<String> {
        self.sources
            .iter()
            .filter(|s| s.from != "default")
            .map(|s| format!("{} {} ({})", s.setting, s.value, s.from))
            .collect()
    }

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
        if self.scenario == Scenario::Rolling
            && self.rollout.max_surge == 0
            && self.rollout.max_unavailable == 0
        {
            return fail(
                "maxSurge and maxUnavailable cannot both be 0: the rollout could never start"
                    .into(),
            );
        }
        if self.replicas + self.rollout.max_surge > 60 {
            return fail("--replicas and --max-surge make more than 60 pods on one machine".into());
        }
        if !(0.0..=1.0).contains(&self.http.new_connection_ratio) {
            return fail(format!(
                "--new-connection-ratio must be between 0 and 1, not {}",
                self.http.new_connection_ratio
            ));
        }
        for (name, d) in [
            ("--endpoint-lag", self.endpoint_lag),
            ("--grace-period", self.grace_period),
            ("--readiness-period", self.readiness.period),
            ("--timeout", self.http.timeout),
            ("--start-timeout", self.start_timeout),
            ("--warmup", self.warmup),
            ("--settle", self.settle),
        ] {
            if let Err(e) = lameduck_core::duration::check(d) {
                return fail(format!("{name} {}", e));
            }
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
        let probe_port = match &self.readiness.probe {
            Probe::Http { port, .. } | Probe::Tcp { port } => *port,
            Probe::Exec { .. } => None,
        };
        if let (Network::Loopback, Some(p)) = (self.network, probe_port) {
            if p != self.port {
                return fail(format!(
                    "--readiness names port {p}, but on loopback each pod has a port of its own: \
                     probe the app's port, or run as root for a network namespace per pod"
                ));
            }
        }
        Ok(())
    }
}
