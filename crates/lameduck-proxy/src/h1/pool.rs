//! Idle upstream connections, kept per thread and per upstream address.
//!
//! A connection that finished an exchange cleanly is put back here and the
//! next request of any client connection on the same thread takes it: no
//! task, no channel, no lock (hyper-util's pool spawns a task per
//! connection and hands each request over to it). A kept connection is
//! checked when taken: one the app closed, or that sat idle longer than
//! the keep-alive of common apps, is closed instead of used.

use std::cell::RefCell;
use std::collections::HashMap;
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
type Kept = Vec<(UpstreamConn, Instant)>;

thread_local! {
    static IDLE: RefCell<HashMap<Arc<str>, Kept>> = RefCell::new(HashMap::new());
}

/// Takes the most recently used live idle connection to `address`.
pub fn take(address: &Arc<str>) -> Option<UpstreamConn> {
    let now = Instant::now();
    loop {
        let (conn, since) = IDLE.with(|idle| {
            let mut idle = idle.try_borrow_mut().ok()?;
            idle.get_mut(address)?.pop()
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
        let kept = idle.entry(address.clone()).or_default();
        kept.retain(|(_, since)| now.saturating_duration_since(*since) < IDLE_TIMEOUT);
        if kept.len() < KEEP {
            kept.push((conn, now));
        }
    });
}

/// Closes every idle connection to `address` this thread keeps: another
/// thread waits for the slots they hold.
pub fn drop_idle(address: &Arc<str>) {
    let dropped = IDLE.with(|idle| {
        let mut idle = idle.try_borrow_mut().ok()?;
        idle.remove(address)
    });
    drop(dropped);
}

/// Whether the app still holds the connection open with nothing unasked
/// in it: a read would block.
fn is_open(conn: &UpstreamConn) -> bool {
    let mut probe = [0u8; 1];
    matches!(conn.stream().try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}
