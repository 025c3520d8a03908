//! The HTTP forwarding service: each client request goes to the upstream
//! with its body streamed both ways; `Upgrade` becomes a tunnel.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use lameduck::{tunnel, Drain, TunnelEnd, TunnelKind};
use tracing::{debug, info, warn};

use crate::config::UpstreamProtocol;
use crate::metrics::{Metrics, Outcome, Protocol};
use crate::upstream::UpstreamClient;

/// The body of every answer the proxy gives.
pub type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Forwards requests of one client connection to the upstream.
#[derive(Clone, Debug)]
pub struct Forward {
    shared: Arc<Shared>,
    peer: Arc<Peer>,
}

/// The client of one connection, as the upstream is told of it.
#[derive(Debug)]
struct Peer {
    ip: String,
    /// `X-Forwarded-For` when the request brings none: made once.
    forwarded_for: HeaderValue,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What every connection's [`Forward`] shares.
#[derive(Debug)]
pub struct Shared {
    /// The pooled upstream client.
    pub client: UpstreamClient,
    /// The HTTP spoken to the upstream.
    pub protocol: UpstreamProtocol,
    /// `host:port` of the upstream, the authority when a request has none.
    pub upstream: Authority,
    /// The drain, for the phase in logs and for tunnels' watches.
    pub drain: Drain,
    /// Where requests are counted.
    pub metrics: Arc<Metrics>,
}

/// Headers that belong to one connection and are never forwarded (RFC 9110
/// §7.6.1), besides those the `Connection` header names.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

// === impl Forward ===

impl Forward {
    /// The service for one connection from `peer`.
    pub fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        let ip = peer.ip().to_string();
        let forwarded_for =
            HeaderValue::try_from(ip.as_str()).unwrap_or(HeaderValue::from_static("unknown"));
        Forward {
            shared,
            peer: Arc::new(Peer { ip, forwarded_for }),
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
        Box::pin(async move { Ok(shared.forward(req, &peer).await) })
    }
}

// === impl Shared ===

impl Shared {
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
        let req = match self.to_upstream(req, peer, upgrade.as_ref()) {
            Ok(req) => req,
            Err(why) => {
                self.metrics.outcome(Outcome::Rejected);
                return short(StatusCode::BAD_REQUEST, why);
            }
        };
        let mut res = match self.client.request(req).await {
            Ok(res) => res,
            Err(e) => {
                let phase = self.drain.phase();
                let cause = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                if phase.is_stopping() {
                    warn!(%method, path = uri.path(), %phase, error = %e, cause, "upstream failed while draining: 502");
                } else {
                    warn!(%method, path = uri.path(), error = %e, cause, "upstream failed: 502");
                }
                self.metrics.outcome(Outcome::UpstreamError);
                return short(StatusCode::BAD_GATEWAY, "upstream unavailable\n");
            }
        };
        self.metrics.outcome(match res.status().as_u16() {
            ..=399 => Outcome::Success,
            400..=499 => Outcome::ClientError,
            _ => Outcome::ServerError,
        });
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let (Some(kind), Some(client_upgrade)) = (upgrade, client_upgrade) {
                let upstream_upgrade = hyper::upgrade::on(&mut res);
                let watch = self.drain.watch();
                let metrics = self.metrics.clone();
                let label = if kind == TunnelKind::WebSocket {
                    Protocol::WebSocket
                } else {
                    Protocol::Upgrade
                };
                tokio::spawn(async move {
                    let (client, upstream) =
                        match tokio::try_join!(client_upgrade, upstream_upgrade) {
                            Ok(both) => both,
                            Err(e) => return debug!(error = %e, "upgrade did not complete"),
                        };
                    let _open = metrics.connection(label);
                    let end =
                        tunnel(TokioIo::new(client), TokioIo::new(upstream), watch, kind).await;
                    match end {
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
                });
                // The 101 goes back with its Upgrade and Connection intact.
                return res.map(|b| b.boxed_unsync());
            }
        }
        strip_hop_by_hop(res.headers_mut());
        res.map(move |body| {
            // The request stays in flight until its body is sent.
            body.map_frame(move |f| {
                let _ = &in_flight;
                f
            })
            .boxed_unsync()
        })
    }

    /// The request as the upstream gets it.
    fn to_upstream(
        &self,
        req: Request<Incoming>,
        peer: &Peer,
        upgrade: Option<&TunnelKind>,
    ) -> Result<Request<Incoming>, &'static str> {
        let (mut parts, body) = req.into_parts();
        let upgrade_value = parts.headers.get(header::UPGRADE).cloned();
        let authority = match parts.uri.authority() {
            Some(a) => a.clone(),
            None => match parts.headers.get(header::HOST) {
                Some(host) => {
                    Authority::try_from(host.as_bytes()).map_err(|_| "bad Host header\n")?
                }
                None if parts.version == Version::HTTP_11 => {
                    return Err("HTTP/1.1 request without Host\n")
                }
                None => self.upstream.clone(),
            },
        };
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        parts.uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|_| "bad request target\n")?;
        let keep_te_trailers = self.protocol == UpstreamProtocol::Http2
            && parts
                .headers
                .get(header::TE)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        strip_hop_by_hop(&mut parts.headers);
        // We answer `Expect: 100-continue` ourselves when we read the body.
        parts.headers.remove(header::EXPECT);
        if keep_te_trailers {
            parts
                .headers
                .insert(header::TE, HeaderValue::from_static("trailers"));
        }
        match self.protocol {
            UpstreamProtocol::Http1 => parts.version = Version::HTTP_11,
            UpstreamProtocol::Http2 => {
                parts.version = Version::HTTP_2;
                parts.headers.remove(header::HOST);
            }
        }
        if let (Some(_), Some(value)) = (upgrade, upgrade_value) {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, value);
        }
        let forwarded_for = match parts
            .headers
            .get(&X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
        {
            Some(prior) => HeaderValue::try_from(format!("{prior}, {}", peer.ip)).ok(),
            None => Some(peer.forwarded_for.clone()),
        };
        if let Some(v) = forwarded_for {
            parts.headers.insert(X_FORWARDED_FOR, v);
        }
        parts
            .headers
            .entry(X_FORWARDED_PROTO)
            .or_insert(HeaderValue::from_static("http"));
        Ok(Request::from_parts(parts, body))
    }
}

/// The kind of tunnel an HTTP/1.1 upgrade request asks for; `h2c` is not
/// one (it is answered as plain HTTP/1.1, which RFC 9113 allows).
fn upgrade_protocol<B>(req: &Request<B>) -> Option<TunnelKind> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    let upgrade = req.headers().get(header::UPGRADE)?.to_str().ok()?.trim();
    if !connection_upgrade || upgrade.eq_ignore_ascii_case("h2c") {
        return None;
    }
    if upgrade
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case("websocket"))
    {
        Some(TunnelKind::WebSocket)
    } else {
        Some(TunnelKind::Opaque)
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::try_from(t.trim()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// A short plain-text answer of the proxy's own.
pub fn short(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut res = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}
