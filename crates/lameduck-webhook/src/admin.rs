//! The admin port: `/ready`, `/live` and `/metrics`, in plain HTTP, as for
//! the other lameduck commands.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use lameduck::admin::{self, text};
use lameduck::Drain;

use crate::metrics::Metrics;

/// Answers one admin request.
pub async fn handle(
    req: Request<Incoming>,
    drain: Drain,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let res = match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/ready") => {
            let ready = lameduck::http::readiness(&drain);
            let status = ready.status();
            text(status, ready.into_body())
        }
        (&Method::GET | &Method::HEAD, "/live") => text(StatusCode::OK, "live\n"),
        (&Method::GET | &Method::HEAD, "/metrics") => admin::metrics(metrics.render()),
        (_, "/ready" | "/live" | "/metrics") => admin::method_not_allowed("GET, HEAD"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /ready, /live or /metrics\n",
        ),
    };
    Ok(res)
}
