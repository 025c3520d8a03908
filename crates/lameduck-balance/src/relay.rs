//! TCP mode: each client connection is relayed to one endpoint as a byte
//! stream, until either side closes it, the endpoint's leave says so, or the
//! balancer's own drain reaches its deadline.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lameduck::{tunnel, Phase, TunnelEnd, TunnelKind, Watch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::connect::{Attempts, ConnectError, Connector};
use crate::endpoint::Leave;

/// How a relayed connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// No endpoint could be reached: the client got a reset.
    Unreached(String),
    /// Either side closed it.
    Closed,
    /// Its endpoint left and the drain timeout passed: closed.
    ClosedAtDrainTimeout,
    /// Its endpoint left under the reset policy: both sides reset.
    Reset,
    /// The balancer's own drain reached its deadline: cut.
    CutAtDeadline,
}

/// What one relayed connection did, for whoever keeps accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// The endpoint it went to, if any.
    pub endpoint: Option<SocketAddr>,
    /// How it ended.
    pub end: RelayEnd,
}

/// The largest first chunk of client bytes held while an upstream is
/// checked.
const FIRST_CHUNK: usize = 4 * 1024;

/// Relays `client` to an endpoint. A connect that fails, or an upstream
/// that closes or resets before any client byte went to it and before it
/// said anything, is tried again on another endpoint.
pub async fn relay_tcp(
    mut client: TcpStream,
    peer: SocketAddr,
    watch: Watch,
    connector: Arc<Connector>,
) -> Relayed {
    let metrics = connector.metrics.clone();
    metrics.connections.inc();
    metrics.open.inc();
    let _open = scopeguard(|| {
        metrics.open.dec();
    });
    let _ = client.set_nodelay(true);
    let mut attempts = Attempts::default();
    let mut first = vec![0u8; FIRST_CHUNK];
    let mut held: Option<usize> = None;
    let (lease, mut upstream) = loop {
        let (lease, mut upstream) = match connector.connect(&mut attempts).await {
            Ok(pair) => pair,
            Err(e) => {
                match &e {
                    ConnectError::NoEndpoint => {
                        warn!(%peer, "no endpoint is ready or serving: client connection reset")
                    }
                    ConnectError::Failed { .. } => {
                        warn!(%peer, error = %e, "no endpoint reached: client connection reset")
                    }
                }
                reset(&client);
                return Relayed {
                    endpoint: None,
                    end: RelayEnd::Unreached(e.to_string()),
                };
            }
        };
        if held.is_some() {
            break (lease, upstream);
        }
        // Wait for the client's first bytes or the upstream's first word.
        let mut probe = [0u8; 1];
        let mut stop = watch.clone();
        tokio::select! {
            // Neither side said anything yet: the tunnel below ends it the
            // way the balancer's deadline or the endpoint's leave says.
            _ = stop.reached(Phase::Stopping) => break (lease, upstream),
            _ = until_leave(lease.endpoint().leave()) => break (lease, upstream),
            read = client.read(&mut first) => match read {
                Ok(n) => {
                    held = Some(n);
                    break (lease, upstream);
                }
                Err(e) => {
                    debug!(%peer, error = %e, "client failed before sending anything");
                    return Relayed { endpoint: Some(lease.endpoint().addr()), end: RelayEnd::Closed };
                }
            },
            peeked = upstream.peek(&mut probe) => match peeked {
                Ok(n) if n > 0 => break (lease, upstream),
                other => {
                    let error = other.err().unwrap_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed at once"));
                    if !connector.failed(&mut attempts, &lease, &error) {
                        let _ = upstream.shutdown().await;
                        reset(&client);
                        connector.metrics.connect_failures.inc();
                        return Relayed { endpoint: Some(lease.endpoint().addr()), end: RelayEnd::Unreached(error.to_string()) };
                    }
                }
            },
        }
    };
    let endpoint = lease.endpoint().addr();
    if let Some(n) = held.filter(|n| *n > 0) {
        if let Err(e) = upstream.write_all(&first[..n]).await {
            debug!(%peer, %endpoint, error = %e, "upstream failed on the first bytes");
            reset(&client);
            return Relayed {
                endpoint: Some(endpoint),
                end: RelayEnd::Closed,
            };
        }
    }
    drop(first);
    let leave = lease.endpoint().leave();
    let end = tokio::select! {
        end = tunnel(&mut client, &mut upstream, watch, TunnelKind::Opaque) => match end {
            TunnelEnd::Cut => {
                metrics.cut_at_deadline.inc();
                RelayEnd::CutAtDeadline
            }
            TunnelEnd::Closed | TunnelEnd::WentAway => RelayEnd::Closed,
        },
        leave = until_leave(leave) => match leave {
            Leave::Now => {
                metrics.reset_at_leave.inc();
                reset(&client);
                reset(&upstream);
                RelayEnd::Reset
            }
            _ => {
                metrics.closed_at_drain_timeout.inc();
                lease.endpoint().count_closed_at_timeout();
                RelayEnd::ClosedAtDrainTimeout
            }
        },
    };
    drop(lease);
    Relayed {
        endpoint: Some(endpoint),
        end,
    }
}

/// Resolves when the connection must end: at once for [`Leave::Now`], at
/// the deadline of [`Leave::At`] (unless the endpoint came back).
pub(crate) async fn until_leave(mut leave: watch::Receiver<Leave>) -> Leave {
    loop {
        let now = *leave.borrow_and_update();
        match now {
            Leave::Now => return now,
            Leave::At(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => return now,
                    changed = leave.changed() => if changed.is_err() { std::future::pending::<()>().await },
                }
            }
            Leave::Stay => {
                if leave.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Closes with RST instead of FIN: the client learns at once that nothing
/// will come, as from a Service without endpoints.
fn reset(stream: &TcpStream) {
    // A zero linger never blocks: the close drops what is queued and sends
    // RST.
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Runs `f` when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
