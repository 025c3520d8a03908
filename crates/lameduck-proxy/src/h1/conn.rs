//! One client connection: requests read one after another, each forwarded
//! from this task, following the drain: `Connection: close` on answers
//! from Draining on, idle connections (and those that have not sent a
//! whole head) closed at Closing, what is still busy cut at the deadline.
//! Past its age (`--max-connection-age`) a connection is told to move the
//! same way: its next answer says `Connection: close`, and it is closed
//! if idle.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;

use http::StatusCode;
use lameduck::http::{ConnEnd, IDLE_AFTER_AGE};
use lameduck::{tunnel, TunnelEnd, TunnelKind, Watch};
use lameduck_core::duration::deadline_after;
use lameduck_core::Phase;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{sleep_until, Instant, Sleep};
use tracing::{debug, info};

use super::buffers::{write_all, Buffer};
use super::exchange::{exchange, After};
use super::heads;
use super::parse::{head_end, parse_request, Refusal, RequestHead};
use super::wake::Wakeup;
use super::Engine;
use crate::forward::Forward;
use crate::metrics::{GaugeGuard, Protocol};
use crate::upstream::UpstreamConn;

/// What waiting for a request head came to.
enum Next {
    Head(RequestHead),
    Refused(Refusal),
    /// Closed by the client, idle too long, too slow, or at Closing.
    Closed,
}

/// Serves one HTTP/1.1 connection from `peer` until it closes.
///
/// The task of an idle keep-alive connection is this future waiting in
/// `next_head`: everything a request needs beyond the head is in the boxed
/// `request`, so that what every idle connection holds stays small. (An
/// `async` block rather than an `async fn`: the arguments of an `async fn`
/// are copied into its state a second time.)
pub fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    watch: Watch,
    engine: Arc<Engine>,
) -> impl Future<Output = ConnEnd> + Send {
    let _ = stream.set_nodelay(true);
    let open = engine.metrics.connection(Protocol::Http1);
    // The connection's age is a deadline read when an answer's head is
    // written, and when an idle wait begins: no timer per request, and
    // nothing at all without an age. Only a grace keeps one timer, for
    // the connection's life.
    let age = engine.server.age_deadline();
    let grace = age
        .zip(engine.server.max_connection_age_grace)
        .map(|(at, grace)| Box::pin(sleep_until(deadline_after(at.into_std(), grace).into())));
    let mut conn = Conn {
        engine,
        stream,
        peer,
        watch,
        buf: Buffer::empty(),
        age,
        grace,
    };
    async move {
        // The connection's one registration for the engine's wake-ups,
        // kept from its first wait to its end (its own reference to the
        // engine: `conn` is lent to each wait and request).
        let engine = conn.engine.clone();
        let notified = pin!(engine.wake.notified());
        let mut wake = Wakeup::new(&engine.wake, notified);
        let mut first = true;
        loop {
            // Decided before anything else is awaited: the head is not
            // kept in the state of every idle connection, only in `work`.
            let work: Work<'_> = match next_head(&mut conn, first, &mut wake).await {
                Next::Head(head) if head.h2c => Box::pin(async { Ok(After::HandOver) }),
                Next::Head(head) => Box::pin(request(&mut conn, head, &mut wake)),
                Next::Refused(refusal) => Box::pin(refuse(&mut conn, refusal)),
                Next::Closed => return ConnEnd::Closed,
            };
            first = false;
            // Only the outcomes that keep serving are matched here: one
            // awaited in an arm would keep the whole `io::Result<After>`
            // (112 bytes) in the state of every idle connection too.
            match work.await {
                Ok(After::KeepAlive) => conn.buf.release_if_empty(),
                Ok(After::Close) => return ConnEnd::Closed,
                Ok(After::Cut) => return ConnEnd::Cut,
                after => return Box::pin(end(conn, open, after)).await,
            }
        }
    }
}

/// Ends a connection whose last request did not leave it open as it was:
/// lingers, hands it over to hyper, or tunnels.
async fn end(conn: Conn, open: GaugeGuard, after: io::Result<After>) -> ConnEnd {
    match after {
        Ok(After::KeepAlive | After::Close) => ConnEnd::Closed,
        Ok(After::Cut) => ConnEnd::Cut,
        Ok(After::Linger) => {
            drop(conn.buf);
            linger(conn.stream).await;
            ConnEnd::Closed
        }
        Ok(After::Refused(status)) => {
            drop(conn.buf);
            linger(conn.stream).await;
            ConnEnd::BadRequest(status)
        }
        Ok(After::HandOver) => {
            drop(open);
            hand_over(conn).await
        }
        Ok(After::Upgrade(upstream, leftover, kind)) => {
            drop(open);
            upgraded(conn, leftover, upstream, kind).await
        }
        Err(e) => {
            debug!(peer = %conn.peer, error = %e, "client connection failed");
            match e.get_ref().and_then(|e| e.downcast_ref::<Refusal>()) {
                Some(refusal) => ConnEnd::BadRequest(refusal.status),
                None => ConnEnd::Closed,
            }
        }
    }
}

