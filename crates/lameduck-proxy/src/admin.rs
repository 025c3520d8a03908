//! The admin port: `/ready`, `/live`, `/metrics` and `POST /drain`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use lameduck::Drain;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

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
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "admin: cannot accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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
                    .header_read_timeout(std::time::Duration::from_secs(10));
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
                } else if !self.readiness.is_ready() {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: the upstream does not accept connections yet\n".into(),
                    )
                } else {
                    text(StatusCode::OK, "ready\n".into())
                }
            }
            (&Method::GET | &Method::HEAD, "/live") => text(StatusCode::OK, "live\n".into()),
            // hyper leaves the body out of an answer to HEAD.
            (&Method::GET | &Method::HEAD, "/metrics") => {
                let mut res = text(StatusCode::OK, self.metrics.render(phase));
                res.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                res
            }
            (&Method::POST, "/drain") => {
                // An admin port on `[::]` sees 127.0.0.1 as ::ffff:127.0.0.1.
                if !peer.ip().to_canonical().is_loopback() && !self.allow_remote {
                    warn!(%peer, "POST /drain refused: not from loopback");
                    return text(
                        StatusCode::FORBIDDEN,
                        "POST /drain is taken from loopback only; start lameduck with --admin-allow-remote to allow it\n".into(),
                    );
                }
                if self.drain.trigger() {
                    info!(%peer, "drain asked for on the admin port");
                    text(StatusCode::ACCEPTED, "draining\n".into())
                } else {
                    text(StatusCode::OK, format!("already draining: {phase}\n"))
                }
            }
            (_, "/ready" | "/live" | "/metrics" | "/drain") => {
                let allow = if req.uri().path() == "/drain" {
                    "POST"
                } else {
                    "GET, HEAD"
                };
                let mut res = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}\n"));
                res.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
                res
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /ready, /live, /metrics or POST /drain\n".into(),
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
