//! `lameduck run` exits with the app's own status, and with its own clear
//! statuses when it cannot run it.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{run_to_end, tempdir, Lameduck};

#[test]
fn every_exit_code_of_the_app_comes_back() {
    for code in 0..=255 {
        let script = format!("exit {code}");
        let (got, log) = run_to_end(&["run", "--quiet", "--", "sh", "-c", &script]);
        assert_eq!(got, code, "{log}");
    }
}

#[test]
fn death_by_signal_is_128_plus_the_signal() {
    for (name, number) in [("TERM", 15), ("KILL", 9), ("HUP", 1), ("USR1", 10)] {
        let script = format!("kill -{name} $$");
        let (got, log) = run_to_end(&["run", "--", "sh", "-c", &script]);
        assert_eq!(got, 128 + number, "{name}: {log}");
        assert!(log.contains(&format!("killed by SIG{name}")), "{log}");
    }
}

#[test]
fn as_pid1_the_exit_code_and_death_by_signal_come_back_too() {
    for (script, expected) in [
        ("exit 0", 0),
        ("exit 42", 42),
        ("kill -TERM $$", 143),
        ("kill -KILL $$", 137),
    ] {
        let lameduck = Lameduck::start_as_pid1(&["run", "--", "sh", "-c", script]);
        assert!(lameduck.wait_log("app started").contains("pid1=true"));
        assert_eq!(lameduck.exit_code(), expected, "{script}");
    }
}

#[test]
fn a_missing_command_is_127_with_its_name() {
    let (code, log) = run_to_end(&["run", "--", "no-such-command-anywhere", "x"]);
    assert_eq!(code, 127);
    assert!(
        log.contains("no-such-command-anywhere: command not found"),
        "{log}"
    );
    assert_eq!(log.lines().count(), 1, "one line: {log}");
}

#[test]
fn a_command_that_cannot_be_executed_is_126_with_its_name() {
    let dir = tempdir();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let path = script.display().to_string();
    let (code, log) = run_to_end(&["run", "--", &path]);
    assert_eq!(code, 126);
    assert!(
        log.contains(&format!("{path}: cannot execute: Permission denied")),
        "{log}"
    );

    let directory = dir.path().display().to_string();
    let (code, log) = run_to_end(&["run", "--", &directory]);
    assert_eq!(code, 126, "{log}");
    assert!(
        log.contains(&format!("{directory}: is a directory")),
        "a directory is said to be one, with no chmod +x: {log}"
    );
}

#[test]
fn usage_errors_are_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--grace-period", "30", "--", "true"],
            "has no unit",
        ),
        (
            &["run", "--drain-delay", "5 seconds", "--", "true"],
            "invalid duration",
        ),
        (&["run", "--drain-delay=-1s", "--", "true"], "negative"),
        (
            &["run", "--stop-signal", "TERMINATE", "--", "true"],
            "unknown signal",
        ),
        (
            &["run", "--signal-target", "everyone", "--", "true"],
            "unknown signal target",
        ),
        (
            &["run", "--no-such-flag", "--", "true"],
            "unexpected argument '--no-such-flag'",
        ),
        (&["run"], "required arguments were not provided"),
        (&["no-such-subcommand"], "unrecognized subcommand"),
        (
            &["run", "--log-format", "xml", "--", "true"],
            "invalid value 'xml'",
        ),
    ];
    for (args, expected) in cases {
        let (code, log) = run_to_end(args);
        assert_eq!(code, 2, "{args:?}: {log}");
        assert!(log.contains(expected), "{args:?}: {log}");
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
fn bad_values_in_the_environment_are_usage_errors_too() {
    let out = std::process::Command::new(support::lameduck_bin())
        .args(["run", "--", "true"])
        .env("LAMEDUCK_GRACE_PERIOD", "soon")
        .output()
        .expect("run lameduck");
    assert_eq!(out.status.code(), Some(2));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("invalid duration \"soon\""), "{log}");
}

#[test]
fn options_are_read_from_lameduck_variables() {
    let lameduck = Lameduck::start_with(
        &["run", "--", "true"],
        support::Options {
            env: vec![
                ("LAMEDUCK_GRACE_PERIOD".into(), "12s".into()),
                ("LAMEDUCK_DRAIN_DELAY".into(), "1500ms".into()),
                ("LAMEDUCK_SIGNAL_TARGET".into(), "child".into()),
                ("LAMEDUCK_LOG_FORMAT".into(), "json".into()),
            ],
            ..Default::default()
        },
    );
    let started = lameduck.wait_log("app started");
    assert_eq!(lameduck.exit_code(), 0);
    let event: serde_json_lite::Value = serde_json_lite::parse(&started);
    assert_eq!(event.get("grace_period"), Some("12s"));
    assert_eq!(event.get("drain_delay"), Some("1.5s (configured)"));
    assert_eq!(event.get("signal_target"), Some("child"));
}

#[test]
fn the_default_drain_delay_is_5s_inside_kubernetes_and_says_so() {
    let inside = Lameduck::start_with(
        &["run", "--", "true"],
        support::Options {
            env: vec![("KUBERNETES_SERVICE_HOST".into(), "10.96.0.1".into())],
            ..Default::default()
        },
    );
    let line = inside.wait_log("app started");
    assert!(
        line.contains("drain_delay=5s (default inside Kubernetes, KUBERNETES_SERVICE_HOST is set)"),
        "{line}"
    );
    assert_eq!(inside.exit_code(), 0);
    let (_, log) = run_to_end(&["run", "--", "true"]);
    assert!(
        log.contains("drain_delay=0s (default outside Kubernetes)"),
        "{log}"
    );
}

#[test]
fn quiet_logs_nothing_on_a_clean_run_and_json_is_one_object_per_line() {
    let (code, log) = run_to_end(&["run", "--quiet", "--", "true"]);
    assert_eq!((code, log.as_str()), (0, ""));
    let (code, log) = run_to_end(&["run", "--log-format", "json", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3);
    let lines: Vec<_> = log.lines().collect();
    assert!(lines.len() >= 3, "{log}");
    for line in lines {
        let event = serde_json_lite::parse(line);
        assert!(
            event.get("timestamp").is_some() && event.get("level").is_some(),
            "{line}"
        );
    }
}

/// Just enough JSON reading for flat log objects, so the tests do not
/// trust the code under test to check its own output.
mod serde_json_lite {
    pub struct Value(Vec<(String, String)>);

    impl Value {
        pub fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        }
    }

    pub fn parse(line: &str) -> Value {
        let out = std::process::Command::new(super::support::python())
            .args([
                "-c",
                "import json,sys; d=json.loads(sys.argv[1]); [print(k+'\\t'+str(v)) for k,v in d.items()]",
                line,
            ])
            .output()
            .expect("python");
        assert!(out.status.success(), "not one JSON object: {line}");
        Value(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        )
    }
}
