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
use http::{Method, Response};
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::timeout;
use tracing::debug;

use super::buffers::{write_all, Buffer, SIZE};
use super::chunked::{Decoder, Piece};
use super::exchange::read_response;
use super::heads::{push_field, push_number};
use super::parse::{Framing, ResponseHead};
use crate::dial::may_resend;
use crate::metrics::GaugeGuard;
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

/// Sends the request `parts` (rewritten for the upstream already, with no
/// body) and returns the answer, its body read as it is polled; the
/// answer's hop-by-hop fields are left out. `in_flight` is held until the
/// body was sent.
pub async fn forward(
    connector: &Arc<Connector>,
    parts: &Parts,
    limit: Option<Duration>,
    in_flight: GaugeGuard,
) -> Result<Response<UpstreamBody>, StreamFailure> {
    let head = request_head(parts);
    let is_head = parts.method == Method::HEAD;
    let (mut upstream, _) = checkout(connector, false).await?;
    let mut resent = false;
    loop {
        let mut rbuf = Buffer::empty();
        let mut written = false;
        match round_trip(&upstream, &head, &mut rbuf, is_head, limit, &mut written).await {
            Ok(res) => return answer(res, upstream, rbuf, connector.clone(), in_flight),
            // The connection closed before any byte of the answer (a kept
            // one the app closed just as it was taken, a new one a closing
            // listener reset): sent again, once, on a new connection when
            // RFC 9110 allows (`may_resend`; these requests have no body).
            Err(StreamFailure::Upstream(e))
                if !resent
                    && rbuf.is_empty()
                    && may_resend(parts.method.as_str().as_bytes(), false, written) =>
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

/// The request head as hyper's client writes it: the fields in order, a
/// `Host` from the authority when the client gave none (HTTP/2 clients
/// send `:authority`), `content-length: 0` for the methods that expect a
/// body.
fn request_head(parts: &Parts) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !parts.headers.contains_key(header::HOST) {
        if let Some(authority) = parts.uri.authority() {
            push_field(&mut out, b"host", authority.as_str().as_bytes());
        }
    }
    for (name, value) in &parts.headers {
        push_field(&mut out, name.as_str().as_bytes(), value.as_bytes());
    }
    let expects_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH);
    if expects_body && !parts.headers.contains_key(header::CONTENT_LENGTH) {
        out.extend_from_slice(b"content-length: ");
        push_number(&mut out, 0);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
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
