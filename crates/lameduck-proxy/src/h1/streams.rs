//! HTTP/2 streams (hyper's server) to an HTTP/1.1 app on the engine's own
//! upstream side: the request's head written by the engine on a connection
//! from the thread's pool, the answer's head parsed by it, the body read
//! from the socket as hyper polls for it, and the connection put back when
//! the body ended.
//!
//! Through hyper-util's client every stream cost a client connection of its
//! own (a handshake and a spawned task) on a connection lent from the pool,
//! and got 0.54× HAProxy's requests/s (bench/RESULTS.md). Requests that
//! bring a body, and HTTP/1.x requests hyper serves (an `h2c` upgrade),
//! still go through hyper's client.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::Authority;
use http::{Method, Response};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::timeout;
use tracing::debug;

use super::buffers::{write_all, Buffer, SIZE};
use super::chunked::{Decoder, Piece};
use super::exchange::read_response;
use super::heads::{needs_length, push_field, push_forwarded};
use super::parse::{Framing, ResponseHead};
use super::turn;
use crate::dial::may_resend;
use crate::metrics::GaugeGuard;
use crate::rewrite::{connection_names, is_hop_by_hop, Peer, X_FORWARDED_FOR, X_FORWARDED_PROTO};
use crate::upstream::{Connector, UpstreamConn};

/// Why a stream got no answer from the upstream.
#[derive(Debug)]
pub enum StreamFailure {
    /// No answer within the upstream timeout.
    Timeout(Duration),
    /// The upstream could not be reached, or failed, or answered what
    /// cannot be passed on.
    Upstream(io::Error),
}

/// Sends the request `head` (from [`request_head`]; the request has no
/// body) and returns the answer, its body read as it is polled; the
/// answer's hop-by-hop fields are left out. `in_flight` is held until the
/// body was sent.
pub async fn forward(
    connector: &Arc<Connector>,
    method: &Method,
    head: &[u8],
    limit: Option<Duration>,
    in_flight: GaugeGuard,
) -> Result<Response<UpstreamBody>, StreamFailure> {
    let is_head = method == Method::HEAD;
    let (mut upstream, _) = checkout(connector, false).await?;
    let mut resent = false;
    loop {
        let mut rbuf = Buffer::empty();
        let mut written = false;
        match round_trip(&upstream, head, &mut rbuf, is_head, limit, &mut written).await {
            Ok(res) => return answer(res, upstream, rbuf, connector.clone(), in_flight),
            // The connection closed before any byte of the answer (a kept
            // one the app closed just as it was taken, a new one a closing
            // listener reset): sent again, once, on a new connection when
            // RFC 9110 allows (`may_resend`; these requests have no body).
            Err(StreamFailure::Upstream(e))
                if !resent
                    && rbuf.is_empty()
                    && may_resend(method.as_str().as_bytes(), false, written) =>
            {
                debug!(error = %e, "the upstream connection closed before answering: sending again on a new one");
                resent = true;
                (upstream, _) = checkout(connector, true).await?;
            }
            Err(failure) => return Err(failure),
        }
    }
}

/// A connection for the stream: a kept one unless `fresh`.
async fn checkout(
    connector: &Connector,
    fresh: bool,
) -> Result<(UpstreamConn, bool), StreamFailure> {
    connector
        .checkout(fresh)
        .await
        .map_err(StreamFailure::Upstream)
}

/// The head out, the answer's head in, within the upstream timeout.
async fn round_trip(
    upstream: &UpstreamConn,
    head: &[u8],
    rbuf: &mut Buffer,
    is_head: bool,
    limit: Option<Duration>,
    written: &mut bool,
) -> Result<ResponseHead, StreamFailure> {
    let up = upstream.stream();
    // With the other requests of this turn (`turn`).
    turn::next_turn().await;
    write_all(up, &mut [IoSlice::new(head)])
        .await
        .map_err(StreamFailure::Upstream)?;
    *written = true;
    let answer = read_response(up, rbuf, 64 * 1024, is_head);
    let res = match limit {
        Some(limit) => timeout(limit, answer)
            .await
            .map_err(|_| StreamFailure::Timeout(limit))?,
        None => answer.await,
    };
    let res = res.map_err(StreamFailure::Upstream)?;
    if res.status == 101 {
        // Nothing asked for an upgrade: hyper's client fails the same way.
        return Err(StreamFailure::Upstream(io::Error::new(
            io::ErrorKind::InvalidData,
            "upstream switched protocols unasked",
        )));
    }
    Ok(res)
}

