//! The drain handle: one place that moves a server through the phases of
//! the drain sequence, and the watch every listener and connection holds.
//!
//! Modelled on linkerd's drain crate: the server is idle when every [`Watch`]
//! is gone, so "exit as soon as nothing is in flight" falls out of ownership
//! instead of polling a counter.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lameduck_core::{format_duration, AutoDelay, Phase};
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

/// How long the drain waits for the delay before the listeners close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    /// A fixed time, the built-in preStop sleep.
    Fixed(Duration),
    /// Until no new connection has arrived for a quiet period, within bounds.
    Auto(AutoDelay),
}

/// When each step of a drain happens, counted from the moment it began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long listeners keep accepting after the drain began.
    pub delay: Delay,
    /// When whatever is still open is told to go away and closed (the
    /// deadline of [`lameduck_core::Budget::drain_timeout`]).
    pub deadline: Duration,
    /// How long connections get after the deadline to finish a goodbye
    /// (a WebSocket close handshake) before the drain stops waiting.
    pub close_grace: Duration,
}

impl Default for Timing {
    /// No delay, the deadline of a 30s grace period, 1s to say goodbye.
    fn default() -> Self {
        Timing {
            delay: Delay::Fixed(Duration::ZERO),
            deadline: lameduck_core::Budget::default().drain_timeout(),
            close_grace: Duration::from_secs(1),
        }
    }
}

/// What a finished drain found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// From the trigger to the end of the drain.
    pub duration: Duration,
    /// How long listeners kept accepting.
    pub delay: Duration,
    /// Connections (or other watches) still open at the deadline, which were
    /// told to go away and closed by force. Zero when the server went idle.
    pub open_at_deadline: usize,
}

/// Starts and drives the drain of one server. Cheap to clone: all clones
/// control the same drain.
#[derive(Clone, Debug)]
pub struct Drain {
    inner: Arc<Inner>,
}

/// Held by every listener and connection task: tells it the phase, and by
/// existing keeps the drain from finishing. Drop it when the work is done.
#[derive(Debug)]
pub struct Watch {
    phase: watch::Receiver<Phase>,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    phase: watch::Sender<Phase>,
    /// The phase again, for readers on the request path that must not lock.
    phase_now: AtomicU8,
    triggered: watch::Sender<bool>,
    hurry: Notify,
    last_arrival: Mutex<Option<Instant>>,
}

// === impl Drain ===

impl Drain {
    /// A drain in [`Phase::Serving`], not triggered.
    pub fn new() -> Self {
        let (phase, _) = watch::channel(Phase::Serving);
        let (triggered, _) = watch::channel(false);
        Drain {
            inner: Arc::new(Inner {
                phase,
                phase_now: AtomicU8::new(Phase::Serving as u8),
                triggered,
                hurry: Notify::new(),
                last_arrival: Mutex::new(None),
            }),
        }
    }

    /// A new watch; the drain is not finished while it exists.
    pub fn watch(&self) -> Watch {
        Watch {
            phase: self.inner.phase.subscribe(),
            inner: self.inner.clone(),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.inner.phase.borrow()
    }

    /// Asks for the drain to begin (a stop signal, `POST /drain`). Returns
    /// whether this call was the first to ask.
    pub fn trigger(&self) -> bool {
        !self.inner.triggered.send_replace(true)
    }

    /// Whether the drain was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.inner.triggered.borrow()
    }

    /// Resolves once the drain was asked for.
    pub async fn triggered(&self) {
        let mut rx = self.inner.triggered.subscribe();
        let _ = rx.wait_for(|t| *t).await;
    }

    /// Cuts the rest of the delay short (a second SIGINT): listeners close now.
    pub fn hurry(&self) {
        self.inner.hurry.notify_one();
    }

    /// How many watches are alive: listeners and open connections.
    pub fn open(&self) -> usize {
        self.inner.phase.receiver_count()
    }

    /// Marks the end: the server is gone.
    pub fn finish(&self) {
        self.set(Phase::Exited);
    }

    /// Waits for the trigger, then drives the phases: `Draining` for the
    /// delay, `Closing` until every watch is gone or the deadline came, then
    /// `Stopping`. At the deadline the remaining watches see `Stopping`, say
    /// goodbye and close; they get `close_grace` for it.
    pub async fn run(&self, timing: Timing) -> Report {
        self.triggered().await;
        let start = Instant::now();
        let deadline = start + timing.deadline;
        self.set(Phase::Draining);
        info!(
            delay = %describe(timing.delay),
            deadline = %format_duration(timing.deadline),
            "draining: readiness fails, new connections are still accepted"
        );

        let delay_end = self.delay(start, timing.delay, deadline).await;
        self.set(Phase::Closing);
        info!(
            after = %format_duration(delay_end - start),
            "closing: listeners close, open connections finish"
        );

        let mut open_at_deadline = 0;
        tokio::select! {
            _ = self.inner.phase.closed() => {}
            _ = sleep_until(deadline) => {
                open_at_deadline = self.open();
            }
        }
        self.set(Phase::Stopping);
        if open_at_deadline > 0 {
            warn!(
                open = open_at_deadline,
                "deadline reached: open connections are told to go away and closed"
            );
            let _ = tokio::time::timeout(timing.close_grace, self.inner.phase.closed()).await;
        } else {
            info!(after = %format_duration(start.elapsed()), "drained: nothing is open any more");
        }
        Report {
            duration: start.elapsed(),
            delay: delay_end - start,
            open_at_deadline,
        }
    }

