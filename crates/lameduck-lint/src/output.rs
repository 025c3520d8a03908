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

/// One JSON array of findings, keys in order. Written straight to text,
/// without a tree of values: a run's findings can be many.
pub fn json(findings: &[Finding]) -> String {
    let text = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let mut out = String::from("[");
    for (i, f) in findings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"column\":{},\"line\":{},\"message\":{},\"path\":{},\"rule\":{},\"severity\":{}}}",
            f.column,
            f.line,
            text(&f.message),
            text(&f.path),
            text(f.rule),
            text(f.severity.as_str()),
        );
    }
    out.push(']');
    out
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
        let _ = writeln!(
            out,
            "::{level} file={},line={},col={},title={}::{}",
            escape_property(&f.path),
            f.line,
            f.column,
            f.rule,
            escape_data(&f.message)
        );
    }
    out
}

/// A workflow command's message: `%`, CR and LF escaped, as the Actions
/// toolkit's `escapeData` does.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property (`file=`): `:` and `,` escaped as well, as
/// the toolkit's `escapeProperty` does.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// SARIF 2.1.0, as GitHub code scanning takes it: one run; every rule
/// with a short and a full description, its page as help and a link to it;
/// one result per finding at a relative URI, line and column.
pub fn sarif(findings: &[Finding]) -> String {
    let rules: Vec<serde_json::Value> = crate::rules::ALL
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": why(r.page).unwrap_or_else(|| r.title.to_owned())},
                "help": {"text": r.page, "markdown": r.page},
                "helpUri": format!("{RULES_URL}/{}.md", r.id),
                "defaultConfiguration": {"level": sarif_level(r.severity)},
            })
        })
        .collect();
    // Pretty: a SARIF file is uploaded and opened by people, and its diffs
    // are read (the golden test's). The results are written one at a time
    // into the envelope's place for them, not built as one tree of values
    // first: a run's findings can be many.
    let sarif = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "lameduck lint",
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": [],
        }],
    });
    let envelope = serde_json::to_string_pretty(&sarif).unwrap_or_default();
    const PLACE: &str = "\n      \"results\": []";
    let Some((head, tail)) = envelope.split_once(PLACE).filter(|_| !findings.is_empty()) else {
        return envelope;
    };
    let mut out = String::with_capacity(envelope.len() + findings.len() * 400);
    out.push_str(head);
    out.push_str("\n      \"results\": [");
    for (i, f) in findings.iter().enumerate() {
        let mut result = serde_json::json!({
            "ruleId": f.rule,
            "level": sarif_level(f.severity),
            "message": {"text": f.message},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": sarif_uri(&f.path)},
                    "region": {"startLine": f.line.max(1), "startColumn": f.column.max(1)},
                }
            }],
        });
        if let Some(index) = crate::rules::ALL.iter().position(|r| r.id == f.rule) {
            result["ruleIndex"] = index.into();
        }
        if i > 0 {
            out.push(',');
        }
        for line in serde_json::to_string_pretty(&result)
            .unwrap_or_default()
            .lines()
        {
            out.push_str("\n        ");
            out.push_str(line);
        }
    }
    out.push_str("\n      ]");
    out.push_str(tail);
    out
}

/// Where the rule pages are published.
const RULES_URL: &str = concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/rules");

/// The first paragraph of a rule page's `## Why`, on one line.
fn why(page: &str) -> Option<String> {
    let after = page.split_once("\n## Why\n")?.1.trim_start();
    let paragraph = after.split("\n\n").next()?.trim();
    (!paragraph.is_empty() && !paragraph.starts_with('#')).then(|| {
        paragraph
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// A path as a SARIF artifact URI: relative paths stay relative (without
/// `./`), as GitHub resolves them against the repository; absolute ones
/// become `file://` URIs. Bytes outside RFC 3986's unreserved set and `/`
/// are percent-encoded.
pub fn sarif_uri(path: &str) -> String {
    let mut relative = path;
    while let Some(rest) = relative.strip_prefix("./") {
        relative = rest;
    }
    let mut uri = String::with_capacity(relative.len() + 7);
    if relative.starts_with('/') {
        uri.push_str("file://");
    }
    for b in relative.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(char::from(b));
        } else {
            let _ = write!(uri, "%{b:02X}");
        }
    }
    uri
}

fn sarif_level(severity: crate::Severity) -> &'static str {
    match severity {
        crate::Severity::Error => "error",
        crate::Severity::Warning => "warning",
        crate::Severity::Info => "note",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_annotations_escape_what_would_end_a_property() {
        let finding = Finding {
            rule: "LD101",
            severity: crate::Severity::Error,
            path: "a,b:c%.yaml".into(),
            line: 2,
            column: 5,
            message: "50% lost\non: rollouts".into(),
        };
        assert_eq!(
            github(&[finding]),
            "::error file=a%2Cb%3Ac%25.yaml,line=2,col=5,title=LD101::50%25 lost%0Aon: rollouts\n"
        );
    }

    #[test]
    fn sarif_uris_are_relative_references_or_file_uris() {
        assert_eq!(sarif_uri("./k8s/web.yaml"), "k8s/web.yaml");
        assert_eq!(sarif_uri("././Dockerfile"), "Dockerfile");
        assert_eq!(sarif_uri("my app/Dockerfile#1"), "my%20app/Dockerfile%231");
        assert_eq!(sarif_uri("/src/k8s/ü.yaml"), "file:///src/k8s/%C3%BC.yaml");
        assert_eq!(sarif_uri("c:x.yaml"), "c%3Ax.yaml");
    }

    #[test]
    fn every_rule_page_has_a_why_paragraph() {
        for rule in crate::rules::ALL {
            let why = why(rule.page).unwrap_or_default();
            assert!(why.len() > 40, "{}: {why:?}", rule.id);
        }
    }
}
