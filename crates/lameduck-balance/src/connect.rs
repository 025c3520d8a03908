//! Connecting to an endpoint, with retries on another when a connect
//! fails: the endpoint list lags behind the pods, so a pod that already
//! stopped listening is not a reason to fail a client.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::endpoint::Lease;
use crate::metrics::Metrics;
use crate::set::EndpointSet;

/// Why no endpoint could be reached.
#[derive(Debug)]
pub enum ConnectError {
    /// No endpoint was ready (nor serving and terminating, in fallback).
    NoEndpoint,
    /// Every try failed; the last error.
    Failed {
        /// Connects tried.
        attempts: u32,
        /// Why the last one failed.
        last: io::Error,
    },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::NoEndpoint => f.write_str("no endpoint is ready or serving"),
            ConnectError::Failed { attempts, last } => {
                write!(f, "{attempts} connect(s) failed, the last: {last}")
            }
        }
    }
}

/// Opens connections to the set's endpoints.
#[derive(Clone, Debug)]
pub struct Connector {
    /// The endpoints.
    pub set: Arc<EndpointSet>,
    /// The counters.
    pub metrics: Arc<Metrics>,
    /// How long one connect may take.
    pub timeout: Duration,
    /// How many times a failed connect is tried again on another endpoint.
    pub retries: u32,
}

/// What [`Connector::connect`] tried so far, for a later try of the same
/// client connection (an upstream that reset before any client byte).
#[derive(Debug, Default)]
pub struct Attempts {
    tried: Vec<SocketAddr>,
    failed: u32,
}

// === impl Connector ===

impl Connector {
    /// Picks an endpoint and connects; on a failed connect passes that
    /// endpoint over for a while and tries another, up to the retries.
    pub async fn connect(
        &self,
        attempts: &mut Attempts,
    ) -> Result<(Lease, TcpStream), ConnectError> {
        loop {
            let Some(lease) = self.set.pick(&attempts.tried) else {
                return Err(match attempts.failed {
                    0 => {
                        self.metrics.no_endpoint.inc();
                        ConnectError::NoEndpoint
                    }
                    n => {
                        self.metrics.connect_failures.inc();
                        ConnectError::Failed {
                            attempts: n,
                            last: io::Error::other("no other endpoint to try"),
                        }
                    }
                });
            };
            match self.dial(lease.endpoint().addr()).await {
                Ok(stream) => {
                    return Ok((lease, stream));
                }
                Err(e) => {
                    self.failed(attempts, &lease, &e);
                    if attempts.failed > self.retries {
                        self.metrics.connect_failures.inc();
                        return Err(ConnectError::Failed {
                            attempts: attempts.failed,
                            last: e,
                        });
                    }
                }
            }
        }
    }

    /// One connect to `addr` within the connect timeout, without delay on
    /// small writes (TCP and HTTP mode both relay requests as they come).
    pub(crate) async fn dial(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(addr))
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            })?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Records a failed try on `lease`'s endpoint: passed over, counted, not
    /// tried again for this client. Returns whether another try is allowed.
    pub fn failed(&self, attempts: &mut Attempts, lease: &Lease, error: &io::Error) -> bool {
        let endpoint = lease.endpoint();
        attempts.tried.push(endpoint.addr());
        attempts.failed += 1;
        if self.set.eject(endpoint) {
            self.metrics.ejections.inc();
        }
        let again = attempts.failed <= self.retries;
        if again {
            self.metrics.retries.inc();
            debug!(endpoint = %endpoint.addr(), name = %endpoint.label(), %error, "connect failed before any client byte: trying another endpoint");
        } else if self.retries == 0 {
            // A policy without retries (kube-proxy's): the client's reset
            // is the whole story, told where the relay gives up.
            debug!(endpoint = %endpoint.addr(), name = %endpoint.label(), %error, "connect failed");
        } else {
            warn!(endpoint = %endpoint.addr(), name = %endpoint.label(), %error, tries = attempts.failed, "connect failed and no retry is left");
        }
        again
    }
}

impl Attempts {
    /// Whether another try is left under `retries`.
    pub fn left(&self, retries: u32) -> bool {
        self.failed <= retries
    }

    /// The endpoints whose try failed, in order.
    pub fn tried(&self) -> &[SocketAddr] {
        &self.tried
    }

    /// How many tries failed.
    pub fn failures(&self) -> u32 {
        self.failed
    }
}
