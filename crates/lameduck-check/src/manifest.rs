//! `--manifest FILE [--container NAME]`: the pod spec that ships, read with
//! `lameduck lint`'s pod model (one parser, one model), turned into the
//! rehearsal's settings: command and args, env, ports, readiness probe,
//! preStop, `terminationGracePeriodSeconds`, replicas and the rolling
//! update's maxSurge and maxUnavailable, rounded as Kubernetes rounds them.

use std::path::Path;
use std::time::Duration;

use lameduck_lint::manifest::model::{self, Container, Count, Handler, Workload};
use lameduck_lint::yaml::{Node, Value};

use crate::plan::{PreStop, Probe, Readiness};

/// The largest manifest read: far past any real stream of workloads.
const LARGEST_MANIFEST: u64 = 16 * 1024 * 1024;

/// What a manifest's pod spec gives the rehearsal; `None` is "not in the
/// manifest".
#[derive(Clone, Debug, Default)]
pub struct PodTemplate {
    /// `kind/name` of the workload, `container NAME`.
    pub origin: String,
    /// `command` + `args`; `None` when `command` is left to the image's
    /// ENTRYPOINT, which cannot be read without the image.
    pub command: Option<Vec<String>>,
    /// `replicas`.
    pub replicas: Option<usize>,
    /// `terminationGracePeriodSeconds`.
    pub grace_period: Option<Duration>,
    /// `lifecycle.preStop`.
    pub pre_stop: Option<PreStop>,
    /// `readinessProbe`.
    pub readiness: Option<Readiness>,
    /// The first `containerPort`.
    pub port: Option<u16>,
    /// `env` with a `value`.
    pub env: Vec<(String, String)>,
    /// The rolling update.
    pub rollout: Option<ManifestRollout>,
    /// What was read and how, for the summary.
    pub notes: Vec<String>,
}

/// A workload's rolling update as written, with Kubernetes' defaults for
/// its kind.
#[derive(Clone, Debug)]
pub struct ManifestRollout {
    surge: Count,
    unavailable: Count,
}

impl ManifestRollout {
    fn of(workload: &Workload) -> Option<ManifestRollout> {
        let ru = workload.rolling_update.as_ref()?;
        // Defaults: a Deployment 25%/25%; a DaemonSet 0/1; a StatefulSet
        // replaces one pod at a time, deleting before it creates.
        let (surge, unavailable) = match workload.kind.as_str() {
            "Deployment" => (Count::Percent(25.0), Count::Percent(25.0)),
            _ => (Count::Int(0), Count::Int(1)),
        };
        Some(ManifestRollout {
            surge: match workload.kind.as_str() {
                "StatefulSet" => Count::Int(0),
                _ => ru.max_surge.unwrap_or(surge),
            },
            unavailable: ru.max_unavailable.unwrap_or(unavailable),
        })
    }

    /// maxSurge in pods: a percentage rounds up.
    pub fn max_surge(&self, replicas: usize) -> usize {
        self.surge.scaled(replicas as u64, true) as usize
    }

    /// maxUnavailable in pods: a percentage rounds down, and when both come
    /// to 0 the controller takes one pod down anyway.
    pub fn max_unavailable(&self, replicas: usize) -> usize {
        let down = self.unavailable.scaled(replicas as u64, false) as usize;
        if down == 0 && self.max_surge(replicas) == 0 {
            1
        } else {
            down
        }
    }

    /// maxSurge as written.
    pub fn surge_text(&self) -> String {
        count_text(self.surge)
    }

    /// maxUnavailable as written.
    pub fn unavailable_text(&self) -> String {
        count_text(self.unavailable)
    }
}

fn count_text(c: Count) -> String {
    match c {
        Count::Int(n) => n.to_string(),
        Count::Percent(p) => format!("{p}%"),
    }
}

/// `--max-surge` / `--max-unavailable`: a count or a percentage of
/// `replicas`, rounded up (surge) or down (unavailable) as Kubernetes does.
pub fn scaled(text: &str, replicas: usize, round_up: bool) -> Result<usize, String> {
    let node = Node {
        value: Value::Scalar(text.to_string()),
        line: 1,
        column: 1,
    };
    let count = Count::of(&node)
        .ok_or_else(|| format!("`{text}` is not a number of pods nor a percentage"))?;
    Ok(count.scaled(replicas as u64, round_up) as usize)
}

