//! The time budget: every step of a stop is planned backwards from the
//! kubelet's SIGKILL.

use std::time::Duration;

use crate::duration::format as format_duration;

/// The time a stop may take, and how it is shared out.
///
/// The kubelet sends SIGKILL `terminationGracePeriodSeconds` after it began
/// the stop (counted from the start of the preStop hook). lameduck means to be
/// gone before that, on its own terms: what is still running at
/// [`app_timeout`](Budget::app_timeout) is killed, and lameduck itself has
/// exited by [`exit_timeout`](Budget::exit_timeout), so the container's exit
/// code is lameduck's and not the kubelet's 137.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    grace: Duration,
    margin: Duration,
}

// === impl Budget ===

impl Budget {
    /// Kubernetes' default `terminationGracePeriodSeconds`.
    pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);

    /// The largest default safety margin.
    pub const MAX_DEFAULT_MARGIN: Duration = Duration::from_secs(2);

    /// A budget for a grace period, with the default safety margin: 2s, or a
    /// quarter of a grace period shorter than 8s.
    pub fn new(grace: Duration) -> Self {
        let margin = (grace / 4).min(Self::MAX_DEFAULT_MARGIN);
        Budget { grace, margin }
    }

    /// The same budget with another safety margin.
    ///
    /// The margin is capped at the grace period, which leaves no time at all.
    pub fn with_margin(self, margin: Duration) -> Self {
        Budget {
            margin: margin.min(self.grace),
            ..self
        }
    }

    /// The whole grace period.
    pub fn grace_period(&self) -> Duration {
        self.grace
    }

    /// The time kept free before the kubelet's SIGKILL.
    pub fn safety_margin(&self) -> Duration {
        self.margin
    }

    /// Time from the start of the stop until everything still running (the
    /// app, its process group, hooks) is sent SIGKILL.
    pub fn app_timeout(&self) -> Duration {
        self.grace - self.margin
    }

    /// Time from the start of the stop until lameduck has exited: the
    /// post-stop hook gets half of the safety margin when the app used all
    /// of its time.
    pub fn exit_timeout(&self) -> Duration {
        self.grace - self.margin / 2
    }

    /// The largest share of the app's time kept for the app's own stop once
    /// the connections in front of it have drained.
    pub const MAX_APP_STOP_TIME: Duration = Duration::from_secs(5);

    /// Time from the start of the stop until connections still open in front
    /// of the app (WebSockets, streams, TCP sessions) are told to go away and
    /// closed: the app's time less what the app needs to stop once idle
    /// (5s, or a quarter of the app's time when that is shorter).
    pub fn drain_timeout(&self) -> Duration {
        let app = self.app_timeout();
        app - (app / 4).min(Self::MAX_APP_STOP_TIME)
    }

    /// A warning when a drain delay eats the whole time the app has to stop.
    pub fn check_delay(&self, delay: Duration) -> Option<String> {
        (delay >= self.app_timeout()).then(|| {
            format!(
                "the drain delay ({}) leaves the app no time to stop before it is killed ({} into the {} grace period); \
                 shorten --drain-delay or raise --grace-period",
                format_duration(delay),
                format_duration(self.app_timeout()),
                format_duration(self.grace),
            )
        })
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(Self::DEFAULT_GRACE_PERIOD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_kubernetes_default_with_two_seconds_margin() {
        let b = Budget::default();
        assert_eq!(b.grace_period(), Duration::from_secs(30));
        assert_eq!(b.app_timeout(), Duration::from_secs(28));
        assert_eq!(b.exit_timeout(), Duration::from_secs(29));
    }

    #[test]
    fn short_grace_periods_keep_a_quarter_as_margin() {
        let b = Budget::new(Duration::from_secs(4));
        assert_eq!(b.safety_margin(), Duration::from_secs(1));
        assert_eq!(b.app_timeout(), Duration::from_secs(3));
        let zero = Budget::new(Duration::ZERO);
        assert_eq!(zero.app_timeout(), Duration::ZERO);
        assert_eq!(zero.exit_timeout(), Duration::ZERO);
    }

    #[test]
    fn margin_never_exceeds_the_grace_period() {
        let b = Budget::new(Duration::from_secs(1)).with_margin(Duration::from_secs(5));
        assert_eq!(b.safety_margin(), Duration::from_secs(1));
        assert_eq!(b.app_timeout(), Duration::ZERO);
    }

    #[test]
    fn the_app_keeps_time_to_stop_after_the_drain() {
        let b = Budget::default();
        assert_eq!(b.drain_timeout(), Duration::from_secs(23));
        let short = Budget::new(Duration::from_secs(10));
        assert_eq!(short.drain_timeout(), Duration::from_secs(6));
        assert_eq!(Budget::new(Duration::ZERO).drain_timeout(), Duration::ZERO);
    }

    #[test]
    fn a_delay_as_long_as_the_app_timeout_is_warned_about() {
        let b = Budget::new(Duration::from_secs(10));
        assert!(b.check_delay(Duration::from_secs(5)).is_none());
        let warning = b.check_delay(Duration::from_secs(8)).expect("a warning");
        assert!(warning.contains("--grace-period"), "{warning}");
    }
}
