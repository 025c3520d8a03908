//! One client connection: requests read one after another, each forwarded
//! from this task, following the drain: `Connection: close` on answers
//! from Draining on, idle connections (and those that have not sent a
//! whole head) closed at Closing, what is still busy cut at the deadline.
//! Past its age (`--max-connection-age`) a connection is told to move the
//! same way: its next answer says `Connection: close`, and it is closed
//! if idle.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

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
use super::Engine;
use crate::forward::Forward;
use crate::metrics::Protocol;
use crate::upstream::UpstreamConn;

/// What waiting for a request head came to.
enum Next {
    Head(RequestHead),
    Refused(Refusal),
    /// Closed by the client, idle too long, too slow, or at Closing.
    Closed,
}

/// Serves one HTTP/1.1 connection from `peer` until it closes.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    mut watch: Watch,
    engine: Arc<Engine>,
) -> ConnEnd {
    let _ = stream.set_nodelay(true);
    let open = engine.metrics.connection(Protocol::Http1);
    let peer_ip = peer.ip().to_string();
    let view = watch.phase_view();
    // The connection's age is a deadline read when an answer's head is
    // written, and when an idle wait begins: no timer per request, and
    // nothing at all without an age. Only a grace keeps one timer, for
    // the connection's life.
    let age = engine.server.age_deadline();
    let mut grace = age
        .zip(engine.server.max_connection_age_grace)
        .map(|(at, grace)| Box::pin(sleep_until(deadline_after(at.into_std(), grace).into())));
    let mut buf = Buffer::empty();
    let mut first = true;
    loop {
        let head = match next_head(&engine, &stream, &mut buf, &mut watch, first, age).await {
            Next::Head(head) => head,
            Next::Closed => return ConnEnd::Closed,
            Next::Refused(refusal) => {
                if refusal.status == StatusCode::NOT_IMPLEMENTED
                    && refusal.why.starts_with("CONNECT")
                {
                    // A reverse proxy has no tunnel to open to an authority
                    // of the client's choosing (HAProxy and Envoy refuse it).
                    info!(%peer, "CONNECT refused: 501");
                } else {
                    debug!(%peer, status = %refusal.status, why = refusal.why.trim_end(), "request refused");
                }
                let answer = heads::short(refusal.status, refusal.why, false);
                if write_all(&stream, &mut [IoSlice::new(&answer)])
                    .await
                    .is_ok()
                {
                    Box::pin(linger(stream)).await;
                }
                return ConnEnd::BadRequest(refusal.status);
            }
        };
        first = false;
        if head.h2c {
            drop(open);
            return Box::pin(hand_over(&engine, stream, buf, peer, watch)).await;
        }
        let in_flight = engine.metrics.request(Protocol::Http1);
        // Past the age, the answer closes the connection as from Draining on.
        let closing = || view.get().is_stopping() || age.is_some_and(|at| Instant::now() >= at);
        let after = tokio::select! {
            biased;
            // Boxed: the task of an idle connection holds only what waiting
            // for the next head needs, not an exchange's state.
            after = Box::pin(exchange(&engine, &stream, &mut buf, &head, &peer_ip, closing)) => after,
            () = watch.reached(Phase::Stopping) => {
                engine.metrics.cut(Protocol::Http1);
                return ConnEnd::Cut;
            }
            () = grace_over(&mut grace) => {
                debug!(%peer, "connection past its max age and grace: closed with a request in flight");
                return ConnEnd::Closed;
            }
        };
        drop(in_flight);
        match after {
            Ok(After::KeepAlive) => buf.release_if_empty(),
            Ok(After::Close) => return ConnEnd::Closed,
            Ok(After::Linger) => {
                drop(buf);
                Box::pin(linger(stream)).await;
                return ConnEnd::Closed;
            }
            Ok(After::Upgrade(upstream, leftover, kind)) => {
                drop(open);
                return Box::pin(upgraded(&engine, stream, leftover, upstream, kind, watch)).await;
            }
            Err(e) => {
                debug!(%peer, error = %e, "client connection failed");
                return ConnEnd::Closed;
            }
        }
    }
}

/// Waits for the next request head: with no buffer while the connection
/// is idle, within the idle timeout (or until the connection's `age`), then
/// the header read timeout.
async fn next_head(
    engine: &Engine,
    stream: &TcpStream,
    buf: &mut Buffer,
    watch: &mut Watch,
    first: bool,
    age: Option<Instant>,
) -> Next {
    let server = &engine.server;
    let in_time = |d| Instant::now().checked_add(d);
    // The first head of a connection was begun when the engine got it.
    let mut deadline = if first || !buf.is_empty() {
        in_time(server.header_read_timeout)
    } else {
        // Past its age, a connection idle for IDLE_AFTER_AGE goes: one
        // busy with requests gets its `Connection: close` on an answer.
        let aged = age.map(|at| at.max(Instant::now() + IDLE_AFTER_AGE));
        match (in_time(server.idle_timeout), aged) {
            (Some(idle), Some(at)) => Some(idle.min(at)),
            (idle, at) => idle.or(at),
        }
    };
    let mut begun = first || !buf.is_empty();
    let mut searched = 0;
    loop {
        let bytes = buf.bytes();
        if bytes.len() > engine.limits.max_head || head_end(bytes, searched).is_some() {
            match parse_request(bytes, engine.limits) {
                Ok(Some(head)) => return Next::Head(head),
                Ok(None) => {}
                Err(refusal) => return Next::Refused(refusal),
            }
        }
        searched = bytes.len();
        tokio::select! {
            biased;
            ready = stream.readable() => if ready.is_err() { return Next::Closed },
            () = watch.reached(Phase::Closing) => {
                // Nothing is in flight until a whole head came.
                debug!("closing a connection without a request in flight");
                return Next::Closed;
            }
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                let aged = !begun && age.is_some_and(|at| Instant::now() >= at);
                debug!(begun, aged, "closing a connection: no request in time, or past its max age");
                return Next::Closed;
            }
        }
        match buf.read_from(stream, engine.limits.max_head + 1) {
            Ok(0) => return Next::Closed,
            Ok(_) if !begun => {
                begun = true;
                deadline = in_time(server.header_read_timeout);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Next::Closed,
        }
    }
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
async fn hand_over(
    engine: &Engine,
    stream: TcpStream,
    buf: Buffer,
    peer: SocketAddr,
    watch: Watch,
) -> ConnEnd {
    let _open = engine.metrics.connection(Protocol::Http1);
    let read = bytes::Bytes::copy_from_slice(buf.bytes());
    drop(buf);
    let service = Forward::new(engine.shared.clone(), peer);
    engine
        .server
        .serve_http1_after(stream, read, service, watch)
        .await
}

/// The tunnel after a `101`: the bytes the client sent after its request
/// go first.
async fn upgraded(
    engine: &Engine,
    client: TcpStream,
    leftover: Buffer,
    upstream: UpstreamConn,
    kind: TunnelKind,
    watch: Watch,
) -> ConnEnd {
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
