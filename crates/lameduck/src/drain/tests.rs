//! The drain's own tests, on tokio's paused clock: every timer fires at
//! its exact instant, so timings are asserted exactly and run in no time.

use super::*;
use lameduck_core::AutoDelay;

fn timing(delay: Delay) -> Timing {
    Timing {
        delay,
        deadline: Duration::from_secs(20),
        close_grace: Duration::from_secs(1),
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_server_finishes_right_after_the_delay() {
    let drain = Drain::with_timing(timing(Delay::Fixed(Duration::from_secs(5))));
    drain.trigger();
    let report = drain.run().await;
    assert_eq!(report.duration, Duration::from_secs(5));
    assert_eq!(report.open_at_deadline, 0);
    assert_eq!(drain.phase(), Phase::Stopping);
}

#[tokio::test(start_paused = true)]
async fn the_drain_waits_for_open_watches_until_the_deadline() {
    let drain = Drain::with_timing(timing(Delay::Fixed(Duration::from_secs(2))));
    let mut stuck = drain.watch();
    let mut done_at_8s = drain.watch();
    let observer = tokio::spawn(async move {
        done_at_8s.reached(Phase::Closing).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
    });
    let holder = tokio::spawn(async move {
        stuck.reached(Phase::Stopping).await;
        // Says goodbye, then goes.
    });
    drain.trigger();
    let report = drain.run().await;
    assert_eq!(report.delay, Duration::from_secs(2));
    assert_eq!(report.open_at_deadline, 1);
    assert_eq!(report.duration, Duration::from_secs(20));
    observer.await.expect("observer");
    holder.await.expect("holder");
}

#[tokio::test(start_paused = true)]
async fn the_phases_move_forward_only_and_readiness_follows() {
    let drain = Drain::with_timing(timing(Delay::Fixed(Duration::from_secs(3))));
    let mut w = drain.watch();
    assert!(drain.phase().is_ready());
    assert!(drain.trigger());
    assert!(!drain.trigger(), "a second trigger is not the first");
    let run = tokio::spawn({
        let drain = drain.clone();
        async move { drain.run().await }
    });
    w.reached(Phase::Draining).await;
    assert!(!drain.phase().is_ready());
    w.reached(Phase::Closing).await;
    drop(w);
    let report = run.await.expect("run");
    assert_eq!(report.duration, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn auto_delay_ends_a_quiet_period_after_the_last_arrival() {
    let auto = AutoDelay {
        quiet: Duration::from_secs(1),
        min: Duration::from_millis(500),
        max: Duration::from_secs(10),
    };
    let drain = Drain::with_timing(timing(Delay::Auto(auto)));
    let w = drain.watch();
    drain.trigger();
    let arrivals = tokio::spawn(async move {
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            w.note_arrival();
        }
    });
    let report = drain.run().await;
    // Last arrival at 2.8s, quiet for 1s.
    assert_eq!(report.delay, Duration::from_millis(3800));
    arrivals.await.expect("arrivals");
}

#[tokio::test(start_paused = true)]
async fn hurry_cuts_the_delay_short() {
    let drain = Drain::with_timing(timing(Delay::Fixed(Duration::from_secs(30))));
    drain.trigger();
    let d = drain.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        d.hurry();
    });
    let report = drain.run().await;
    assert_eq!(report.delay, Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn hooks_run_at_their_phase_and_their_ends_are_reported() {
    let drain = Drain::with_timing(timing(Delay::Fixed(Duration::from_secs(2))));
    let observer = drain.clone();
    drain.on(Phase::Draining, "deregister", move || async move {
        // Runs while still draining: the listeners are open.
        assert_eq!(observer.phase(), Phase::Draining);
        Ok::<_, String>(())
    });
    drain.on(Phase::Draining, "flaky", || async { Err("registry down") });
    drain.on(Phase::Closing, "stuck", || async {
        std::future::pending::<Result<(), String>>().await
    });
    drain.trigger();
    let report = drain.run().await;
    let results: Vec<_> = report
        .hooks
        .iter()
        .map(|h| (h.name.as_str(), h.result.clone()))
        .collect();
    assert_eq!(
        results,
        [
            ("deregister", HookResult::Succeeded),
            ("flaky", HookResult::Failed("registry down".into())),
            ("stuck", HookResult::TimedOut),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn observers_do_not_hold_the_drain_open() {
    let drain = Drain::with_timing(timing(Delay::Fixed(Duration::from_secs(1))));
    let observer = {
        let drain = drain.clone();
        tokio::spawn(async move {
            drain.draining().await;
            drain.closing().await;
            drain.stopping().await;
        })
    };
    drain.trigger();
    let report = drain.run().await;
    assert_eq!(
        report.duration,
        Duration::from_secs(1),
        "idle right after the delay"
    );
    observer.await.expect("observer saw every phase");
}

#[tokio::test(start_paused = true)]
async fn the_delay_never_outlasts_the_deadline() {
    let drain = Drain::with_timing(timing(Delay::Fixed(Duration::from_secs(60))));
    drain.trigger();
    let report = drain.run().await;
    assert_eq!(report.delay, Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn the_default_plan_closes_what_is_open_at_23s_and_waits_1s_for_goodbyes() {
    // Drain::new() and the builder: one plan, the deadline at 23s of 30s.
    let drain = Drain::builder()
        .grace_period(Duration::from_secs(30))
        .build();
    assert_eq!(drain.timing(), Drain::new().timing());
    let stubborn = drain.watch();
    drain.trigger();
    let report = drain.run().await;
    assert_eq!(report.open_at_deadline, 1);
    // 23s to the deadline, then the close grace for the goodbye.
    assert_eq!(report.duration, Duration::from_secs(24));
    drop(stubborn);
}

#[tokio::test(start_paused = true)]
async fn durations_at_the_bound_never_overflow_a_deadline() {
    // Issue 11: a delay or grace period the parser took (up to ~5e15h)
    // panicked with "overflow when adding duration to instant".
    let drain = Drain::builder()
        .grace_period(lameduck_core::MAX_DURATION)
        .drain_delay(lameduck_core::MAX_DURATION)
        .build();
    drain.trigger();
    let report = drain.run().await;
    assert_eq!(
        report.delay,
        drain.timing().deadline,
        "the delay ends by the deadline"
    );
    let huge = Drain::with_timing(Timing {
        delay: Delay::Fixed(Duration::MAX),
        deadline: Duration::MAX,
        close_grace: Duration::MAX,
    });
    let w = huge.watch();
    huge.trigger();
    let d = huge.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        d.hurry();
    });
    drop(w);
    let report = huge.run().await;
    assert_eq!(report.delay, Duration::from_secs(1));
}
