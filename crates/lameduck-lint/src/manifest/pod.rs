//! The rules of one pod spec: how each container stops, and whether that
//! fits in `terminationGracePeriodSeconds`.

use super::lameduck::Lameduck;
use super::serving::{self, Pending, Port};
use crate::finding::{Finding, Rule};
use crate::forks::{verdict, ShellOf, Verdict};
use crate::images::{base_of, Shell};
use crate::rules::{LD202, LD203, LD204, LD205, LD210};
use crate::shell::{basename, last_text, shell_script};
use crate::yaml::Node;
use lameduck_core::grace::{fit_grace, GraceFit, APP_STOP_SECONDS};

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: f64 = 30.0;

/// Grace periods above this are cut short by a graceful node shutdown on
/// any platform we know: GKE gives regular pods 15 to 30 seconds, and the
/// longest notice before a cloud reclaims a machine, AWS spot's, is two
/// minutes.
const NODE_SHUTDOWN_BUDGET: f64 = 120.0;

/// What the rules across objects need to know about a pod template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodFacts {
    /// `terminationGracePeriodSeconds`, 30 when unset.
    pub grace: f64,
    /// Seconds the pod keeps serving once deleted: the shortest preStop
    /// sleep plus drain delay of its serving containers.
    pub hold: f64,
    /// The container without `ports` that a Service would send to, with
    /// nothing holding its stop back (LD201 when a Service selects the pod).
    pub unprotected: Option<Pending>,
    /// Unprotected containers whose only ports are their probes' (LD201
    /// when a Service selecting the pod targets one of them).
    pub probe_only: Vec<Pending>,
}

/// A pod's `terminationGracePeriodSeconds`, 30 when unset.
pub(super) fn grace_of(pod: &Node) -> f64 {
    pod.get("terminationGracePeriodSeconds")
        .and_then(Node::as_str)
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(DEFAULT_GRACE)
}

