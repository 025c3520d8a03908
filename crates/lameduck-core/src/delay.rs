//! The drain delay: how long the stop is held back so balancers can notice.

use std::fmt;
use std::time::{Duration, Instant};

use crate::duration::{deadline_after, format as format_duration};

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

    /// Picks the delay: the configured one if any, else 5s inside
    /// Kubernetes (`KUBERNETES_SERVICE_HOST` set and not empty, see
    /// [`in_kubernetes`](crate::timing::in_kubernetes)), else none.
    pub fn resolve(configured: Option<Duration>, kubernetes: bool) -> Self {
        match (configured, kubernetes) {
            (Some(delay), _) => DrainDelay {
                delay,
                source: DrainDelaySource::Configured,
            },
            (None, true) => DrainDelay {
                delay: Self::KUBERNETES_DEFAULT,
                source: DrainDelaySource::KubernetesDefault,
            },
            (None, false) => DrainDelay {
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

/// A drain delay that ends when the balancers have in fact stopped sending:
/// once no new connection has arrived for `quiet`, but never before `min`
/// nor after `max` (counted from the start of the drain).
///
/// A fixed delay is a guess: too short and late traffic is refused, too long
/// and every rollout waits for nothing. Watching the arrivals measures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoDelay {
    /// How long without a new connection counts as "the balancers stopped".
    pub quiet: Duration,
    /// The shortest delay, whatever the arrivals.
    pub min: Duration,
    /// The longest delay, whatever the arrivals.
    pub max: Duration,
}

// === impl AutoDelay ===

impl AutoDelay {
    /// The default quiet period.
    pub const DEFAULT_QUIET: Duration = Duration::from_secs(1);

    /// Defaults: quiet 1s, at least 1s, at most 30s (less when the budget is
    /// smaller; see [`AutoDelay::capped`]).
    pub fn new(quiet: Duration) -> Self {
        AutoDelay {
            quiet,
            min: quiet,
            max: Duration::from_secs(30),
        }
    }

    /// The same delay with `max` no longer than `cap` (and `min` no longer
    /// than `max`).
    pub fn capped(self, cap: Duration) -> Self {
        let max = self.max.min(cap);
        AutoDelay {
            min: self.min.min(max),
            max,
            ..self
        }
    }

    /// When the delay ends for a drain that began at `start` and whose latest
    /// new connection came at `last_arrival` (if any came since `start`).
    pub fn ends_at(&self, start: Instant, last_arrival: Option<Instant>) -> Instant {
        let quiet_from = last_arrival.filter(|t| *t > start).unwrap_or(start);
        deadline_after(quiet_from, self.quiet)
            .max(deadline_after(start, self.min))
            .min(deadline_after(start, self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_gets_five_seconds_elsewhere_none() {
        let k8s = DrainDelay::resolve(None, true);
        assert_eq!(k8s.delay, Duration::from_secs(5));
        assert!(k8s.to_string().contains("KUBERNETES_SERVICE_HOST"));
        assert_eq!(DrainDelay::resolve(None, false).delay, Duration::ZERO);
    }

    #[test]
    fn configured_wins() {
        let d = DrainDelay::resolve(Some(Duration::from_secs(2)), true);
        assert_eq!(d.delay, Duration::from_secs(2));
        assert_eq!(d.to_string(), "2s (configured)");
    }

    #[test]
    fn auto_delay_waits_for_a_quiet_period_within_bounds() {
        let d = AutoDelay {
            quiet: Duration::from_secs(1),
            min: Duration::from_secs(2),
            max: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(d.ends_at(t0, None), t0 + s(2), "min when nothing arrives");
        assert_eq!(
            d.ends_at(t0, Some(t0 + s(3))),
            t0 + s(4),
            "quiet after the last"
        );
        assert_eq!(
            d.ends_at(t0, Some(t0 + s(30))),
            t0 + s(10),
            "never past max"
        );
        assert_eq!(
            d.ends_at(t0 + s(5), Some(t0)),
            t0 + s(7),
            "arrivals before the start do not count"
        );
        let capped = d.capped(s(1));
        assert_eq!((capped.min, capped.max), (s(1), s(1)));
    }
}
