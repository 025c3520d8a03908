//! Findings written out: like rustc for people; JSON, SARIF and GitHub
//! workflow annotations for programs.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::finding::Finding;

/// `path:line:column: severity[ID]: message`, the offending line under it
/// with a caret, as rustc and clippy print; no colour. `source` gives the
/// text of an input by its name.
pub fn human<'a>(findings: &[Finding], source: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::new();
    // The lines of each input, split once: findings are many, inputs large.
    let mut lines: HashMap<&str, Vec<&'a str>> = HashMap::new();
    for f in findings {
        let _ = writeln!(
            out,
            "{}:{}:{}: {}[{}]: {}",
            f.path, f.line, f.column, f.severity, f.rule, f.message
        );
        let text = lines.entry(f.path.as_str()).or_insert_with(|| {
            source(&f.path)
                .map(|t| t.lines().collect())
                .unwrap_or_default()
        });
        if let Some(line) = f.line.checked_sub(1).and_then(|i| text.get(i)) {
            let gutter = f.line.to_string().len();
            let _ = writeln!(out, "{:gutter$} |", "");
            let _ = writeln!(out, "{} | {}", f.line, line);
            let _ = writeln!(out, "{:gutter$} | {:>col$}", "", "^", col = f.column);
            let _ = writeln!(
                out,
                "{:gutter$} = see: lameduck lint --explain {}",
                "", f.rule
            );
        }
        out.push('\n');
    }
    out
}

/// One JSON array of findings.
pub fn json(findings: &[Finding]) -> String {
    let items: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "rule": f.rule,
                "severity": f.severity.as_str(),
                "path": f.path,
                "line": f.line,
                "column": f.column,
                "message": f.message,
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// GitHub Actions workflow commands: one annotation per finding.
pub fn github(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let level = match f.severity {
            crate::Severity::Error => "error",
            crate::Severity::Warning => "warning",
            crate::Severity::Info => "notice",
        };
        // Workflow commands escape %, \r and \n in the message.
        let message = f
            .message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{}",
            f.path, f.line, f.column, f.rule, message
        );
    }
    out
}

/// SARIF 2.1.0, as GitHub code scanning takes it: one run, the rules with
/// their help pages, one result per finding.
pub fn sarif(findings: &[Finding]) -> String {
    let rules: Vec<serde_json::Value> = crate::rules::ALL
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "shortDescription": {"text": r.title},
                "help": {"text": r.page, "markdown": r.page},
                "defaultConfiguration": {"level": sarif_level(r.severity)},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            serde_json::json!({
                "ruleId": f.rule,
                "ruleIndex": crate::rules::ALL.iter().position(|r| r.id == f.rule).unwrap_or(0),
                "level": sarif_level(f.severity),
                "message": {"text": f.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path.trim_start_matches("./")},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }],
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "lameduck lint",
                "informationUri": "https://github.com/lameduck-dev/lameduck",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
    .to_string()
}

fn sarif_level(severity: crate::Severity) -> &'static str {
    match severity {
        crate::Severity::Error => "error",
        crate::Severity::Warning => "warning",
        crate::Severity::Info => "note",
    }
}
