//! What the end-to-end tests of `lameduck check` share: running a
//! rehearsal to its end and reading its JSON report back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::{lameduck_bin, tempdir, Lameduck};

/// A rehearsal takes a few seconds; this bounds a stuck one.
pub const REHEARSAL_LIMIT: Duration = Duration::from_secs(120);

/// The app of the rehearsals' pods.
pub fn pod_app() -> String {
    app_path("pod_app.py")
}

/// A test app by its file name.
pub fn app_path(name: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(name);
    path.to_string_lossy().into_owned()
}

/// Runs `lameduck check ARGS -- COMMAND` (no `--` when `command` is
/// empty) and returns its exit code, its JSON report and its log.
pub fn check_logged(args: &[&str], command: &[&str]) -> (i32, Value, String) {
    let dir = tempdir();
    let json = dir.path().join("report.json");
    let json_arg = json.to_string_lossy().into_owned();
    let mut all: Vec<&str> = vec!["check", "--json", &json_arg];
    all.extend_from_slice(args);
    if !command.is_empty() {
        all.push("--");
        all.extend_from_slice(command);
    }
    let run = Lameduck::start(&all);
    let status = run.wait_for(REHEARSAL_LIMIT);
    let code = status.code().expect("check exits with a code");
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("no report ({e}); exit {code}; log:\n{}", run.log()));
    (
        code,
        serde_json::from_str(&text).expect("the report is JSON"),
        run.log(),
    )
}

/// Runs `lameduck check ARGS -- COMMAND` and returns its exit code and its
/// JSON report.
pub fn check(args: &[&str], command: &[&str]) -> (i32, Value) {
    let (code, report, _) = check_logged(args, command);
    (code, report)
}

/// A count of the report.
pub fn count(report: &Value, section: &str, field: &str) -> u64 {
    report[section][field]
        .as_u64()
        .unwrap_or_else(|| panic!("{section}.{field} in {report:#}"))
}

/// Each finding's what, cause and fix.
pub fn findings(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("what"), s("cause"), s("fix"))
        })
        .collect()
}

/// The (what, cause, fix) of the first finding whose `what` contains
/// `word`; fails the test when there is none.
pub fn finding_about(report: &Value, word: &str) -> (String, String, String) {
    let found = findings(report);
    found
        .iter()
        .find(|(what, ..)| what.contains(word))
        .cloned()
        .unwrap_or_else(|| panic!("a finding about {word}: {found:#?}"))
}

/// The first finding of a severity (`loss`, `kill`, `warning`), as JSON;
/// fails the test when there is none.
pub fn finding_of(report: &Value, severity: &str) -> Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["severity"] == severity)
        .cloned()
        .unwrap_or_else(|| panic!("a {severity} finding: {report:#}"))
}

/// `lameduck run` with its drain proxy in front of `app ARGS --port 9000`,
/// as a pod's command: `[drain delay, grace period]` as given.
pub fn behind_lameduck_run<'a>(timing: &[&'a str; 2], app: &[&'a str]) -> Vec<&'a str> {
    let mut command = vec![
        lameduck_bin(),
        "run",
        "--listen",
        "0.0.0.0:{port}",
        "--upstream",
        "127.0.0.1:9000",
        "--admin",
        "0.0.0.0:9901",
        "--drain-delay",
        timing[0],
        "--grace-period",
        timing[1],
        "--",
    ];
    command.extend_from_slice(app);
    command.extend_from_slice(&["--port", "9000"]);
    command
}
