//! What sits in front of the app and must drain before the app hears the
//! stop: the drain proxy, run on threads of its own.

use lameduck_core::Signal;

use crate::sys::{self, Pid};

/// Something that drains the app's traffic before the stop is passed on.
///
/// The supervisor calls it from its own thread; it wakes the supervisor with
/// the [`Waker`] whenever [`requested`](Drainer::requested) or
/// [`is_done`](Drainer::is_done) may have changed.
pub trait Drainer: Send {
    /// A stop was asked for: begin draining.
    fn begin(&mut self);
    /// A second SIGINT came: cut the drain delay short.
    fn hurry(&mut self);
    /// The app exited: nothing can be served any more; finish what is open
    /// (requests in flight get errors) and close quickly.
    fn app_exited(&mut self);
    /// Whether the drain began by other means (`POST /drain`).
    fn requested(&self) -> bool;
    /// Whether draining is over, so the app may hear the stop.
    fn is_done(&self) -> bool;
}

/// Wakes the supervisor's event loop from another thread.
#[derive(Clone, Copy, Debug)]
pub struct Waker {
    supervisor: Pid,
}

impl Waker {
    pub(crate) fn new() -> Self {
        Waker {
            supervisor: sys::getpid(),
        }
    }

    /// Makes the supervisor look at its drainer again. A queued real-time
    /// signal sent by the process to itself: it is never forwarded to the
    /// app, and unlike SIGCHLD it cannot merge with a child's exit.
    pub fn wake(&self) {
        let _ = sys::kill(self.supervisor, Signal::wake());
    }
}