/// The request head the HTTP/1.1 app gets for the HTTP/2 request `parts`
/// from `peer`, written straight from the request as HTTP/2 brought it:
/// what [`to_upstream`](crate::rewrite::to_upstream) and hyper's client
/// would send, without rebuilding the request's URI and fields first.
/// The fields in order, less the hop-by-hop ones and `Expect`; a `Host`
/// from the authority when the client gave none (HTTP/2 clients send
/// `:authority`); `X-Forwarded-For` and `-Proto` last; `content-length: 0`
/// for the methods that expect a body. Refused (400) as `to_upstream`
/// refuses: two `Host` fields, or a bad one when there is no `:authority`.
pub fn request_head(
    parts: &Parts,
    peer: &Peer,
    default_authority: &Authority,
) -> Result<Vec<u8>, &'static str> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err("more than one Host header\n");
    }
    if let (None, Some(host)) = (parts.uri.authority(), host) {
        Authority::try_from(host.as_bytes()).map_err(|_| "bad Host header\n")?;
    }
    // HTTP/2 forbids `Connection` (RFC 9113 §8.2.2): this is nearly always
    // empty, and then costs nothing.
    let named = connection_names(&parts.headers);
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if host.is_none() {
        let authority = parts.uri.authority().unwrap_or(default_authority);
        push_field(&mut out, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in &parts.headers {
        let dropped = is_hop_by_hop(name)
            || name == header::EXPECT
            || name == X_FORWARDED_FOR
            || name == X_FORWARDED_PROTO
            || named.contains(name);
        if !dropped {
            push_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let prior = parts
        .headers
        .get(X_FORWARDED_FOR)
        .filter(|v| v.to_str().is_ok())
        .map(HeaderValue::as_bytes);
    push_forwarded(&mut out, prior, |out| {
        out.extend_from_slice(peer.ip.as_bytes())
    });
    if needs_length(parts.method.as_str().as_bytes())
        && !parts.headers.contains_key(header::CONTENT_LENGTH)
    {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// The answer for hyper's server: the fields that are not hop-by-hop, the
/// stated length, the body still on the connection.
fn answer(
    res: ResponseHead,
    upstream: UpstreamConn,
    mut rbuf: Buffer,
    connector: Arc<Connector>,
    in_flight: GaugeGuard,
) -> Result<Response<UpstreamBody>, StreamFailure> {
    let invalid = |_| {
        StreamFailure::Upstream(io::Error::new(
            io::ErrorKind::InvalidData,
            "a response header HTTP/2 cannot carry",
        ))
    };
    let mut builder = Response::builder().status(res.status);
    let headers = builder.headers_mut().ok_or_else(|| invalid(()))?;
    headers.reserve(res.fields.len() + 1);
    // One copy of the head that every value shares, not one per value.
    let head = Bytes::copy_from_slice(&rbuf.bytes()[..res.len]);
    for f in res.fields.iter().filter(|f| !f.hop) {
        let name = HeaderName::from_bytes(&head[f.name.clone()]).map_err(|_| invalid(()))?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(f.value.clone())).map_err(|_| invalid(()))?;
        headers.append(name, value);
    }
    if let Some(length) = res.length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    rbuf.consume(res.len);
    let state = match res.body {
        Framing::Length(n) => State::Length(n),
        Framing::Chunked => State::Chunked(Decoder::default()),
        Framing::UntilClose => State::UntilClose,
    };
    let body = UpstreamBody {
        conn: Some(upstream),
        buf: rbuf,
        state,
        reuse: res.keep_alive,
        connector,
        _in_flight: in_flight,
    };
    builder.body(body).map_err(|_| invalid(()))
}

/// Where the answer's body is.
#[derive(Debug)]
enum State {
    /// So many bytes are left.
    Length(u64),
    /// Chunked, being decoded (trailers are not passed on).
    Chunked(Decoder),
    /// Until the upstream closes.
    UntilClose,
    /// Ended.
    Done,
}

/// The body of an answer, read from the upstream connection as it is
/// polled; the connection goes back to the pool once the body ended, or
/// is closed if it is dropped before (the client reset its stream).
#[derive(Debug)]
pub struct UpstreamBody {
    conn: Option<UpstreamConn>,
    buf: Buffer,
    state: State,
    reuse: bool,
    /// Where the connection goes back to once the body ended (one
    /// reference count per stream, not one per field of the connector).
    connector: Arc<Connector>,
    /// The request stays in flight until its answer's body was sent.
    _in_flight: GaugeGuard,
}

impl UpstreamBody {
    fn finish(&mut self) {
        self.state = State::Done;
        let conn = self.conn.take();
        if let Some(conn) = conn.filter(|_| self.reuse && self.buf.is_empty()) {
            self.connector.checkin(conn);
        }
        self.buf.release_if_empty();
    }

    /// Reads what the upstream has into the buffer: `Ok(0)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(conn) = &self.conn else {
            return Poll::Ready(Ok(0));
        };
        loop {
            ready!(conn.stream().poll_read_ready(cx))?;
            match self.buf.read_from(conn.stream(), SIZE) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    /// Takes `n` buffered bytes as a frame.
    fn data(&mut self, n: usize) -> Frame<Bytes> {
        let frame = Frame::data(Bytes::copy_from_slice(&self.buf.bytes()[..n]));
        self.buf.consume(n);
        frame
    }
}

fn ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the upstream closed before the body ended",
    )
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            let buffered = this.buf.bytes().len();
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(0) => this.finish(),
                State::Length(left) if buffered > 0 => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(buffered);
                    *left -= n as u64;
                    return Poll::Ready(Some(Ok(this.data(n))));
                }
                State::UntilClose if buffered > 0 => {
                    return Poll::Ready(Some(Ok(this.data(buffered))));
                }
                State::Chunked(decoder) if buffered > 0 => match decoder.next(this.buf.bytes())? {
                    Piece::Data(n) => return Poll::Ready(Some(Ok(this.data(n)))),
                    Piece::Framing(0) => {}
                    Piece::Framing(n) => {
                        this.buf.consume(n);
                        continue;
                    }
                    Piece::End(n) => {
                        this.buf.consume(n);
                        this.finish();
                        continue;
                    }
                },
                _ => {}
            }
            if matches!(this.state, State::Done) {
                continue;
            }
            // Nothing (usable) buffered: read more.
            if ready!(this.poll_fill(cx))? == 0 {
                if matches!(this.state, State::UntilClose) {
                    this.reuse = false;
                    this.finish();
                    continue;
                }
                this.conn = None;
                return Poll::Ready(Some(Err(ended_early().into())));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if matches!(self.state, State::Length(0)) {
            self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, Version};

    use super::*;

    fn head(req: http::request::Builder) -> Result<String, &'static str> {
        let (parts, ()) = req
            .version(Version::HTTP_2)
            .body(())
            .expect("request")
            .into_parts();
        let peer = Peer::new([10, 0, 0, 9].into());
        let out = request_head(&parts, &peer, &Authority::from_static("app:80"))?;
        Ok(String::from_utf8(out).expect("ascii"))
    }

    #[test]
    fn the_authority_becomes_host_and_the_forwarded_fields_come_last() {
        let got = head(
            Request::get("http://example.test/a?b=1")
                .header("accept", "*/*")
                .header("x-forwarded-for", "192.0.2.1")
                .header("x-forwarded-proto", "https")
                .header("te", "trailers")
                .header("expect", "100-continue"),
        );
        assert_eq!(
            got.as_deref(),
            Ok(
                "GET /a?b=1 HTTP/1.1\r\nhost: example.test\r\naccept: */*\r\n\
                x-forwarded-for: 192.0.2.1, 10.0.0.9\r\nx-forwarded-proto: http\r\n\r\n"
            )
        );
    }

    #[test]
    fn a_host_field_is_kept_and_a_body_method_states_its_length() {
        let got = head(Request::post("/").header("host", "h.test:8080"));
        assert_eq!(
            got.as_deref(),
            Ok(
                "POST / HTTP/1.1\r\nhost: h.test:8080\r\nx-forwarded-for: 10.0.0.9\r\n\
                x-forwarded-proto: http\r\ncontent-length: 0\r\n\r\n"
            )
        );
        let got = head(Request::get("/"));
        assert!(got.is_ok_and(|h| h.starts_with("GET / HTTP/1.1\r\nhost: app:80\r\n")));
    }

    #[test]
    fn two_hosts_or_a_bad_one_are_refused_as_hypers_path_refuses_them() {
        let two = Request::get("/").header("host", "a").header("host", "b");
        assert_eq!(head(two), Err("more than one Host header\n"));
        let bad = Request::get("/").header("host", "a b");
        assert_eq!(head(bad), Err("bad Host header\n"));
    }
}
