//! A byte tunnel between a client and an upstream (a TCP session, an
//! upgraded HTTP connection), with half-close passed on and a goodbye at the
//! drain's deadline.

use std::io;
use std::pin::pin;

use lameduck_core::Phase;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::drain::Watch;
use crate::websocket::{server_close_frame, FrameTracker, GOING_AWAY};

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
    /// Both sides closed (or one failed) on their own.
    Closed,
    /// The deadline came: the client was sent close 1001 and the tunnel then
    /// ended, by the client's answer or after the close grace.
    WentAway,
    /// The deadline came and the tunnel was cut.
    Cut,
}

const BUFFER: usize = 16 * 1024;

/// Copies bytes both ways between `client` and `upstream` until both sides
/// are done. An end of stream on one side is passed on as a half-close
/// (shutdown of the write side) and the other direction goes on.
///
/// When the drain reaches [`Phase::Stopping`] (its deadline), the tunnel ends
/// the way [`TunnelKind`] says; a WebSocket client gets the drain's
/// [`Timing::close_grace`](crate::Timing::close_grace) to answer the close
/// frame.
pub async fn tunnel<C, U>(client: C, upstream: U, mut watch: Watch, kind: TunnelKind) -> TunnelEnd
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut upstream_rx, mut upstream_tx) = tokio::io::split(upstream);
    let close_grace = watch.close_grace();
    let mut down_watch = watch.clone();
    let mut up = pin!(copy_then_shutdown(&mut client_rx, &mut upstream_tx));
    let mut down = pin!(async {
        match kind {
            TunnelKind::Opaque => copy_then_shutdown(&mut upstream_rx, &mut client_tx)
                .await
                .map(|()| false),
            TunnelKind::WebSocket => {
                copy_websocket_down(&mut upstream_rx, &mut client_tx, &mut down_watch).await
            }
        }
    });
    let (mut up_done, mut down_done, mut went_away) = (false, false, false);
    while !(up_done && down_done) {
        tokio::select! {
            r = &mut up, if !up_done => {
                up_done = true;
                if r.is_err() {
                    return TunnelEnd::Closed;
                }
            }
            r = &mut down, if !down_done => {
                down_done = true;
                match r {
                    Ok(true) => {
                        went_away = true;
                        // Let the client's close frame reach the upstream,
                        // within the drain's close grace.
                        let _ = tokio::time::timeout(close_grace, &mut up).await;
                        break;
                    }
                    Ok(false) => {}
                    Err(_) => return TunnelEnd::Closed,
                }
            }
            _ = watch.reached(Phase::Stopping), if kind == TunnelKind::Opaque => return TunnelEnd::Cut,
        }
    }
    if went_away {
        TunnelEnd::WentAway
    } else {
        TunnelEnd::Closed
    }
}

async fn copy_then_shutdown<R, W>(from: &mut R, to: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// Upstream to client for a WebSocket: forwards frames; at the deadline
/// finishes the frame under way, sends close 1001 and ends the direction.
/// Returns whether it said goodbye.
async fn copy_websocket_down<R, W>(from: &mut R, to: &mut W, watch: &mut Watch) -> io::Result<bool>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER];
    let mut frames = FrameTracker::new();
    let mut stopping = false;
    loop {
        if stopping && frames.at_boundary() {
            to.write_all(&server_close_frame(GOING_AWAY, "server going away"))
                .await?;
            to.flush().await?;
            let _ = to.shutdown().await;
            return Ok(true);
        }
        let n = tokio::select! {
            n = from.read(&mut buf) => n?,
            _ = watch.reached(Phase::Stopping), if !stopping => {
                stopping = true;
                continue;
            }
        };
        if n == 0 {
            to.shutdown().await?;
            return Ok(false);
        }
        let take = frames.advance(&buf[..n], stopping);
        to.write_all(&buf[..take]).await?;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::{Delay, Drain, Timing};

    /// The client answers the close frame after 3s, inside a close grace of
    /// 5s: its answer reaches the upstream.
    #[tokio::test(start_paused = true)]
    async fn a_websocket_client_gets_the_drains_close_grace_to_answer() {
        let drain = Drain::with_timing(Timing {
            delay: Delay::Fixed(Duration::ZERO),
            deadline: Duration::from_secs(1),
            close_grace: Duration::from_secs(5),
        });
        let (mut client, client_side) = duplex(1024);
        let (mut upstream, upstream_side) = duplex(1024);
        let tunnel = tokio::spawn(tunnel(
            client_side,
            upstream_side,
            drain.watch(),
            TunnelKind::WebSocket,
        ));
        drain.trigger();
        tokio::spawn({
            let drain = drain.clone();
            async move { drain.run().await }
        });
        let mut close = [0u8; 2];
        client.read_exact(&mut close).await.expect("a close frame");
        assert_eq!(close[0], 0x88, "FIN + close opcode");
        tokio::time::sleep(Duration::from_secs(3)).await;
        client.write_all(b"answer").await.expect("write");
        client.shutdown().await.expect("shutdown");
        let mut got = Vec::new();
        upstream.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"answer");
        assert_eq!(tunnel.await.expect("tunnel"), TunnelEnd::WentAway);
    }
}
