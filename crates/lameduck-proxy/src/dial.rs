//! The seam between the proxy's HTTP side and whoever chooses where each
//! request goes.
//!
//! The drain proxy sends everything to one fixed upstream: its connector
//! keeps idle connections per thread and dials the one address. A balancer (`lameduck balance --mode
//! http`) chooses an endpoint for every request instead, and keeps idle
//! connections per endpoint so that those to an endpoint that began
//! terminating can be closed at once. It plugs in here: a [`Dial`] hands
//! out a connection for each request (an idle one or a new one) and takes
//! it back when the exchange ended cleanly; everything else (parsing,
//! framing, `Connection: close` while draining, h2c) stays the proxy's.

use std::any::Any;
use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::net::TcpStream;

use crate::metrics::Metrics;
use crate::upstream::UpstreamConn;

/// How long a kept connection may sit idle before it is closed rather than
/// reused: below the shortest keep-alive timeout common in apps (Node's
/// 5s), so a kept connection is rarely reused just as the app closes it.
pub use crate::h1::pool::IDLE_TIMEOUT;

/// A connection for one request, and whether it was kept from an earlier
/// one (`true`: it may have been closed by the app meanwhile).
pub type Checkout<'a> = Pin<Box<dyn Future<Output = io::Result<(UpstreamConn, bool)>> + Send + 'a>>;

/// Chooses the upstream connection of each request.
///
/// `checkout` runs once per request (and once more, with `fresh`, when a
/// kept connection turned out closed), so an implementation can pick a
/// different upstream every time; `checkin` gets back the connections that
/// may serve another request.
pub trait Dial: std::fmt::Debug + Send + Sync + 'static {
    /// A connection for the next request: a kept one, unless `fresh`, or a
    /// new one. An error is answered 502.
    fn checkout(&self, fresh: bool) -> Checkout<'_>;

    /// Takes back `conn` after an exchange that left it reusable; dropping
    /// it closes it.
    fn checkin(&self, conn: UpstreamConn);
}

// === impl UpstreamConn ===

impl UpstreamConn {
    /// A connection a [`Dial`] opened, counted in the proxy's
    /// `upstream_connections` while it lives, carrying `tag` (what the
    /// dialer ties to it: its endpoint, its counts) until it closes.
    pub fn dialed(stream: TcpStream, metrics: &Metrics, tag: Box<dyn Any + Send + Sync>) -> Self {
        UpstreamConn::with_tag(stream, metrics, tag)
    }

    /// What the dialer tied to this connection, if it did.
    pub fn tag(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.tag_ref()
    }

    /// The same, to change it (a request began or ended on it).
    pub fn tag_mut(&mut self) -> Option<&mut (dyn Any + Send + Sync)> {
        self.tag_ref_mut()
    }

    /// Whether the app still holds this idle connection open with nothing
    /// unasked in it: the check made before a kept connection is reused.
    pub fn is_open(&self) -> bool {
        crate::h1::pool::is_open(self)
    }
}

/// Whether a request whose upstream connection (a kept one, mostly)
/// closed before any byte of the answer came back may be sent again on a
/// new connection:
/// when it never reached the app (its first write failed: the app had
/// closed its end, and a closed socket processes nothing), or when its
/// method is idempotent (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT,
/// DELETE) and it has no body that already went upstream and cannot be
/// sent twice. A written POST never is: the app may have acted on it.
pub fn may_resend(method: &[u8], has_body: bool, written: bool) -> bool {
    !written || (!has_body && is_idempotent(method))
}

/// RFC 9110 §9.2.2: the methods whose intended effect of several identical
/// requests is that of one.
pub fn is_idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_or_unwritten_requests_are_sent_again() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(may_resend(m.as_bytes(), false, true), "{m}");
            // A body that streamed upstream is gone.
            assert!(!may_resend(m.as_bytes(), true, true), "{m} with a body");
        }
        for m in ["POST", "PATCH", "CONNECT", "get", "BREW"] {
            assert!(!may_resend(m.as_bytes(), false, true), "{m}");
            assert!(may_resend(m.as_bytes(), true, false), "{m} never written");
        }
    }
}
