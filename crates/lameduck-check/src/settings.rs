//! From what the user gave (flags and their `LAMEDUCK_CHECK_*` twins, and a
//! manifest's pod spec) to one [`Plan`]: a flag given on the command line
//! wins over the manifest, the manifest over the default, and the plan
//! remembers where each setting came from.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lameduck_core::{format_duration, Signal};

use crate::plan::{
    BalancerMode, HttpLoad, Network, NetworkChoice, Plan, PlanError, PreStop, Probe, Readiness,
    Rollout, Scenario, SessionSpec, SettingSource,
};

/// Every setting of a rehearsal as given. `None` is "not given": the
/// manifest's value or the default applies.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `--replicas`.
    pub replicas: Option<usize>,
    /// `--scenario`.
    pub scenario: Option<Scenario>,
    /// `--balancer`.
    pub balancer: Option<BalancerMode>,
    /// `--endpoint-lag`.
    pub endpoint_lag: Option<Duration>,
    /// `--grace-period`.
    pub grace_period: Option<Duration>,
    /// `--pre-stop`: a command run with `sh -c` inside the pod.
    pub pre_stop: Option<String>,
    /// `--stop-signal`.
    pub stop_signal: Option<Signal>,
    /// `--readiness`.
    pub readiness: Option<Probe>,
    /// `--readiness-period`.
    pub readiness_period: Option<Duration>,
    /// `--readiness-failure-threshold`.
    pub readiness_failure_threshold: Option<u32>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--max-surge` (a count or a percentage).
    pub max_surge: Option<String>,
    /// `--max-unavailable` (a count or a percentage).
    pub max_unavailable: Option<String>,
    /// `--network`.
    pub network: Option<NetworkChoice>,
    /// `--clients`.
    pub clients: Option<usize>,
    /// `--rps`.
    pub rps: Option<u32>,
    /// `--new-connection-ratio`.
    pub new_connection_ratio: Option<f64>,
    /// `--http2`.
    pub http2: bool,
    /// `--path`.
    pub path: Option<String>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `--max-requests`.
    pub max_requests: Option<u64>,
    /// `--long`.
    pub long: Vec<SessionSpec>,
    /// `--websocket-path`.
    pub websocket_path: Option<String>,
    /// `--start-timeout`.
    pub start_timeout: Option<Duration>,
    /// `--warmup`.
    pub warmup: Option<Duration>,
    /// `--settle`.
    pub settle: Option<Duration>,
    /// `--balancer-listen`.
    pub balancer_listen: Option<SocketAddr>,
    /// `--manifest`: the pod spec that ships.
    pub manifest: Option<PathBuf>,
    /// `--container`: which of the pod's containers is rehearsed.
    pub container: Option<String>,
    /// The command after `--`.
    pub command: Vec<String>,
}

/// Records where each setting came from while the plan is made.
struct Sources(Vec<SettingSource>);

impl Sources {
    /// The flag's value if given, else the manifest's, else the default.
    fn pick<T: Clone>(
        &mut self,
        setting: &str,
        flag: Option<T>,
        manifest: Option<(T, String)>,
        default: T,
        show: impl Fn(&T) -> String,
    ) -> T {
        let (value, from) = match (flag, manifest) {
            (Some(v), _) => (v, "command line".to_string()),
            (None, Some((v, field))) => (v, format!("manifest: {field}")),
            (None, None) => (default, "default".to_string()),
        };
        self.0.push(SettingSource {
            setting: setting.to_string(),
            value: show(&value),
            from,
        });
        value
    }
}

fn dur(d: &Duration) -> String {
    format_duration(*d)
}

fn shown<T: Display>(v: &T) -> String {
    v.to_string()
}

impl Settings {
    /// The plan these settings (and their manifest) make, checked.
    pub fn plan(self) -> Result<Plan, PlanError> {
        let fail = |m: String| PlanError(m);
        let template = match &self.manifest {
            Some(path) => Some(
                crate::manifest::load(path, self.container.as_deref())
                    .map_err(|e| fail(format!("{}: {e}", path.display())))?,
            ),
            None if self.container.is_some() => {
                return Err(fail("--container needs --manifest".into()))
            }
            None => None,
        };
        let t = template.as_ref();
        let mut notes = t.map(|t| t.notes.clone()).unwrap_or_default();
        let mut src = Sources(Vec::new());
        let command = match (self.command.is_empty(), t.and_then(|t| t.command.clone())) {
            (false, _) => self.command.clone(),
            (true, Some(c)) => c,
            (true, None) => Vec::new(),
        };
        if command.is_empty() {
            if let Some(t) = t {
                return Err(fail(format!(
                    "no command: {}: give it after `--`",
                    t.notes
                        .iter()
                        .find(|n| n.contains("ENTRYPOINT"))
                        .map_or("the manifest has none", String::as_str)
                )));
            }
        }
        if !self.command.is_empty() && t.is_some_and(|t| t.command.is_some()) {
            notes.push("the command after `--` replaces the manifest's".into());
        }
        let replicas = src.pick(
            "--replicas",
            self.replicas,
            t.and_then(|t| t.replicas.map(|r| (r, "replicas".into()))),
            2,
            shown,
        );
        let grace_period = src.pick(
            "--grace-period",
            self.grace_period,
            t.and_then(|t| {
                t.grace_period
                    .map(|g| (g, "terminationGracePeriodSeconds".into()))
            }),
            Duration::from_secs(30),
            dur,
        );
        let pre_stop = src.pick(
            "--pre-stop",
            self.pre_stop.clone().map(|script| {
                Some(PreStop::Exec {
                    command: vec!["sh".into(), "-c".into(), script],
                })
            }),
            t.and_then(|t| {
                t.pre_stop
                    .clone()
                    .map(|p| (Some(p), "lifecycle.preStop".into()))
            }),
            None,
            |p| p.as_ref().map_or("none".into(), |p| p.to_string()),
        );
        let probe = t.and_then(|t| t.readiness.clone());
        let readiness = Readiness {
            probe: src.pick(
                "--readiness",
                self.readiness.clone(),
                probe
                    .as_ref()
                    .map(|r| (r.probe.clone(), "readinessProbe".into())),
                Probe::Tcp { port: None },
                shown,
            ),
            period: src.pick(
                "--readiness-period",
                self.readiness_period,
                probe
                    .as_ref()
                    .map(|r| (r.period, "readinessProbe.periodSeconds".into())),
                Duration::from_secs(1),
                dur,
            ),
            failure_threshold: src.pick(
                "--readiness-failure-threshold",
                self.readiness_failure_threshold,
                probe.as_ref().map(|r| {
                    (
                        r.failure_threshold,
                        "readinessProbe.failureThreshold".into(),
                    )
                }),
                3,
                shown,
            ),
        };
        let port = src.pick(
            "--port",
            self.port,
            t.and_then(|t| t.port.map(|p| (p, "ports[0].containerPort".into()))),
            8080,
            shown,
        );
        let rollout_of = |text: &Option<String>, field: &str| -> Result<Option<usize>, PlanError> {
            text.as_deref()
                .map(|v| {
                    crate::manifest::scaled(v, replicas, field == "maxSurge")
                        .map_err(|e| fail(format!("--{}: {e}", kebab(field))))
                })
                .transpose()
        };
        let surge_flag = rollout_of(&self.max_surge, "maxSurge")?;
        let unavailable_flag = rollout_of(&self.max_unavailable, "maxUnavailable")?;
        let manifest_rollout = t.and_then(|t| t.rollout.clone());
        let rollout = Rollout {
            max_surge: src.pick(
                "--max-surge",
                surge_flag,
                manifest_rollout.as_ref().map(|r| {
                    (
                        r.max_surge(replicas),
                        format!("strategy.rollingUpdate.maxSurge {}", r.surge_text()),
                    )
                }),
                Rollout::default().max_surge,
                shown,
            ),
            max_unavailable: src.pick(
                "--max-unavailable",
                unavailable_flag,
                manifest_rollout.as_ref().map(|r| {
                    (
                        r.max_unavailable(replicas),
                        format!(
                            "strategy.rollingUpdate.maxUnavailable {}",
                            r.unavailable_text()
                        ),
                    )
                }),
                Rollout::default().max_unavailable,
                shown,
            ),
        };
        let network = match self.network.unwrap_or(NetworkChoice::Auto) {
            NetworkChoice::Namespace if !crate::pod::is_root() => {
                return Err(fail(
                    "--network namespace needs root: run as root or use --network loopback".into(),
                ))
            }
            NetworkChoice::Namespace => Network::Namespace,
            NetworkChoice::Loopback => Network::Loopback,
            NetworkChoice::Auto if crate::pod::is_root() => Network::Namespace,
            NetworkChoice::Auto => {
                notes.push("not root, so pods share loopback, each on a port of its own (root gives each pod a network namespace and address)".into());
                Network::Loopback
            }
        };
        if network == Network::Loopback && t.is_some() {
            notes.push("on loopback each pod listens on a port of its own, given in $PORT and {port}: a port written into the manifest's command is the same in every pod and only one can bind it; run as root for a network namespace per pod".into());
        }
        let plan = Plan {
            command,
            port,
            replicas,
            scenario: self.scenario.unwrap_or(Scenario::Rolling),
            balancer: self.balancer.unwrap_or(BalancerMode::KubeProxy),
            endpoint_lag: self.endpoint_lag.unwrap_or(Duration::from_secs(1)),
            grace_period,
            pre_stop,
            env: t.map(|t| t.env.clone()).unwrap_or_default(),
            rollout,
            stop_signal: self
                .stop_signal
                .unwrap_or_else(|| Signal::from_number(libc::SIGTERM).unwrap_or(Signal::KILL)),
            readiness,
            network,
            http: HttpLoad {
                clients: self.clients.unwrap_or(4),
                rps: self.rps,
                new_connection_ratio: self.new_connection_ratio.unwrap_or(0.1),
                http2: self.http2,
                path: self.path.unwrap_or_else(|| "/".into()),
                timeout: self.timeout.unwrap_or(Duration::from_secs(5)),
                max_requests: self.max_requests,
            },
            sessions: self.long.iter().map(|s| (s.kind, s.count)).collect(),
            websocket_path: self.websocket_path.unwrap_or_else(|| "/ws".into()),
            start_timeout: self.start_timeout.unwrap_or(Duration::from_secs(30)),
            warmup: self.warmup.unwrap_or(Duration::from_secs(1)),
            settle: self.settle.unwrap_or(Duration::from_secs(1)),
            balancer_listen: self.balancer_listen,
            sources: src.0,
            notes,
        };
        plan.validate()?;
        Ok(plan)
    }
}

fn kebab(field: &str) -> String {
    let mut out = String::new();
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lameduck_core::MAX_DURATION as LONGEST_DURATION;

    /// A manifest written where the test can read it.
    struct Manifest(PathBuf);

    impl Manifest {
        fn new(name: &str, text: &str) -> Manifest {
            let path = std::env::temp_dir().join(format!(
                "lameduck-check-settings-{}-{name}.yaml",
                std::process::id()
            ));
            std::fs::write(&path, text).expect("a manifest");
            Manifest(path)
        }
    }

    impl Drop for Manifest {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const WEB: &str = "kind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 4\n  strategy: {rollingUpdate: {maxSurge: 50%}}\n  template:\n    spec:\n      terminationGracePeriodSeconds: 12\n      containers:\n        - name: web\n          command: [./web]\n          ports: [{containerPort: 9000}]\n";

    fn from<'a>(plan: &'a Plan, setting: &str) -> &'a str {
        plan.sources
            .iter()
            .find(|s| s.setting == setting)
            .map(|s| s.from.as_str())
            .unwrap_or_default()
    }

    #[test]
    fn a_flag_wins_over_the_manifest_which_wins_over_the_default() {
        let m = Manifest::new("precedence", WEB);
        let plan = Settings {
            manifest: Some(m.0.clone()),
            grace_period: Some(Duration::from_secs(5)),
            ..Settings::default()
        }
        .plan()
        .expect("a plan");
        assert_eq!(plan.grace_period, Duration::from_secs(5));
        assert_eq!(from(&plan, "--grace-period"), "command line");
        assert_eq!(plan.replicas, 4);
        assert_eq!(from(&plan, "--replicas"), "manifest: replicas");
        assert_eq!(plan.port, 9000);
        assert_eq!(plan.command, vec!["./web".to_string()]);
        // 50% of 4 rounds up to 2; maxUnavailable's 25% of 4 down to 1.
        assert_eq!(
            (plan.rollout.max_surge, plan.rollout.max_unavailable),
            (2, 1)
        );
        assert_eq!(plan.readiness.period, Duration::from_secs(1));
        assert_eq!(from(&plan, "--readiness-period"), "default");
    }

    #[test]
    fn no_command_anywhere_and_an_absurd_grace_period_are_refused() {
        let m = Manifest::new(
            "no-command",
            "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: x}]}\n",
        );
        let e = Settings {
            manifest: Some(m.0.clone()),
            ..Settings::default()
        }
        .plan()
        .expect_err("no command");
        assert!(e.0.contains("ENTRYPOINT cannot be read"), "{e}");
        let e = Settings {
            command: vec!["app".into()],
            grace_period: Some(LONGEST_DURATION + Duration::from_secs(1)),
            ..Settings::default()
        }
        .plan()
        .expect_err("absurd");
        assert!(e.0.contains("longer than 8760h"), "{e}");
    }
}
