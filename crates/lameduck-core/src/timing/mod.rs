//! The one timing model: every part of lameduck (the supervisor, the drain
//! proxy, the library) takes the delay, the drain deadline, the close grace
//! and the kill time of a stop from [`Settings::plan`], so two parts given
//! the same settings can never disagree about when what happens.
//!
//! The settings come from flags (the CLI), from `LAMEDUCK_*` variables
//! ([`Settings::from_vars`], the one reader of those variables) or from the
//! library's builder; each is held to
//! [`MAX_DURATION`](crate::duration::MAX_DURATION).

use std::fmt;
use std::time::{Duration, Instant};

use crate::budget::Budget;
use crate::delay::{AutoDelay, DrainDelay, DrainDelaySource};
use crate::duration::{self, deadline_after, format as format_duration};

pub mod env;

pub use env::EnvError;

/// How long the drain waits before the listeners close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// A fixed time, the built-in preStop sleep.
    Fixed(Duration),
    /// Until no new connection has arrived for a quiet period, within bounds.
    Auto(AutoDelay),
}

impl fmt::Display for Delay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delay::Fixed(d) => f.write_str(&format_duration(*d)),
            Delay::Auto(a) => write!(
                f,
                "auto (quiet {}, {} to {})",
                format_duration(a.quiet),
                format_duration(a.min),
                format_duration(a.max)
            ),
        }
    }
}

/// The drain delay as the user set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DelaySetting {
    /// Not set: 5s inside Kubernetes, else none.
    #[default]
    Default,
    /// A fixed delay.
    Fixed(Duration),
    /// `auto`: until arrivals stop for `quiet`, no shorter than `min`
    /// (default: `quiet`) and no longer than `max` (default: 30s).
    Auto {
        /// `--quiet-period`.
        quiet: Duration,
        /// `--drain-delay-min`, if given.
        min: Option<Duration>,
        /// `--drain-delay-max`, if given.
        max: Option<Duration>,
    },
}

/// What a stop's timing is decided from: what the user set, nothing derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The pod's `terminationGracePeriodSeconds`, less any preStop kept.
    pub grace_period: Duration,
    /// Time kept free before the kubelet's SIGKILL; `None`: the default
    /// (2s, or a quarter of a grace period under 8s).
    pub safety_margin: Option<Duration>,
    /// The drain delay.
    pub drain_delay: DelaySetting,
    /// How long connections get at the deadline to say goodbye; `None`: 1s.
    pub close_grace: Option<Duration>,
    /// Whether `KUBERNETES_SERVICE_HOST` is set (and not empty).
    pub kubernetes: bool,
}

impl Default for Settings {
    /// Kubernetes' default grace period, every other setting at its default,
    /// outside Kubernetes.
    fn default() -> Self {
        Settings {
            grace_period: Budget::DEFAULT_GRACE_PERIOD,
            safety_margin: None,
            drain_delay: DelaySetting::Default,
            close_grace: None,
            kubernetes: false,
        }
    }
}

/// When each step of a stop happens, counted from the moment it began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The grace period and its safety margin.
    pub budget: Budget,
    /// How long listeners keep accepting (and the supervisor holds the stop
    /// back) after the stop began.
    pub delay: Delay,
    /// Where a fixed delay came from, for the start-up log.
    pub delay_source: DrainDelaySource,
    /// When connections still open in front of the app are told to go away
    /// and closed, leaving the app time to stop by itself before `kill`.
    pub drain_deadline: Duration,
    /// How long connections get after `drain_deadline` to finish a goodbye
    /// (a WebSocket close handshake); never past `kill`.
    pub close_grace: Duration,
    /// When everything still running is killed.
    pub kill: Duration,
    /// When lameduck itself must have exited.
    pub exit: Duration,
}

/// A setting that cannot make a plan, said in the user's terms (flag names,
/// which are also the names of the `LAMEDUCK_*` twins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimingError(String);

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TimingError {}

// === impl Settings ===

impl Settings {
    /// The default close grace.
    pub const DEFAULT_CLOSE_GRACE: Duration = Duration::from_secs(1);

    /// The default longest auto delay (less when the drain deadline is
    /// sooner).
    pub const DEFAULT_AUTO_MAX: Duration = Duration::from_secs(30);

    /// The plan of a stop with these settings: the one function every part
    /// of lameduck takes its timing from.
    ///
    /// - `kill`: the grace period less the safety margin;
    /// - `drain_deadline`: `kill` less the time the app needs to stop once
    ///   idle (5s, or a quarter of its time when that is shorter), so a
    ///   supervised app, or the library's own stop hooks, still have it;
    /// - `close_grace`: 1s (or as set), never past `kill`;
    /// - `exit`: the grace period less half the safety margin;
    /// - the delay: as set (5s by default inside Kubernetes); an auto delay
    ///   ends by the drain deadline at the latest.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lameduck_core::timing::{Delay, Settings};
    ///
    /// let plan = Settings::default().plan().unwrap();
    /// let s = Duration::from_secs;
    /// assert_eq!(plan.delay, Delay::Fixed(Duration::ZERO));
    /// assert_eq!((plan.drain_deadline, plan.close_grace, plan.kill, plan.exit), (s(23), s(1), s(28), s(29)));
    /// ```
    pub fn plan(&self) -> Result<Plan, TimingError> {
        self.check_bounds()?;
        let mut budget = Budget::new(self.grace_period);
        if let Some(margin) = self.safety_margin {
            budget = budget.with_margin(margin);
        }
        let kill = budget.app_timeout();
        let drain_deadline = budget.drain_timeout();
        let close_grace = self
            .close_grace
            .unwrap_or(Self::DEFAULT_CLOSE_GRACE)
            .min(kill - drain_deadline);
        let (delay, delay_source) = match self.drain_delay {
            DelaySetting::Default | DelaySetting::Fixed(_) => {
                let configured = match self.drain_delay {
                    DelaySetting::Fixed(d) => Some(d),
                    _ => None,
                };
                let resolved = DrainDelay::resolve(configured, self.kubernetes);
                (Delay::Fixed(resolved.delay), resolved.source)
            }
            DelaySetting::Auto { quiet, min, max } => {
                let auto = AutoDelay {
                    quiet,
                    min: min.unwrap_or(quiet),
                    max: max.unwrap_or(Self::DEFAULT_AUTO_MAX),
                };
                if auto.min > auto.max {
                    return Err(auto_bounds_error(auto, min.is_some(), max.is_some()));
                }
                (
                    Delay::Auto(auto.capped(drain_deadline)),
                    DrainDelaySource::Configured,
                )
            }
        };
        Ok(Plan {
            budget,
            delay,
            delay_source,
            drain_deadline,
            close_grace,
            kill,
            exit: budget.exit_timeout(),
        })
    }

