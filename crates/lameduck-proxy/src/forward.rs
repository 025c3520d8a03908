//! The HTTP forwarding service: each client request goes to the upstream
//! with its body streamed both ways; `Upgrade` becomes a tunnel.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use lameduck::{tunnel, Drain, TunnelEnd, TunnelKind, Watch};
use tracing::{debug, info, warn};

use crate::body::{BodyState, ClientBody};
use crate::config::UpstreamProtocol;
use crate::dial::may_resend;
use crate::h1::streams::{self, StreamFailure};
use crate::metrics::{GaugeGuard, Metrics, Outcome, Protocol};
use crate::rewrite::{is_grpc, strip_hop_by_hop, to_upstream, upgrade_protocol, Peer};
use crate::upstream::{is_connection_limit, Connector, UpstreamClient};

pub use crate::answer_body::{BoxError, ProxyBody};

/// Forwards requests of one client connection to the upstream.
#[derive(Clone, Debug)]
pub struct Forward {
    shared: Arc<Shared>,
    peer: Arc<Peer>,
}

/// What every connection's [`Forward`] shares.
#[derive(Debug)]
pub struct Shared {
    /// The pooled upstream client.
    pub client: UpstreamClient,
    /// The engine's way to an HTTP/1.1 upstream, for HTTP/2 streams that
    /// bring no body (`None` to an HTTP/2 upstream).
    pub h1_upstream: Option<Arc<Connector>>,
    /// The HTTP spoken to the upstream.
    pub protocol: UpstreamProtocol,
    /// `host:port` of the upstream, the authority when a request has none.
    pub upstream: Authority,
    /// The drain, for the phase in logs and for tunnels' watches.
    pub drain: Drain,
    /// Where requests are counted.
    pub metrics: Arc<Metrics>,
    /// How long the upstream may take to answer a request sent whole
    /// (gRPC calls excepted: they carry their own deadline).
    pub upstream_timeout: Option<Duration>,
}

// === impl Forward ===

impl Forward {
    /// The service for one connection from `peer`.
    pub fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        Forward {
            shared,
            peer: Arc::new(Peer::new(peer.ip())),
        }
    }
}

impl Service<Request<Incoming>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let shared = self.shared.clone();
        let peer = self.peer.clone();
        // Most HTTP/2 requests: a path of their own, which writes the
        // upstream's head straight from the request instead of rewriting it
        // into `http` types first (a rebuilt URI, the field map changed
        // twice) as the general path must for hyper's client.
        let stream = req.version() == Version::HTTP_2
            && req.method() != Method::CONNECT
            && req.body().is_end_stream();
        if let Some(connector) = shared.h1_upstream.clone().filter(|_| stream) {
            return shared.forward_stream(connector, req, &peer);
        }
        Box::pin(async move { Ok(shared.forward(req, &peer).await) })
    }
}

// === impl Shared ===

impl Shared {
    /// An HTTP/2 request with no body, to an HTTP/1.1 app: through the
    /// engine's upstream side (`h1::streams`), its head written straight
    /// from the request.
    ///
    /// The head is written here, before the future: the future then holds
    /// the head and what a failure's log line needs (the method and the
    /// path), not the request. It stays under 1,000 bytes (976; it was
    /// 2 KiB; a test in `front::sizes` holds it there): glibc serves a
    /// request of 1,008 bytes or more that its per-thread cache cannot from
    /// its arena, and first consolidates its free small chunks, which was
    /// 1% of the proxy's time under h2load.
    fn forward_stream(
        self: Arc<Self>,
        connector: Arc<Connector>,
        req: Request<Incoming>,
        peer: &Peer,
    ) -> <Forward as Service<Request<Incoming>>>::Future {
        let protocol = if is_grpc(req.headers()) {
            Protocol::Grpc
        } else {
            Protocol::Http2
        };
        let in_flight = self.metrics.request(protocol);
        let (parts, _) = req.into_parts();
        let head = match streams::request_head(&parts, peer, &self.upstream) {
            Ok(head) => head,
            Err(why) => {
                debug!(peer = %peer.ip, method = %parts.method, path = parts.uri.path(), why = why.trim_end(), "bad request: 400");
                self.metrics.outcome(Outcome::Rejected);
                return Box::pin(std::future::ready(Ok(short(StatusCode::BAD_REQUEST, why))));
            }
        };
        // gRPC carries its own deadline (see `forward`).
        let limit = self.upstream_timeout.filter(|_| protocol != Protocol::Grpc);
        let http::request::Parts { method, uri, .. } = parts;
        let sent = SentHead {
            method,
            // Only the path is logged: the whole URI is 88 bytes more.
            path: uri.into_parts().path_and_query,
            head,
            limit,
        };
        Box::pin(self.stream_answer(connector, sent, in_flight))
    }

