//! End-to-end tests of `lameduck check --manifest`: one Deployment, as it
//! would ship, rehearsed without a preStop, with a preStop sleep longer
//! than the lag, with its command wrapped in `lameduck run`, and with a
//! preStop longer than its grace period; each gets the verdict a cluster
//! would give it.

mod check_support;
mod support;

use check_support::{check_logged, finding_of, findings, pod_app};
use serde_json::Value;
use support::{lameduck_bin, python, tempdir};

/// The balancer's lag in every rehearsal here.
const LAG: &str = "500ms";

/// A Deployment of 2 replicas whose container is `container` (YAML lines
/// indented for a container's fields), grace period `grace` seconds.
fn deployment(grace: u32, container: &str) -> String {
    format!(
        r#"# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  template:
    spec:
      terminationGracePeriodSeconds: {grace}
      containers:
        - name: web
          image: example/web:1
{container}---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{selector: {{app: web}}, ports: [{{port: 80, targetPort: http}}]}}
"#
    )
}

/// The app itself, closing its listener at SIGTERM.
fn plain_app(pre_stop: &str) -> String {
    format!(
        r#"          command: ["{}", "{}"]
          args: ["--on-term", "close-wait"]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}
{pre_stop}"#,
        python(),
        pod_app()
    )
}

/// Rehearses `manifest` with `flags`; exit code, report, log.
fn rehearse(manifest: &str, flags: &[&str], command: &[&str]) -> (i32, Value, String) {
    let dir = tempdir();
    let path = dir.path().join("deployment.yaml");
    std::fs::write(&path, manifest).expect("the manifest");
    let path = path.to_string_lossy().into_owned();
    let mut args = vec![
        "--manifest",
        &path,
        "--endpoint-lag",
        LAG,
        "--rps",
        "100",
        "--settle",
        "300ms",
    ];
    args.extend_from_slice(flags);
    check_logged(&args, command)
}

/// Where the plan says a setting came from.
fn source(report: &Value, setting: &str) -> String {
    report["plan"]["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["setting"] == setting)
        .map(|s| {
            format!(
                "{} ({})",
                s["value"].as_str().unwrap_or(""),
                s["from"].as_str().unwrap_or("")
            )
        })
        .unwrap_or_else(|| panic!("{setting} in {report:#}"))
}

#[test]
fn without_a_pre_stop_the_deployment_loses_requests_to_the_lag() {
    let (code, report, _) = rehearse(&deployment(4, &plain_app("")), &[], &[]);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        report["requests"]["refused"].as_u64() > Some(0),
        "{report:#}"
    );
    assert_eq!(source(&report, "--replicas"), "2 (manifest: replicas)");
    assert_eq!(
        source(&report, "--grace-period"),
        "4s (manifest: terminationGracePeriodSeconds)"
    );
    assert_eq!(
        source(&report, "--readiness"),
        "tcp:8080 (manifest: readinessProbe)"
    );
    assert_eq!(
        source(&report, "--max-surge"),
        "1 (manifest: strategy.rollingUpdate.maxSurge 1)"
    );
    assert_eq!(report["plan"]["command"][1], pod_app());
    assert_eq!(
        report["plan"]["command"][2], "--on-term",
        "args follow the command"
    );
}

#[test]
fn a_pre_stop_sleep_longer_than_the_lag_loses_nothing() {
    let hook = "          lifecycle: {preStop: {sleep: {seconds: 1}}}\n";
    let (code, report, log) = rehearse(&deployment(4, &plain_app(hook)), &[], &[]);
    assert_eq!(code, 0, "{report:#}\n{log}");
    assert_eq!(
        source(&report, "--pre-stop"),
        "sleep 1s (manifest: lifecycle.preStop)"
    );
    assert!(report["requests"]["ok"].as_u64() > Some(50), "{report:#}");
}

