//! The accept loop: takes connections while the drain allows, then closes
//! the listener without resetting the connections already queued on it.

use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use lameduck_core::Phase;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use crate::drain::Watch;

/// The longest pause after an accept error such as EMFILE.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` until the drain reaches
/// [`Phase::Closing`], spawning `handle` for each with its own [`Watch`].
///
/// Connections keep being accepted while draining, because balancers still
/// send until they notice. At `Closing` the connections that already
/// completed the handshake and wait in the kernel's queue are taken too, then
/// the listener closes, so a later connection is refused at once instead of
/// being accepted and dropped. Running out of file descriptors pauses the loop
/// (up to 1s, doubling) instead of spinning.
pub async fn accept_until_closing<F, Fut>(listener: TcpListener, mut watch: Watch, mut handle: F)
where
    F: FnMut(TcpStream, SocketAddr, Watch) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr().ok();
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = watch.reached(Phase::Closing) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::ZERO;
                watch.note_arrival();
                tokio::spawn(handle(stream, peer, watch.clone()));
            }
            Err(e) if is_transient(&e) => debug!(error = %e, "accept failed, retrying"),
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_BACKOFF);
                warn!(error = %e, pause = ?backoff, "cannot accept a connection, pausing the listener");
                tokio::select! {
                    _ = watch.reached(Phase::Closing) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    // Take what is queued already: closing the listener would reset it.
    let mut queued = 0usize;
    while let Poll::Ready(Ok((stream, peer))) =
        poll_fn(|cx| Poll::Ready(listener.poll_accept(cx))).await
    {
        queued += 1;
        tokio::spawn(handle(stream, peer, watch.clone()));
    }
    drop(listener);
    if let Some(local) = local {
        info!(%local, queued, "listener closed: new connections are refused");
    }
}

/// Errors of one connection that do not concern the listener.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
