//! Usage mistakes of `lameduck run` get a clear message in the user's terms
//! and a usage status, before anything starts.

mod support;

use support::{run_to_end, tempdir};

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
    let (code, log) = run_to_end(&[
        "run",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
        "--drain-delay",
        "auto",
        "--quiet-period",
        "40s",
        "--",
        "true",
    ]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("--quiet-period (40s)"), "{log}");
    assert!(
        !log.contains("--drain-delay-min is longer"),
        "complains about a flag not given: {log}"
    );
    assert!(log.contains("the default of --drain-delay-max"), "{log}");
    let (code, log) = run_to_end(&[
        "run",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "127.0.0.1:1",
        "--drain-delay",
        "auto",
        "--drain-delay-min",
        "5s",
        "--drain-delay-max",
        "2s",
        "--",
        "true",
    ]);
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains("--drain-delay-min (5s) is longer than --drain-delay-max (2s)"),
        "{log}"
    );
}
