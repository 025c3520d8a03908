//! The admin port: `/ready`, `/live`, `/metrics` and `POST /drain`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use lameduck::admin::{self, AdminResponse};
use lameduck::Drain;
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::upstream::Readiness;

/// What the admin endpoints look at.
#[derive(Clone, Debug)]
pub struct Admin {
    /// The drain the proxy follows.
    pub drain: Drain,
    /// Whether the upstream came up.
    pub readiness: Readiness,
    /// The proxy's metrics.
    pub metrics: Arc<Metrics>,
    /// Whether `POST /drain` is taken from other than loopback.
    pub allow_remote: bool,
}

// === impl Admin ===

impl Admin {
    /// Serves the admin endpoints on `listener` for as long as the process
    /// lives: probes must keep getting answers while the proxy drains.
    pub async fn serve(self, listener: TcpListener) {
        let admin = Arc::new(self);
        admin::serve(listener, move |req, peer| admin.answer(req, peer)).await
    }

    fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> AdminResponse {
        let phase = self.drain.phase();
        match (req.method(), req.uri().path()) {
            (&Method::GET | &Method::HEAD, "/ready") => {
                if !phase.is_ready() {
                    admin::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {phase}\n"),
                    )
                } else if !self.readiness.is_ready() {
                    admin::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: the upstream does not accept connections yet\n",
                    )
                } else {
                    admin::text(StatusCode::OK, "ready\n")
                }
            }
            (&Method::GET | &Method::HEAD, "/live") => admin::text(StatusCode::OK, "live\n"),
            (&Method::GET | &Method::HEAD, "/metrics") => {
                admin::metrics(self.metrics.render(phase))
            }
            (&Method::POST, "/drain") => admin::drain(&self.drain, peer, self.allow_remote),
            (_, "/drain") => admin::method_not_allowed("POST"),
            (_, "/ready" | "/live" | "/metrics") => admin::method_not_allowed("GET, HEAD"),
            _ => admin::text(
                StatusCode::NOT_FOUND,
                "not found: try /ready, /live, /metrics or POST /drain\n",
            ),
        }
    }
}
