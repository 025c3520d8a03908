//! How a balancer treats endpoints that leave, as choices over the one
//! engine: `lameduck balance` keeps established connections for a bounded
//! time; a kube-proxy keeps them as long as conntrack does; a balancer
//! without graceful shutdown resets them.

use std::time::Duration;

/// How new connections are spread over the ready endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// The one with fewer open connections of two picked at random (the
    /// power of two choices): near least-connections without a global scan
    /// and without a herd on the newest endpoint.
    #[default]
    LeastConnections,
    /// Each in turn.
    RoundRobin,
}

impl std::str::FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "least-connections" | "leastconn" => Ok(Algorithm::LeastConnections),
            "round-robin" | "roundrobin" => Ok(Algorithm::RoundRobin),
            _ => Err(format!(
                "unknown algorithm {s:?}: use least-connections or round-robin"
            )),
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::LeastConnections => "least-connections",
            Algorithm::RoundRobin => "round-robin",
        })
    }
}

/// What established connections to an endpoint get once it stops serving
/// or leaves the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnLeave {
    /// They run on until either side closes them (kube-proxy: conntrack
    /// entries outlive the rule that made them).
    Keep,
    /// They run on until either side closes them, and are closed after this
    /// long (`--drain-timeout`).
    CloseAfter(Duration),
    /// Both sides get a reset at once, as soon as the endpoint is not ready
    /// (terminating included): a balancer that drops a backend without
    /// graceful shutdown.
    Reset,
}

/// The choices a balancer makes over the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// How new connections are spread.
    pub algorithm: Algorithm,
    /// Whether serving-and-terminating endpoints take new connections when
    /// no endpoint is ready, as kube-proxy does since 1.26 (KEP-1669).
    pub fallback_to_terminating: bool,
    /// What established connections get when their endpoint leaves.
    pub on_leave: OnLeave,
    /// How long an endpoint whose connect failed is passed over.
    pub ejection: Duration,
}

// === impl Policy ===

impl Policy {
    /// kube-proxy since 1.26: round robin (iptables' random pick is the
    /// nearest), terminating endpoints as a fallback only, established
    /// connections kept by conntrack after the rule is gone.
    pub fn kube_proxy() -> Self {
        Policy {
            algorithm: Algorithm::RoundRobin,
            fallback_to_terminating: true,
            on_leave: OnLeave::Keep,
            ejection: Duration::ZERO,
        }
    }

    /// A balancer without graceful shutdown: a backend that leaves has its
    /// connections reset at once, and no terminating backend is ever used.
    pub fn reset() -> Self {
        Policy {
            algorithm: Algorithm::RoundRobin,
            fallback_to_terminating: false,
            on_leave: OnLeave::Reset,
            ejection: Duration::ZERO,
        }
    }

    /// Graceful shutdown (a terminating backend's weight set to 0): its
    /// established connections are kept until they end, or for
    /// `drain_timeout` once it left.
    pub fn graceful(drain_timeout: Duration) -> Self {
        Policy {
            on_leave: OnLeave::CloseAfter(drain_timeout),
            ..Policy::default()
        }
    }
}

impl Default for Policy {
    /// `lameduck balance`'s defaults: least connections, fallback, a 5
    /// minute drain timeout, 10s of ejection.
    fn default() -> Self {
        Policy {
            algorithm: Algorithm::LeastConnections,
            fallback_to_terminating: true,
            on_leave: OnLeave::CloseAfter(Duration::from_secs(300)),
            ejection: Duration::from_secs(10),
        }
    }
}
