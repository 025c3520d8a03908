//! Building a [`Drain`]: from defaults, from `LAMEDUCK_*` variables, or by
//! hand. Whichever way, the timing comes from
//! [`Settings::plan`](lameduck_core::Settings::plan), the one timing model
//! `lameduck run` and the drain proxy follow too.

use std::fmt;
use std::time::Duration;

use lameduck_core::timing::{in_kubernetes, EnvError, TimingError};
use lameduck_core::{AutoDelay, DelaySetting, Settings, MAX_DURATION};
use tracing::error;

use super::{Drain, Timing};

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
/// // Connections still open 23s after the stop began are told to go away:
/// // 2s (the safety margin) before the kubelet's SIGKILL, the app keeps 5s
/// // to stop once idle, as it would behind `lameduck run`.
/// assert_eq!(drain.timing().deadline, Duration::from_secs(23));
/// assert_eq!(drain.timing().deadline, Drain::new().timing().deadline);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    settings: Settings,
}

/// Why a [`Drain`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A `LAMEDUCK_*` variable could not be read.
    Env(EnvError),
    /// The settings cannot make a plan (a duration beyond
    /// [`MAX_DURATION`], an auto delay whose shortest is longer than its
    /// longest).
    Timing(TimingError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Env(e) => e.fmt(f),
            ConfigError::Timing(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConfigError {}

// === impl Builder ===

impl Default for Builder {
    /// The defaults of `lameduck run`: a 30s grace period, and a 5s delay
    /// when `KUBERNETES_SERVICE_HOST` is set (else none).
    fn default() -> Self {
        let host = std::env::var(lameduck_core::timing::env::KUBERNETES_SERVICE_HOST).ok();
        Builder {
            settings: Settings {
                kubernetes: in_kubernetes(host.as_deref()),
                ..Settings::default()
            },
        }
    }
}

impl Builder {
    /// Keep accepting for `delay` after the drain began, while balancers
    /// catch up. Default: 5s when `KUBERNETES_SERVICE_HOST` is set, else 0.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.settings.drain_delay = DelaySetting::Fixed(delay);
        self
    }

    /// Keep accepting until no new connection came for a quiet period
    /// (noted by [`accept_until_closing`](crate::accept_until_closing)).
    pub fn auto_delay(mut self, auto: AutoDelay) -> Self {
        self.settings.drain_delay = DelaySetting::Auto {
            quiet: auto.quiet,
            min: Some(auto.min),
            max: Some(auto.max),
        };
        self
    }

    /// The pod's `terminationGracePeriodSeconds`, less any preStop hook.
    /// Default: 30s.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.settings.grace_period = grace;
        self
    }

    /// Time kept free before the kubelet's SIGKILL. Default: 2s, or a
    /// quarter of a grace period under 8s.
    pub fn safety_margin(mut self, margin: Duration) -> Self {
        self.settings.safety_margin = Some(margin);
        self
    }

    /// How long connections get at the deadline to say goodbye (a
    /// WebSocket close handshake). Default: 1s.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.settings.close_grace = Some(grace);
        self
    }

    /// Reads `LAMEDUCK_GRACE_PERIOD`, `LAMEDUCK_SAFETY_MARGIN`,
    /// `LAMEDUCK_DRAIN_DELAY` (a duration or `auto`),
    /// `LAMEDUCK_QUIET_PERIOD`, `LAMEDUCK_DRAIN_DELAY_MIN`,
    /// `LAMEDUCK_DRAIN_DELAY_MAX` and `KUBERNETES_SERVICE_HOST`, as
    /// `lameduck run` does; unset ones keep their defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Builder::from_env), reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Settings::from_vars(var)
            .map(|settings| Builder { settings })
            .map_err(ConfigError::Env)
    }

    /// The settings the timing is planned from.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// The timing the drain will follow, or why there is none.
    pub fn try_timing(&self) -> Result<Timing, ConfigError> {
        self.settings
            .plan()
            .map(|plan| Timing::from(&plan))
            .map_err(ConfigError::Timing)
    }

    /// The timing the drain will follow; see [`Builder::build`] for
    /// settings that cannot make a plan.
    pub fn timing(&self) -> Timing {
        match self.try_timing() {
            Ok(timing) => timing,
            Err(e) => {
                error!("{e}; every duration is capped at 8760h and an auto delay's shortest at its longest instead");
                let repaired = repair(self.settings);
                repaired
                    .plan()
                    .map(|plan| Timing::from(&plan))
                    .unwrap_or_default()
            }
        }
    }

    /// The drain, or why the settings cannot make one.
    pub fn try_build(self) -> Result<Drain, ConfigError> {
        self.try_timing().map(Drain::with_timing)
    }

    /// The drain. Settings that cannot make a plan (a duration beyond
    /// [`MAX_DURATION`], an auto delay whose shortest is longer than its
    /// longest) are logged as an error and repaired: every duration capped
    /// at `MAX_DURATION`, the shortest auto delay at the longest. Use
    /// [`try_build`](Builder::try_build) to refuse them instead.
    pub fn build(self) -> Drain {
        Drain::with_timing(self.timing())
    }
}