#[test]
fn the_command_wrapped_in_lameduck_run_loses_nothing() {
    let container = format!(
        r#"          command: ["{lameduck}", run, --listen, "0.0.0.0:8080", --upstream, "127.0.0.1:9000", --admin, "0.0.0.0:9901", --, "{python}", "{app}", --port, "9000", --on-term, close-wait]
          env:
            - {{name: LAMEDUCK_DRAIN_DELAY, value: 1s}}
            - {{name: LAMEDUCK_GRACE_PERIOD, value: 4s}}
          ports: [{{name: http, containerPort: 8080}}, {{name: admin, containerPort: 9901}}]
          readinessProbe: {{httpGet: {{port: admin, path: /ready}}, periodSeconds: 1}}
"#,
        lameduck = lameduck_bin(),
        python = python(),
        app = pod_app()
    );
    let (code, report, log) = rehearse(&deployment(4, &container), &[], &[]);
    assert_eq!(code, 0, "{report:#}\n{log}");
    assert_eq!(
        source(&report, "--readiness"),
        "http:9901/ready (manifest: readinessProbe)"
    );
    // The container's env reached the lameduck run inside.
    let inner = &report["pods"][0]["life"]["lameduck"];
    assert_eq!(inner["drain_delay"], 1000.0, "{inner}");
    assert_eq!(inner["grace_period"], 4000.0, "{inner}");
    assert!(findings(&report).is_empty(), "{report:#}");
}

#[test]
fn a_pre_stop_longer_than_the_grace_period_ends_in_a_kill() {
    let hook = "          lifecycle: {preStop: {exec: {command: [sleep, \"5\"]}}}\n";
    let (code, report, log) = rehearse(&deployment(2, &plain_app(hook)), &["--replicas", "1"], &[]);
    assert_eq!(code, 1, "{report:#}\n{log}");
    assert_eq!(source(&report, "--replicas"), "1 (command line)");
    let kill = finding_of(&report, "kill");
    assert!(
        kill["cause"]
            .as_str()
            .is_some_and(|c| c.contains("the preStop hook used up the grace period (2s)")),
        "{kill}"
    );
}

#[test]
fn an_image_entrypoint_is_said_to_be_unreadable_and_the_command_is_taken_from_after_the_dashes() {
    let container = "          args: [\"--on-term\", \"close-wait\"]\n          ports: [{containerPort: 8080}]\n";
    let dir = tempdir();
    let path = dir.path().join("pod.yaml");
    std::fs::write(&path, deployment(3, container)).expect("manifest");
    let path = path.to_string_lossy().into_owned();
    // No command anywhere: a usage error that says why.
    let run = support::Lameduck::start(&["check", "--manifest", &path]);
    run.wait_log("ENTRYPOINT cannot be read");
    assert_eq!(run.exit_code(), 2, "{}", run.log());
    // Two workloads and no container named: which one is asked.
    std::fs::write(
        dir.path().join("two.yaml"),
        format!(
            "{}---\n{}",
            deployment(3, container),
            deployment(3, container)
        ),
    )
    .expect("manifest");
    let two = dir.path().join("two.yaml").to_string_lossy().into_owned();
    let run = support::Lameduck::start(&["check", "--manifest", &two, "--", "true"]);
    run.wait_log("it has 2 workloads (Deployment web, Deployment web)");
    assert_eq!(run.exit_code(), 2, "{}", run.log());
}

#[test]
fn an_exec_readiness_probe_and_an_http_get_pre_stop_run_inside_the_pod() {
    // The probe connects from inside the pod's network namespace; the hook
    // asks the app for a page, which holds nothing back.
    let container = format!(
        r#"          command: ["{python}", "{app}", "--on-term", "close-wait"]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe:
            exec: {{command: ["{python}", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080), 1)"]}}
            periodSeconds: 1
          lifecycle: {{preStop: {{httpGet: {{port: http, path: /}}}}}}
"#,
        python = python(),
        app = pod_app()
    );
    let (code, report, log) = rehearse(&deployment(4, &container), &["--replicas", "1"], &[]);
    assert!(
        source(&report, "--readiness").starts_with("exec:"),
        "{report:#}"
    );
    assert_eq!(
        source(&report, "--pre-stop"),
        "httpGet :8080/ (manifest: lifecycle.preStop)"
    );
    let hook = report["pods"][0]["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["event"]["kind"] == "pre-stop-ended")
        .unwrap_or_else(|| panic!("the hook ran: {report:#}\n{log}"));
    assert_eq!(hook["event"]["result"], "answered 200", "{hook}");
    // The hook held nothing back: the app closed its listener within the
    // lag, as without a hook.
    assert_eq!(code, 1, "{report:#}");
}
