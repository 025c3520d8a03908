//! One clock and one wake-up for all of an engine's connections.
//!
//! Every connection has deadlines (idle, header read, the upstream's
//! answer) and must notice Closing and Stopping. A tokio timer per deadline
//! and a watch of the drain per request cost, on every request, a
//! registration and a removal under a lock each, and clock reads (together
//! about 3% of the proxy's time per HTTP/1.1 request in a profile). Here
//! the engine's tick task ([`super::tick`]) advances a coarse clock, a
//! count of [`TICK`]s, and wakes every connection that waits, at each tick
//! and at Closing and Stopping. A connection registers once and stays
//! registered across its waits and requests, registering again only after
//! a wake-up (four times a second). Deadlines are counted in ticks: they
//! pass up to two ticks late, never early; HAProxy's timers are coarse
//! too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// How often waiting connections are woken to compare the coarse clock
/// with their deadlines: the precision of those deadlines. An idle
/// connection costs a poll per tick (10,000 idle connections at four ticks
/// a second: 40,000 polls a second, measured at 2% of one core in a
/// release build); a tokio `Sleep` in each would be 96 bytes.
pub const TICK: Duration = Duration::from_millis(250);

/// The engine's coarse clock: how many ticks have passed.
#[derive(Debug, Default)]
pub struct Ticks(AtomicU64);

impl Ticks {
    /// The current tick.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The first tick by which `d` has surely passed from now. The tick
    /// now may have begun up to a tick ago, and ticks are at least a
    /// [`TICK`] apart, never closer (they are delayed when the runtime is
    /// busy): `d` in ticks, rounded up, and one more.
    pub fn after(&self, d: Duration) -> u64 {
        let ticks = d.as_nanos().div_ceil(TICK.as_nanos());
        self.now()
            .saturating_add(u64::try_from(ticks).unwrap_or(u64::MAX))
            .saturating_add(1)
    }

    /// Whether the tick `at` came.
    pub fn reached(&self, at: u64) -> bool {
        self.now() >= at
    }

    /// One more tick passed.
    pub(super) fn advance(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection's registration for its engine's wake-ups, kept across its
/// waits and requests.
pub struct Wakeup<'n, 'p> {
    notify: &'n Notify,
    notified: Pin<&'p mut Notified<'n>>,
}

impl<'n, 'p> Wakeup<'n, 'p> {
    /// A registration for `notify`'s wake-ups from the moment `notified`
    /// was made (`notify.notified()`, pinned by the caller).
    pub fn new(notify: &'n Notify, notified: Pin<&'p mut Notified<'n>>) -> Self {
        Wakeup { notify, notified }
    }

    /// Whether a wake-up came since the last call; registers the task of
    /// `cx` for the next one either way. Read the state a wake-up is about
    /// (the phase, the clock) after this call: a wake-up after it is not
    /// missed.
    pub fn poll_woken(&mut self, cx: &mut Context<'_>) -> bool {
        let mut woken = false;
        while self.notified.as_mut().poll(cx).is_ready() {
            woken = true;
            self.notified.set(self.notify.notified());
        }
        woken
    }
}

/// Resolves once the coarse clock reached `at`; registers nothing: it
/// is polled again on the wake-ups of the connection's [`Wakeup`], which
/// the caller keeps registered while this is awaited.
pub async fn reached(ticks: &Ticks, at: u64) {
    std::future::poll_fn(|_| {
        if ticks.reached(at) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Waker;

    use super::*;

    #[test]
    fn a_deadline_is_never_early() {
        let ticks = Ticks::default();
        ticks.advance();
        // 1 ms is one tick, and the current one may be nearly over.
        assert_eq!(ticks.after(Duration::from_millis(1)), 3);
        assert_eq!(ticks.after(TICK), 3);
        assert_eq!(ticks.after(TICK * 4 + Duration::from_nanos(1)), 7);
        assert_eq!(ticks.after(Duration::ZERO), 2);
        assert_eq!(ticks.after(Duration::MAX), u64::MAX);
        assert!(!ticks.reached(2));
        ticks.advance();
        assert!(ticks.reached(2));
    }

    #[test]
    fn a_registration_sees_every_wake_up_and_stays_registered() {
        let notify = Notify::new();
        let notified = pin!(notify.notified());
        let mut wake = Wakeup::new(&notify, notified);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(!wake.poll_woken(&mut cx));
        notify.notify_waiters();
        assert!(wake.poll_woken(&mut cx));
        assert!(!wake.poll_woken(&mut cx), "registered again, not woken");
        notify.notify_waiters();
        notify.notify_waiters();
        assert!(wake.poll_woken(&mut cx));
        assert!(!wake.poll_woken(&mut cx));
    }
}