/// Lints one pod spec on its own, and returns what the rules across
/// objects need to know about it.
/// `single` says the workload runs one replica (datastores then get a
/// note, not a warning: see [`serving::ld201`]).
pub(super) fn lint(path: &str, pod: &Node, single: bool, findings: &mut Vec<Finding>) -> PodFacts {
    let grace = grace_of(pod);
    let mut facts = PodFacts {
        grace,
        ..PodFacts::default()
    };
    if let Some(node) = pod.get("terminationGracePeriodSeconds") {
        if grace > NODE_SHUTDOWN_BUDGET {
            findings.push(Finding {
                rule: LD210.id,
                severity: LD210.severity,
                path: path.to_owned(),
                line: node.line,
                column: node.column,
                message: format!("terminationGracePeriodSeconds {grace} is longer than a graceful node shutdown gives a pod (the kubelet's shutdownGracePeriod, 30s or less on managed clusters, when it is on at all): a node shutdown stops this pod sooner; make the app save its state within 30s too, or rely on drains, which wait the full period"),
            });
        }
    }
    let containers = pod.get("containers").map(Node::items).unwrap_or_default();
    let ported = |c: &Node| c.get("ports").is_some_and(|p| !p.items().is_empty());
    let none_ported = !containers.iter().any(ported);
    let mut holds: Vec<f64> = Vec::new();
    for (index, container) in containers.iter().enumerate() {
        let name = container.get("name").unwrap_or(container);
        let at = |rule: &Rule, node: &Node, message: String| Finding {
            rule: rule.id,
            severity: rule.severity,
            path: path.to_owned(),
            line: node.line,
            column: node.column,
            message,
        };
        let argv: Vec<&str> = ["command", "args"]
            .iter()
            .filter_map(|k| container.get(k))
            .flat_map(|n| n.items().iter().filter_map(Node::as_str))
            .collect();
        // `lameduck run`, `proxy` or `balance`: holds its own stop back.
        let holder = Lameduck::of(container, &argv);
        let lameduck = holder.is_some();
        let drain_delay = holder.map(|l| l.drain_delay(&argv).unwrap_or(5.0));
        let pre_stop = container.at(&["lifecycle", "preStop"]);
        let pre_stop_sleep = pre_stop.and_then(sleep_seconds);
        let serves = ported(container);
        // Without any `ports`, the first container is the one a Service
        // sends to, if one selects the pod.
        let maybe_serves = none_ported && index == 0;
        let hold = pre_stop_sleep.unwrap_or(0.0) + drain_delay.unwrap_or(0.0);
        if serves || maybe_serves {
            holds.push(hold);
        }
        let unprotected = pre_stop.is_none() && !lameduck;
        let image = container
            .get("image")
            .and_then(Node::as_str)
            .unwrap_or_default();
        let pending = |ports: Vec<Port>| Pending {
            name: name.as_str().unwrap_or_default().to_owned(),
            line: name.line,
            column: name.column,
            ports,
            image: image.to_owned(),
        };
        if serves && unprotected {
            let ports = serving::ports(container);
            if serving::probe_only(container, &ports) {
                facts.probe_only.push(pending(ports));
            } else {
                findings.push(serving::ld201(path, (name.line, name.column), image, single, "this container serves traffic but nothing holds its stop back while the endpoint is removed: add a preStop `sleep: {seconds: 5}` or run it under `lameduck run`".into()));
            }
        }
        if maybe_serves && unprotected {
            facts.unprotected = Some(pending(Vec::new()));
        }
        let fit = fit_grace(
            grace,
            pre_stop_sleep.unwrap_or(0.0),
            drain_delay.unwrap_or(0.0),
        );
        if let GraceFit::Short { used, needed } = fit {
            let node = pre_stop.unwrap_or(name);
            findings.push(at(&LD202, node, format!("the preStop sleep and the drain delay take {used}s of a {grace}s grace period: the app gets less than {APP_STOP_SECONDS}s to finish its requests; raise terminationGracePeriodSeconds to {needed}s")));
        }
        if let Some((grace_flag, written)) = holder.and_then(|l| l.grace_period(&argv)) {
            let left = grace - pre_stop_sleep.unwrap_or(0.0);
            if grace_flag > left {
                findings.push(at(&LD205, name, format!("`{written}` is longer than the {left}s left of the pod's grace period after preStop: the kubelet kills the pod first; set it to {left}s")));
            }
        }
        if let Some(exec) = pre_stop.and_then(|p| p.at(&["exec", "command"])) {
            let image = container
                .get("image")
                .and_then(Node::as_str)
                .unwrap_or_default();
            let words: Vec<&str> = exec.items().iter().filter_map(Node::as_str).collect();
            let runs_sleep = words
                .iter()
                .any(|w| w.starts_with("sleep") || w.contains(" sleep") || w.contains("sleep "));
            if runs_sleep && has_no_shell(image) {
                findings.push(at(&LD203, exec, format!("{image} has no shell and no `sleep`: this preStop hook fails; use the sleep action, `preStop: {{sleep: {{seconds: N}}}}` (Kubernetes 1.29+)")));
            }
        }
        let argv_owned: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        if let Some(script) = shell_script(&argv_owned).filter(|_| !lameduck) {
            let image = container
                .get("image")
                .and_then(Node::as_str)
                .unwrap_or_default();
            let shell = ShellOf::of_image(image).running(&argv_owned[0]);
            let sh_c = format!("{} -c", basename(&argv_owned[0]));
            let message = match verdict(&shell, script) {
                Verdict::Execs => None,
                Verdict::Compound => Some("the app runs inside `sh -c` without `exec`, so the shell keeps SIGTERM from it: end the script with `exec app ...`, or run it under `lameduck run --`".to_owned()),
                Verdict::Forks(why) | Verdict::Unknown(why) => Some(format!("the app runs inside `{sh_c}` without `exec`: {why}: end the script with `exec {}`, or run it under `lameduck run --`", last_text(script))),
                Verdict::NoShell(why) => Some(format!("the container runs `{sh_c}`, but {why}: run the program itself in `command`")),
            };
            if let Some(message) = message {
                let node = container
                    .get("command")
                    .or(container.get("args"))
                    .unwrap_or(name);
                findings.push(at(&LD204, node, message));
            }
        }
    }
    facts.hold = holds.into_iter().reduce(f64::min).unwrap_or(0.0);
    facts
}

/// The seconds a preStop hook sleeps: the `sleep` action, or `sleep N` in
/// an exec hook.
fn sleep_seconds(pre_stop: &Node) -> Option<f64> {
    if let Some(s) = pre_stop.at(&["sleep", "seconds"]).and_then(Node::as_str) {
        return s.parse().ok();
    }
    let words: Vec<&str> = pre_stop
        .at(&["exec", "command"])?
        .items()
        .iter()
        .filter_map(Node::as_str)
        .collect();
    let text = words.join(" ");
    let mut tokens =
        text.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '"' || c == '\'');
    while let Some(token) = tokens.next() {
        if token.rsplit('/').next() == Some("sleep") {
            return tokens.find(|t| !t.is_empty()).and_then(parse_seconds);
        }
    }
    None
}

/// `5`, `5s`, `500ms`, `1m` as seconds.
pub(super) fn parse_seconds(s: &str) -> Option<f64> {
    if let Ok(n) = s.parse::<f64>() {
        return Some(n);
    }
    lameduck_core::parse_duration(s)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// Images known to ship without a shell: the table of bases, and names
/// that say so on registries it does not list.
fn has_no_shell(image: &str) -> bool {
    base_of(image).shell == Shell::None
        || image.contains("distroless")
        || image.contains("/static:")
}
