//! HTTP mode: the drain proxy's HTTP side (HTTP/1.1 and h2c from clients,
//! kept HTTP/1.1 connections to the endpoints) with an endpoint chosen for
//! every request rather than every client connection.
//!
//! Each request asks [`Balanced`] for a connection: the set chooses an
//! endpoint (a ready one; a serving-and-terminating one only in the
//! fallback), an idle connection kept for it is reused if there is one,
//! else one is opened, and a connect that fails is tried on another
//! endpoint as in TCP mode. Connections come back after a clean exchange
//! and are kept only while their endpoint is ready.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use lameduck::{accept_until_closing, Drain};
use lameduck_proxy::dial::{Checkout, Dial};
use lameduck_proxy::{FrontConfig, HttpFront, UpstreamConn};
use tokio::net::TcpListener;

use crate::connect::{Attempts, Connector};
use crate::endpoint::{InFlight, Lease};
use crate::http_leave::LeaveWatch;
use crate::http_pool::{self, Hold, Kept};
use crate::metrics::Metrics;

/// Hands out the upstream connection of each request: the seam's
/// implementation over the balancer's engine.
#[derive(Debug)]
pub(crate) struct Balanced {
    connector: Arc<Connector>,
    kept: Arc<Kept>,
    proxy_metrics: Arc<lameduck_proxy::Metrics>,
}

// === impl Balanced ===

impl Balanced {
    async fn checkout(&self, fresh: bool) -> io::Result<(UpstreamConn, bool)> {
        let set = &self.connector.set;
        let mut attempts = Attempts::default();
        let mut tried: Vec<SocketAddr> = Vec::new();
        loop {
            let Some(endpoint) = set.choose_endpoint(&tried) else {
                let metrics = &self.connector.metrics;
                return Err(if tried.is_empty() {
                    metrics.no_endpoint.inc();
                    io::Error::other("no endpoint is ready or serving")
                } else {
                    metrics.connect_failures.inc();
                    io::Error::other(format!(
                        "{} connect(s) failed and no other endpoint is left to try",
                        tried.len()
                    ))
                });
            };
            if !fresh {
                if let Some(mut conn) = self.kept.take(&endpoint) {
                    begin(&mut conn);
                    return Ok((conn, true));
                }
            }
            endpoint.count_connection();
            let lease = Lease::new(endpoint.clone());
            let addr = endpoint.addr();
            match self.connector.dial(addr).await {
                Ok(stream) => {
                    let leave = LeaveWatch::start(
                        &stream,
                        endpoint.clone(),
                        self.connector.metrics.clone(),
                    );
                    let hold = Hold {
                        lease,
                        request: Some(InFlight::new(endpoint)),
                        _leave: leave,
                    };
                    let conn = UpstreamConn::dialed(stream, &self.proxy_metrics, Box::new(hold));
                    return Ok((conn, false));
                }
                Err(e) => {
                    tried.push(addr);
                    if !self.connector.failed(&mut attempts, &lease, &e) {
                        self.connector.metrics.connect_failures.inc();
                        return Err(io::Error::new(
                            e.kind(),
                            format!("{} connect(s) failed, the last to {addr}: {e}", tried.len()),
                        ));
                    }
                }
            }
        }
    }
}

/// Counts a request in flight on `conn`'s endpoint.
fn begin(conn: &mut UpstreamConn) {
    if let Some(hold) = conn.tag_mut().and_then(|t| t.downcast_mut::<Hold>()) {
        let endpoint = hold.lease.endpoint().clone();
        hold.request = Some(InFlight::new(endpoint));
    }
}

impl Dial for Balanced {
    fn checkout(&self, fresh: bool) -> Checkout<'_> {
        Box::pin(Balanced::checkout(self, fresh))
    }

    fn checkin(&self, mut conn: UpstreamConn) {
        if let Some(hold) = conn.tag_mut().and_then(|t| t.downcast_mut::<Hold>()) {
            hold.request = None;
        }
        self.kept.put(conn);
    }
}

/// Serves HTTP mode on `listener` until the drain closes it; returns the
/// proxy's request metrics, for the admin port.
pub(crate) fn start(
    listener: TcpListener,
    drain: &Drain,
    connector: Arc<Connector>,
    http: lameduck::http::HttpServer,
) -> Arc<lameduck_proxy::Metrics> {
    let proxy_metrics = Arc::new(lameduck_proxy::Metrics::new());
    let kept = Arc::new(Kept::default());
    tokio::spawn(http_pool::sweep(kept.clone(), connector.set.clone()));
    let authority = listener
        .local_addr()
        .ok()
        .and_then(|a| a.to_string().parse().ok())
        .unwrap_or_else(|| http::uri::Authority::from_static("lameduck-balance"));
    let metrics = connector.metrics.clone();
    let dial = Arc::new(Balanced {
        connector,
        kept,
        proxy_metrics: proxy_metrics.clone(),
    });
    let front = Arc::new(HttpFront::dialing(
        dial,
        FrontConfig {
            authority,
            http,
            upstream_timeout: None,
            drain: drain.clone(),
            metrics: proxy_metrics.clone(),
        },
    ));
    tokio::spawn(accept_until_closing(
        listener,
        drain.watch(),
        move |stream, peer, watch| {
            let front = front.clone();
            let metrics = metrics.clone();
            async move {
                metrics.connections.inc();
                let _open = Open::count(&metrics);
                front.serve(stream, peer, watch).await;
            }
        },
    ));
    proxy_metrics
}

/// A client connection counted open while it lives.
struct Open(Arc<Metrics>);

impl Open {
    fn count(metrics: &Arc<Metrics>) -> Self {
        metrics.open.inc();
        Open(metrics.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.dec();
    }
}