    /// Waits out the delay; returns when it ended.
    async fn delay(&self, start: Instant, delay: Delay, deadline: Instant) -> Instant {
        loop {
            let end = match delay {
                Delay::Fixed(d) => start + d,
                Delay::Auto(auto) => {
                    let last = *self
                        .inner
                        .last_arrival
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    let end = auto.ends_at(start.into_std(), last.map(Instant::into_std));
                    Instant::from_std(end)
                }
            }
            .min(deadline);
            if Instant::now() >= end {
                return end;
            }
            tokio::select! {
                _ = sleep_until(end) => {
                    // An auto delay may have been pushed out by an arrival.
                    if matches!(delay, Delay::Fixed(_)) {
                        return end;
                    }
                }
                _ = self.inner.hurry.notified() => {
                    info!("delay cut short");
                    return Instant::now();
                }
            }
        }
    }

    fn set(&self, phase: Phase) {
        self.inner.phase.send_if_modified(|p| {
            let moved = phase > *p;
            if moved {
                *p = phase;
                self.inner.phase_now.store(phase as u8, Ordering::Release);
            }
            moved
        });
    }
}

/// A delay as the logs say it.
fn describe(delay: Delay) -> String {
    match delay {
        Delay::Fixed(d) => format_duration(d),
        Delay::Auto(a) => format!(
            "auto (quiet {}, {} to {})",
            format_duration(a.quiet),
            format_duration(a.min),
            format_duration(a.max)
        ),
    }
}

impl Default for Drain {
    fn default() -> Self {
        Drain::new()
    }
}

// === impl Watch ===

impl Watch {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Resolves once the drain reached `phase` (at once if it did already).
    /// Cancel-safe.
    pub async fn reached(&mut self, phase: Phase) {
        let _ = self.phase.wait_for(|p| *p >= phase).await;
    }

    /// Records that a new connection arrived, for [`Delay::Auto`].
    pub fn note_arrival(&self) {
        *self
            .inner
            .last_arrival
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }
}

impl Watch {
    /// A cheap handle that reads the phase without keeping the drain open.
    pub fn phase_view(&self) -> PhaseView {
        PhaseView(self.inner.clone())
    }
}

/// Reads the current phase without locking and without counting as open
/// work: for the request path.
#[derive(Clone, Debug)]
pub struct PhaseView(Arc<Inner>);

impl PhaseView {
    /// The current phase.
    pub fn get(&self) -> Phase {
        Phase::ALL
            .get(usize::from(self.0.phase_now.load(Ordering::Acquire)))
            .copied()
            .unwrap_or(Phase::Exited)
    }
}

impl Clone for Watch {
    fn clone(&self) -> Self {
        Watch {
            phase: self.phase.clone(),
            inner: self.inner.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(delay: Delay) -> Timing {
        Timing {
            delay,
            deadline: Duration::from_secs(20),
            close_grace: Duration::from_secs(1),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_server_finishes_right_after_the_delay() {
        let drain = Drain::new();
        drain.trigger();
        let report = drain
            .run(timing(Delay::Fixed(Duration::from_secs(5))))
            .await;
        assert_eq!(report.duration, Duration::from_secs(5));
        assert_eq!(report.open_at_deadline, 0);
        assert_eq!(drain.phase(), Phase::Stopping);
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_waits_for_open_watches_until_the_deadline() {
        let drain = Drain::new();
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
        let report = drain
            .run(timing(Delay::Fixed(Duration::from_secs(2))))
            .await;
        assert_eq!(report.delay, Duration::from_secs(2));
        assert_eq!(report.open_at_deadline, 1);
        assert_eq!(report.duration, Duration::from_secs(20));
        observer.await.expect("observer");
        holder.await.expect("holder");
    }

    #[tokio::test(start_paused = true)]
    async fn the_phases_move_forward_only_and_readiness_follows() {
        let drain = Drain::new();
        let mut w = drain.watch();
        assert!(drain.phase().is_ready());
        assert!(drain.trigger());
        assert!(!drain.trigger(), "a second trigger is not the first");
        let run = tokio::spawn({
            let drain = drain.clone();
            async move {
                drain
                    .run(timing(Delay::Fixed(Duration::from_secs(3))))
                    .await
            }
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
        let drain = Drain::new();
        let w = drain.watch();
        drain.trigger();
        let auto = AutoDelay {
            quiet: Duration::from_secs(1),
            min: Duration::from_millis(500),
            max: Duration::from_secs(10),
        };
        let arrivals = tokio::spawn(async move {
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_millis(700)).await;
                w.note_arrival();
            }
        });
        let report = drain.run(timing(Delay::Auto(auto))).await;
        // Last arrival at 2.8s, quiet for 1s.
        assert_eq!(report.delay, Duration::from_millis(3800));
        arrivals.await.expect("arrivals");
    }

    #[tokio::test(start_paused = true)]
    async fn hurry_cuts_the_delay_short() {
        let drain = Drain::new();
        drain.trigger();
        let d = drain.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            d.hurry();
        });
        let report = drain
            .run(timing(Delay::Fixed(Duration::from_secs(30))))
            .await;
        assert_eq!(report.delay, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_never_outlasts_the_deadline() {
        let drain = Drain::new();
        drain.trigger();
        let report = drain
            .run(timing(Delay::Fixed(Duration::from_secs(60))))
            .await;
        assert_eq!(report.delay, Duration::from_secs(20));
    }
}
