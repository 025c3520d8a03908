//! The admin port: `/ready`, `/live`, `/metrics`, `GET /endpoints` and
//! `POST /drain`.

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use lameduck::admin::{self, AdminResponse};
use lameduck::Drain;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::endpoint::EndpointView;
use crate::metrics::Metrics;
use crate::set::EndpointSet;

/// What the admin endpoints look at.
#[derive(Clone, Debug)]
pub struct Admin {
    /// The balancer's own drain.
    pub drain: Drain,
    /// The endpoints.
    pub set: Arc<EndpointSet>,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// HTTP mode: the proxy's request counters (outcomes, requests in
    /// flight, upstream connections), served after the balancer's own.
    pub requests: Option<Arc<lameduck_proxy::Metrics>>,
    /// The source, as `--endpoints` gave it.
    pub source: String,
    /// Whether `POST /drain` is taken from other than loopback.
    pub allow_remote: bool,
}

/// `GET /endpoints`.
#[derive(Serialize)]
struct EndpointsPage<'a> {
    source: &'a str,
    synced: bool,
    source_error: Option<String>,
    fallback: bool,
    endpoints: Vec<EndpointView>,
}

// === impl Admin ===

impl Admin {
    /// Serves the admin endpoints on `listener` for as long as the process
    /// lives: probes must keep getting answers while the balancer drains.
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
                } else if !self.set.is_synced() {
                    let why = self
                        .set
                        .source_error()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default();
                    admin::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: no endpoint set from {} yet{why}\n", self.source),
                    )
                } else {
                    admin::text(StatusCode::OK, "ready\n")
                }
            }
            (&Method::GET | &Method::HEAD, "/live") => admin::text(StatusCode::OK, "live\n"),
            (&Method::GET | &Method::HEAD, "/metrics") => {
                let mut text = self.metrics.render(&self.set, phase);
                if let Some(requests) = &self.requests {
                    // One exposition: the balancer's `# EOF` goes, the
                    // proxy's ends it.
                    if let Some(body) = text.strip_suffix("# EOF\n") {
                        text.truncate(body.len());
                    }
                    text.push_str(&requests.render(phase));
                }
                admin::metrics(text)
            }
            (&Method::GET | &Method::HEAD, "/endpoints") => {
                let page = EndpointsPage {
                    source: &self.source,
                    synced: self.set.is_synced(),
                    source_error: self.set.source_error(),
                    fallback: self.set.is_in_fallback(),
                    endpoints: self.set.views(),
                };
                let body = serde_json::to_string_pretty(&page)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
                let mut res = admin::text(StatusCode::OK, body + "\n");
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
            (&Method::POST, "/drain") => admin::drain(&self.drain, peer, self.allow_remote),
            (_, "/drain") => admin::method_not_allowed("POST"),
            (_, "/ready" | "/live" | "/metrics" | "/endpoints") => {
                admin::method_not_allowed("GET, HEAD")
            }
            _ => admin::text(
                StatusCode::NOT_FOUND,
                "not found: try /ready, /live, /metrics, /endpoints or POST /drain\n",
            ),
        }
    }
}
