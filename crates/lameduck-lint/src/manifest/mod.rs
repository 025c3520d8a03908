//! The Kubernetes rules: whether a pod's containers can end without losing
//! traffic, within `terminationGracePeriodSeconds`.

use crate::finding::{Finding, Rule};
use crate::rules::{LD201, LD202, LD203, LD204, LD205};
use crate::shell::{is_compound, last_is_exec, shell_script};
use crate::yaml::{parse_stream, Node, YamlError};

mod services;

pub use services::Inventory;

/// Kubernetes' default `terminationGracePeriodSeconds`.
const DEFAULT_GRACE: f64 = 30.0;

/// Lints a stream of manifests (YAML or JSON) found at `path`, the
/// rules across objects included.
pub fn lint(path: &str, text: &str) -> Result<Vec<Finding>, YamlError> {
    let mut inventory = Inventory::default();
    let mut findings = collect(path, text, &mut inventory)?;
    findings.extend(inventory.findings());
    Ok(findings)
}

/// Lints each object of the stream at `path` on its own, and notes in
/// `inventory` what the rules across objects (a Service and the pods it
/// selects, maybe from other files) need.
pub fn collect(
    path: &str,
    text: &str,
    inventory: &mut Inventory,
) -> Result<Vec<Finding>, YamlError> {
    let mut findings = Vec::new();
    for doc in parse_stream(text)? {
        for object in objects(&doc) {
            let ignore = ignored_rules(object);
            let mut found = Vec::new();
            if let Some(pod) = pod_spec(object) {
                lint_pod(path, pod, &mut found);
                inventory.add_workload(path, object, grace_of(pod), &ignore);
            }
            if object.get("kind").and_then(Node::as_str) == Some("Service") {
                inventory.add_service(path, object, &ignore, &mut found);
            }
            found.retain(|f| !ignore.iter().any(|id| id.eq_ignore_ascii_case(f.rule)));
            findings.extend(found);
        }
    }
    Ok(findings)
}

/// A pod's `terminationGracePeriodSeconds`, 30 when unset.
fn grace_of(pod: &Node) -> f64 {
    pod.get("terminationGracePeriodSeconds")
        .and_then(Node::as_str)
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(DEFAULT_GRACE)
}

/// The rules an object's `lameduck.io/ignore: "ID,ID"` annotation turns
/// off (on the object or on its pod template).
fn ignored_rules(object: &Node) -> Vec<String> {
    [
        object.at(&["metadata", "annotations", "lameduck.io/ignore"]),
        object.at(&[
            "spec",
            "template",
            "metadata",
            "annotations",
            "lameduck.io/ignore",
        ]),
    ]
    .into_iter()
    .flatten()
    .filter_map(Node::as_str)
    .flat_map(|ids| ids.split([',', ' ']))
    .filter(|id| !id.is_empty())
    .map(str::to_owned)
    .collect()
}

/// The objects of a document: itself, or the items of a `List`.
fn objects(doc: &Node) -> Vec<&Node> {
    match doc.get("kind").and_then(Node::as_str) {
        Some(kind) if kind.ends_with("List") => doc
            .get("items")
            .map(|i| i.items().iter().collect())
            .unwrap_or_default(),
        _ => vec![doc],
    }
}

/// The pod spec of a workload, wherever its kind keeps it.
fn pod_spec(object: &Node) -> Option<&Node> {
    match object.get("kind")?.as_str()? {
        "Pod" => object.get("spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => object.at(&["spec", "template", "spec"]),
        "CronJob" => object.at(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

fn lint_pod(path: &str, pod: &Node, findings: &mut Vec<Finding>) {
    let grace = grace_of(pod);
    for container in pod.get("containers").map(Node::items).unwrap_or_default() {
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
        let lameduck =
            argv.len() >= 2 && argv[0].rsplit('/').next() == Some("lameduck") && argv[1] == "run";
        let drain_delay = if lameduck {
            flag_seconds(&argv, "--drain-delay").or(Some(5.0))
        } else {
            None
        };
        let pre_stop = container.at(&["lifecycle", "preStop"]);
        let pre_stop_sleep = pre_stop.and_then(sleep_seconds);
        let serves = container
            .get("ports")
            .is_some_and(|p| !p.items().is_empty());

        if serves && pre_stop.is_none() && !lameduck {
            findings.push(at(&LD201, name, "this container serves traffic but nothing holds its stop back while the endpoint is removed: add a preStop `sleep: {seconds: 5}` or run it under `lameduck run`".into()));
        }
        let used = pre_stop_sleep.unwrap_or(0.0) + drain_delay.unwrap_or(0.0);
        if used >= grace {
            let node = pre_stop.unwrap_or(name);
            findings.push(at(&LD202, node, format!("the preStop sleep and the drain delay take {used}s of a {grace}s grace period: the app gets no time to finish its requests; raise terminationGracePeriodSeconds above {used}s plus the app's own stop time")));
        }
        if let Some(grace_flag) = lameduck
            .then(|| flag_seconds(&argv, "--grace-period"))
            .flatten()
        {
            let left = grace - pre_stop_sleep.unwrap_or(0.0);
            if grace_flag > left {
                findings.push(at(&LD205, name, format!("`lameduck run --grace-period {grace_flag}s` is longer than the {left}s left of the pod's grace period after preStop: the kubelet kills the pod first; set it to {left}s")));
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
        if !lameduck {
            if let Some(script) = shell_script(&argv_owned) {
                if is_compound(script) && !last_is_exec(script) {
                    let node = container
                        .get("command")
                        .or(container.get("args"))
                        .unwrap_or(name);
                    findings.push(at(&LD204, node, "the app runs inside `sh -c` without `exec`, so the shell keeps SIGTERM from it: end the script with `exec app ...`, or run it under `lameduck run --`".into()));
                }
            }
        }
    }
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

/// `--flag VALUE` or `--flag=VALUE` as seconds.
fn flag_seconds(argv: &[&str], flag: &str) -> Option<f64> {
    let value = argv
        .windows(2)
        .find(|w| w[0] == flag)
        .map(|w| w[1])
        .or_else(|| {
            argv.iter()
                .find_map(|a| a.strip_prefix(flag)?.strip_prefix('='))
        })?;
    parse_seconds(value)
}

/// `5`, `5s`, `500ms`, `1m` as seconds.
fn parse_seconds(s: &str) -> Option<f64> {
    if let Ok(n) = s.parse::<f64>() {
        return Some(n);
    }
    lameduck_core::parse_duration(s)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// Images known to ship without a shell.
fn has_no_shell(image: &str) -> bool {
    image.contains("distroless")
        || image == "scratch"
        || image.contains("/static:")
        || image.contains("chainguard/static")
}