/// Reads the workload and container to rehearse from the manifest stream
/// at `path`.
pub fn load(path: &Path, container: Option<&str>) -> Result<PodTemplate, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > LARGEST_MANIFEST {
        return Err(format!(
            "{} bytes, more than the {LARGEST_MANIFEST} a manifest may have",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let workloads = model::workloads(&text).map_err(|e| e.to_string())?;
    template(&workloads, container)
}

fn template(workloads: &[Workload], container: Option<&str>) -> Result<PodTemplate, String> {
    let has = |w: &&Workload| {
        container.is_none_or(|name| w.pod.containers.iter().any(|c| c.name == name))
    };
    let candidates: Vec<&Workload> = workloads.iter().filter(has).collect();
    let workload = match candidates.as_slice() {
        [] if workloads.is_empty() => {
            return Err("no workload (Deployment, StatefulSet, DaemonSet, Pod) in it".into())
        }
        [] => {
            return Err(format!(
                "no container named `{}` in it",
                container.unwrap_or_default()
            ))
        }
        [one] => *one,
        many => {
            return Err(format!(
                "it has {} workloads ({}): keep one in the file, or name a container of one with --container",
                many.len(),
                many.iter()
                    .map(|w| format!("{} {}", w.kind, w.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    };
    let c = match (container, workload.pod.containers.as_slice()) {
        (Some(name), all) => all.iter().find(|c| c.name == name),
        (None, [one]) => Some(one),
        (None, []) => None,
        (None, all) => {
            return Err(format!(
                "{} {} has containers {}: name one with --container",
                workload.kind,
                workload.name,
                all.iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
    .ok_or_else(|| format!("{} {} has no container", workload.kind, workload.name))?;
    if !workload.unreadable.is_empty() {
        return Err(format!(
            "{} {}: {}",
            workload.kind,
            workload.name,
            workload.unreadable.join("; ")
        ));
    }
    Ok(from_container(workload, c))
}

fn from_container(workload: &Workload, c: &Container) -> PodTemplate {
    let mut notes = Vec::new();
    let origin = format!(
        "{} {}, container `{}`",
        workload.kind, workload.name, c.name
    );
    let env: Vec<(String, String)> = c
        .env
        .iter()
        .filter_map(|e| match &e.value {
            Some(v) => Some((e.name.clone(), v.clone())),
            None => {
                notes.push(format!(
                    "env {} comes from valueFrom, which only a cluster resolves: left out",
                    e.name
                ));
                None
            }
        })
        .collect();
    let expand =
        |args: &[String]| -> Vec<String> { args.iter().map(|a| expand(a, &env)).collect() };
    let command = match &c.command {
        Some(command) => Some(
            [
                expand(command),
                expand(c.args.as_deref().unwrap_or_default()),
            ]
            .concat(),
        ),
        None => {
            notes.push(format!(
                "{origin} has no `command`: the image's ENTRYPOINT cannot be read without the image, so the command after `--` is the whole command (ENTRYPOINT and args)"
            ));
            None
        }
    };
    let command = command.map(|c| injected_binary(c, &mut notes));
    let port = c.ports.first().map(|p| p.number);
    let seconds = |s: u64| Duration::from_secs(s);
    let resolve = |port: &model::PortRef, notes: &mut Vec<String>| -> Option<u16> {
        let p = c.port(port);
        if p.is_none() {
            notes.push(format!(
                "{port:?} names no port of {origin}: the app's port is used"
            ));
        }
        p
    };
    let readiness = c.readiness.as_ref().and_then(|probe| {
        let kind = match &probe.handler {
            Handler::HttpGet { port, path } => Probe::Http {
                port: resolve(port, &mut notes),
                path: path.clone(),
            },
            Handler::TcpSocket { port } => Probe::Tcp {
                port: resolve(port, &mut notes),
            },
            Handler::Exec { command } => Probe::Exec {
                command: command.clone(),
            },
            Handler::Grpc { port } => {
                notes.push(
                    "the gRPC readiness probe is rehearsed as a TCP connect to its port".into(),
                );
                Probe::Tcp { port: Some(*port) }
            }
            Handler::Sleep { .. } => return None,
        };
        Some(Readiness {
            probe: kind,
            period: seconds(probe.period_seconds.unwrap_or(10).max(1)),
            failure_threshold: probe
                .failure_threshold
                .unwrap_or(3)
                .clamp(1, u64::from(u32::MAX)) as u32,
        })
    });
    if c.readiness.is_none() {
        notes.push(format!(
            "{origin} has no readinessProbe: Kubernetes routes to it as soon as it runs; the rehearsal waits for its port to accept first"
        ));
    }
    let pre_stop = c.pre_stop.as_ref().and_then(|hook| match hook {
        Handler::Exec { command } => Some(PreStop::Exec {
            command: command.clone(),
        }),
        Handler::HttpGet { port, path } => Some(PreStop::HttpGet {
            port: resolve(port, &mut notes),
            path: path.clone(),
        }),
        Handler::Sleep { seconds: s } => Some(PreStop::Sleep {
            duration: seconds(*s),
        }),
        Handler::TcpSocket { .. } | Handler::Grpc { .. } => {
            notes.push(
                "a tcpSocket preStop is not run by the kubelet (deprecated, a no-op): left out"
                    .into(),
            );
            None
        }
    });
    PodTemplate {
        origin,
        command,
        replicas: workload.replicas.map(|r| r as usize),
        grace_period: workload.pod.grace_period_seconds.map(seconds),
        pre_stop,
        readiness,
        port,
        env,
        rollout: ManifestRollout::of(workload),
        notes,
    }
}

/// A command whose program is a `lameduck` binary that is not on this
/// machine, as `lameduck webhook` injects it (`/lameduck/lameduck`, copied
/// into an `emptyDir` by an init container that a rehearsal does not run),
/// runs the lameduck that is rehearsing instead: the same program, so the
/// patched pod is rehearsed as it would run. Said in the notes.
fn injected_binary(mut command: Vec<String>, notes: &mut Vec<String>) -> Vec<String> {
    let Some(program) = command.first() else {
        return command;
    };
    let path = Path::new(program);
    if path.file_name().is_none_or(|n| n != "lameduck") || path.exists() {
        return command;
    }
    if let Ok(own) = std::env::current_exe() {
        notes.push(format!(
            "{program} is not on this machine (in a cluster an init container puts it there): the rehearsal runs this lameduck, {}",
            own.display()
        ));
        command[0] = own.to_string_lossy().into_owned();
    }
    command
}

/// `$(VAR)` in a command or its args, replaced by the container's env as
/// the kubelet does; `$$(VAR)` stays `$(VAR)`; unknown names stay as
/// written.
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix("$(") {
            out.push_str("$(");
            rest = escaped;
            continue;
        }
        let var = after
            .strip_prefix('(')
            .and_then(|s| s.split_once(')'))
            .and_then(|(name, tail)| {
                env.iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| (v, tail))
            });
        match var {
            Some((value, tail)) => {
                out.push_str(value);
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, container: Option<&str>) -> Result<PodTemplate, String> {
        template(&model::workloads(text).expect("yaml"), container)
    }

    const WEB: &str = "kind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 3\n  template:\n    spec:\n      terminationGracePeriodSeconds: 12\n      containers:\n        - name: app\n          command: [python3, -m, http.server]\n          args: [\"$(PORT_NUMBER)\", \"$$(KEPT)\"]\n          env: [{name: PORT_NUMBER, value: \"8080\"}]\n          ports: [{name: http, containerPort: 8080}]\n          readinessProbe: {httpGet: {port: http, path: /}}\n          lifecycle: {preStop: {sleep: {seconds: 3}}}\n        - name: side\n          command: [sleep, infinity]\n";

    #[test]
    fn the_container_gives_command_env_probe_hook_and_the_rollout_rounds_as_kubernetes() {
        let t = read(WEB, Some("app")).expect("app");
        assert_eq!(
            t.command,
            Some(vec![
                "python3".into(),
                "-m".into(),
                "http.server".into(),
                "8080".into(),
                "$(KEPT)".into()
            ])
        );
        assert_eq!(t.grace_period, Some(Duration::from_secs(12)));
        assert_eq!(
            t.pre_stop,
            Some(PreStop::Sleep {
                duration: Duration::from_secs(3)
            })
        );
        let r = t.readiness.expect("probe");
        assert_eq!(r.period, Duration::from_secs(10), "Kubernetes' default");
        assert_eq!(
            r.probe,
            Probe::Http {
                port: Some(8080),
                path: "/".into()
            }
        );
        let roll = t.rollout.expect("a Deployment rolls");
        // 25% of 3: surge rounds up to 1, unavailable down to 0.
        assert_eq!((roll.max_surge(3), roll.max_unavailable(3)), (1, 0));
        let e = read(WEB, None).expect_err("two containers");
        assert!(e.contains("`app`, `side`"), "{e}");
        assert!(read(WEB, Some("nope"))
            .expect_err("none")
            .contains("no container named"));
    }

    #[test]
    fn an_injected_lameduck_not_on_this_machine_is_the_rehearsing_one() {
        let own = std::env::current_exe().expect("exe");
        let own = own.to_string_lossy();
        let text = "kind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, command: [/lameduck-nowhere/lameduck, run, --, app]}]}\n";
        let t = read(text, None).expect("one container");
        assert_eq!(
            t.command,
            Some(vec![
                own.to_string(),
                "run".into(),
                "--".into(),
                "app".into()
            ])
        );
        assert!(
            t.notes.iter().any(|n| n.contains("init container")),
            "{:?}",
            t.notes
        );
        // A lameduck that is there, or another program, is left as written.
        for program in ["/bin/sh", "/nowhere/lameduck-app"] {
            let text = format!("kind: Pod\nmetadata: {{name: p}}\nspec: {{containers: [{{name: a, command: [{program}]}}]}}\n");
            assert_eq!(
                read(&text, None).expect("one").command,
                Some(vec![program.to_string()])
            );
        }
    }

    #[test]
    fn no_command_is_said_and_both_zero_takes_one_down() {
        let text = "kind: Deployment\nmetadata: {name: w}\nspec:\n  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 10%}}\n  template: {spec: {containers: [{name: a, image: x}]}}\n";
        let t = read(text, None).expect("one container");
        assert_eq!(t.command, None);
        assert!(
            t.notes[0].contains("ENTRYPOINT cannot be read"),
            "{:?}",
            t.notes
        );
        let roll = t.rollout.expect("rolls");
        assert_eq!((roll.max_surge(3), roll.max_unavailable(3)), (0, 1));
        assert_eq!(scaled("25%", 3, true), Ok(1));
        assert!(scaled("lots", 3, true).is_err());
    }
}
