//! The pieces of an admin port (`/ready`, `/live`, `/metrics`,
//! `POST /drain`) that every lameduck server answers the same way: the
//! accept loop that keeps answering probes while the server drains, plain
//! text and OpenMetrics answers, `405` with its `Allow` header, and the
//! drain trigger taken from loopback only.
//!
//! The drain proxy, the balancer and the webhook each decide what their
//! `/ready` means and what their metrics hold; how the port behaves is
//! decided here, once, so a fix (an IPv4 peer seen as `::ffff:127.0.0.1` on
//! a `[::]` port, `HEAD /metrics`) reaches every one of them.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::Drain;

/// An admin answer: small, whole, in memory.
pub type AdminResponse = Response<Full<Bytes>>;

/// How long a client of the admin port may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `answer` on `listener` for as long as the process lives: probes
/// must keep getting answers while the server drains, so this loop follows
/// no drain. `answer` gets the request and the peer's address.
pub fn serve<F>(listener: TcpListener, answer: F) -> impl Future<Output = ()> + Send
where
    F: Fn(Request<Incoming>, SocketAddr) -> AdminResponse + Send + Sync + 'static,
{
    let answer = Arc::new(answer);
    async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: try again soon
                    // rather than spin.
                    warn!(error = %e, "admin: cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let res = answer(req, peer);
                    async move { Ok::<_, Infallible>(res) }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(error = %e, "admin connection ended with an error");
                }
            });
        }
    }
}

/// A plain-text answer. hyper leaves the body out of an answer to `HEAD`,
/// so the same answer serves `GET` and `HEAD`.
pub fn text(status: StatusCode, body: impl Into<String>) -> AdminResponse {
    let mut res = Response::new(Full::new(Bytes::from(body.into())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// `/metrics`: the rendered text in the OpenMetrics format.
pub fn metrics(rendered: String) -> AdminResponse {
    let mut res = text(StatusCode::OK, rendered);
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

/// `405` for a known path asked with the wrong method, with the `Allow`
/// header RFC 9110 §15.5.6 requires.
pub fn method_not_allowed(allow: &'static str) -> AdminResponse {
    let mut res = text(StatusCode::METHOD_NOT_ALLOWED, format!("use {allow}\n"));
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

/// `POST /drain`: starts the drain, from loopback only unless
/// `allow_remote`. An admin port listening on `[::]` sees an IPv4 peer as
/// `::ffff:127.0.0.1`, which counts as loopback too.
pub fn drain(drain: &Drain, peer: SocketAddr, allow_remote: bool) -> AdminResponse {
    if !allow_remote && !is_loopback(peer) {
        warn!(%peer, "POST /drain refused: not from loopback");
        return text(
            StatusCode::FORBIDDEN,
            "POST /drain is taken from loopback only; start lameduck with --admin-allow-remote to allow it\n",
        );
    }
    if drain.trigger() {
        info!(%peer, "drain asked for on the admin port");
        text(StatusCode::ACCEPTED, "draining\n")
    } else {
        text(
            StatusCode::OK,
            format!("already draining: {}\n", drain.phase()),
        )
    }
}

/// Whether `peer` is this machine, also as an IPv4-mapped IPv6 address.
pub fn is_loopback(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_loopback_is_loopback() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().expect("addr");
        let v6: SocketAddr = "[::1]:5000".parse().expect("addr");
        let other: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().expect("addr");
        assert!(is_loopback(mapped));
        assert!(is_loopback(v6));
        assert!(!is_loopback(other));
    }

    #[test]
    fn a_wrong_method_names_the_right_ones() {
        let res = method_not_allowed("GET, HEAD");
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()[ALLOW], "GET, HEAD");
    }
}
