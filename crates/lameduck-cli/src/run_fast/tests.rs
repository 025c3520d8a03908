//! The fast path against clap: for the same arguments and environment, what
//! it takes is what clap makes of them, and it covers every flag of `run`
//! that is not the drain proxy's.

use std::ffi::OsString;
use std::sync::Mutex;

use clap::{CommandFactory, Parser};

use super::{parse, RunRequest, LOG_FORMAT, QUIET, RUN_FLAGS};
use crate::{Cli, Command};

/// clap reads the variables from the process: one test at a time sets them.
static ENV: Mutex<()> = Mutex::new(());

fn argv(args: &[&str]) -> Vec<OsString> {
    std::iter::once("lameduck")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

/// What clap makes of `args` with `vars` set (and no other `LAMEDUCK_*`),
/// in the fast path's terms; `None` when clap refuses them or they are not a
/// plain `run`.
fn clap_result(args: &[&str], vars: &[(&str, &str)]) -> Option<String> {
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let saved: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k.to_string_lossy().starts_with("LAMEDUCK_"))
        .collect();
    for (k, _) in &saved {
        std::env::remove_var(k);
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    let parsed = Cli::try_parse_from(argv(args));
    for (k, _) in vars {
        std::env::remove_var(k);
    }
    for (k, v) in saved {
        std::env::set_var(k, v);
    }
    let cli = parsed.ok()?;
    let Command::Run(run) = cli.command else {
        return None;
    };
    let request = RunRequest {
        log_format: cli.log_format,
        quiet: cli.quiet,
        drain_delay: match run.drain.drain_delay {
            None => None,
            Some(crate::proxy::DelayArg::Fixed(d)) => Some(d),
            Some(crate::proxy::DelayArg::Auto) => return None,
        },
        grace_period: run.drain.grace_period,
        safety_margin: run.drain.safety_margin,
        stop_signal: run.stop_signal,
        signal_target: run.signal_target,
        hooks: lameduck_supervisor::Hooks {
            pre_start: run.pre_start,
            on_drain: run.on_drain,
            post_stop: run.post_stop,
        },
        command: run.command,
    };
    if run.proxy.listen.is_some() || run.proxy.upstream.is_some() || run.proxy.admin.is_some() {
        return None;
    }
    Some(format!("{request:?}"))
}

fn fast_result(args: &[&str], vars: &[(&str, &str)]) -> Option<String> {
    let vars = vars
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
    parse(&argv(args), vars).map(|r| format!("{r:?}"))
}

/// The fast path takes `args` and agrees with clap.
fn agrees(args: &[&str], vars: &[(&str, &str)]) {
    let fast = fast_result(args, vars);
    assert!(
        fast.is_some(),
        "the fast path should take {args:?} {vars:?}"
    );
    assert_eq!(fast, clap_result(args, vars), "{args:?} {vars:?}");
}

/// The fast path leaves `args` to clap.
fn left_to_clap(args: &[&str], vars: &[(&str, &str)]) {
    assert!(
        fast_result(args, vars).is_none(),
        "the fast path took {args:?} {vars:?}"
    );
}

#[test]
fn plain_runs_take_the_fast_path_and_agree_with_clap() {
    agrees(&["run", "--", "sleep", "30"], &[]);
    agrees(&["run", "sleep", "30"], &[]);
    agrees(&["run", "sleep", "--", "-x", "--quiet"], &[]);
    agrees(&["run", "--", "--weird-app", "-q"], &[]);
    agrees(&["-q", "run", "--", "app"], &[]);
    agrees(&["run", "--quiet", "--log-format", "json", "app"], &[]);
    agrees(&["--log-format=json", "run", "-q", "app"], &[]);
    agrees(
        &[
            "run",
            "--drain-delay",
            "5s",
            "--grace-period=60s",
            "--safety-margin",
            "3s",
            "--stop-signal",
            "QUIT",
            "--signal-target",
            "child",
            "--pre-start",
            "echo pre",
            "--on-drain=echo drain",
            "--post-stop",
            "echo post",
            "--",
            "nginx",
            "-g",
            "daemon off;",
        ],
        &[],
    );
}

#[test]
fn variables_agree_with_clap() {
    agrees(
        &["run", "app"],
        &[
            ("LAMEDUCK_GRACE_PERIOD", "45s"),
            ("LAMEDUCK_DRAIN_DELAY", "2s"),
            ("LAMEDUCK_SAFETY_MARGIN", "1s"),
            ("LAMEDUCK_STOP_SIGNAL", "SIGWINCH"),
            ("LAMEDUCK_SIGNAL_TARGET", "child"),
            ("LAMEDUCK_PRE_START", "true"),
            ("LAMEDUCK_ON_DRAIN", "true"),
            ("LAMEDUCK_POST_STOP", "true"),
            ("LAMEDUCK_LOG_FORMAT", "json"),
            ("LAMEDUCK_QUIET", "Yes"),
        ],
    );
    agrees(&["run", "app"], &[("LAMEDUCK_QUIET", "off")]);
    // The command line wins over the variable, as in clap, even a bad one.
    agrees(
        &["run", "--grace-period", "10s", "app"],
        &[("LAMEDUCK_GRACE_PERIOD", "forever")],
    );
    agrees(
        &["run", "--stop-signal", "INT", "app"],
        &[("LAMEDUCK_STOP_SIGNAL", "STOP")],
    );
    // But clap checks the global flags' variables on `lameduck` itself.
    assert_eq!(
        clap_result(&["run", "-q", "app"], &[("LAMEDUCK_QUIET", "maybe")]),
        None
    );
    left_to_clap(&["run", "-q", "app"], &[("LAMEDUCK_QUIET", "maybe")]);
}

#[test]
fn anything_unusual_is_left_to_clap() {
    for args in [
        &["run", "--help"][..],
        &["run", "-h", "app"],
        &["--help", "run"],
        &["run", "--version"],
        &["-V"],
        &["run"],
        &["run", "--"],
        &["run", "--grace-period"],
        &["run", "--grace-period", "-5s", "app"],
        &["run", "--grace-period", "forever", "app"],
        &["run", "--grace-period", "2600000000000000h", "app"],
        &[
            "run",
            "--grace-period",
            "10s",
            "--grace-period",
            "20s",
            "app",
        ],
        &["run", "-q", "--quiet", "app"],
        &["run", "--stop-signal", "STOP", "app"],
        &["run", "--signal-target", "everyone", "app"],
        &["run", "--drain-delay", "auto", "app"],
        &["run", "--listen", "127.0.0.1:8080", "app"],
        &["run", "--upstream", "127.0.0.1:8081", "app"],
        &["run", "--max-connection-age", "5m", "app"],
        &[
            "run",
            "--listen",
            "127.0.0.1:8080",
            "--max-connection-age",
            "5m",
            "app",
        ],
        &["run", "--workers", "2", "app"],
        &["run", "--workers=auto", "app"],
        &["run", "--listen", "127.0.0.1:8080", "--workers", "0", "app"],
        &["run", "--pre-start=", "app"],
        &["run", "--log-format", "JSON", "app"],
        &["run", "--quiet=true", "app"],
        &["run", "-qh", "app"],
        &["run", "-", "app"],
        &["run", "--no-such-flag", "app"],
        &["rn", "app"],
        &["lint", "Dockerfile"],
        &[],
    ] {
        left_to_clap(args, &[]);
    }
    for vars in [
        &[("LAMEDUCK_LISTEN", "127.0.0.1:8080")][..],
        &[("LAMEDUCK_CLIENT_TIMEOUT", "forever")],
        &[("LAMEDUCK_MAX_CONNECTION_AGE", "5m")],
        &[("LAMEDUCK_WORKERS", "2")],
        &[("LAMEDUCK_SOMETHING_NEW", "1")],
        &[("LAMEDUCK_GRACE_PERIOD", "")],
        &[("LAMEDUCK_GRACE_PERIOD", "forever")],
        &[("LAMEDUCK_QUIET", "maybe")],
        &[("LAMEDUCK_LOG_FORMAT", "xml")],
    ] {
        left_to_clap(&["run", "app"], vars);
    }
}

#[test]
fn every_flag_of_run_but_the_proxys_is_known_here() {
    let cli = Cli::command();
    let run = cli
        .get_subcommands()
        .find(|c| c.get_name() == "run")
        .expect("run");
    let known: Vec<(&str, &str)> = RUN_FLAGS
        .iter()
        .copied()
        .chain([LOG_FORMAT, QUIET])
        .collect();
    for arg in run.get_arguments().chain(cli.get_arguments()) {
        let Some(long) = arg.get_long() else { continue };
        if ["help", "version"].contains(&long) || arg.get_help_heading() == Some("Drain proxy") {
            continue;
        }
        let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
        assert!(
            known.contains(&(long, env)),
            "--{long} ({env}) is not known to the fast path"
        );
        assert!(env.starts_with("LAMEDUCK_"), "--{long}: {env}");
    }
    for arg in run.get_arguments() {
        if arg.get_help_heading() == Some("Drain proxy") {
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            assert!(
                env.starts_with("LAMEDUCK_") && !known.iter().any(|(_, v)| *v == env),
                "the proxy's --{:?} must send the fast path to clap: {env}",
                arg.get_long()
            );
        }
    }
}
