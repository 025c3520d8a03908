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
