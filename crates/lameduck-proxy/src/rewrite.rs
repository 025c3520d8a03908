//! What the upstream is told: the request rewritten the way a reverse proxy
//! must (RFC 9110 §7.6), and what is refused instead of passed on.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Uri, Version};
use lameduck::TunnelKind;

use crate::config::UpstreamProtocol;

/// The client of one connection, as the upstream is told of it.
#[derive(Debug)]
pub struct Peer {
    /// Its address, for logs and `X-Forwarded-For`.
    pub ip: String,
    /// `X-Forwarded-For` when the request brings none: made once.
    forwarded_for: HeaderValue,
}

impl Peer {
    /// The client at `ip`.
    pub fn new(ip: std::net::IpAddr) -> Self {
        let ip = ip.to_string();
        let forwarded_for =
            HeaderValue::try_from(ip.as_str()).unwrap_or(HeaderValue::from_static("unknown"));
        Peer { ip, forwarded_for }
    }
}

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

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

/// `req` as the upstream gets it, or why it is refused (a 400).
pub fn to_upstream<B>(
    req: Request<B>,
    peer: &Peer,
    upgrade: Option<&TunnelKind>,
    protocol: UpstreamProtocol,
    default_authority: &Authority,
) -> Result<Request<B>, &'static str> {
    let (mut parts, body) = req.into_parts();
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next().cloned();
    if hosts.next().is_some() {
        // Which one the app would read is anyone's guess: request
        // smuggling's raw material (RFC 9112 §3.2; HAProxy answers 400).
        return Err("more than one Host header\n");
    }
    let upgrade_value = parts.headers.get(header::UPGRADE).cloned();
    let authority = match parts.uri.authority() {
        Some(a) => a.clone(),
        None => match host {
            Some(host) => Authority::try_from(host.as_bytes()).map_err(|_| "bad Host header\n")?,
            None if parts.version == Version::HTTP_11 => {
                return Err("HTTP/1.1 request without Host\n")
            }
            None => default_authority.clone(),
        },
    };
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|_| "bad request target\n")?;
    let keep_te_trailers = protocol == UpstreamProtocol::Http2
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
    match protocol {
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
    // The scheme the client used with us, never the one it claims: an app
    // that trusts `https` here would think a cleartext request secure.
    parts
        .headers
        .insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    Ok(Request::from_parts(parts, body))
}

/// The kind of tunnel an HTTP/1.1 upgrade request asks for; `h2c` is not
/// one (it is answered as plain HTTP/1.1, which RFC 9113 allows).
pub fn upgrade_protocol<B>(req: &Request<B>) -> Option<TunnelKind> {
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

/// Whether the request is gRPC, by its content type.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Removes the hop-by-hop headers and those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_names(headers).iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// The fields the `Connection` header names: hop-by-hop too.
pub fn connection_names(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::try_from(t.trim()).ok())
        .collect()
}

/// Whether `name` is one of the hop-by-hop fields every proxy drops.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(req: Request<()>) -> Result<Request<()>, &'static str> {
        to_upstream(
            req,
            &Peer::new([10, 0, 0, 9].into()),
            None,
            UpstreamProtocol::Http1,
            &Authority::from_static("app:80"),
        )
    }

    #[test]
    fn two_host_headers_are_refused() {
        let req = Request::get("/")
            .header("host", "a")
            .header("host", "b")
            .body(())
            .expect("request");
        assert_eq!(rewrite(req).err(), Some("more than one Host header\n"));
    }

    #[test]
    fn the_clients_forwarded_proto_is_replaced() {
        let req = Request::get("/")
            .header("host", "a")
            .header("x-forwarded-proto", "https")
            .body(())
            .expect("request");
        let up = rewrite(req).expect("forwarded");
        let protos: Vec<_> = up.headers().get_all(X_FORWARDED_PROTO).iter().collect();
        assert_eq!(protos, ["http"]);
        assert_eq!(up.headers()[X_FORWARDED_FOR], "10.0.0.9");
    }
}
