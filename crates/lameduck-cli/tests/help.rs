//! What a newcomer sees first: `lameduck --help` says what lameduck is for,
//! a mistyped command gets the command meant, and `--version` names the
//! commit it was built from.

mod support;

use std::process::{Command, Output};

use support::lameduck_bin;

fn lameduck(args: &[&str]) -> Output {
    Command::new(lameduck_bin())
        .args(args)
        .env_remove("LAMEDUCK_LOG_FORMAT")
        .output()
        .expect("lameduck runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_opens_with_what_lameduck_is_for() {
    for flag in ["--help", "-h"] {
        let out = lameduck(&[flag]);
        assert!(out.status.success());
        let help = text(&out.stdout);
        let first = help.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("Makes a Kubernetes pod leave without losing a request"),
            "{flag}: {first}"
        );
        for command in ["run", "proxy", "lint", "check"] {
            assert!(
                help.lines().any(|l| l.trim_start().starts_with(command)),
                "{flag} lists {command}:\n{help}"
            );
        }
        assert!(!help.contains("thin binary"), "{help}");
    }
}

#[test]
fn a_mistyped_command_gets_the_one_meant() {
    for (typed, meant) in [
        ("rn", "run"),
        ("rnu", "run"),
        ("lnt", "lint"),
        ("chek", "check"),
        ("proxi", "proxy"),
    ] {
        let out = lameduck(&[typed]);
        assert_eq!(out.status.code(), Some(2), "{typed}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("a similar subcommand exists: '{meant}'")),
            "{typed}: {err}"
        );
    }
    // Nothing close: no tip, still the usage error.
    let out = lameduck(&["banana"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("unrecognized subcommand 'banana'"), "{err}");
    assert!(!err.contains("similar"), "{err}");
}

#[test]
fn version_names_the_commit_date_and_target() {
    let out = lameduck(&["--version"]);
    assert!(out.status.success());
    let version = text(&out.stdout);
    let head = Command::new("git")
        .args(["log", "-1", "--format=%h %cs"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git log");
    let head = text(&head.stdout);
    let (hash, date) = head.trim().split_once(' ').expect("hash and date");
    assert_eq!(
        version.trim(),
        format!(
            "lameduck {} ({hash}, {date}, {}-unknown-linux-gnu)",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH
        )
    );
}