    /// The answer to an HTTP/2 stream whose upstream head is written.
    // Not an `async fn`: one keeps its arguments twice (1,096 bytes against
    // 976; `front::sizes` holds this under 1,000).
    #[allow(clippy::manual_async_fn)]
    fn stream_answer(
        self: Arc<Self>,
        connector: Arc<Connector>,
        sent: SentHead,
        in_flight: GaugeGuard,
    ) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send {
        async move {
            let SentHead {
                method,
                path,
                head,
                limit,
            } = &sent;
            let failure = match streams::forward(&connector, method, head, *limit, in_flight).await
            {
                Ok(res) => {
                    self.count(res.status());
                    return Ok(res.map(ProxyBody::Stream));
                }
                Err(StreamFailure::Timeout(limit)) => Failure::Timeout(limit),
                Err(StreamFailure::Upstream(e)) => Failure::Engine(e),
            };
            let path = path.as_ref().map_or("/", |p| p.path());
            Ok(self.failed(failure, None, method, path))
        }
    }

    async fn forward(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: &Peer,
    ) -> Response<ProxyBody> {
        let protocol = if is_grpc(req.headers()) {
            Protocol::Grpc
        } else if req.version() == Version::HTTP_2 {
            Protocol::Http2
        } else {
            Protocol::Http1
        };
        let in_flight = self.metrics.request(protocol);
        if req.method() == Method::CONNECT {
            // A reverse proxy has no tunnel to open to an authority of the
            // client's choosing (HAProxy and Envoy refuse it by default).
            info!(peer = %peer.ip, authority = %req.uri(), "CONNECT refused: 501");
            self.metrics.outcome(Outcome::Rejected);
            return short(
                StatusCode::NOT_IMPLEMENTED,
                "CONNECT is not supported: lameduck is a reverse proxy\n",
            );
        }
        let upgrade = upgrade_protocol(&req);
        if upgrade.is_some() && self.protocol == UpstreamProtocol::Http2 {
            self.metrics.outcome(Outcome::Rejected);
            return short(
                StatusCode::NOT_IMPLEMENTED,
                "upgrades need --upstream-protocol h1\n",
            );
        }
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let method = req.method().clone();
        // A cheap clone (shared bytes), kept for the log line of a failure.
        let uri = req.uri().clone();
        let req = match to_upstream(req, peer, upgrade.as_ref(), self.protocol, &self.upstream) {
            Ok(req) => req,
            Err(why) => {
                debug!(peer = %peer.ip, %method, path = uri.path(), why = why.trim_end(), "bad request: 400");
                self.metrics.outcome(Outcome::Rejected);
                return short(StatusCode::BAD_REQUEST, why);
            }
        };
        let (parts, body) = req.into_parts();
        // gRPC carries its own deadline (`grpc-timeout`) to the server, and
        // a server stream may send its headers only with its first message,
        // long after the call began: Envoy's route timeout is the known trap.
        let limit = self.upstream_timeout.filter(|_| protocol != Protocol::Grpc);
        // A request without a body can be sent again as it was.
        let again = body.is_end_stream().then(|| parts.clone());
        let (body, sent) = ClientBody::new(body);
        let mut res = match self
            .exchange(Request::from_parts(parts, body), &sent, limit)
            .await
        {
            Ok(res) => res,
            // The upstream connection closed before any byte of the answer:
            // sent again, once, when RFC 9110 allows (`may_resend`).
            Err(Failure::Upstream(e)) => {
                let Some(parts) =
                    again.filter(|_| closed_unanswered(&e, method.as_str().as_bytes()))
                else {
                    return self.failed(Failure::Upstream(e), Some(&sent), &method, uri.path());
                };
                debug!(%method, path = uri.path(), error = %e, "the upstream connection closed before answering: sending again");
                let (body, sent) = ClientBody::empty();
                match self
                    .exchange(Request::from_parts(parts, body), &sent, limit)
                    .await
                {
                    Ok(res) => res,
                    Err(failure) => return self.failed(failure, Some(&sent), &method, uri.path()),
                }
            }
            Err(failure) => return self.failed(failure, Some(&sent), &method, uri.path()),
        };
        self.count(res.status());
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let (Some(kind), Some(client_upgrade)) = (upgrade, client_upgrade) {
                let upstream_upgrade = hyper::upgrade::on(&mut res);
                tokio::spawn(splice(
                    client_upgrade,
                    upstream_upgrade,
                    kind,
                    self.drain.watch(),
                    self.metrics.clone(),
                ));
                // The 101 goes back with its Upgrade and Connection intact.
                return res.map(|b| ProxyBody::Boxed(b.map_err(BoxError::from).boxed_unsync()));
            }
        }
        respond(res, in_flight)
    }

    /// Counts the answer by its status.
    fn count(&self, status: StatusCode) {
        self.metrics.outcome(match status.as_u16() {
            ..=399 => Outcome::Success,
            400..=499 => Outcome::ClientError,
            _ => Outcome::ServerError,
        });
    }

    /// Sends `req` and waits for the answer's head: at most the upstream
    /// timeout once the request's body was sent, as nginx's
    /// `proxy_read_timeout` counts (an upload's own time is not the app's).
    async fn exchange(
        &self,
        req: Request<ClientBody>,
        sent: &BodyState,
        limit: Option<Duration>,
    ) -> Result<Response<Incoming>, Failure> {
        let answer = self.client.request(req);
        let Some(limit) = limit else {
            return answer.await.map_err(Failure::Upstream);
        };
        tokio::select! {
            res = answer => res.map_err(Failure::Upstream),
            () = async { sent.sent().await; tokio::time::sleep(limit).await } => Err(Failure::Timeout(limit)),
        }
    }

    /// The answer to a request that got none from the upstream, by whose
    /// fault: the client's (400), the limit's (503), the app's (502, 504).
    fn failed(
        &self,
        failure: Failure,
        sent: Option<&BodyState>,
        method: &Method,
        path: &str,
    ) -> Response<ProxyBody> {
        let phase = self.drain.phase();
        let e = match failure {
            Failure::Timeout(limit) => {
                warn!(%method, path, %phase, timeout = ?limit, "upstream did not answer in time: 504");
                self.metrics.outcome(Outcome::UpstreamTimeout);
                return short(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n");
            }
            Failure::Upstream(e) => BoxError::from(e),
            Failure::Engine(e) => BoxError::from(e),
        };
        if sent.is_some_and(BodyState::failed) {
            // A malformed chunk, or a client gone before its body ended.
            debug!(%method, path, error = %e, "the client's request body failed: 400");
            self.metrics.outcome(Outcome::Rejected);
            return short(StatusCode::BAD_REQUEST, "malformed request body\n");
        }
        if is_connection_limit(&*e) {
            warn!(%method, path, %phase, "every upstream connection stayed busy: 503");
            self.metrics.outcome(Outcome::Overloaded);
            return short(
                StatusCode::SERVICE_UNAVAILABLE,
                "every upstream connection is busy\n",
            );
        }
        let cause = e.source().map(|s| s.to_string()).unwrap_or_default();
        if phase.is_stopping() {
            warn!(%method, path, %phase, error = %e, cause, "upstream failed while draining: 502");
        } else {
            warn!(%method, path, error = %e, cause, "upstream failed: 502");
        }
        self.metrics.outcome(Outcome::UpstreamError);
        short(StatusCode::BAD_GATEWAY, "upstream unavailable\n")
    }
}

