//! The `LAMEDUCK_*` variables of the timing, read in one place: their names
//! (which the CLI's flags read as their environment twins) and
//! [`Settings::from_vars`], the one reader of them for the library.

use std::fmt;
use std::time::Duration;

use super::{in_kubernetes, DelaySetting, Settings};
use crate::delay::AutoDelay;
use crate::duration;

/// `--grace-period`.
pub const GRACE_PERIOD: &str = "LAMEDUCK_GRACE_PERIOD";
/// `--safety-margin`.
pub const SAFETY_MARGIN: &str = "LAMEDUCK_SAFETY_MARGIN";
/// `--drain-delay`: a duration or `auto`.
pub const DRAIN_DELAY: &str = "LAMEDUCK_DRAIN_DELAY";
/// `--quiet-period`.
pub const QUIET_PERIOD: &str = "LAMEDUCK_QUIET_PERIOD";
/// `--drain-delay-min`.
pub const DRAIN_DELAY_MIN: &str = "LAMEDUCK_DRAIN_DELAY_MIN";
/// `--drain-delay-max`.
pub const DRAIN_DELAY_MAX: &str = "LAMEDUCK_DRAIN_DELAY_MAX";
/// Set by Kubernetes in every container: the default delay is 5s there.
pub const KUBERNETES_SERVICE_HOST: &str = "KUBERNETES_SERVICE_HOST";

/// A `LAMEDUCK_*` variable that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.variable, self.value, self.reason)
    }
}

impl std::error::Error for EnvError {}

// === impl Settings ===

impl Settings {
    /// Reads the settings from `LAMEDUCK_GRACE_PERIOD`,
    /// `LAMEDUCK_SAFETY_MARGIN`, `LAMEDUCK_DRAIN_DELAY` (a duration or
    /// `auto`), `LAMEDUCK_QUIET_PERIOD`, `LAMEDUCK_DRAIN_DELAY_MIN`,
    /// `LAMEDUCK_DRAIN_DELAY_MAX` and `KUBERNETES_SERVICE_HOST`, through
    /// `var` (`|name| std::var(name).ok()` for the process's own).
    /// Unset ones keep their defaults.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let duration = |variable: &'static str| -> Result<Option<Duration>, EnvError> {
            var(variable)
                .map(|value| {
                    duration::parse(&value).map_err(|e| EnvError {
                        variable,
                        reason: e.to_string(),
                        value,
                    })
                })
                .transpose()
        };
        let mut settings = Settings {
            kubernetes: in_kubernetes(var(KUBERNETES_SERVICE_HOST).as_deref()),
            safety_margin: duration(SAFETY_MARGIN)?,
            ..Settings::default()
        };
        if let Some(grace) = duration(GRACE_PERIOD)? {
            settings.grace_period = grace;
        }
        settings.drain_delay = match var(DRAIN_DELAY).as_deref().map(str::trim) {
            Some("auto") => DelaySetting::Auto {
                quiet: duration(QUIET_PERIOD)?.unwrap_or(AutoDelay::DEFAULT_QUIET),
                min: duration(DRAIN_DELAY_MIN)?,
                max: duration(DRAIN_DELAY_MAX)?,
            },
            Some(_) => duration(DRAIN_DELAY)?.map_or(DelaySetting::Default, DelaySetting::Fixed),
            None => DelaySetting::Default,
        };
        Ok(settings)
    }
}
