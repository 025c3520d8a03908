//! The manifest rules against their fixtures, with exact places.

use std::path::Path;

use lameduck_lint::manifest;

fn lint(name: &str) -> Vec<(String, usize, usize)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    manifest::lint(name, &text)
        .expect("valid YAML")
        .into_iter()
        .map(|f| (f.rule.to_owned(), f.line, f.column))
        .collect()
}

#[test]
fn every_manifest_rule_at_its_place_across_documents_lists_and_kinds() {
    let want: Vec<(String, usize, usize)> = [
        // Deployment: preStop sleep uses the whole grace period, in an image without sleep.
        ("LD202", 16, 15),
        ("LD203", 17, 26),
        // CronJob inside a List: sh -c without exec.
        ("LD204", 33, 28),
        // Pod inside the List: lameduck's grace period beyond the pod's 30s.
        ("LD205", 39, 17),
    ]
    .iter()
    .map(|(r, l, c)| (r.to_string(), *l, *c))
    .collect();
    assert_eq!(lint("manifests-bad.yaml"), want);
}

#[test]
fn good_manifests_have_no_findings_in_yaml_or_json() {
    assert_eq!(lint("manifests-good.yaml"), []);
    assert_eq!(lint("manifest-good.json"), []);
}

#[test]
fn a_serving_container_without_protection_is_found() {
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: web\n      image: x\n      ports: [{containerPort: 80}]\n";
    let found = manifest::lint("pod.yaml", text).expect("valid");
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].rule, found[0].line, found[0].column),
        ("LD201", 6, 13)
    );
}

#[test]
fn a_yaml_error_says_where() {
    let e = manifest::lint("x.yaml", "kind: Pod\nspec: [1,\n").expect_err("invalid");
    assert!(e.line >= 2, "{e}");
}

#[test]
fn an_annotation_ignores_rules_for_its_object() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\n  annotations:\n    lameduck.io/ignore: \"LD201, LD204\"\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: x\n          ports: [{containerPort: 80}]\n";
    assert_eq!(manifest::lint("d.yaml", text).expect("valid"), []);
}

#[test]
fn a_service_and_the_workloads_it_selects_across_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cross");
    let mut inventory = manifest::Inventory::default();
    let mut found = Vec::new();
    for name in ["service.yaml", "deploy.yaml"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("fixture");
        found.extend(manifest::collect(name, &text, &mut inventory).expect("valid"));
    }
    found.extend(inventory.findings());
    let got: Vec<_> = found
        .iter()
        .map(|f| (f.rule, f.path.as_str(), f.line, f.column))
        .collect();
    assert_eq!(
        got,
        [
            ("LD301", "service.yaml", 8, 46),
            ("LD206", "deploy.yaml", 6, 11),
            ("LD302", "service.yaml", 7, 75),
        ]
    );
}

/// A fixture under `fixtures/manifests/`: rule, line, column of each finding.
fn lint_fixture(name: &str) -> Vec<(String, usize, usize)> {
    lint(&format!("manifests/{name}"))
}

fn expect(name: &str, findings: &[(&str, usize, usize)]) {
    let want: Vec<_> = findings
        .iter()
        .map(|(r, l, c)| (r.to_string(), *l, *c))
        .collect();
    assert_eq!(lint_fixture(name), want, "{name}");
}

#[test]
fn ld201_a_container_without_ports_that_a_service_selects_serves() {
    expect("LD201-bad-selected.yaml", &[("LD201", 18, 17)]);
    // Protected; and a second container without ports is not the one served.
    expect("LD201-good-selected.yaml", &[]);
}

#[test]
fn ld201_lameduck_proxy_and_balance_hold_their_own_stop() {
    expect("LD201-good-lameduck-proxy-balance.yaml", &[]);
    // Not every lameduck subcommand serves, nor is every image lameduck's.
    expect(
        "LD201-bad-lameduck-other.yaml",
        &[("LD201", 12, 17), ("LD201", 16, 17)],
    );
}

