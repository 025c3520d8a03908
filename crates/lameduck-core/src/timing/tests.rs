//! The one timing model, checked: its numbers, its bounds, its errors and
//! the environment it reads.

use super::*;
use crate::duration::MAX_DURATION;

const S: fn(u64) -> Duration = Duration::from_secs;

fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn the_default_plan_keeps_the_app_time_to_stop_after_the_drain() {
    let plan = Settings::default().plan().expect("plan");
    assert_eq!(plan.delay, Delay::Fixed(Duration::ZERO));
    assert_eq!(plan.drain_deadline, S(23));
    assert_eq!(plan.close_grace, S(1));
    assert_eq!(plan.kill, S(28));
    assert_eq!(plan.exit, S(29));
    let in_k8s = Settings {
        kubernetes: true,
        ..Settings::default()
    };
    assert_eq!(in_k8s.plan().expect("plan").delay, Delay::Fixed(S(5)));
}

#[test]
fn short_grace_periods_keep_their_order() {
    for grace in [0, 1, 2, 4, 10] {
        let plan = Settings {
            grace_period: S(grace),
            ..Settings::default()
        }
        .plan()
        .expect("plan");
        assert!(plan.drain_deadline <= plan.kill, "{grace}s: {plan:?}");
        assert!(
            plan.drain_deadline + plan.close_grace <= plan.kill,
            "{grace}s"
        );
        assert!(plan.kill <= plan.exit && plan.exit <= S(grace), "{grace}s");
    }
}

#[test]
fn the_environment_gives_the_same_plan_as_the_same_flags() {
    let from_env = Settings::from_vars(vars(&[
        (env::GRACE_PERIOD, "10s"),
        (env::DRAIN_DELAY, "3s"),
        (env::KUBERNETES_SERVICE_HOST, "10.0.0.1"),
    ]))
    .expect("valid");
    let by_hand = Settings {
        grace_period: S(10),
        drain_delay: DelaySetting::Fixed(S(3)),
        kubernetes: true,
        ..Settings::default()
    };
    assert_eq!(from_env, by_hand);
    let auto = Settings::from_vars(vars(&[
        (env::DRAIN_DELAY, "auto"),
        (env::QUIET_PERIOD, "500ms"),
    ]))
    .expect("valid")
    .plan()
    .expect("plan");
    assert!(matches!(auto.delay, Delay::Auto(a) if a.quiet == Duration::from_millis(500)));
}

#[test]
fn a_bad_variable_is_named_in_the_error() {
    let e = Settings::from_vars(vars(&[(env::GRACE_PERIOD, "soon")])).expect_err("invalid");
    assert_eq!(e.variable, env::GRACE_PERIOD);
    assert!(
        e.to_string()
            .starts_with("LAMEDUCK_GRACE_PERIOD=\"soon\": "),
        "{e}"
    );
    let e = Settings::from_vars(vars(&[(env::DRAIN_DELAY, "2600000000000000h")]))
        .expect_err("beyond the bound");
    assert!(e.to_string().contains("longer than 8760h"), "{e}");
}

#[test]
fn values_from_code_are_held_to_the_bound() {
    let e = Settings {
        grace_period: Duration::MAX,
        ..Settings::default()
    }
    .plan()
    .expect_err("beyond the bound");
    assert!(e.to_string().starts_with("--grace-period: "), "{e}");
    let at_bound = Settings {
        grace_period: MAX_DURATION,
        drain_delay: DelaySetting::Fixed(MAX_DURATION),
        ..Settings::default()
    }
    .plan()
    .expect("at the bound");
    let d = at_bound.deadlines(Instant::now());
    assert!(d.start < d.drain && d.drain < d.kill && d.kill < d.exit);
}

#[test]
fn an_auto_delay_out_of_order_is_said_in_the_flags_the_user_gave() {
    let auto = |quiet, min, max| Settings {
        drain_delay: DelaySetting::Auto { quiet, min, max },
        ..Settings::default()
    };
    // Only --quiet-period 40s given: neither min nor max is named as given.
    let e = auto(S(40), None, None).plan().expect_err("40s > 30s");
    let message = e.to_string();
    assert!(message.contains("--quiet-period (40s)"), "{message}");
    assert!(
        message.contains("the default of --drain-delay-max"),
        "{message}"
    );
    assert!(!message.contains("--drain-delay-min ("), "{message}");
    let e = auto(S(1), Some(S(5)), Some(S(2)))
        .plan()
        .expect_err("5s > 2s");
    assert!(
        e.to_string()
            .contains("--drain-delay-min (5s) is longer than --drain-delay-max (2s)"),
        "{e}"
    );
    assert!(auto(S(1), None, None).plan().is_ok());
}

#[test]
fn an_auto_delay_ends_by_the_drain_deadline() {
    let plan = Settings {
        grace_period: S(10),
        drain_delay: DelaySetting::Auto {
            quiet: S(1),
            min: None,
            max: None,
        },
        ..Settings::default()
    }
    .plan()
    .expect("plan");
    assert!(matches!(plan.delay, Delay::Auto(a) if a.max == plan.drain_deadline));
}

#[test]
fn an_empty_kubernetes_service_host_is_not_kubernetes() {
    assert!(in_kubernetes(Some("10.0.0.1")));
    assert!(!in_kubernetes(Some("")));
    assert!(!in_kubernetes(None));
}
