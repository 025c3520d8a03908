//! The SARIF output against the SARIF 2.1.0 JSON schema (vendored in
//! tests/sarif/, validated offline by Python's jsonschema), and against
//! what GitHub code scanning reads from it.

use std::path::{Path, PathBuf};
use std::process::Command;

use lameduck_lint::{output, run, select::RuleSet};
use serde_json::{json, Value};

/// The SARIF of every fixture, linted under its relative path.
fn fixtures_sarif() -> Value {
    // Integration tests run in the crate's directory: the paths stay relative.
    let report = run::lint_paths(
        &[PathBuf::from("tests/fixtures")],
        &mut std::io::empty(),
        &RuleSet::defaults(),
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.findings.len() >= 10, "{:?}", report.findings);
    serde_json::from_str(&output::sarif(&report.findings)).expect("SARIF is JSON")
}

/// Runs validate.py on the documents; the verdict line of each.
fn validate(documents: &[(&str, &Value)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (name, document) in documents {
        let path = dir.path().join(name);
        std::fs::write(&path, document.to_string()).expect("write");
        files.push(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sarif/validate.py");
    let out = Command::new("python3")
        .arg(script)
        .args(&files)
        .output()
        .expect("python3 runs (scripts/test.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("{}/", dir.path().display());
    stdout
        .lines()
        .map(|l| l.trim_start_matches(&prefix).to_owned())
        .collect()
}

#[test]
fn the_output_is_valid_sarif_2_1_0_and_broken_documents_are_not() {
    let good = fixtures_sarif();
    let mut bad_version = good.clone();
    bad_version["version"] = json!("2.0.0");
    let mut no_message = good.clone();
    if let Some(result) = no_message["runs"][0]["results"][0].as_object_mut() {
        result.remove("message");
    }
    let mut line_zero = good.clone();
    line_zero["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
        json!(0);
    let mut unknown = good.clone();
    unknown["runs"][0]["tool"]["driver"]["colour"] = json!("blue");
    let verdicts = validate(&[
        ("good.sarif", &good),
        ("bad-version.sarif", &bad_version),
        ("no-message.sarif", &no_message),
        ("line-zero.sarif", &line_zero),
        ("unknown.sarif", &unknown),
    ]);
    assert_eq!(verdicts[0], "good.sarif: ok", "{verdicts:#?}");
    for name in [
        "bad-version.sarif",
        "no-message.sarif",
        "line-zero.sarif",
        "unknown.sarif",
    ] {
        assert!(
            verdicts
                .iter()
                .any(|v| v.starts_with(&format!("{name}: invalid: "))),
            "{name} passed: {verdicts:#?}"
        );
        assert!(!verdicts.contains(&format!("{name}: ok")), "{verdicts:#?}");
    }
}

#[test]
fn the_output_has_what_github_code_scanning_reads() {
    let sarif = fixtures_sarif();
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), lameduck_lint::rules::ALL.len());
    for rule in rules {
        for key in ["shortDescription", "fullDescription", "help"] {
            let text = rule[key]["text"].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{} lacks {key}.text", rule["id"]);
        }
        let uri = rule["helpUri"].as_str().unwrap_or_default();
        assert!(uri.starts_with("https://") && uri.ends_with(".md"), "{uri}");
    }
    let results = run["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for result in results {
        let id = result["ruleId"].as_str().expect("ruleId");
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[index]["id"], id, "ruleIndex points at its rule");
        assert!(result["message"]["text"].is_string());
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().expect("uri");
        assert!(
            uri.starts_with("tests/fixtures/") && !uri.contains("./"),
            "relative to the checkout: {uri}"
        );
        let region = &location["region"];
        assert!(region["startLine"].as_u64().expect("startLine") >= 1);
        assert!(region["startColumn"].as_u64().expect("startColumn") >= 1);
    }
}
