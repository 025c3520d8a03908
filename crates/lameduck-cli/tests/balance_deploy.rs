//! deploy/balance/: rendered by `kubectl kustomize`, validated against the
//! Kubernetes schemas by `kubernetes-validate`, clean under `lameduck lint`,
//! and holding what a balancer needs (two replicas, a budget, read access to
//! EndpointSlices of one namespace only).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{lameduck_bin, python};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/balance")
}

/// Runs `program args` with `input` on stdin; its status and output.
fn pipe(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed (scripts/test.sh installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn rendered() -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy_dir())
        .output()
        .expect("kubectl is needed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn objects(yaml: &str) -> Vec<Value> {
    // PyYAML comes with kubernetes-validate.
    let (ok, json) = pipe(
        python(),
        &[
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))",
        ],
        yaml,
    );
    assert!(ok, "{json}");
    serde_json::from_str(&json).expect("JSON")
}

#[test]
fn the_manifests_render_validate_and_lint_clean() {
    let yaml = rendered();
    let (ok, out) = pipe("kubernetes-validate", &["--strict", "-"], &yaml);
    assert!(ok, "kubernetes-validate:\n{out}");
    assert_eq!(out.matches("passed for resource").count(), 6, "{out}");
    let (ok, out) = pipe(lameduck_bin(), &["lint", "-"], &yaml);
    assert!(ok, "lameduck lint:\n{out}");
    assert!(out.contains("0 finding(s)"), "{out}");
}

#[test]
fn the_manifests_hold_two_replicas_a_budget_and_read_only_endpointslices() {
    let all = objects(&rendered());
    let get = |kind: &str| {
        all.iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {all:#?}"))
    };
    let deployment = get("Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "lameduck-balance");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "balance");
    assert!(
        args.contains(&"--endpoints=kubernetes:$(POD_NAMESPACE)/web:http"),
        "{args:?}"
    );
    assert!(args.contains(&"--grace-period=60s"));
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/ready"
    );

    assert_eq!(get("PodDisruptionBudget")["spec"]["minAvailable"], 1);
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(
        &get("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        selector
    );
    assert_eq!(&get("Service")["spec"]["selector"], selector);

    let role = get("Role");
    assert_eq!(role["metadata"]["namespace"], "default");
    let rules = role["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0]["apiGroups"],
        serde_json::json!(["discovery.k8s.io"])
    );
    assert_eq!(rules[0]["resources"], serde_json::json!(["endpointslices"]));
    assert_eq!(
        rules[0]["verbs"],
        serde_json::json!(["get", "list", "watch"])
    );
    assert!(
        all.iter().all(|o| o["kind"] != "ClusterRole"),
        "one namespace only"
    );
    let binding = get("RoleBinding");
    assert_eq!(binding["subjects"][0]["name"], "lameduck-balance");
    assert_eq!(binding["subjects"][0]["namespace"], "default");
    assert_eq!(
        get("ServiceAccount")["metadata"]["name"],
        "lameduck-balance"
    );
}

#[test]
fn the_deployments_arguments_are_ones_lameduck_takes() {
    let all = objects(&rendered());
    let deployment = all
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        // What the kubelet expands, and ports free here.
        .map(|a| {
            a.replace("$(POD_NAMESPACE)", "default")
                .replace("0.0.0.0:8080", "127.0.0.1:0")
                .replace("0.0.0.0:9901", "127.0.0.1:0")
        })
        .collect();
    // Outside a cluster the flags parse and only the source is missing.
    let out = Command::new(lameduck_bin())
        .args(&args)
        .env("KUBECONFIG", "/does/not/exist")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("run lameduck");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains("no usable Kubernetes configuration"),
        "{args:?}: {stderr}"
    );
}
