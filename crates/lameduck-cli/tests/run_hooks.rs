//! The hooks: pre-start before the app, on-drain when the stop begins,
//! post-stop after the app is gone, each bounded by the budget.

mod support;

use support::{lines, tempdir, Lameduck, SigApp};

#[test]
fn hooks_run_in_order_around_the_app() {
    let dir = tempdir();
    let events = dir.path().join("events");
    let e = events.display();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    let pre = format!("echo pre-start $LAMEDUCK_HOOK >> {e}");
    let drain = format!("echo on-drain $LAMEDUCK_HOOK $LAMEDUCK_APP_PID >> {e}");
    let post = format!("echo post-stop $LAMEDUCK_HOOK >> {e}");
    let mut flags = vec![
        "run",
        "--drain-delay",
        "300ms",
        "--pre-start",
        &pre,
        "--on-drain",
        &drain,
    ];
    flags.extend(["--post-stop", &post]);
    let lameduck = Lameduck::start(&app.command(&flags));
    let pid = app.wait_ready();
    assert_eq!(lines(&events), ["pre-start pre-start"]);
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0);
    assert_eq!(
        lines(&events),
        [
            "pre-start pre-start".to_owned(),
            format!("on-drain on-drain {pid}"),
            "post-stop post-stop".to_owned()
        ]
    );
    let log = lameduck.log();
    for hook in ["pre-start", "on-drain", "post-stop"] {
        assert!(log.contains(&format!("{hook} hook succeeded")), "{log}");
    }
}

#[test]
fn a_failing_pre_start_keeps_the_app_from_starting() {
    let dir = tempdir();
    let started = dir.path().join("started");
    let app = format!("touch {}", started.display());
    let (code, log) = support::run_to_end(&[
        "run",
        "--pre-start",
        "echo checking >&2; exit 3",
        "--",
        "sh",
        "-c",
        &app,
    ]);
    assert_eq!(code, 3, "{log}");
    assert!(!started.exists());
    assert!(log.contains("pre-start hook failed"), "{log}");
    assert!(
        log.contains("checking"),
        "the hook's output is on stderr: {log}"
    );
}

#[test]
fn the_stop_waits_for_the_on_drain_hook() {
    let dir = tempdir();
    let done = dir.path().join("deregistered");
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    // The hook takes longer than the delay: the app hears the stop only
    // after the hook is done.
    let hook = format!("sleep 0.5; touch {}", done.display());
    let lameduck =
        Lameduck::start(&app.command(&["run", "--drain-delay", "0s", "--on-drain", &hook]));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    app.wait_signal("app TERM");
    assert!(
        done.exists(),
        "the app was stopped before the on-drain hook was done"
    );
    assert_eq!(lameduck.exit_code(), 0);
}

#[test]
fn a_hook_that_never_ends_is_killed_at_the_deadline() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    let lameduck = Lameduck::start(&app.command(&[
        "run",
        "--grace-period",
        "2s",
        "--on-drain",
        "exec sleep 600",
    ]));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    // The stop is not held back for good: the app still gets to stop by itself.
    app.wait_signal("app TERM");
    lameduck.wait_log("the on-drain hook is still running: passing the stop on anyway");
    lameduck.wait_log("deadline reached: sending SIGKILL to the on-drain hook");
    lameduck.wait_log("on-drain hook failed: killed by SIGKILL");
    assert_eq!(lameduck.exit_code(), 0);
}

#[test]
fn a_post_stop_hook_is_bounded_by_what_is_left_of_the_budget() {
    let (code, log) = support::run_to_end(&[
        "run",
        "--grace-period",
        "2s",
        "--post-stop",
        "exec sleep 600",
        "--",
        "true",
    ]);
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("the post-stop hook is still running at its deadline"),
        "{log}"
    );
}

#[test]
fn a_stop_during_pre_start_means_the_app_never_starts() {
    let dir = tempdir();
    let started = dir.path().join("started");
    let waiting = dir.path().join("waiting");
    let pre = format!("touch {}; exec sleep 600", waiting.display());
    let app = format!("touch {}", started.display());
    let lameduck = Lameduck::start(&["run", "--pre-start", &pre, "--", "sh", "-c", &app]);
    support::wait_file(&waiting);
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 143);
    assert!(!started.exists());
    lameduck.wait_log("the app is not started");
}

#[test]
fn a_stop_during_post_stop_neither_drains_again_nor_cuts_the_hook() {
    let dir = tempdir();
    let (waiting, go, drained, done) = (
        dir.path().join("waiting"),
        dir.path().join("go"),
        dir.path().join("drained"),
        dir.path().join("post-stop-done"),
    );
    let post = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.01; done; touch {}",
        waiting.display(),
        go.display(),
        done.display()
    );
    let drain = format!("touch {}", drained.display());
    let lameduck = Lameduck::start(&[
        "run",
        "--post-stop",
        &post,
        "--on-drain",
        &drain,
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);
    support::wait_file(&waiting);
    lameduck.signal(libc::SIGTERM);
    lameduck.wait_log("the app has exited already");
    std::fs::write(&go, "").expect("write");
    assert_eq!(lameduck.exit_code(), 4);
    assert!(done.exists(), "the post-stop hook ran to its end");
    assert!(!drained.exists(), "no on-drain hook after the app is gone");
}
