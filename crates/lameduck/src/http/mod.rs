//! Serving HTTP/1.1 and HTTP/2 (cleartext) through the drain sequence.
//!
//! Once draining, HTTP/1.1 answers carry `Connection: close` and a
//! connection busy with a request closes after it; idle keep-alive
//! connections are closed between requests when the listeners close, never
//! in the middle of one. HTTP/2 connections get GOAWAY the graceful way (a
//! first GOAWAY that still allows new streams, the final one after a ping's
//! round trip, as h2 does it), so clients move to other pods without losing
//! a stream. At the drain's deadline what is still open is cut. Cleartext
//! HTTP/2 is taken both with prior knowledge and by `Upgrade: h2c`.
//! Optionally, each connection is told to move the same way once it reached
//! an age ([`HttpServer::max_connection_age`]), so long-lived clients spread
//! over new pods after a scale-up.

mod age;
mod h2;
mod h2c;
mod listener;
mod tracked;

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use lameduck_core::Phase;
use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::net::TcpStream;
use tokio::time::{sleep, Instant};
use tracing::debug;

use crate::drain::{PhaseView, Watch};
use age::{next_event, AgeEvent, AgeTimer};
pub use listener::{readiness, serve};
pub use tracked::TrackedBody;
use tracked::{ConnState, Tracked, WriteWatched};

/// The longest timeout taken as given. hyper adds its header read timeout
/// to the clock unchecked, so a larger one (a user's "forever") would panic
/// on every connection; a century is as good as forever for a process.
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long an HTTP/1.1 connection past its
/// [`HttpServer::max_connection_age`] may stay idle before it is closed.
/// Closing an idle connection races with a request its client may be
/// sending at that moment, which would meet a closed socket (RFC 9112
/// §9.6). A client sending requests one after another never leaves its
/// connection idle this long, so it gets `Connection: close` on an answer
/// instead (HAProxy's `idle-close-on-response` waits for the same reason);
/// a connection that is really idle still goes soon.
pub const IDLE_AFTER_AGE: Duration = Duration::from_secs(1);

/// The HTTP/2 connection preface a client with prior knowledge starts with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which HTTP a client speaks on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
    /// HTTP/2 over cleartext, with prior knowledge.
    Http2,
}

impl Protocol {
    /// `http1` or `http2`, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::Http2 => "http2",
        }
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEnd {
    /// Closed by either side, or after a graceful shutdown, or handed over
    /// to an upgrade.
    Closed,
    /// Cut at the drain's deadline with work still under way.
    Cut,
    /// A request could not be taken: answered with this status (400 for a
    /// malformed head, 431 for one too large) and closed.
    BadRequest(StatusCode),
}

/// Limits and timeouts of the HTTP server side.
#[derive(Clone, Debug)]
pub struct HttpServer {
    /// How long a client may take to send a request's head (and the first
    /// bytes of a connection).
    pub header_read_timeout: Duration,
    /// How long a connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// The largest number of header fields in a request (HTTP/1.1).
    pub max_headers: usize,
    /// The largest request head, in bytes (HTTP/1.1 request line and
    /// headers, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// The most streams an HTTP/2 client may have open at once on one
    /// connection, advertised in SETTINGS: each may hold an upstream
    /// connection.
    pub max_concurrent_streams: u32,
    /// Renew each connection after this long, as gRPC's MaxConnectionAge
    /// does (gRFC A9): an HTTP/1.1 connection's next answer carries
    /// `Connection: close` (one idle for [`IDLE_AFTER_AGE`] is closed), an
    /// HTTP/2 connection gets the graceful GOAWAY and its streams finish.
    /// Each connection's age is drawn within ±10% of this, so connections
    /// opened together do not all renew at once. Clients holding
    /// connections for long (gRPC, HTTP/2, keep-alive pools) otherwise stay
    /// on the pods they first reached after a scale-up. `None` (the
    /// default): kept for their life, with no timer. A zero age renews
    /// after every answer; the CLI asks for at least a second, as
    /// grpc-java does.
    pub max_connection_age: Option<Duration>,
    /// After [`HttpServer::max_connection_age`], how long requests still in
    /// flight may take before the connection is closed anyway (gRPC's
    /// MaxConnectionAgeGrace): a stream that never ends would otherwise
    /// hold its client on this pod. `None` (the default): they finish,
    /// however long they take (within the drain's deadline).
    pub max_connection_age_grace: Option<Duration>,
}

impl Default for HttpServer {
    /// The limits users of Envoy and nginx expect: 60 KiB and 100 fields of
    /// headers, 30s to send a head, 5 minutes of idle keep-alive, 100
    /// concurrent HTTP/2 streams (Envoy's recommendation for an edge).
    fn default() -> Self {
        HttpServer {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_headers: 100,
            max_header_bytes: 60 * 1024,
            max_concurrent_streams: 100,
            max_connection_age: None,
            max_connection_age_grace: None,
        }
    }
}

