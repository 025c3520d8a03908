//! Durations beyond the one bound (8760h) are refused where they are read,
//! flags and environment alike, and the longest accepted ones plan a stop
//! without overflowing a clock.

mod support;

use std::process::{Command, Stdio};

use support::{lameduck_bin, run_to_end, tempdir, Lameduck, SigApp};

/// What the probe of issue 11 found accepted, and panicking at SIGTERM.
const HUGE: &str = "2600000000000000h";

#[test]
fn a_grace_period_beyond_the_bound_is_refused_at_parse() {
    let (code, log) = run_to_end(&["run", "--grace-period", HUGE, "--", "sleep", "30"]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("--grace-period"), "names the flag: {log}");
    assert!(log.contains("longer than 8760h"), "says the bound: {log}");
}

#[test]
fn a_drain_delay_beyond_the_bound_is_refused_at_parse() {
    let (code, log) = run_to_end(&["run", "--drain-delay", HUGE, "--", "sleep", "30"]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("--drain-delay"), "names the flag: {log}");
    assert!(log.contains("longer than 8760h"), "says the bound: {log}");
}

#[test]
fn the_proxys_durations_are_held_to_the_same_bound() {
    // `--client-timeout 2600000000000000h` panicked on every connection
    // while /ready stayed 200.
    for flag in [
        "--client-timeout",
        "--idle-timeout",
        "--connect-timeout",
        "--quiet-period",
    ] {
        let (code, log) = run_to_end(&[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
            flag,
            HUGE,
            "--",
            "sleep",
            "30",
        ]);
        assert_eq!(code, 2, "{flag}: {log}");
        assert!(log.contains(flag), "{flag}: {log}");
        assert!(log.contains("longer than 8760h"), "{flag}: {log}");
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
