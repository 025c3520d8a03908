//! The stop: held back for the drain delay, cut short by a second SIGINT,
//! and finished by SIGKILL at the deadline, before the kubelet's own.

mod support;

use std::time::{Duration, Instant};

use support::{tempdir, Lameduck, SigApp};

#[test]
fn the_drain_delay_holds_the_stop_back() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    let lameduck = Lameduck::start(&app.command(&["run", "--drain-delay", "1500ms"]));
    app.wait_ready();
    let sent = Instant::now();
    lameduck.signal(libc::SIGTERM);
    lameduck.wait_log("drain delay begun");
    // Other signals still pass at once while the stop is held back.
    lameduck.signal(libc::SIGUSR1);
    app.wait_signal("app USR1");
    assert_eq!(app.received(), ["app USR1"], "the stop went on too early");
    assert_eq!(lameduck.exit_code(), 0);
    // A timer never fires early, so this bound cannot flake.
    assert!(sent.elapsed() >= Duration::from_millis(1500));
    assert_eq!(app.received(), ["app USR1", "app TERM"]);
    let log = lameduck.log();
    let over = log.find("drain delay over").expect("delay over logged");
    let passed = log.find("stop passed on").expect("stop passed on logged");
    assert!(over < passed, "{log}");
}

#[test]
fn a_second_sigint_cuts_the_delay_short() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "INT"]);
    let lameduck =
        Lameduck::start(&app.command(&["run", "--drain-delay", "10m", "--grace-period", "20m"]));
    app.wait_ready();
    lameduck.signal(libc::SIGINT);
    lameduck.wait_log("drain delay begun");
    lameduck.signal(libc::SIGTERM);
    lameduck.wait_log("already draining");
    assert!(app.received().is_empty());
    lameduck.signal(libc::SIGINT);
    lameduck.wait_log("second SIGINT");
    // Without the cut, this would take ten minutes and time out.
    assert_eq!(lameduck.exit_code(), 0);
    assert_eq!(app.received(), ["app INT"]);
}

#[test]
fn an_app_that_ignores_sigterm_is_killed_before_the_kubelet_would() {
    // Emulate the kubelet: SIGTERM, then SIGKILL when the grace period is
    // over. lameduck must have ended the app and exited on its own first.
    let grace = Duration::from_secs(4);
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--ignore", "TERM"]);
    let lameduck = Lameduck::start_as_pid1(&app.command(&["run", "--grace-period", "4s"]));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    let status = lameduck.wait_for(grace);
    assert_eq!(
        status.code(),
        Some(137),
        "exited by itself with 137: {status:?}"
    );
    let line = lameduck.wait_log("deadline reached");
    assert!(
        line.contains("after=3s"),
        "a quarter of 4s kept as margin: {line}"
    );
}

#[test]
fn the_deadline_kills_the_whole_group() {
    // The app ignores SIGTERM and so does the child it forked; both are gone
    // at the deadline, not only the one lameduck started.
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--ignore", "TERM", "--fork-child"]);
    let lameduck = Lameduck::start(&app.command(&["run", "--grace-period", "2s"]));
    let pid = app.wait_ready();
    let child: i32 = support::wait_file(&dir.path().join("ready.child"))
        .trim()
        .parse()
        .expect("pid");
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 137);
    for pid in [pid, child] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} still exists"
        );
    }
}

#[test]
fn when_the_app_exits_on_its_own_its_leftovers_are_stopped_and_lameduck_exits() {
    // The app exits at once and leaves a child behind in its group that
    // traps SIGTERM: the child gets the stop signal and lameduck exits with
    // the app's code, right when the child is gone.
    let dir = tempdir();
    let marker = dir.path().join("leftover-stopped");
    let trapping = dir.path().join("leftover-trapping");
    let script = format!(
        "(trap 'touch {m}; exit 0' TERM; touch {t}; while :; do sleep 0.05; done) & \
         while [ ! -e {t} ]; do :; done; exit 5",
        m = marker.display(),
        t = trapping.display()
    );
    let lameduck = Lameduck::start(&["run", "--", "sh", "-c", &script]);
    assert_eq!(lameduck.exit_code(), 5);
    assert!(marker.exists(), "the leftover heard the stop signal");
    lameduck.wait_log("its process group is not");
}

#[test]
fn an_idle_app_leaves_right_after_the_delay_not_after_the_grace_period() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    let lameduck =
        Lameduck::start(&app.command(&["run", "--drain-delay", "200ms", "--grace-period", "10m"]));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    // EVENT_TIMEOUT (20s) is far below the 10 minutes a timer-bound exit would take.
    assert_eq!(lameduck.exit_code(), 0);
}
