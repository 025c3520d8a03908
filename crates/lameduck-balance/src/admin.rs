//! The admin port: `/ready`, `/live`, `/metrics`, `GET /endpoints` and
//! `POST /drain`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lameduck::Drain;
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

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
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "admin: cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.answer(req, peer)) }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10));
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(error = %e, "admin connection ended with an error");
                }
            });
        }
    }

    fn answer(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let phase = self.drain.phase();
        match (req.method(), req.uri().path()) {
            (&Method::GET | &Method::HEAD, "/ready") => {
                if !phase.is_ready() {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {phase}\n"),
                    )
                } else if !self.set.is_synced() {
                    let why = self
                        .set
                        .source_error()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default();
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: no endpoint set from {} yet{why}\n", self.source),
                    )
                } else {
                    text(StatusCode::OK, "ready\n".into())
                }
            }
            (&Method::GET | &Method::HEAD, "/live") => text(StatusCode::OK, "live\n".into()),
            (&Method::GET, "/metrics") => {
                let mut res = text(StatusCode::OK, self.metrics.render(&self.set, phase));
                res.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                res
            }
            (&Method::GET, "/endpoints") => {
                let page = EndpointsPage {
                    source: &self.source,
                    synced: self.set.is_synced(),
                    source_error: self.set.source_error(),
                    fallback: self.set.is_in_fallback(),
                    endpoints: self.set.views(),
                };
                let body = serde_json::to_string_pretty(&page)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
                let mut res = text(StatusCode::OK, body + "\n");
                res.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
            (&Method::POST, "/drain") => {
                if !peer.ip().is_loopback() && !self.allow_remote {
                    warn!(%peer, "POST /drain refused: not from loopback");
                    return text(
                        StatusCode::FORBIDDEN,
                        "POST /drain is taken from loopback only; start with --admin-allow-remote to allow it\n".into(),
                    );
                }
                if self.drain.trigger() {
                    info!(%peer, "drain asked for on the admin port");
                    text(StatusCode::ACCEPTED, "draining\n".into())
                } else {
                    text(StatusCode::OK, format!("already draining: {phase}\n"))
                }
            }
            (_, path @ ("/ready" | "/live" | "/metrics" | "/endpoints" | "/drain")) => {
                let allow = match path {
                    "/drain" => "POST",
                    "/ready" | "/live" => "GET, HEAD",
                    _ => "GET",
                };
                let mut res = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}\n"));
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
                res
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /ready, /live, /metrics, /endpoints or POST /drain\n".into(),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
