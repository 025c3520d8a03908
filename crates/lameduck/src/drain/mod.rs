//! The drain handle: one place that moves a server through the phases of
//! the drain sequence, and the watch every listener and connection holds.
//!
//! Modelled on linkerd's drain crate: the server is idle when every [`Watch`]
//! is gone, so "exit as soon as nothing is in flight" falls out of ownership
//! instead of polling a counter.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod builder;
mod hooks;

pub use builder::{Builder, ConfigError};
pub use hooks::{HookOutcome, HookResult};

use hooks::Hook;
pub use lameduck_core::Delay;
use lameduck_core::{format_duration, Phase, Plan, Settings};
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};
use tracing::{info, warn};

/// When each step of a drain happens, counted from the moment it began: the
/// drain's part of a [`Plan`] (see [`Settings::plan`], the one timing model
/// of lameduck).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long listeners keep accepting after the drain began.
    pub delay: Delay,
    /// When whatever is still open is told to go away and closed
    /// ([`Plan::drain_deadline`]).
    pub deadline: Duration,
    /// How long connections get after the deadline to finish a goodbye
    /// (a WebSocket close handshake) before the drain stops waiting.
    pub close_grace: Duration,
}

impl From<&Plan> for Timing {
    fn from(plan: &Plan) -> Self {
        Timing {
            delay: plan.delay,
            deadline: plan.drain_deadline,
            close_grace: plan.close_grace,
        }
    }
}

impl Default for Timing {
    /// The plan of the default settings (a 30s grace period, no delay): the
    /// deadline at 23s, 1s to say goodbye.
    fn default() -> Self {
        match Settings::default().plan() {
            Ok(plan) => Timing::from(&plan),
            // The default settings always make a plan; this is never reached.
            Err(_) => Timing {
                delay: Delay::Fixed(Duration::ZERO),
                deadline: Duration::ZERO,
                close_grace: Duration::ZERO,
            },
        }
    }
}

/// `start + after`, never panicking: every duration is bounded by
/// [`lameduck_core::MAX_DURATION`], and a clock that would still overflow
/// gives a deadline that is due at once.
fn deadline_after(start: Instant, after: Duration) -> Instant {
    Instant::from_std(lameduck_core::duration::deadline_after(
        start.into_std(),
        after,
    ))
}

/// What a finished drain found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// From the trigger to the end of the drain.
    pub duration: Duration,
    /// How long listeners kept accepting.
    pub delay: Duration,
    /// Connections (or other watches) still open at the deadline, which were
    /// told to go away and closed by force. Zero when the server went idle.
    pub open_at_deadline: usize,
    /// How each hook registered with [`Drain::on`] ended.
    pub hooks: Vec<HookOutcome>,
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
    timing: Timing,
    /// Held by watches: its receivers are the open work.
    phase: watch::Sender<Phase>,
    /// The phase for observers that are not work (`Drain::reached`).
    observed: watch::Sender<Phase>,
    hooks: Mutex<Vec<Hook>>,
    /// The phase again, for readers on the request path that must not lock.
    phase_now: AtomicU8,
    triggered: watch::Sender<bool>,
    /// Whoever triggered the drain logged the stop and its plan already.
    announced: std::sync::atomic::AtomicBool,
    hurry: Notify,
    last_arrival: Mutex<Option<Instant>>,
}

// === impl Drain ===

impl Drain {
    /// A drain in [`Phase::Serving`], not triggered, with the defaults of
    /// [`Drain::builder`] (the same timing); see also [`Drain::from_env`].
    pub fn new() -> Self {
        Drain::builder().build()
    }