/// An HTTP/2 stream's request as the upstream gets it, and what a
/// failure's log line needs.
struct SentHead {
    method: Method,
    path: Option<http::uri::PathAndQuery>,
    /// The HTTP/1.1 head written for the upstream.
    head: Vec<u8>,
    /// The upstream timeout, if the request has one.
    limit: Option<Duration>,
}

/// Why no answer came from the upstream.
#[derive(Debug)]
enum Failure {
    /// The client of the upstream failed (connect, limit, body, reset).
    Upstream(hyper_util::client::legacy::Error),
    /// The engine's upstream side failed (connect, limit, reset).
    Engine(std::io::Error),
    /// No answer within the upstream timeout.
    Timeout(Duration),
}

/// The answer with its hop-by-hop fields gone; the request stays in flight
/// until its body is sent.
fn respond(mut res: Response<Incoming>, in_flight: GaugeGuard) -> Response<ProxyBody> {
    strip_hop_by_hop(res.headers_mut());
    res.map(move |body| {
        let body = body.map_err(BoxError::from).map_frame(move |f| {
            let _ = &in_flight;
            f
        });
        ProxyBody::Boxed(body.boxed_unsync())
    })
}

/// Joins an upgraded client connection to the upgraded upstream one.
async fn splice(
    client: OnUpgrade,
    upstream: OnUpgrade,
    kind: TunnelKind,
    watch: Watch,
    metrics: Arc<Metrics>,
) {
    let label = if kind == TunnelKind::WebSocket {
        Protocol::WebSocket
    } else {
        Protocol::Upgrade
    };
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => return debug!(error = %e, "upgrade did not complete"),
    };
    let _open = metrics.connection(label);
    match tunnel(TokioIo::new(client), TokioIo::new(upstream), watch, kind).await {
        TunnelEnd::Closed => {}
        TunnelEnd::WentAway => {
            metrics.cut(label);
            info!(
                protocol = label.as_str(),
                "deadline: told the client to go away (close 1001)"
            )
        }
        TunnelEnd::Cut => metrics.cut(label),
    }
}

