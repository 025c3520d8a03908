//! Usage mistakes of `lameduck run` get a clear message in the user's terms
//! and status 2 before anything starts: durations beyond the one bound
//! (8760h), flags and environment alike, stop signals that cannot stop an
//! app, an auto delay out of order; a directory as the command is said to be
//! one. The longest accepted durations plan a stop without overflowing a
//! clock.

mod support;

use std::process::{Command, Stdio};

use support::{lameduck_bin, run_to_end, tempdir, Lameduck, SigApp};

/// What the probe of issue 11 found accepted, and panicking at SIGTERM.
const HUGE: &str = "2600000000000000h";

/// `lameduck run FLAGS -- sleep 30`, with the drain proxy on when `proxied`
/// (its flags need it); a run that got past its flags takes 30s and fails.
fn run_with(proxied: bool, flags: &[&str]) -> (i32, String) {
    let mut args = vec!["run"];
    if proxied {
        args.extend(["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1"]);
    }
    args.extend_from_slice(flags);
    args.extend(["--", "sleep", "30"]);
    run_to_end(&args)
}

/// Status 2, and the message names `what` and the bound.
fn assert_beyond_the_bound(what: &str, (code, log): (i32, String)) {
    assert_eq!(code, 2, "{what}: {log}");
    assert!(log.contains(what), "names {what}: {log}");
    assert!(log.contains("longer than 8760h"), "says the bound: {log}");
}

#[test]
fn durations_beyond_the_bound_are_refused_at_parse() {
    // The reproductions of issue 11: --grace-period panicked at SIGTERM as
    // PID 1 (exit 101) and left the app running otherwise; --client-timeout
    // panicked on every connection while /ready stayed 200.
    for flag in ["--grace-period", "--drain-delay", "--safety-margin"] {
        assert_beyond_the_bound(flag, run_with(false, &[flag, HUGE]));
    }
    for flag in [
        "--client-timeout",
        "--idle-timeout",
        "--connect-timeout",
        "--quiet-period",
    ] {
        assert_beyond_the_bound(flag, run_with(true, &[flag, HUGE]));
    }
}

#[test]
fn the_environment_is_held_to_the_same_bound() {
    for variable in [
        "LAMEDUCK_GRACE_PERIOD",
        "LAMEDUCK_DRAIN_DELAY",
        "LAMEDUCK_SAFETY_MARGIN",
    ] {
        let out = Command::new(lameduck_bin())
            .args(["run", "--", "sleep", "30"])
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env(variable, HUGE)
            .stdin(Stdio::null())
            .output()
            .expect("run lameduck");
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{variable}: {log}");
        assert!(log.contains("longer than 8760h"), "{variable}: {log}");
    }
}

#[test]
fn a_stop_signal_that_cannot_stop_the_app_is_refused() {
    // SIGSTOP was taken and froze the app until the SIGKILL at the deadline.
    for signal in ["STOP", "SIGTSTP", "TTIN", "TTOU", "CONT", "KILL", "19"] {
        let dir = tempdir();
        let started = dir.path().join("started");
        let app = format!("touch {}", started.display());
        let (code, log) = run_to_end(&["run", "--stop-signal", signal, "--", "sh", "-c", &app]);
        assert_eq!(code, 2, "{signal}: {log}");
        assert!(log.contains("cannot be the stop signal"), "{signal}: {log}");
        assert!(!started.exists(), "{signal}: the app was started");
    }
    let (code, log) = run_to_end(&["run", "--stop-signal", "STOP", "--", "true"]);
    assert_eq!(code, 2);
    assert!(log.contains("frozen"), "says what STOP would do: {log}");
    // The graceful stops of real servers stay accepted.
    for signal in ["QUIT", "WINCH", "USR1", "RTMIN+3"] {
        let (code, log) = run_to_end(&["run", "--stop-signal", signal, "--", "true"]);
        assert_eq!(code, 0, "{signal}: {log}");
    }
}

#[test]
fn a_directory_as_the_command_is_said_to_be_a_directory() {
    let dir = tempdir();
    let path = dir.path().display().to_string();
    let (code, log) = run_to_end(&["run", "--", &path]);
    assert_eq!(code, 126, "{log}");
    assert!(log.contains("is a directory"), "{log}");
    assert!(!log.contains("chmod"), "no chmod +x for a directory: {log}");
    assert_eq!(log.lines().count(), 1, "one line: {log}");
}

#[test]
fn an_auto_delay_out_of_order_names_only_the_flags_that_were_given() {
    let (code, log) = run_with(true, &["--drain-delay", "auto", "--quiet-period", "40s"]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("--quiet-period (40s)"), "{log}");
    assert!(
        !log.contains("--drain-delay-min is longer"),
        "complains about a flag not given: {log}"
    );
    assert!(log.contains("the default of --drain-delay-max"), "{log}");
    let (code, log) = run_with(
        true,
        &[
            "--drain-delay",
            "auto",
            "--drain-delay-min",
            "5s",
            "--drain-delay-max",
            "2s",
        ],
    );
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("--drain-delay-min (5s) is longer than --drain-delay-max (2s)"),
        "{log}"
    );
}

#[test]
fn the_longest_accepted_grace_period_stops_pid1_cleanly() {
    // At the bound itself, as PID 1: the stop's deadlines are computed at
    // SIGTERM, where the probe's value panicked with "overflow when adding
    // duration to instant" and exit 101.
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    let lameduck = Lameduck::start_as_pid1(&app.command(&[
        "run",
        "--grace-period",
        "8760h",
        "--safety-margin",
        "8760h",
    ]));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    lameduck.wait_log("stop requested");
    // A safety margin as long as the grace period leaves the app no time:
    // it is killed at once, and lameduck exits by itself, without a panic.
    let code = lameduck.exit_code();
    assert!(code == 0 || code == 137, "code {code}: {}", lameduck.log());
    assert!(!lameduck.log().contains("panicked"), "{}", lameduck.log());

    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    let lameduck = Lameduck::start_as_pid1(&app.command(&["run", "--grace-period", "8760h"]));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0, "{}", lameduck.log());
}
