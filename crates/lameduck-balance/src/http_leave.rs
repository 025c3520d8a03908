//! HTTP mode's `--drain-timeout`: an upstream connection still busy when
//! its endpoint left (not serving, or gone) is closed at the deadline, as
//! TCP mode closes a relayed connection. Idle kept connections never wait
//! for it: they are closed as soon as the endpoint is not ready.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::endpoint::{Endpoint, Leave};
use crate::metrics::Metrics;
use crate::relay::until_leave;

/// Closes one upstream connection when its endpoint's leave says so;
/// stops watching when dropped (the connection closed first).
#[derive(Debug)]
pub(crate) struct LeaveWatch(JoinHandle<()>);

impl Drop for LeaveWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

// === impl LeaveWatch ===

impl LeaveWatch {
    /// Watches `endpoint` for `stream`. The watch holds a second
    /// descriptor of the socket, so it never acts on a descriptor number
    /// the connection's close gave back and another socket took; `None`
    /// when that descriptor cannot be had (the connection then runs until
    /// it ends).
    pub(crate) fn start(
        stream: &TcpStream,
        endpoint: Arc<Endpoint>,
        metrics: Arc<Metrics>,
    ) -> Option<LeaveWatch> {
        let socket = socket2::SockRef::from(stream).try_clone().ok()?;
        let leave = endpoint.leave();
        Some(LeaveWatch(tokio::spawn(async move {
            let end = until_leave(leave).await;
            if end == Leave::Now {
                // The reset policy: RST rather than FIN.
                let _ = socket.set_linger(Some(Duration::ZERO));
                metrics.reset_at_leave.inc();
            } else {
                metrics.closed_at_drain_timeout.inc();
                endpoint.count_closed_at_timeout();
            }
            debug!(endpoint = %endpoint.addr(), name = %endpoint.label(), "upstream connection closed: its endpoint left and the drain timeout passed");
            // Both ways: the request or tunnel on it ends, the client sees
            // the answer cut short.
            let _ = socket.shutdown(std::net::Shutdown::Both);
        })))
    }
}