#[test]
fn ld205_reads_the_grace_period_from_the_env_and_the_flag_wins() {
    expect("LD205-bad-env.yaml", &[("LD205", 13, 17)]);
}

#[test]
fn ld207_rolling_updates_that_take_every_pod_down() {
    expect(
        "LD207-bad.yaml",
        &[
            // replicas 1, maxUnavailable 1: at maxUnavailable.
            ("LD207", 21, 37),
            // maxUnavailable 100% of 4.
            ("LD207", 34, 50),
            // maxSurge 0 and 25% of 1 rounded down: at maxSurge.
            ("LD207", 47, 31),
            // No replicas: the autoscaler's minimum of 2, maxUnavailable 2.
            ("LD207", 59, 50),
        ],
    );
    expect("LD207-good.yaml", &[]);
}

#[test]
fn ld208_replicas_behind_a_service_without_a_disruption_budget() {
    expect("LD208-bad.yaml", &[("LD208", 9, 18)]);
    // A budget with matchExpressions; a single replica needs none.
    expect("LD208-good.yaml", &[]);
}

#[test]
fn ld209_budgets_that_allow_no_eviction() {
    expect(
        "LD209-bad.yaml",
        &[("LD209", 15, 17), ("LD209", 23, 17), ("LD209", 31, 19)],
    );
    expect("LD209-good.yaml", &[]);
}

#[test]
fn ld210_grace_periods_a_node_shutdown_cuts_short() {
    expect("LD210-bad.yaml", &[("LD210", 7, 38)]);
    expect("LD210-good.yaml", &[]);
    let found = manifest::lint(
        "x.yaml",
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/LD210-bad.yaml"),
        )
        .expect("fixture"),
    )
    .expect("valid");
    assert_eq!(found[0].severity, lameduck_lint::Severity::Info);
}

#[test]
fn ld303_pods_that_stop_serving_before_the_deregistration_delay() {
    // The Service's own annotation, then an ALB Ingress's for its backend.
    expect("LD303-bad.yaml", &[("LD303", 6, 75), ("LD303", 31, 56)]);
    // preStop as long as the delay; a Service's delay overrides the Ingress's.
    expect("LD303-good.yaml", &[]);
}

#[test]
fn a_workload_behind_two_services_is_reported_once() {
    let text = "kind: Service\nmetadata: {name: a}\nspec: {selector: {app: w}}\n---\nkind: Service\nmetadata: {name: b}\nspec: {selector: {app: w}}\n---\nkind: Deployment\nmetadata: {name: w}\nspec:\n  strategy: {type: Recreate}\n  template:\n    metadata: {labels: {app: w}}\n    spec:\n      containers: [{name: w, image: x, command: [lameduck, run, --, w]}]\n";
    let found = manifest::lint("d.yaml", text).expect("valid");
    let rules: Vec<_> = found.iter().map(|f| (f.rule, f.line)).collect();
    assert_eq!(rules, [("LD206", 12)]);
}

#[test]
fn odd_values_are_skipped_not_fatal() {
    let text = "kind: Deployment\nmetadata: {name: w}\nspec:\n  replicas: many\n  strategy: {rollingUpdate: {maxUnavailable: lots%, maxSurge: [1]}}\n  template:\n    metadata: {labels: {app: w}}\n    spec:\n      terminationGracePeriodSeconds: soon\n      containers: [{name: w, image: x, ports: [{containerPort: 1}], lifecycle: {preStop: {sleep: {seconds: 5}}}}]\n---\nkind: Service\nmetadata:\n  name: s\n  annotations: {service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: deregistration_delay.timeout_seconds=NaN}\nspec: {selector: {app: w}}\n---\nkind: PodDisruptionBudget\nmetadata: {name: p}\nspec: {minAvailable: -3, selector: {matchExpressions: [{key: app, operator: Near}]}}\n---\nkind: HorizontalPodAutoscaler\nspec: {scaleTargetRef: {kind: Deployment}}\n";
    assert_eq!(manifest::lint("odd.yaml", text).expect("valid"), []);
}
