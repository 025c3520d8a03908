//! One timing plan: under `lameduck run --listen` the supervisor and the
//! drain proxy follow the same delay, deadline and kill time, and the stop
//! is logged once, with that plan.

mod support;

use support::net::ProxiedApp;

#[test]
fn the_stop_is_logged_once_with_the_one_plan() {
    let app = ProxiedApp::start("http_upstream.py", &[], &["--drain-delay", "2s"]);
    app.lameduck.signal(libc::SIGTERM);
    assert_eq!(app.lameduck.exit_code(), 0);
    let log = app.lameduck.log();
    let stops: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("stop requested"))
        .collect();
    assert_eq!(stops.len(), 1, "{log}");
    let stop = stops[0];
    for field in ["delay=2s", "deadline=23s", "kill_in=28s"] {
        assert!(stop.contains(field), "{field} missing: {stop}");
    }
    // No other line gives a plan of its own (the proxy's drain did, with
    // other numbers than the supervisor's).
    let plans = log
        .lines()
        .filter(|l| l.contains("deadline=") || l.contains("drain_delay=0s"))
        .count();
    assert_eq!(plans, 1, "{log}");
}
