//! Whether a pod's grace period holds its stop: the preStop hook, the drain
//! delay and a few seconds for the app itself.
//!
//! The kubelet counts `terminationGracePeriodSeconds` from the start of the
//! preStop hook and sends SIGKILL when it is over. A preStop `sleep` and the
//! drain delay of `lameduck run` both spend that period before the app even
//! hears SIGTERM; what is left must still let the app finish the requests it
//! holds and exit. The linter (rule LD202) reports a pod whose period is too
//! short, and the admission webhook raises such a period to fit: both ask
//! [`fit_grace`], so they can never disagree.
//!
//! ```
//! use lameduck_core::grace::{fit_grace, GraceFit};
//!
//! // A preStop sleep of 5s and a drain delay of 5s in a 10s grace period:
//! // the app would get SIGTERM and SIGKILL at the same moment.
//! assert_eq!(fit_grace(10.0, 5.0, 5.0), GraceFit::Short { used: 10.0, needed: 15.0 });
//! assert_eq!(fit_grace(30.0, 5.0, 5.0), GraceFit::Fits);
//! ```

/// Seconds of the grace period kept for the app after the preStop hook and
/// the drain delay: time to finish what it holds and exit, including the
/// safety margin (2s) `lameduck run` keeps before the kubelet's SIGKILL.
pub const APP_STOP_SECONDS: f64 = 5.0;

/// Whether a grace period holds a stop, from [`fit_grace`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GraceFit {
    /// The period holds the preStop hook, the drain delay and
    /// [`APP_STOP_SECONDS`].
    Fits,
    /// It does not.
    Short {
        /// Seconds the preStop hook and the drain delay take together.
        used: f64,
        /// The shortest grace period that fits, in seconds.
        needed: f64,
    },
}

/// Checks a grace period against the stop it must hold, all in seconds as
/// manifests write them: `grace` is `terminationGracePeriodSeconds`,
/// `pre_stop` the seconds the preStop hook sleeps, `drain_delay` the delay
/// `lameduck run` holds SIGTERM back for. Negative or not-a-number inputs
/// for the hold count as zero; a grace period that is not a number never fits.
pub fn fit_grace(grace: f64, pre_stop: f64, drain_delay: f64) -> GraceFit {
    // `f64::max` returns the other operand for NaN: NaN holds nothing.
    let used = pre_stop.max(0.0) + drain_delay.max(0.0);
    let needed = used + APP_STOP_SECONDS;
    if grace >= needed {
        GraceFit::Fits
    } else {
        GraceFit::Short { used, needed }
    }
}

/// The value of `flag` in a `lameduck run` command line as a pod spec
/// writes it (`--flag VALUE` or `--flag=VALUE`): where the drain delay and
/// the grace period [`fit_grace`] weighs come from.
pub fn run_flag<'a>(argv: &[&'a str], flag: &str) -> Option<&'a str> {
    argv.windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1])
        .or_else(|| {
            argv.iter()
                .find_map(|a| a.strip_prefix(flag)?.strip_prefix('='))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_period_holds_the_usual_hold() {
        assert_eq!(fit_grace(30.0, 0.0, 5.0), GraceFit::Fits);
        assert_eq!(fit_grace(10.0, 5.0, 0.0), GraceFit::Fits);
    }

    #[test]
    fn a_period_without_time_for_the_app_is_short() {
        assert_eq!(
            fit_grace(30.0, 30.0, 0.0),
            GraceFit::Short {
                used: 30.0,
                needed: 35.0
            }
        );
        assert_eq!(
            fit_grace(9.0, 0.0, 5.0),
            GraceFit::Short {
                used: 5.0,
                needed: 10.0
            }
        );
    }

    #[test]
    fn flags_are_found_in_both_forms() {
        let argv = [
            "lameduck",
            "run",
            "--drain-delay",
            "3s",
            "--grace-period=20s",
            "--",
        ];
        assert_eq!(run_flag(&argv, "--drain-delay"), Some("3s"));
        assert_eq!(run_flag(&argv, "--grace-period"), Some("20s"));
        assert_eq!(run_flag(&argv, "--admin"), None);
    }

    #[test]
    fn absurd_inputs_are_answered() {
        assert_eq!(fit_grace(30.0, -5.0, f64::NAN), GraceFit::Fits);
        assert!(matches!(
            fit_grace(f64::NAN, 0.0, 0.0),
            GraceFit::Short { .. }
        ));
        assert!(matches!(
            fit_grace(1e300, 1e300, 1e300),
            GraceFit::Short { .. }
        ));
        assert_eq!(fit_grace(f64::INFINITY, 1e300, 0.0), GraceFit::Fits);
    }
}
