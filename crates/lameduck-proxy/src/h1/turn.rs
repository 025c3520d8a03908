//! Requests to the upstream go out together, once per turn of the thread's
//! runtime.
//!
//! The app behind the proxy usually runs on the same CPUs (the same pod),
//! and its process sleeps in `epoll_wait` until a request arrives. The
//! first request written to it wakes it, and the kernel's scheduler may
//! let it preempt the proxy there and then: it answers that one request,
//! sleeps again, and the next write wakes it again. Written one by one as
//! each request is read, a run of requests costs both processes a context
//! switch every few requests. Held until the runtime's turn ends (its
//! ready tasks run, its I/O driver polled) the turn's requests go out back
//! to back, and the app takes them in one wake-up, as it does behind
//! HAProxy, which writes at the end of its event loop's pass.
//!
//! Measured on the `bench/proxy.sh` rig (proxy and upstream nginx pinned
//! to one CPU, the load on the other): over HTTP/1.1 (wrk) the proxy's
//! context switches went from 0.41-0.44 to 0.30-0.33 per request and its
//! CPU from 8.8-8.9 to 8.2-8.3 µs per request; over h2c (h2load) from 0.22
//! to 0.08-0.16 switches and from 8.0-8.7 to 7.3-8.0 µs. Where the proxy
//! has a CPU to itself the hold costs a little (one more poll of the task,
//! one more non-blocking `epoll_wait` when the turn had nothing else to
//! do), and under light load it delays a request by one pass of the
//! runtime's loop: microseconds.

/// Resolves in the runtime's next turn, after its I/O driver was polled:
/// tokio's `yield_now` defers the task's wake-up to then (it never parks
/// the thread on it), so every task that waited here in one turn runs in
/// the next, one after the other.
pub(crate) async fn next_turn() {
    tokio::task::yield_now().await;
}
