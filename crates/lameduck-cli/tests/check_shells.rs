//! `lameduck lint` predicts, `lameduck check` shows: the same shell-form
//! command is a finding on a Debian base (dash forks it and stays PID 1)
//! and harmless on Alpine (BusyBox's `sh -c` replaces itself with it), and
//! a rehearsal that runs the command the way each container would, through
//! that shell as PID 1, ends in a kill under dash and in none under BusyBox.

mod check_support;
mod support;

use std::process::{Command, Stdio};

use check_support::{check_logged, finding_of, findings, pod_app};
use support::{lameduck_bin, python, tempdir};

/// The app's command line as a Dockerfile's shell-form CMD writes it.
fn shell_form(app: &str) -> String {
    format!("{} {app} --port {{port}} --on-term close-wait", python())
}

/// `lameduck lint` on a Dockerfile `FROM base` whose CMD is shell form:
/// the rule IDs it reports.
fn lint_rules(base: &str) -> Vec<String> {
    let dir = tempdir();
    let path = dir.path().join("Dockerfile");
    std::fs::write(
        &path,
        format!("FROM {base}\nCOPY pod_app.py /app/\nCMD python3 /app/pod_app.py --port 8080\n"),
    )
    .expect("write the Dockerfile");
    let out = Command::new(lameduck_bin())
        .args(["lint", "--format", "json"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("lameduck lint");
    let findings: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("lint's JSON findings");
    findings
        .as_array()
        .expect("a list of findings")
        .iter()
        .filter_map(|f| f["rule"].as_str().map(str::to_owned))
        .collect()
}

/// Rehearses `shell -c COMMAND` as PID 1 of each pod, as the container
/// runtime starts a shell-form CMD: the pods are deleted one by one.
fn rehearse_through(shell: &[&str]) -> (i32, serde_json::Value, String) {
    let app = pod_app();
    let script = shell_form(&app);
    let mut command: Vec<&str> = shell.to_vec();
    command.push(&script);
    check_logged(
        &[
            "--scenario",
            "delete",
            "--replicas",
            "2",
            "--endpoint-lag",
            "0s",
            "--grace-period",
            "2s",
            "--clients",
            "1",
            "--rps",
            "5",
            "--settle",
            "300ms",
        ],
        &command,
    )
}

#[test]
fn a_shell_form_cmd_on_a_debian_base_is_found_by_lint_and_killed_in_the_rehearsal() {
    assert!(
        lint_rules("python:3.12-slim").iter().any(|r| r == "LD101"),
        "lint predicts the lost SIGTERM on a dash base"
    );
    let (code, report, log) = rehearse_through(&["dash", "-c"]);
    assert_eq!(code, 1, "dash stays PID 1: {report:#}\n{log}");
    let kill = finding_of(&report, "kill");
    assert!(
        kill["cause"]
            .as_str()
            .is_some_and(|c| c.contains("PID 1 was a shell (`dash`)")),
        "{kill}"
    );
}

#[test]
fn the_same_cmd_on_an_alpine_base_is_harmless_to_lint_and_to_the_rehearsal() {
    assert!(
        !lint_rules("python:3.12-alpine")
            .iter()
            .any(|r| r == "LD101"),
        "BusyBox's sh -c execs a lone command"
    );
    let (code, report, log) = rehearse_through(&["busybox", "sh", "-c"]);
    assert!(
        !findings(&report)
            .iter()
            .any(|(what, ..)| what.contains("killed (SIGKILL)")),
        "BusyBox handed PID 1 to the app, which stopped on SIGTERM: {report:#}\n{log}"
    );
    assert_eq!(code, 0, "nothing lost: {report:#}\n{log}");
}
