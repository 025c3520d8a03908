//! One serving container: how its stop is held back, and the edits that
//! wrap it in `lameduck run`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, EnvVar, Lifecycle, LifecycleHandler, SleepAction};
use lameduck_core::grace::run_flag;
use lameduck_core::{format_duration, parse_duration};

use super::parts;
use crate::annotations::{ProxyPorts, DEFAULT_DRAIN_DELAY};

/// How a container will be stopped once injected.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Its place in `spec.containers`.
    pub index: usize,
    /// What is done to it.
    pub kind: Kind,
    /// Seconds its preStop hook sleeps (kept or added), 0 when unknown.
    pub pre_stop: f64,
    /// The drain delay of its `lameduck run`.
    pub drain_delay: Duration,
    /// The preStop `sleep` added, in seconds.
    pub added_sleep: Option<i64>,
    /// The drain proxy in front of it.
    pub proxy: Option<ProxyPorts>,
}

/// What is done to a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Its command is wrapped in `lameduck run`.
    Wrap,
    /// It runs `lameduck run` already: its command is left alone.
    RunsLameduck,
    /// It has no command (the image's ENTRYPOINT runs): only a preStop.
    NoCommand,
}

/// Plans one container: `drain_delay` is the pod's, `proxy` the drain proxy
/// if it goes in front of this container.
pub fn plan(index: usize, c: &Container, drain_delay: Duration, proxy: Option<ProxyPorts>) -> Plan {
    let argv: Vec<&str> = c.command.iter().flatten().map(String::as_str).collect();
    let kind = if argv.is_empty() {
        Kind::NoCommand
    } else if runs_lameduck(&argv) {
        Kind::RunsLameduck
    } else {
        Kind::Wrap
    };
    let pre_stop_hook = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
    let slept = pre_stop_hook.and_then(sleep_seconds);
    // The stop is held back once: by a preStop sleep the container has, else
    // by `lameduck run`'s drain delay, else by a preStop sleep added here.
    let (delay, added_sleep) = match kind {
        Kind::Wrap if slept.is_some() => (Duration::ZERO, None),
        Kind::Wrap => (drain_delay, None),
        Kind::RunsLameduck => (
            flag_duration(&argv, "--drain-delay").unwrap_or(DEFAULT_DRAIN_DELAY),
            None,
        ),
        Kind::NoCommand if pre_stop_hook.is_none() && !drain_delay.is_zero() => {
            (Duration::ZERO, Some(ceil_seconds(drain_delay)))
        }
        Kind::NoCommand => (Duration::ZERO, None),
    };
    Plan {
        index,
        kind,
        pre_stop: slept.unwrap_or(0.0) + added_sleep.map_or(0.0, |s| s as f64),
        drain_delay: delay,
        added_sleep,
        proxy: proxy.filter(|_| kind == Kind::Wrap),
    }
}

/// Applies `plan` to its container; `grace` is the pod's final
/// `terminationGracePeriodSeconds`.
pub fn apply(plan: &Plan, c: &mut Container, grace: i64) {
    if let Some(seconds) = plan.added_sleep {
        c.lifecycle.get_or_insert_with(Lifecycle::default).pre_stop = Some(LifecycleHandler {
            sleep: Some(SleepAction { seconds }),
            ..LifecycleHandler::default()
        });
    }
    if plan.kind != Kind::Wrap {
        return;
    }
    let mut command = vec![
        parts::BINARY.to_owned(),
        "run".to_owned(),
        "--drain-delay".to_owned(),
        format_duration(plan.drain_delay),
    ];
    if let Some(proxy) = plan.proxy {
        command.extend([
            "--listen".to_owned(),
            format!("0.0.0.0:{}", proxy.listen),
            "--upstream".to_owned(),
            format!("127.0.0.1:{}", proxy.app),
            "--admin".to_owned(),
            format!("0.0.0.0:{}", parts::ADMIN_PORT),
        ]);
        c.ports
            .get_or_insert_with(Vec::new)
            .push(parts::admin_port());
        if c.readiness_probe.is_none() {
            c.readiness_probe = Some(parts::readiness_probe());
        }
    }
    command.push("--".to_owned());
    command.extend(c.command.take().unwrap_or_default());
    c.command = Some(command);
    // lameduck's deadline is the kubelet's: the grace period less the
    // preStop sleep, which the kubelet counts in it.
    let left = (grace as f64 - plan.pre_stop).floor().max(1.0);
    set_env(c, "LAMEDUCK_GRACE_PERIOD", format!("{left}s"));
    c.volume_mounts
        .get_or_insert_with(Vec::new)
        .push(parts::mount());
}

/// Sets `name` in the container's environment, in place if it is there.
fn set_env(c: &mut Container, name: &str, value: String) {
    let env = c.env.get_or_insert_with(Vec::new);
    match env.iter_mut().find(|e| e.name == name) {
        Some(var) => {
            var.value = Some(value);
            var.value_from = None;
        }
        None => env.push(EnvVar {
            name: name.to_owned(),
            value: Some(value),
            ..EnvVar::default()
        }),
    }
}

/// `lameduck run ...`, by any path.
fn runs_lameduck(argv: &[&str]) -> bool {
    argv.len() >= 2 && argv[0].rsplit('/').next() == Some("lameduck") && argv[1] == "run"
}

/// The seconds a preStop hook sleeps: the `sleep` action, or `sleep N` in
/// an exec hook (also inside `sh -c`).
pub fn sleep_seconds(hook: &LifecycleHandler) -> Option<f64> {
    if let Some(sleep) = &hook.sleep {
        return Some(sleep.seconds as f64);
    }
    let text = hook.exec.as_ref()?.command.as_ref()?.join(" ");
    let mut tokens = text.split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '"' | '\''));
    while let Some(token) = tokens.next() {
        if token.rsplit('/').next() == Some("sleep") {
            return tokens.find(|t| !t.is_empty()).and_then(seconds);
        }
    }
    None
}

/// `--flag VALUE` or `--flag=VALUE` as a duration.
fn flag_duration(argv: &[&str], flag: &str) -> Option<Duration> {
    parse_duration(run_flag(argv, flag)?).ok()
}

/// `5`, `5s`, `500ms` as seconds.
fn seconds(s: &str) -> Option<f64> {
    s.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .or_else(|| parse_duration(s).ok().map(|d| d.as_secs_f64()))
}

/// Whole seconds, rounded up: the sleep action takes no fractions.
fn ceil_seconds(d: Duration) -> i64 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(whole).unwrap_or(i64::MAX)
}