/// The bounds a service must meet to be served.
pub trait HttpService<B>:
    Service<
        Request<Incoming>,
        Response = Response<B>,
        Future: Send + 'static,
        Error: Into<Box<dyn StdError + Send + Sync>>,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: Service<
            Request<Incoming>,
            Response = Response<B>,
            Future: Send + 'static,
            Error: Into<Box<dyn StdError + Send + Sync>>,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

// === impl HttpServer ===

impl HttpServer {
    /// Tells HTTP/2 with prior knowledge from HTTP/1 by the first bytes,
    /// without reading them. `None` when the client closed before sending,
    /// or had not sent its first bytes when the listeners closed: a
    /// connection without a request holds nothing in flight, and is closed
    /// like an idle keep-alive connection (nginx does the same).
    pub async fn detect(&self, stream: &TcpStream, watch: &Watch) -> io::Result<Option<Protocol>> {
        let peek = async {
            let mut buf = [0u8; 24];
            let mut ended = false;
            loop {
                let n = stream.peek(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                if buf[..n] != H2_PREFACE[..n] {
                    return Ok(Some(Protocol::Http1));
                }
                if n == H2_PREFACE.len() {
                    return Ok(Some(Protocol::Http2));
                }
                if ended {
                    // Part of the preface, then the client's end: not
                    // HTTP/2. The HTTP/1 server takes what came.
                    return Ok(Some(Protocol::Http1));
                }
                ended = more_or_end(stream).await?;
            }
        };
        let mut closing = watch.clone();
        let peek_until_closing = async {
            tokio::select! {
                // Bytes already there are taken even at `Closing`.
                biased;
                protocol = peek => protocol,
                () = closing.reached(Phase::Closing) => Ok(None),
            }
        };
        tokio::time::timeout(self.header_read_timeout, peek_until_closing)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header read timeout",
                )
            })?
    }

    /// Serves one connection with `service` in the protocol `detect` found,
    /// following the drain of `watch`.
    pub async fn serve<S, B>(
        &self,
        stream: TcpStream,
        protocol: Protocol,
        service: S,
        watch: Watch,
    ) -> ConnEnd
    where
        S: HttpService<B>,
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let _ = stream.set_nodelay(true);
        match protocol {
            Protocol::Http1 => {
                self.serve_http1(stream, service, watch, self.age_deadline())
                    .await
            }
            Protocol::Http2 => {
                self.serve_http2(stream, service, watch, self.age_deadline())
                    .await
            }
        }
    }

    /// `Ok` when the connection has been idle for the idle timeout, else
    /// when to look again. Idle time is read lazily: requests never wake
    /// the connection's task for it.
    fn idle_check(&self, state: &ConnState, aged: bool) -> Result<(), Instant> {
        let idle_timeout = match aged {
            true => self.idle_timeout.min(IDLE_AFTER_AGE),
            false => self.idle_timeout.min(LONGEST),
        };
        let idle_until = state.idle_since() + idle_timeout;
        let now = Instant::now();
        if state.in_flight() == 0 && now >= idle_until {
            Ok(())
        } else {
            Err(idle_until.max(now + idle_timeout / 2))
        }
    }

    /// Serves an HTTP/1.1 connection of which `read` was already read from
    /// `stream` by another HTTP/1.1 reader (the drain proxy's engine hands
    /// an `Upgrade: h2c` request over this way): hyper reads `read` first.
    ///
    /// `age` is when the connection reaches its max age, drawn by
    /// [`HttpServer::age_deadline`] when it was accepted: handing it over
    /// does not make it younger.
    pub async fn serve_http1_after<S, B>(
        &self,
        stream: TcpStream,
        read: bytes::Bytes,
        service: S,
        watch: Watch,
        age: Option<Instant>,
    ) -> ConnEnd
    where
        S: HttpService<B>,
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let _ = stream.set_nodelay(true);
        let io = h2c::Prefixed {
            prefix: read,
            io: stream,
        };
        self.serve_http1(io, service, watch, age).await
    }

    /// Serves one HTTP/1.1 connection that reaches its max age at `age`.
    async fn serve_http1<I, S, B>(
        &self,
        stream: I,
        service: S,
        watch: Watch,
        age: Option<Instant>,
    ) -> ConnEnd
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: HttpService<B>,
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let state = Arc::new(ConnState::new());
        let service = Tracked {
            inner: service,
            state: state.clone(),
            view: watch.phase_view(),
            h2c: Some(Arc::new(self.clone())),
            max_head: Some(self.max_header_bytes),
            age,
        };
        let stream = WriteWatched {
            io: stream,
            state: state.clone(),
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout.min(LONGEST))
            .max_buf_size(self.max_header_bytes.max(8192))
            .max_headers(self.max_headers);
        let mut conn = pin!(builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades());
        // Built once and kept across turns: `conn` wakes this task several
        // times per request, and re-arming a timer or a watch each time costs.
        let mut seen = Phase::Serving;
        // Phase changes are followed through a view that is not counted
        // as open work: `watch` alone stands for this connection.
        let view = watch.phase_view();
        let mut phase_change = Box::pin(next_phase(view.clone(), seen));
        let mut idle = pin!(sleep(self.idle_timeout));
        let mut shutting_down = false;
        // From `Closing` on, the connection ends as soon as it has no
        // request in flight and nothing left to write, even with part of a
        // request head read (a slowloris would otherwise hold the drain).
        let mut close_when_idle = false;
        let mut age_timer = age.map(|at| AgeTimer::new(at, self.max_connection_age_grace));
        let mut aged = false;
        loop {
            tokio::select! {
                biased;
                r = until(conn.as_mut(), || close_when_idle && state.is_idle()) => return match r {
                    Some(r) => ended(r, &state),
                    None => {
                        debug!("closing a connection without a request in flight");
                        ConnEnd::Closed
                    }
                },
                now = &mut phase_change => {
                    seen = now;
                    phase_change = Box::pin(next_phase(view.clone(), seen));
                    match seen {
                        // The next answer says `Connection: close` and the
                        // connection ends after it. Turning keep-alive off
                        // here instead would close the connection after an
                        // answer whose head, already sent, promised to keep
                        // it: the client's next request would meet a closed
                        // socket (found by `lameduck check`).
                        Phase::Serving | Phase::Draining => continue,
                        // Listeners closed: idle connections go now. Take
                        // in any request that reached the socket first:
                        // shutting down an idle connection stops its reads.
                        Phase::Closing => {
                            close_when_idle = true;
                            tokio::select! { biased; r = conn.as_mut() => return ended(r, &state), _ = std::future::ready(()) => {} }
                        }
                        Phase::Stopping | Phase::Exited => return ConnEnd::Cut,
                    }
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = &mut idle, if !shutting_down => match self.idle_check(&state, aged) {
                    Ok(()) => {
                        debug!(aged, "closing an idle connection");
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Err(next) => idle.as_mut().reset(next),
                },
                // Past its age, the connection's next answer says
                // `Connection: close` (`Tracked` reads the age when the
                // answer is ready), and a connection idle for
                // `IDLE_AFTER_AGE` is closed between requests.
                event = next_event(&mut age_timer) => match event {
                    AgeEvent::Reached => {
                        debug!("connection reached its max age: closing after its answer");
                        aged = true;
                        idle.as_mut().reset(Instant::now());
                    }
                    AgeEvent::GraceOver => {
                        debug!("connection past its max age and grace: closed with a request in flight");
                        return ConnEnd::Closed;
                    }
                },
            }
        }
    }
}

