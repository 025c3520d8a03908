//! TCP mode: each client connection is relayed to one endpoint as a byte
//! stream, until either side closes it, the endpoint's leave says so, or the
//! balancer's own drain reaches its deadline.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lameduck::{try_tunnel, Phase, TunnelEnd, TunnelKind, Watch};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::connect::{Attempts, ConnectError, Connector};
use crate::endpoint::{Lease, Leave};

/// How a relayed connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayEnd {
    /// No endpoint could be reached: the client got a reset.
    Unreached(String),
    /// Either side closed it.
    Closed,
    /// One side reset it (or failed): the other side got a reset too, as
    /// through a NAT, so a client never takes a cut answer for a whole one.
    ResetPassedOn,
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

/// Hears what happens to one relayed connection at the moment it happens,
/// before the client can see it: the rehearsal ties each loss to a pod this
/// way. `()` hears nothing.
pub trait RelayObserver {
    /// The connection reached `Ok(endpoint)`, or no endpoint (`Err`);
    /// `tried` lists the endpoints tried, in order. Called once, before
    /// any byte is relayed or the client is reset.
    fn reached(&mut self, reached: Result<SocketAddr, &ConnectError>, tried: &[SocketAddr]) {
        let _ = (reached, tried);
    }

    /// The relay ends with `end`; both sides are closed (or reset) right
    /// after.
    fn ending(&mut self, end: &RelayEnd) {
        let _ = end;
    }
}

impl RelayObserver for () {}

/// Relays `client` to an endpoint. A connect that fails, or an upstream
/// that closes or resets before any client byte went to it and before it
/// said anything, is tried again on another endpoint.
pub async fn relay_tcp(
    client: TcpStream,
    peer: SocketAddr,
    watch: Watch,
    connector: Arc<Connector>,
) -> Relayed {
    relay_tcp_observed(client, peer, watch, connector, &mut ()).await
}

/// [`relay_tcp`], telling `observer` what happens.
pub async fn relay_tcp_observed(
    mut client: TcpStream,
    peer: SocketAddr,
    watch: Watch,
    connector: Arc<Connector>,
    observer: &mut impl RelayObserver,
) -> Relayed {
    let metrics = &connector.metrics;
    metrics.connections.inc();
    metrics.open.inc();
    let _open = scopeguard(|| {
        metrics.open.dec();
    });
    let _ = client.set_nodelay(true);
    let mut attempts = Attempts::default();
    let (lease, mut upstream) =
        match connect(&client, peer, &watch, &connector, &mut attempts).await {
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
                observer.reached(Err(&e), attempts.tried());
                let end = RelayEnd::Unreached(e.to_string());
                observer.ending(&end);
                reset(&client);
                return Relayed {
                    endpoint: None,
                    end,
                };
            }
        };
    let endpoint = lease.endpoint().addr();
    observer.reached(Ok(endpoint), attempts.tried());
    let leave = lease.endpoint().leave();
    let end = tokio::select! {
        end = try_tunnel(&mut client, &mut upstream, watch, TunnelKind::Opaque) => match end {
            Ok(TunnelEnd::Cut) => {
                metrics.cut_at_deadline.inc();
                RelayEnd::CutAtDeadline
            }
            Ok(TunnelEnd::Closed | TunnelEnd::WentAway) => RelayEnd::Closed,
            Err(e) => {
                debug!(%peer, %endpoint, error = %e, "a side failed: the other gets a reset");
                RelayEnd::ResetPassedOn
            }
        },
        leave = until_leave(leave) => match leave {
            Leave::Now => {
                metrics.reset_at_leave.inc();
                RelayEnd::Reset
            }
            _ => {
                metrics.closed_at_drain_timeout.inc();
                lease.endpoint().count_closed_at_timeout();
                RelayEnd::ClosedAtDrainTimeout
            }
        },
    };
    observer.ending(&end);
    if matches!(end, RelayEnd::Reset | RelayEnd::ResetPassedOn) {
        reset(&client);
        reset(&upstream);
    }
    drop((client, upstream, lease));
    Relayed {
        endpoint: Some(endpoint),
        end,
    }
}

/// Connects to an endpoint. When retries are allowed, the upstream is then
/// watched until the client sends its first bytes or the upstream its
/// first: one that closes or resets before either (a listener closed with
/// the connection still queued, a pod killed) is tried again elsewhere, as
/// a refused connect is. Nothing is read from the client here: its bytes
/// stay in the kernel until the tunnel takes them.
async fn connect(
    client: &TcpStream,
    peer: SocketAddr,
    watch: &Watch,
    connector: &Connector,
    attempts: &mut Attempts,
) -> Result<(Lease, TcpStream), ConnectError> {
    loop {
        let (lease, mut upstream) = connector.connect(attempts).await?;
        if connector.retries == 0 {
            return Ok((lease, upstream));
        }
        let mut stop = watch.clone();
        tokio::select! {
            // Neither side said anything yet: the tunnel ends it the way
            // the balancer's deadline or the endpoint's leave says.
            _ = stop.reached(Phase::Stopping) => return Ok((lease, upstream)),
            _ = until_leave(lease.endpoint().leave()) => return Ok((lease, upstream)),
            ready = client.readable() => {
                if let Err(e) = ready {
                    debug!(%peer, error = %e, "client failed before sending anything");
                }
                return Ok((lease, upstream));
            }
            peeked = first_word(&upstream) => match peeked {
                Ok(n) if n > 0 => return Ok((lease, upstream)),
                other => {
                    let error = other.err().unwrap_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed at once"));
                    if !connector.failed(attempts, &lease, &error) {
                        let _ = upstream.shutdown().await;
                        connector.metrics.connect_failures.inc();
                        return Err(ConnectError::Failed { attempts: attempts.failures(), last: error });
                    }
                }
            },
        }
    }
}

/// Waits until `upstream` said something, closed or failed: how many bytes
/// it said (0: closed). Readiness first: a peek at once would cost every
/// connection a system call that finds nothing.
async fn first_word(upstream: &TcpStream) -> io::Result<usize> {
    let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    loop {
        upstream.readable().await?;
        match upstream.try_io(tokio::io::Interest::READABLE, || {
            socket2::SockRef::from(upstream).peek(&mut probe)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            said => return said,
        }
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
