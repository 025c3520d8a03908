//! Idle upstream connections, kept per thread and per upstream address.
//!
//! A connection that finished an exchange cleanly is put back here and the
//! next request of any client connection on the same thread takes it: no
//! task, no channel, no lock (hyper-util's pool spawns a task per
//! connection and hands each request over to it). A kept connection is
//! checked when taken: one the app closed, or that sat idle longer than
//! the keep-alive of common apps, is closed instead of used.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::upstream::UpstreamConn;

/// Below the shortest keep-alive timeout common in apps (Node's 5s), so a
/// kept connection is rarely reused just as the app closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// The most idle connections kept per thread and address.
const KEEP: usize = 512;

/// The idle connections to one address, each with when it became idle.
/// Oldest first: those idle too long are at the front.
type Kept = VecDeque<(UpstreamConn, Instant)>;

thread_local! {
    /// Per address: a list, not a map, since a proxy has one upstream (or
    /// a few): a pointer comparison finds it without hashing the address
    /// on every request.
    static IDLE: RefCell<Vec<(Arc<str>, Kept)>> = const { RefCell::new(Vec::new()) };
}

/// The kept connections to `address` in `idle`.
fn kept<'a>(idle: &'a mut [(Arc<str>, Kept)], address: &Arc<str>) -> Option<&'a mut Kept> {
    idle.iter_mut()
        .find(|(a, _)| Arc::ptr_eq(a, address) || **a == **address)
        .map(|(_, kept)| kept)
}

/// Takes the most recently used live idle connection to `address`.
pub fn take(address: &Arc<str>) -> Option<UpstreamConn> {
    let now = Instant::now();
    loop {
        let (conn, since) = IDLE.with(|idle| {
            let mut idle = idle.try_borrow_mut().ok()?;
            kept(&mut idle, address)?.pop_back()
        })?;
        if now.saturating_duration_since(since) < IDLE_TIMEOUT && is_open(&conn) {
            return Some(conn);
        }
    }
}

/// Keeps `conn` for the next request to `address`; closes those idle too
/// long, and `conn` itself when another connection waits for its slot.
pub fn put(address: &Arc<str>, conn: UpstreamConn) {
    if conn.is_wanted() {
        return;
    }
    let now = Instant::now();
    IDLE.with(|idle| {
        let Ok(mut idle) = idle.try_borrow_mut() else {
            return;
        };
        if kept(&mut idle, address).is_none() {
            idle.push((address.clone(), VecDeque::new()));
        }
        let Some(kept) = kept(&mut idle, address) else {
            return;
        };
        let expired = |(_, since): &(UpstreamConn, Instant)| {
            now.saturating_duration_since(*since) >= IDLE_TIMEOUT
        };
        while kept.front().is_some_and(expired) {
            kept.pop_front();
        }
        if kept.len() < KEEP {
            kept.push_back((conn, now));
        }
    });
}

/// Closes every idle connection to `address` this thread keeps: another
/// thread waits for the slots they hold.
pub fn drop_idle(address: &Arc<str>) {
    // Taken out of the list first, closed after the borrow ends.
    let dropped = IDLE.with(|idle| {
        let mut idle = idle.try_borrow_mut().ok()?;
        kept(&mut idle, address).map(std::mem::take)
    });
    drop(dropped);
}

/// Whether the app still holds the connection open with nothing unasked
/// in it: a read would block.
pub(crate) fn is_open(conn: &UpstreamConn) -> bool {
    let mut probe = [0u8; 1];
    matches!(conn.stream().try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