    /// A builder: delay, grace period, safety margin.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A drain configured by `LAMEDUCK_*` variables, as `lameduck run` is
    /// (see [`Builder::from_env`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Builder::from_env()?.try_build()
    }

    /// Registers `hook` to run when `phase` begins (`Draining`: deregister,
    /// tell clients to move; `Stopping`: flush). It runs on its own task,
    /// bounded by the deadline; [`Report::hooks`] says how it ended. Hooks
    /// registered after their phase began never run.
    pub fn on<F, Fut, E>(&self, phase: Phase, name: impl Into<String>, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Hook::new(phase, name.into(), hook));
    }

    fn take_hooks(&self, phase: Phase) -> Vec<Hook> {
        let mut hooks = self.inner.hooks.lock().unwrap_or_else(|e| e.into_inner());
        let (now, later) = hooks.drain(..).partition(|h| h.phase == phase);
        *hooks = later;
        now
    }

    /// A drain with `timing`.
    pub fn with_timing(timing: Timing) -> Self {
        let (phase, _) = watch::channel(Phase::Serving);
        let (observed, _) = watch::channel(Phase::Serving);
        let (triggered, _) = watch::channel(false);
        Drain {
            inner: Arc::new(Inner {
                timing,
                phase,
                observed,
                hooks: Mutex::new(Vec::new()),
                phase_now: AtomicU8::new(Phase::Serving as u8),
                triggered,
                announced: std::sync::atomic::AtomicBool::new(false),
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

    /// The timing this drain follows.
    pub fn timing(&self) -> Timing {
        self.inner.timing
    }

    /// Resolves once the drain reached `phase` (at once if it did already),
    /// without counting as open work the way a [`Watch`] does.
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.inner.observed.subscribe();
        let _ = rx.wait_for(|p| *p >= phase).await;
    }

    /// Resolves when draining begins: readiness should fail from now on.
    pub async fn draining(&self) {
        self.reached(Phase::Draining).await
    }

    /// Resolves when the delay is over and listeners must close.
    pub async fn closing(&self) {
        self.reached(Phase::Closing).await
    }

    /// Resolves at the deadline, or once nothing is open any more: what is
    /// still open must say goodbye and close now.
    pub async fn stopping(&self) {
        self.reached(Phase::Stopping).await
    }

    /// Asks for the drain to begin (a stop signal, `POST /drain`). Returns
    /// whether this call was the first to ask.
    pub fn trigger(&self) -> bool {
        !self.inner.triggered.send_replace(true)
    }

    /// Like [`trigger`](Drain::trigger), for a caller that logged the stop
    /// and its plan itself (the supervisor of `lameduck run`, the signal
    /// handler): the drain then logs the phase change without the plan, so
    /// the stop is logged once.
    pub fn trigger_logged(&self) -> bool {
        if self.is_triggered() {
            return false;
        }
        self.inner.announced.store(true, Ordering::Release);
        self.trigger()
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
    /// goodbye and close; they get `close_grace` for it. Hooks run as their
    /// phase begins, each bounded by the deadline; the report says how each
    /// ended.
    pub async fn run(&self) -> Report {
        let timing = self.inner.timing;
        self.triggered().await;
        let start = Instant::now();
        let deadline = deadline_after(start, timing.deadline);
        let hooks_until = deadline_after(deadline, timing.close_grace);
        let mut hooks = hooks::Running::default();
        self.set(Phase::Draining);
        hooks.start(self.take_hooks(Phase::Draining), hooks_until);
        if self.inner.announced.load(Ordering::Acquire) {
            info!("draining: readiness fails, new connections are still accepted");
        } else {
            info!(
                delay = %timing.delay,
                deadline = %format_duration(timing.deadline),
                close_grace = %format_duration(timing.close_grace),
                "draining: readiness fails, new connections are still accepted"
            );
        }

        let delay_end = self.delay(start, timing.delay, deadline).await;
        self.set(Phase::Closing);
        hooks.start(self.take_hooks(Phase::Closing), hooks_until);
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
        hooks.start(self.take_hooks(Phase::Stopping), hooks_until);
        if open_at_deadline > 0 {
            warn!(
                open = open_at_deadline,
                "deadline reached: open connections are told to go away and closed"
            );
            let _ = tokio::time::timeout(timing.close_grace, self.inner.phase.closed()).await;
        } else {
            info!(after = %format_duration(start.elapsed()), "drained: nothing is open any more");
        }
        let hooks = hooks.finish().await;
        Report {
            duration: start.elapsed(),
            delay: delay_end - start,
            open_at_deadline,
            hooks,
        }
    }

    /// Waits out the delay; returns when it ended.
    async fn delay(&self, start: Instant, delay: Delay, deadline: Instant) -> Instant {
        loop {
            let end = match delay {
                Delay::Fixed(d) => deadline_after(start, d),
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
        self.inner.observed.send_if_modified(|p| {
            let moved = phase > *p;
            if moved {
                *p = phase;
            }
            moved
        });
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

    /// Resolves at the drain's deadline (or once nothing else is open): a
    /// long-lived connection says goodbye in its own protocol now (a
    /// WebSocket close 1001, a "reconnect elsewhere" message) and closes.
    pub async fn going_away(&mut self) {
        self.reached(Phase::Stopping).await
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

    /// How long a connection gets after the deadline to finish its goodbye
    /// ([`Timing::close_grace`]).
    pub fn close_grace(&self) -> Duration {
        self.inner.timing.close_grace
    }
}

/// Reads the current phase without locking and without counting as open
/// work: for the request path.
#[derive(Clone, Debug)]
pub struct PhaseView(Arc<Inner>);

impl PhaseView {
    /// A new watch of the same drain, for work that starts now (a
    /// connection upgraded to another protocol).
    pub(crate) fn watch(&self) -> Watch {
        Watch {
            phase: self.0.phase.subscribe(),
            inner: self.0.clone(),
        }
    }

    /// Resolves with the phase once the drain moved past `seen`, without
    /// counting as open work.
    pub(crate) async fn next_after(&self, seen: Phase) -> Phase {
        let mut rx = self.0.observed.subscribe();
        let phase = match rx.wait_for(|p| *p > seen).await {
            Ok(p) => *p,
            Err(_) => Phase::Exited,
        };
        phase
    }

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
mod tests;
