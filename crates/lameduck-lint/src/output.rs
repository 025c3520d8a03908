//! Findings written out: like rustc for people, JSON for programs.

use std::fmt::Write as _;

use crate::finding::Finding;

/// `path:line:column: severity[ID]: message`, the offending line under it
/// with a caret, as rustc and clippy print.
pub fn human(findings: &[Finding], source: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(
            out,
            "{}:{}:{}: {}[{}]: {}",
            f.path, f.line, f.column, f.severity, f.rule, f.message
        );
        if let Some(line) =
            source(&f.path).and_then(|text| text.lines().nth(f.line - 1).map(str::to_owned))
        {
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