/// Settings within the bound and in order, for [`Builder::build`].
fn repair(mut s: Settings) -> Settings {
    let cap = |d: Duration| d.min(MAX_DURATION);
    s.grace_period = cap(s.grace_period);
    s.safety_margin = s.safety_margin.map(cap);
    s.close_grace = s.close_grace.map(cap);
    s.drain_delay = match s.drain_delay {
        DelaySetting::Fixed(d) => DelaySetting::Fixed(cap(d)),
        DelaySetting::Auto { quiet, min, max } => {
            let max = max.map(cap);
            let longest = max.unwrap_or(Settings::DEFAULT_AUTO_MAX);
            DelaySetting::Auto {
                quiet: cap(quiet),
                min: Some(cap(min.unwrap_or(quiet)).min(longest)),
                max,
            }
        }
        DelaySetting::Default => DelaySetting::Default,
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drain::Delay;

    #[test]
    fn variables_set_the_timing_as_lameduck_run_reads_them() {
        let b = Builder::from_vars(|name| match name {
            "LAMEDUCK_DRAIN_DELAY" => Some("3s".into()),
            "LAMEDUCK_GRACE_PERIOD" => Some("10s".into()),
            _ => None,
        })
        .expect("valid");
        let t = b.timing();
        assert_eq!(t.delay, Delay::Fixed(Duration::from_secs(3)));
        // 10s less the 2s margin less the 2s (a quarter) the app keeps to stop.
        assert_eq!(t.deadline, Duration::from_secs(6));
        let auto = Builder::from_vars(|name| match name {
            "LAMEDUCK_DRAIN_DELAY" => Some("auto".into()),
            "LAMEDUCK_QUIET_PERIOD" => Some("500ms".into()),
            _ => None,
        })
        .expect("valid")
        .timing();
        assert!(matches!(auto.delay, Delay::Auto(a) if a.quiet == Duration::from_millis(500)));
    }

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let e = Builder::from_vars(|name| (name == "LAMEDUCK_GRACE_PERIOD").then(|| "soon".into()))
            .expect_err("invalid");
        assert!(
            e.to_string()
                .starts_with("LAMEDUCK_GRACE_PERIOD=\"soon\": "),
            "{e}"
        );
    }

    #[test]
    fn new_and_the_builder_agree_on_the_same_defaults() {
        // Issue 11: Drain::new() planned a 23s deadline, the builder 27s.
        let k8s_unset = Builder {
            settings: Settings::default(),
        };
        assert_eq!(k8s_unset.build().timing(), Timing::default());
        assert_eq!(Drain::new().timing(), Drain::builder().build().timing());
    }

    #[test]
    fn the_builder_holds_code_to_the_bound() {
        let e = Drain::builder()
            .grace_period(Duration::MAX)
            .try_build()
            .expect_err("beyond the bound");
        assert!(e.to_string().contains("longer than 8760h"), "{e}");
        // build() repairs and says so, never panics.
        let drain = Drain::builder()
            .grace_period(Duration::MAX)
            .drain_delay(Duration::MAX)
            .build();
        assert!(drain.timing().deadline <= MAX_DURATION);
    }
}