/// A short plain-text answer of the proxy's own.
pub fn short(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(ProxyBody::Boxed(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|e| -> BoxError { match e {} })
            .boxed_unsync(),
    ));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// Whether `e` says the upstream connection closed before any byte of the
/// answer, and a bodiless `method` may then be sent again: hyper's
/// "canceled" is a request never written, its "incomplete message" one
/// written and not answered (only an idempotent method goes again).
fn closed_unanswered(e: &hyper_util::client::legacy::Error, method: &[u8]) -> bool {
    if e.is_connect() {
        return false;
    }
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(h) = cause.downcast_ref::<hyper::Error>() {
            return (h.is_canceled() || h.is_incomplete_message())
                && may_resend(method, false, !h.is_canceled());
        }
        next = cause.source();
    }
    false
}

/// The size of an HTTP/2 stream's future, as [`Forward`] boxes it for
/// every stream (for the test that holds it small, `front::sizes`).
#[cfg(test)]
pub(crate) fn stream_future_size(shared: Arc<Shared>) -> Option<usize> {
    let connector = shared.h1_upstream.clone()?;
    let in_flight = shared.metrics.request(Protocol::Http2);
    let sent = SentHead {
        method: Method::GET,
        path: None,
        head: Vec::new(),
        limit: Some(Duration::from_secs(1)),
    };
    let future = shared.stream_answer(connector, sent, in_flight);
    Some(std::mem::size_of_val(&future))
}
