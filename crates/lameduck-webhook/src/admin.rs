//! The admin port: `/ready`, `/live` and `/metrics`, in plain HTTP, as for
//! the other lameduck commands.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
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
        (&Method::GET | &Method::HEAD, "/live") => text(StatusCode::OK, "live\n".into()),
        (&Method::GET, "/metrics") => {
            let mut res = text(StatusCode::OK, metrics.render());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            res
        }
        (_, "/ready" | "/live" | "/metrics") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use GET\n".into(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /ready, /live or /metrics\n".into(),
        ),
    };
    Ok(res)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