    /// Every duration within [`crate::duration::MAX_DURATION`]; flags and variables are held
    /// to it when parsed, values from code here.
    fn check_bounds(&self) -> Result<(), TimingError> {
        let mut named = vec![
            ("--grace-period", Some(self.grace_period)),
            ("--safety-margin", self.safety_margin),
            ("the close grace", self.close_grace),
        ];
        match self.drain_delay {
            DelaySetting::Default => {}
            DelaySetting::Fixed(d) => named.push(("--drain-delay", Some(d))),
            DelaySetting::Auto { quiet, min, max } => named.extend([
                ("--quiet-period", Some(quiet)),
                ("--drain-delay-min", min),
                ("--drain-delay-max", max),
            ]),
        }
        for (name, value) in named {
            if let Some(Err(e)) = value.map(duration::check) {
                return Err(TimingError(format!("{name}: {e}")));
            }
        }
        Ok(())
    }
}

/// Whether a value of `KUBERNETES_SERVICE_HOST` means "inside Kubernetes".
pub fn in_kubernetes(kubernetes_service_host: Option<&str>) -> bool {
    kubernetes_service_host.is_some_and(|h| !h.is_empty())
}

/// An auto delay whose shortest is longer than its longest, said with the
/// flags the user gave (or the defaults they did not).
fn auto_bounds_error(auto: AutoDelay, min_given: bool, max_given: bool) -> TimingError {
    let (min, max) = (format_duration(auto.min), format_duration(auto.max));
    let shortest = if min_given {
        format!("--drain-delay-min ({min})")
    } else {
        format!("--quiet-period ({min}), which is also the shortest auto delay unless --drain-delay-min is given,")
    };
    let longest = if max_given {
        format!("--drain-delay-max ({max})")
    } else {
        format!("the longest auto delay ({max}, the default of --drain-delay-max)")
    };
    let fix = match (min_given, max_given) {
        (true, true) => "lower --drain-delay-min or raise --drain-delay-max",
        (true, false) => "lower --drain-delay-min or give a longer --drain-delay-max",
        (false, true) => "shorten --quiet-period or raise --drain-delay-max",
        (false, false) => "shorten --quiet-period or give a longer --drain-delay-max",
    };
    TimingError(format!(
        "--drain-delay auto: {shortest} is longer than {longest}; {fix}"
    ))
}

// === impl Plan ===

impl Plan {
    /// The deadlines of a stop that began at `start`; never panics.
    pub fn deadlines(&self, start: Instant) -> Deadlines {
        let drain = deadline_after(start, self.drain_deadline);
        Deadlines {
            start,
            drain,
            close: deadline_after(drain, self.close_grace),
            kill: deadline_after(start, self.kill),
            exit: deadline_after(start, self.exit),
        }
    }

    /// The fixed delay, or `None` for an auto delay (which needs the
    /// proxy's arrivals to end).
    pub fn fixed_delay(&self) -> Option<Duration> {
        match self.delay {
            Delay::Fixed(d) => Some(d),
            Delay::Auto(_) => None,
        }
    }

    /// The delay and why it is that long, for the start-up log:
    /// `5s (default inside Kubernetes, KUBERNETES_SERVICE_HOST is set)`.
    pub fn describe_delay(&self) -> String {
        match self.delay {
            Delay::Fixed(delay) => DrainDelay {
                delay,
                source: self.delay_source,
            }
            .to_string(),
            auto => auto.to_string(),
        }
    }

    /// A warning when a fixed delay leaves the app no time to stop before
    /// it is killed.
    pub fn check_delay(&self) -> Option<String> {
        self.fixed_delay()
            .and_then(|delay| self.budget.check_delay(delay))
    }
}

/// The instants of one stop, computed from a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// When the stop began.
    pub start: Instant,
    /// When connections still open are told to go away and closed.
    pub drain: Instant,
    /// When connections told to go away stop being waited for.
    pub close: Instant,
    /// When everything still running is killed.
    pub kill: Instant,
    /// When lameduck must have exited.
    pub exit: Instant,
}

// === impl Deadlines ===

impl Deadlines {
    /// Time left until the kill deadline, zero once it passed.
    pub fn until_kill(&self, now: Instant) -> Duration {
        self.kill.saturating_duration_since(now)
    }

    /// Time left until the exit deadline, zero once it passed.
    pub fn until_exit(&self, now: Instant) -> Duration {
        self.exit.saturating_duration_since(now)
    }

    /// Halfway from the start to the kill deadline.
    pub fn halfway_to_kill(&self) -> Instant {
        deadline_after(self.start, (self.kill - self.start) / 2)
    }
}

#[cfg(test)]
mod tests;
