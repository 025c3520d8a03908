//! The drain proxy: the drain sequence in front of an app that knows
//! nothing of it.
//!
//! Clients connect to the proxy; the proxy forwards to the app (HTTP/1.1,
//! HTTP/2 and gRPC, WebSocket and other upgrades, or plain TCP). When the
//! pod ends, the proxy fails readiness, keeps accepting for the drain delay,
//! tells clients to move (`Connection: close`, GOAWAY, close 1001), lets
//! in-flight work finish and reports the moment nothing is open any more, so
//! the app can be stopped with nothing lost.

#![deny(rust_2018_idioms)]

mod admin;
mod answer_body;
mod body;
mod config;
pub mod dial;
mod entry;
mod forward;
mod front;
pub mod h1;
mod metrics;
mod rewrite;
mod upstream;
mod workers;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use lameduck::{tunnel, Drain, Report, TunnelEnd, TunnelKind, Watch};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

pub use admin::Admin;
pub use config::{Config, Mode, Upstream, UpstreamProtocol, Workers};
pub use entry::{run_sidecar, ProxyDrainer};
pub use front::{FrontConfig, HttpFront};
pub use metrics::Metrics;
pub use upstream::UpstreamConn;

use upstream::{Connector, Readiness};

/// Why the proxy could not start.
#[derive(Debug)]
pub enum Error {
    /// A listening address could not be bound.
    Bind {
        /// Which listener.
        what: &'static str,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The runtime could not be built.
    Runtime(io::Error),
    /// The proxy's thread could not be started.
    Thread(io::Error),
    /// The proxy's thread ended before it bound its listeners.
    ThreadEnded,
    /// SIGTERM and SIGINT could not be caught.
    Signals(io::Error),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Bind { what, addr, source } => {
                write!(f, "cannot listen on {addr} ({what}): {source}")
            }
            Error::Runtime(e) => write!(f, "cannot start the proxy's runtime: {e}"),
            Error::Thread(e) => write!(f, "cannot start the proxy's thread: {e}"),
            Error::ThreadEnded => f.write_str("the proxy's thread ended before binding"),
            Error::Signals(e) => write!(f, "cannot listen for signals: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A proxy with its listeners bound, ready to run.
#[derive(Debug)]
pub struct Proxy {
    config: Config,
    /// The first worker's listener, served on the caller's runtime.
    listener: TcpListener,
    /// The other workers, bound and waiting on their threads.
    workers: workers::Waiting,
    admin: Option<TcpListener>,
    drain: Drain,
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

// === impl Proxy ===

impl Proxy {
    /// Binds the listener (one per worker) and the admin port. Call inside
    /// a tokio runtime: the first worker runs on it.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        let (listener, workers) = workers::bind(config.listen, config.workers.count()).await?;
        let admin = match config.admin {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Bind {
                        what: "--admin",
                        addr,
                        source,
                    })?,
            ),
            None => None,
        };
        let drain = Drain::with_timing(config.timing);
        let metrics = Arc::new(Metrics::with_workers(config.workers.count()));
        Ok(Proxy {
            config,
            listener,
            workers,
            admin,
            drain,
            metrics,
            readiness: Readiness::default(),
        })
    }

    /// The drain this proxy follows: trigger it to begin.
    pub fn drain(&self) -> Drain {
        self.drain.clone()
    }

    /// Where the listener is bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until a drain was triggered and is over; returns what it found.
    /// The other workers' threads keep finishing what is still open until
    /// [`Drain::finish`] or the end of the process, as the caller's runtime
    /// does for the first worker.
    pub async fn run(self) -> Report {
        let Proxy {
            config,
            listener,
            workers,
            admin,
            drain,
            metrics,
            readiness,
        } = self;
        let connector = Connector::new(
            config.upstream.as_str(),
            config.connect_timeout,
            config.max_upstream_connections,
            metrics.clone(),
        );
        info!(
            listen = %config.listen,
            mode = %config.mode,
            upstream = %config.upstream,
            upstream_protocol = %config.upstream_protocol,
            admin = ?config.admin,
            workers = config.workers.count(),
            source = config.workers.source(),
            "proxy listening"
        );
        let workers_count = config.workers.count();
        if workers_count > 1 {
            let cores = lameduck_core::Cpus::detect().cores;
            if workers_count > cores {
                warn!(
                    workers = workers_count,
                    cores, "more workers than cores: they take turns on them"
                );
            }
        }
        tokio::spawn({
            let readiness = readiness.clone();
            let connector = connector.clone();
            async move { readiness.probe(&connector).await }
        });
        if let Some(admin) = admin {
            tokio::spawn(
                Admin {
                    drain: drain.clone(),
                    readiness,
                    metrics: metrics.clone(),
                    allow_remote: config.admin_allow_remote,
                }
                .serve(admin),
            );
        }
        let common = Arc::new(workers::Common {
            config,
            connector,
            drain: drain.clone(),
            metrics: metrics.clone(),
        });
        workers.start(&common);
        workers::serve(listener, 0, drain.watch(), &common);
        let report = drain.run().await;
        metrics.drained(report.duration.as_secs_f64());
        report
    }
}

async fn serve_tcp(
    client: TcpStream,
    peer: SocketAddr,
    watch: Watch,
    connector: Connector,
    metrics: Arc<Metrics>,
) {
    metrics.accepted(metrics::Protocol::Tcp);
    let _open = metrics.connection(metrics::Protocol::Tcp);
    let upstream = match connector.connect().await {
        Ok(upstream) => upstream,
        Err(e) => {
            let phase = watch.phase();
            return if phase.is_stopping() {
                warn!(%peer, %phase, error = %e, "upstream failed while draining: closing the client connection")
            } else {
                warn!(%peer, error = %e, "upstream failed: closing the client connection")
            };
        }
    };
    let _ = client.set_nodelay(true);
    if tunnel(client, upstream, watch, TunnelKind::Opaque).await == TunnelEnd::Cut {
        metrics.cut(metrics::Protocol::Tcp);
    }
}