/// Polls `conn` to its end, or resolves with `None` as soon as a poll
/// leaves it pending with `may_close` true (read after the poll, so what
/// reached the socket is taken in first).
fn until<'a, C>(
    mut conn: Pin<&'a mut C>,
    may_close: impl Fn() -> bool + 'a,
) -> impl Future<Output = Option<Result<(), hyper::Error>>> + 'a
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    std::future::poll_fn(move |cx| match conn.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(Some(r)),
        Poll::Pending if may_close() => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
}

/// Resolves with the phase once the drain moved past `seen`.
async fn next_phase(view: PhaseView, seen: Phase) -> Phase {
    view.next_after(seen).await
}

/// How a connection ended, from hyper's result and what it served.
fn ended(result: Result<(), hyper::Error>, state: &ConnState) -> ConnEnd {
    if let Some(status) = state.rejected() {
        return ConnEnd::BadRequest(status);
    }
    match result {
        Ok(()) => ConnEnd::Closed,
        Err(e) => {
            debug!(error = %e, "connection ended with an error");
            // hyper answered a head it could not parse before ending.
            if e.is_parse_too_large() {
                ConnEnd::BadRequest(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            } else if e.is_parse() {
                ConnEnd::BadRequest(StatusCode::BAD_REQUEST)
            } else {
                ConnEnd::Closed
            }
        }
    }
}

/// Waits until bytes come after those already peeked, or the client ends
/// its side (`true`). A peek sees the same bytes again at once, so it
/// cannot wait for more itself, and pausing between peeks wakes the
/// runtime for a client that sent part of the preface and stopped.
///
/// The socket's readiness is cleared by hand although the peeked bytes
/// are still unread (tokio warns that a reader would then wait for an
/// event that never comes): this returns only after a new event set it
/// again, so whoever reads next finds the socket readable. The event is
/// new bytes or the end; the end's flag survives the clearing, so an end
/// that came before is seen at once.
async fn more_or_end(stream: &TcpStream) -> io::Result<bool> {
    let _ = stream.try_io(Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
    let ready = stream.ready(Interest::READABLE).await?;
    Ok(ready.is_read_closed())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use hyper::service::service_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::drain::Drain;

    /// Timeouts meant as "forever" neither panic nor stop the serving.
    #[tokio::test]
    async fn timeouts_too_long_for_the_clock_serve_as_forever() {
        let server = HttpServer {
            header_read_timeout: Duration::MAX,
            idle_timeout: Duration::MAX,
            ..HttpServer::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let drain = Drain::new();
        let hello =
            service_fn(|_req| async { Ok::<_, Infallible>(Response::new(String::from("hi"))) });
        tokio::spawn(async move { server.serve_listener(listener, drain, hello).await });
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
