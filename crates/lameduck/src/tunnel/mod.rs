//! A byte tunnel between a client and an upstream (a TCP session, an
//! upgraded HTTP connection), with half-close passed on and a goodbye at the
//! drain's deadline.
//!
//! One future polls both directions, so neither stream is split behind a
//! lock, and bytes are read into a buffer on the stack and written out at
//! once: an idle tunnel holds no buffer at all, and a busy one borrows one
//! ([`buffers`]) only while a side cannot take what was read for it.

mod buffers;
mod pipe;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::Poll;

use lameduck_core::Phase;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::drain::Watch;
use pipe::{Opaque, Pipe, WebSocketDown};

/// What the bytes in a tunnel are, which decides how it says goodbye.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    /// Any protocol: at the deadline the tunnel is closed.
    Opaque,
    /// A WebSocket (after a `101` to `Upgrade: websocket`): at the deadline
    /// the client gets a close frame with code 1001 (going away) between two
    /// frames, and a moment to answer it, so it reconnects elsewhere.
    WebSocket,
}

/// How a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelEnd {
    /// Both sides closed (or, for [`tunnel()`], one failed) on their own.
    Closed,
    /// The deadline came: the client was sent close 1001 and the tunnel then
    /// ended, by the client's answer or after the close grace.
    WentAway,
    /// The deadline came and the tunnel was cut.
    Cut,
}

/// Copies bytes both ways between `client` and `upstream` until both sides
/// are done. An end of stream on one side is passed on as a half-close
/// (shutdown of the write side) and the other direction goes on; the second
/// end of stream is passed on by the close that follows: the caller drops
/// both streams when the tunnel returns (streams that owe a goodbye of their
/// own on close, as TLS's close_notify, get it from the caller).
///
/// When the drain reaches [`Phase::Stopping`] (its deadline), the tunnel ends
/// the way [`TunnelKind`] says; a WebSocket client gets the drain's
/// [`Timing::close_grace`](crate::Timing::close_grace) to answer the close
/// frame. A side that fails (a reset) ends the tunnel as
/// [`TunnelEnd::Closed`]; [`try_tunnel`] tells that apart.
pub async fn tunnel<C, U>(client: C, upstream: U, watch: Watch, kind: TunnelKind) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    try_tunnel(client, upstream, watch, kind)
        .await
        .unwrap_or(TunnelEnd::Closed)
}

/// [`tunnel()`], with the error of a side that failed (a reset, a write to
/// a side that is gone) as `Err`: a balancer passes a reset on to the other
/// side, as a NAT does, instead of a clean close that could pass a cut
/// answer off as a whole one.
pub async fn try_tunnel<C, U>(
    client: C,
    upstream: U,
    mut watch: Watch,
    kind: TunnelKind,
) -> io::Result<TunnelEnd>
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let close_grace = watch.close_grace();
    let mut client = pin!(client);
    let mut upstream = pin!(upstream);
    let mut stop = pin!(watch.reached(Phase::Stopping));
    let mut stopped = false;
    let (mut up, mut down) = (Pipe::default(), Pipe::default());
    let mut websocket = WebSocketDown::new();
    // After the goodbye: the client's answer may still go up until then.
    let mut grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    poll_fn(|cx| loop {
        if !stopped && stop.as_mut().poll(cx).is_ready() {
            stopped = true;
            match kind {
                TunnelKind::Opaque => return Poll::Ready(Ok(TunnelEnd::Cut)),
                TunnelKind::WebSocket => websocket.stopping = true,
            }
        }
        if let Some(grace) = &mut grace {
            // Errors of the client's answer no longer matter: it was told.
            let answered = up.done
                || up
                    .poll_copy(cx, client.as_mut(), upstream.as_mut(), &mut Opaque, true)
                    .is_ready();
            if answered || grace.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(TunnelEnd::WentAway));
            }
            return Poll::Pending;
        }
        if !up.done {
            if let Poll::Ready(Err(e)) = up.poll_copy(
                cx,
                client.as_mut(),
                upstream.as_mut(),
                &mut Opaque,
                down.done,
            ) {
                return Poll::Ready(Err(e));
            }
        }
        if !down.done {
            let copied = match kind {
                TunnelKind::Opaque => {
                    down.poll_copy(cx, upstream.as_mut(), client.as_mut(), &mut Opaque, up.done)
                }
                TunnelKind::WebSocket => down.poll_copy(
                    cx,
                    upstream.as_mut(),
                    client.as_mut(),
                    &mut websocket,
                    up.done,
                ),
            };
            if let Poll::Ready(Err(e)) = copied {
                return Poll::Ready(Err(e));
            }
            if down.done && websocket.said_goodbye {
                // Let the client's close frame reach the upstream, within
                // the drain's close grace.
                grace = Some(Box::pin(tokio::time::sleep(close_grace)));
                continue;
            }
        }
        return if up.done && down.done {
            Poll::Ready(Ok(TunnelEnd::Closed))
        } else {
            Poll::Pending
        };
    })
    .await
}

#[cfg(test)]
mod tests;