/// What follows a head, boxed: it exists only while a request is served.
type Work<'a> = Pin<Box<dyn Future<Output = io::Result<After>> + Send + 'a>>;

/// One client connection's state between requests.
struct Conn {
    engine: Arc<Engine>,
    stream: TcpStream,
    peer: SocketAddr,
    /// Holds the drain open while the connection lives.
    watch: Watch,
    /// Bytes read and not yet used; no memory while idle.
    buf: Buffer,
    /// When the connection is past its `--max-connection-age`.
    age: Option<Instant>,
    /// The end of the age's grace, when one is set.
    grace: Option<Pin<Box<Sleep>>>,
}

/// One request forwarded, and its answer; cut at the drain's deadline.
async fn request(
    conn: &mut Conn,
    head: RequestHead,
    wake: &mut Wakeup<'_, '_>,
) -> io::Result<After> {
    let Conn {
        engine,
        stream,
        peer,
        buf,
        age,
        grace,
        ..
    } = conn;
    let _in_flight = engine.metrics.request(Protocol::Http1);
    // Past the age, the answer closes the connection as from Draining on.
    let closing = || engine.phase.get().is_stopping() || age.is_some_and(|at| Instant::now() >= at);
    // Stopping, and the ticks the exchange's own deadline is read on, come
    // through the connection's wake-ups.
    tokio::select! {
        biased;
        after = exchange(engine, stream, buf, &head, peer.ip(), closing) => after,
        () = stopping(engine, wake) => {
            engine.metrics.cut(Protocol::Http1);
            Ok(After::Cut)
        }
        () = grace_over(grace) => {
            debug!(%peer, "connection past its max age and grace: closed with a request in flight");
            Ok(After::Close)
        }
    }
}

/// Answers a request refused before the upstream saw it; the connection
/// closes after.
async fn refuse(conn: &mut Conn, refusal: Refusal) -> io::Result<After> {
    let peer = conn.peer;
    if refusal.status == StatusCode::NOT_IMPLEMENTED && refusal.why.starts_with("CONNECT") {
        // A reverse proxy has no tunnel to open to an authority of the
        // client's choosing (HAProxy and Envoy refuse it).
        info!(%peer, "CONNECT refused: 501");
    } else {
        debug!(%peer, status = %refusal.status, why = refusal.why.trim_end(), "request refused");
    }
    let answer = heads::short(refusal.status, refusal.why, false);
    write_all(&conn.stream, &mut [IoSlice::new(&answer)])
        .await
        .map_err(|_| io::Error::other(refusal))?;
    Ok(After::Refused(refusal.status))
}

/// What an idle wait came to.
enum Woke {
    Readable,
    Closing,
    Late,
    Failed,
}

/// Waits for the next request head: with no buffer while the connection
/// is idle, within the idle timeout (or until the connection's age), then
/// the header read timeout.
async fn next_head(conn: &mut Conn, first: bool, wake: &mut Wakeup<'_, '_>) -> Next {
    let server = &conn.engine.server;
    let ticks = &conn.engine.ticks;
    // The first head of a connection was begun when the engine got it.
    let mut begun = first || !conn.buf.is_empty();
    let mut deadline = if begun {
        ticks.after(server.header_read_timeout)
    } else {
        let idle = ticks.after(server.idle_timeout);
        // Past its age, a connection idle for IDLE_AFTER_AGE goes: one
        // busy with requests gets its `Connection: close` on an answer.
        match conn.age {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                idle.min(ticks.after(left.max(IDLE_AFTER_AGE)))
            }
            None => idle,
        }
    };
    let mut searched = 0u32;
    loop {
        // Read again after every wait rather than kept across it: every
        // byte kept here is in the state of every idle connection.
        let limits = conn.engine.limits;
        let bytes = conn.buf.bytes();
        if bytes.len() > limits.max_head || head_end(bytes, searched as usize).is_some() {
            match parse_request(bytes, limits) {
                Ok(Some(head)) => return Next::Head(head),
                Ok(None) => {}
                Err(refusal) => return Next::Refused(refusal),
            }
        }
        searched = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        match wait(conn, wake, deadline).await {
            Woke::Readable => {}
            Woke::Failed => return Next::Closed,
            Woke::Closing => {
                // Nothing is in flight until a whole head came.
                debug!("closing a connection without a request in flight");
                return Next::Closed;
            }
            Woke::Late => {
                let aged = !begun && conn.age.is_some_and(|at| Instant::now() >= at);
                debug!(
                    begun,
                    aged, "closing a connection: no request in time, or past its max age"
                );
                return Next::Closed;
            }
        }
        match conn
            .buf
            .read_from(&conn.stream, conn.engine.limits.max_head + 1)
        {
            Ok(0) => return Next::Closed,
            Ok(_) if !begun => {
                begun = true;
                deadline = conn
                    .engine
                    .ticks
                    .after(conn.engine.server.header_read_timeout);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Next::Closed,
        }
    }
}

