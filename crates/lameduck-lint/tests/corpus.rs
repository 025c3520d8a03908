//! The whole corpus (tests/corpus/) linted as one run: every finding and
//! every input error compared with tests/corpus.expected (LAMEDUCK_BLESS=1
//! rewrites it); a huge stream and a huge line, made at test time, linted
//! beside it; and no input, cut anywhere, makes the linter panic.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lameduck_lint::run::{lint_paths, Report};
use lameduck_lint::select::RuleSet;
use lameduck_lint::{dockerfile, manifest};

const CORPUS: &str = "tests/corpus";

/// Deployments with a Service each, none protected against the endpoint
/// race: one LD201 per Deployment.
fn huge_stream(deployments: usize) -> String {
    let mut text = String::new();
    for i in 0..deployments {
        let _ = write!(
            text,
            "---\n# Source: app-{i}/templates/all.yaml\napiVersion: v1\nkind: Service\nmetadata: {{name: app-{i}}}\nspec:\n  selector: {{app: app-{i}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  labels: {{app: app-{i}, team: t{}}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: app-{i}}}}}\n  template:\n    metadata: {{labels: {{app: app-{i}}}}}\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/app-{i}:1.0.{i}\n          ports: [{{containerPort: 8080}}]\n          resources: {{requests: {{cpu: 50m, memory: 64Mi}}}}\n",
            i % 7
        );
    }
    text
}

fn lint_corpus_and(extra: &[PathBuf]) -> Report {
    let mut paths = vec![PathBuf::from(CORPUS)];
    paths.extend_from_slice(extra);
    lint_paths(&paths, &mut std::io::empty(), &RuleSet::defaults())
}

/// The report as lines: findings, then input errors.
fn render(report: &Report) -> String {
    let mut out = String::new();
    for f in report
        .findings
        .iter()
        .filter(|f| f.path.starts_with(CORPUS))
    {
        let _ = writeln!(
            out,
            "{}:{}:{}: {}[{}]: {}",
            f.path, f.line, f.column, f.severity, f.rule, f.message
        );
    }
    for e in report.errors.iter().filter(|e| e.path.starts_with(CORPUS)) {
        let _ = writeln!(out, "input error: {e}");
    }
    out
}

#[test]
fn the_corpus_gives_the_expected_findings_and_input_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let huge = dir.path().join("huge.yaml");
    let deployments = 3000;
    std::fs::write(&huge, huge_stream(deployments)).expect("write");
    // One 8 MiB line (a RUN with an inlined script), then a shell-form CMD.
    let long_line = dir.path().join("long-line.Dockerfile");
    let line = format!(
        "FROM debian:12\nRUN echo {}\nCMD app --port 80\n",
        "x".repeat(8 << 20)
    );
    std::fs::write(&long_line, line).expect("write");

    let report = lint_corpus_and(&[huge.clone(), long_line.clone()]);

    let got = render(&report);
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus.expected");
    if std::env::var_os("LAMEDUCK_BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&expected_path, &got).expect("bless");
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if got != expected {
        let only_got: Vec<_> = got.lines().filter(|l| !expected.contains(l)).collect();
        let only_expected: Vec<_> = expected.lines().filter(|l| !got.contains(l)).collect();
        panic!(
            "the corpus's findings changed (LAMEDUCK_BLESS=1 cargo test -p lameduck-lint --test corpus rewrites tests/corpus.expected; review the diff)\nnew: {only_got:#?}\ngone: {only_expected:#?}"
        );
    }

    // Bad inputs are refused with their place; the rest is linted.
    for (file, place) in [
        ("broken/tabs.yaml", ":6:"),
        ("broken/unclosed.json", ":"),
        ("broken/latin1.Dockerfile", ":2:6:"),
        ("broken/compressed.json", ":1:"),
    ] {
        let path = format!("{CORPUS}/{file}");
        let error = report
            .errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("no input error for {path}: {:#?}", report.errors));
        assert!(error.place.is_some(), "{error}");
        assert!(
            error.to_string().starts_with(&format!("{path}{place}")),
            "{error}"
        );
    }
    assert_eq!(report.errors.len(), 4, "{:#?}", report.errors);
    // A Helm chart's templates are left out, with a note that says how to
    // lint them; the chart's own files are read.
    assert_eq!(
        report.notes,
        [format!(
            "{CORPUS}/chart: a Helm chart; its templates are not YAML until rendered: \
             lint them with `helm template {CORPUS}/chart | lameduck lint -`"
        )]
    );
    assert!(report
        .inputs
        .contains(&format!("{CORPUS}/chart/values.yaml")));
    assert!(!got.contains("rendered-by-ci"), ".ignore'd");
    let from_corpus = report
        .findings
        .iter()
        .filter(|f| f.path.starts_with(CORPUS));
    assert!(from_corpus.count() >= 15, "{got}");

    // The huge inputs: every Deployment found, the line after 8 MiB too.
    let huge_name = huge.display().to_string();
    let huge_rules = |rule: &str| {
        report
            .findings
            .iter()
            .filter(|f| f.path == huge_name && f.rule == rule)
            .count()
    };
    // Each Deployment: no endpoint-race protection, no disruption budget.
    assert_eq!(huge_rules("LD208"), deployments);
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.path == huge_name)
            .count(),
        2 * deployments
    );
    let mut in_huge = report
        .findings
        .iter()
        .filter(|f| f.path == huge_name && f.rule == "LD201");
    assert_eq!(in_huge.clone().count(), deployments);
    let last = in_huge.next_back().expect("findings");
    assert_eq!((last.line, last.column), (deployments * 25 - 3, 17));
    let long_name = long_line.display().to_string();
    let in_long: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.path == long_name)
        .map(|f| (f.rule, f.line, f.column))
        .collect();
    assert_eq!(in_long, [("LD101", 3, 5)]);
}

/// Every corpus file, cut at many places (mid-line, mid-quote, mid-heredoc),
/// is linted as a Dockerfile and as a manifest: errors are fine, panics not.
#[test]
fn no_input_cut_anywhere_makes_the_linter_panic() {
    let walked = lameduck_lint::walk::files(Path::new(CORPUS));
    assert!(walked.files.len() >= 30, "{:?}", walked.files);
    for file in walked.files {
        let bytes = std::fs::read(&file).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        let name = file.display().to_string();
        let step = (text.len() / 60).max(1);
        for cut in (0..=text.len()).step_by(step) {
            let Some(prefix) = text.get(..cut) else {
                continue;
            };
            let _ = dockerfile::lint(&name, prefix);
            let _ = manifest::lint(&name, prefix);
        }
    }
}
