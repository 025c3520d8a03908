//! The drain delay: how long the stop is held back so balancers can notice.

use std::fmt;
use std::time::Duration;

use crate::duration::format_duration;

/// How long to keep serving after the stop was asked for, and why that long.
///
/// Endpoint controllers, kube-proxy and cloud load balancers remove a
/// terminating pod at their own pace, while the kubelet already sent SIGTERM.
/// Traffic that still arrives in that window is lost if the app stopped
/// accepting. The delay covers that window; inside Kubernetes it defaults to
/// the 5 seconds the usual preStop `sleep 5` gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainDelay {
    /// The delay.
    pub delay: Duration,
    /// Where it came from.
    pub source: DrainDelaySource,
}

/// Where a [`DrainDelay`] came from, for the start-up log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainDelaySource {
    /// Given by the user.
    Configured,
    /// The default inside Kubernetes (`KUBERNETES_SERVICE_HOST` is set).
    KubernetesDefault,
    /// The default outside Kubernetes: no balancer to wait for.
    LocalDefault,
}

// === impl DrainDelay ===

impl DrainDelay {
    /// The default delay inside Kubernetes.
    pub const KUBERNETES_DEFAULT: Duration = Duration::from_secs(5);

    /// Picks the delay: the configured one if any, else 5s when
    /// `kubernetes_service_host` (the value of `KUBERNETES_SERVICE_HOST`) is
    /// set and non-empty, else none.
    pub fn resolve(configured: Option<Duration>, kubernetes_service_host: Option<&str>) -> Self {
        match (configured, kubernetes_service_host) {
            (Some(delay), _) => DrainDelay {
                delay,
                source: DrainDelaySource::Configured,
            },
            (None, Some(host)) if !host.is_empty() => DrainDelay {
                delay: Self::KUBERNETES_DEFAULT,
                source: DrainDelaySource::KubernetesDefault,
            },
            (None, _) => DrainDelay {
                delay: Duration::ZERO,
                source: DrainDelaySource::LocalDefault,
            },
        }
    }
}

impl fmt::Display for DrainDelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.source {
            DrainDelaySource::Configured => "configured",
            DrainDelaySource::KubernetesDefault => {
                "default inside Kubernetes, KUBERNETES_SERVICE_HOST is set"
            }
            DrainDelaySource::LocalDefault => "default outside Kubernetes",
        };
        write!(f, "{} ({why})", format_duration(self.delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_gets_five_seconds_elsewhere_none() {
        let k8s = DrainDelay::resolve(None, Some("10.0.0.1"));
        assert_eq!(k8s.delay, Duration::from_secs(5));
        assert!(k8s.to_string().contains("KUBERNETES_SERVICE_HOST"));
        assert_eq!(DrainDelay::resolve(None, None).delay, Duration::ZERO);
        assert_eq!(DrainDelay::resolve(None, Some("")).delay, Duration::ZERO);
    }

    #[test]
    fn configured_wins() {
        let d = DrainDelay::resolve(Some(Duration::from_secs(2)), Some("10.0.0.1"));
        assert_eq!(d.delay, Duration::from_secs(2));
        assert_eq!(d.to_string(), "2s (configured)");
    }
}
