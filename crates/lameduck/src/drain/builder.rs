//! Building a [`Drain`]: from defaults, from `LAMEDUCK_*` variables, or by
//! hand.

use std::fmt;
use std::time::Duration;

use lameduck_core::{parse_duration, AutoDelay, Budget, DrainDelay};

use super::{Delay, Drain, Timing};

/// Builds a [`Drain`]. Start from [`Drain::builder`] or [`Builder::from_env`].
///
/// ```
/// use std::time::Duration;
/// use lameduck::Drain;
///
/// let drain = Drain::builder()
///     .drain_delay(Duration::from_secs(5))
///     .grace_period(Duration::from_secs(30))
///     .build();
/// // Connections still open 2s (the safety margin) and 1s (to say goodbye)
/// // before the kubelet's SIGKILL are closed.
/// assert_eq!(drain.timing().deadline, Duration::from_secs(27));
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    delay: Option<Delay>,
    grace_period: Duration,
    safety_margin: Option<Duration>,
    close_grace: Duration,
}

/// A `LAMEDUCK_*` variable that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.variable, self.value, self.reason)
    }
}

impl std::error::Error for ConfigError {}

// === impl Builder ===

impl Default for Builder {
    fn default() -> Self {
        Builder {
            delay: None,
            grace_period: Budget::DEFAULT_GRACE_PERIOD,
            safety_margin: None,
            close_grace: Duration::from_secs(1),
        }
    }
}

impl Builder {
    /// Keep accepting for `delay` after the drain began, while balancers
    /// catch up. Default: 5s when `KUBERNETES_SERVICE_HOST` is set, else 0.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(Delay::Fixed(delay));
        self
    }

    /// Keep accepting until no new connection came for a quiet period
    /// (noted by [`accept_until_closing`](crate::accept_until_closing)).
    pub fn auto_delay(mut self, auto: AutoDelay) -> Self {
        self.delay = Some(Delay::Auto(auto));
        self
    }

    /// The pod's `terminationGracePeriodSeconds`, less any preStop hook.
    /// Default: 30s.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// Time kept free before the kubelet's SIGKILL. Default: 2s, or a
    /// quarter of a grace period under 8s.
    pub fn safety_margin(mut self, margin: Duration) -> Self {
        self.safety_margin = Some(margin);
        self
    }

    /// How long connections get at the deadline to say goodbye (a
    /// WebSocket close handshake). Default: 1s.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// Reads `LAMEDUCK_DRAIN_DELAY` (a duration or `auto`),
    /// `LAMEDUCK_QUIET_PERIOD`, `LAMEDUCK_GRACE_PERIOD` and
    /// `LAMEDUCK_SAFETY_MARGIN`, as `lameduck run` does; unset ones keep
    /// their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Builder::from_env), reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let duration = |variable: &'static str| -> Result<Option<Duration>, ConfigError> {
            var(variable)
                .map(|value| {
                    parse_duration(&value).map_err(|e| ConfigError {
                        variable,
                        reason: e.to_string(),
                        value,
                    })
                })
                .transpose()
        };
        let mut builder = Builder::default();
        if let Some(grace) = duration("LAMEDUCK_GRACE_PERIOD")? {
            builder = builder.grace_period(grace);
        }
        builder.safety_margin = duration("LAMEDUCK_SAFETY_MARGIN")?;
        let quiet = duration("LAMEDUCK_QUIET_PERIOD")?.unwrap_or(AutoDelay::DEFAULT_QUIET);
        builder.delay = match var("LAMEDUCK_DRAIN_DELAY").as_deref() {
            Some("auto") => Some(Delay::Auto(AutoDelay::new(quiet))),
            Some(_) => duration("LAMEDUCK_DRAIN_DELAY")?.map(Delay::Fixed),
            None => None,
        };
        Ok(builder)
    }

    /// The timing the drain will follow: the deadline is the grace period
    /// less the safety margin and the close grace.
    pub fn timing(&self) -> Timing {
        let mut budget = Budget::new(self.grace_period);
        if let Some(margin) = self.safety_margin {
            budget = budget.with_margin(margin);
        }
        let deadline = budget.app_timeout().saturating_sub(self.close_grace);
        let delay = self.delay.unwrap_or_else(|| {
            let k8s = std::env::var("KUBERNETES_SERVICE_HOST").ok();
            Delay::Fixed(DrainDelay::resolve(None, k8s.as_deref()).delay)
        });
        let delay = match delay {
            Delay::Auto(auto) => Delay::Auto(auto.capped(deadline)),
            fixed => fixed,
        };
        Timing {
            delay,
            deadline,
            close_grace: self.close_grace.min(budget.app_timeout()),
        }
    }

    /// The drain.
    pub fn build(self) -> Drain {
        Drain::with_timing(self.timing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn variables_set_the_timing_as_lameduck_run_reads_them() {
        let b = Builder::from_vars(vars(&[
            ("LAMEDUCK_DRAIN_DELAY", "3s"),
            ("LAMEDUCK_GRACE_PERIOD", "10s"),
        ]))
        .expect("valid");
        let t = b.timing();
        assert_eq!(t.delay, Delay::Fixed(Duration::from_secs(3)));
        // 10s less the 2s margin less the 1s close grace.
        assert_eq!(t.deadline, Duration::from_secs(7));
        let auto = Builder::from_vars(vars(&[
            ("LAMEDUCK_DRAIN_DELAY", "auto"),
            ("LAMEDUCK_QUIET_PERIOD", "500ms"),
        ]))
        .expect("valid")
        .timing();
        assert!(matches!(auto.delay, Delay::Auto(a) if a.quiet == Duration::from_millis(500)));
    }

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let e =
            Builder::from_vars(vars(&[("LAMEDUCK_GRACE_PERIOD", "soon")])).expect_err("invalid");
        assert_eq!(e.variable, "LAMEDUCK_GRACE_PERIOD");
        assert!(
            e.to_string()
                .starts_with("LAMEDUCK_GRACE_PERIOD=\"soon\": "),
            "{e}"
        );
    }
}