/// Waits until the connection is readable (bytes already there are taken
/// even at Closing), the drain reaches Closing, or the tick `deadline`
/// comes. The socket's readiness is kept in the socket itself, the
/// drain's Closing and the time come through the connection's wake-ups:
/// an idle connection holds no future of either (a watch's wait is 184
/// bytes, a readiness future 152, a timer 96).
#[allow(clippy::manual_async_fn)] // an async fn would keep its arguments twice
fn wait<'a, 'n, 'p>(
    conn: &'a Conn,
    wake: &'a mut Wakeup<'n, 'p>,
    deadline: u64,
) -> impl Future<Output = Woke> + use<'a, 'n, 'p> {
    poll_fn(move |cx| {
        if let Poll::Ready(ready) = conn.stream.poll_read_ready(cx) {
            return Poll::Ready(if ready.is_ok() {
                Woke::Readable
            } else {
                Woke::Failed
            });
        }
        wake.poll_woken(cx);
        if conn.engine.phase.get() >= Phase::Closing {
            Poll::Ready(Woke::Closing)
        } else if conn.engine.ticks.reached(deadline) {
            Poll::Ready(Woke::Late)
        } else {
            Poll::Pending
        }
    })
}

/// Resolves when the drain reaches Stopping, as the connection's
/// wake-ups tell.
async fn stopping(engine: &Engine, wake: &mut Wakeup<'_, '_>) {
    poll_fn(|cx| {
        wake.poll_woken(cx);
        if engine.phase.get() >= Phase::Stopping {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Resolves when the grace after the connection's age is over; never
/// without one.
async fn grace_over(grace: &mut Option<Pin<Box<Sleep>>>) {
    match grace {
        Some(end) => end.await,
        None => std::future::pending().await,
    }
}

/// Hands the connection to hyper's server, the bytes read replayed: it
/// serves `Upgrade: h2c` as it always did.
async fn hand_over(conn: Conn) -> ConnEnd {
    let Conn {
        engine,
        stream,
        peer,
        watch,
        buf,
        age,
        ..
    } = conn;
    let _open = engine.metrics.connection(Protocol::Http1);
    let read = bytes::Bytes::copy_from_slice(buf.bytes());
    drop(buf);
    let service = Forward::new(engine.shared.clone(), peer);
    engine
        .server
        .serve_http1_after(stream, read, service, watch, age)
        .await
}

/// The tunnel after a `101`: the bytes the client sent after its request
/// go first.
async fn upgraded(
    conn: Conn,
    leftover: Buffer,
    upstream: UpstreamConn,
    kind: TunnelKind,
) -> ConnEnd {
    let Conn {
        engine,
        stream: client,
        watch,
        buf,
        ..
    } = conn;
    drop(buf);
    let label = if kind == TunnelKind::WebSocket {
        Protocol::WebSocket
    } else {
        Protocol::Upgrade
    };
    let _open = engine.metrics.connection(label);
    if !leftover.is_empty()
        && write_all(upstream.stream(), &mut [IoSlice::new(leftover.bytes())])
            .await
            .is_err()
    {
        return ConnEnd::Closed;
    }
    drop(leftover);
    match tunnel(client, upstream, watch, kind).await {
        TunnelEnd::Closed => {}
        TunnelEnd::WentAway => {
            engine.metrics.cut(label);
            info!(
                protocol = label.as_str(),
                "deadline: told the client to go away (close 1001)"
            );
        }
        TunnelEnd::Cut => engine.metrics.cut(label),
    }
    ConnEnd::Closed
}

/// Closes after an answer the client may still be sending into: what it
/// sends is read and dropped for a moment first, as nginx's lingering close
/// does, so the kernel does not reset the connection (and the answer with
/// it) over unread bytes.
async fn linger(mut stream: TcpStream) {
    const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
    const MOST: usize = 1024 * 1024;
    let _ = stream.shutdown().await;
    let mut sink = Buffer::empty();
    let mut dropped = 0;
    let _ = tokio::time::timeout(LINGER, async {
        while dropped < MOST {
            match sink.read(&stream, super::buffers::SIZE).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    dropped += n;
                    sink.consume(n);
                }
            }
        }
    })
    .await;
}
