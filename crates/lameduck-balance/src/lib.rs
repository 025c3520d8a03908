//! `lameduck balance`: a direct-to-pod balancer that gives a terminating
//! endpoint no new connections and never cuts its established ones.
//!
//! Endpoints come from EndpointSlices (a file, or a watch on a Service) and
//! are read as discovery/v1 defines their conditions ([`Conditions`]): a
//! ready endpoint gets new connections; a serving and terminating one gets
//! none (unless no endpoint is ready at all: the fallback of KEP-1669) while
//! its established connections carry on; one that is gone or not serving
//! gets none, and its connections run until they end or `--drain-timeout`.
//! A connect refused, reset or timed out before any client byte went
//! upstream is tried again on another endpoint, and the endpoint is passed
//! over for a while: an endpoint list that lags behind the pods costs the
//! clients nothing.
//!
//! The engine is [`EndpointSet`] (states, picks, ejection) with a
//! [`Policy`] ([`OnLeave`] says what established connections get), a
//! [`Connector`] (connects with retries) and [`relay_tcp`] (one client
//! connection). [`Balancer`] wires them to a listener, a source, health
//! checks, an admin port and the drain sequence of the `lameduck` crate.
//! In [`Mode::Http`] the drain proxy's HTTP side serves the clients and the
//! engine chooses an endpoint for every request, through the proxy's
//! `Dial` seam; idle kept connections to an endpoint that is no longer
//! ready are closed at once.
//!
//! ```
//! use std::net::SocketAddr;
//! use lameduck_balance::{Backend, Conditions, EndpointSet, Policy, State};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let set = EndpointSet::new(Policy::default());
//! let pod = |port, c| Backend { addr: SocketAddr::from(([10, 0, 0, 1], port)), name: None, conditions: c };
//! set.update(&[pod(80, Conditions::default()), pod(81, Conditions::new(false, true, true))]);
//! let lease = set.pick(&[]).expect("a ready endpoint");
//! assert_eq!(lease.endpoint().addr().port(), 80);
//! assert_eq!(set.views()[1].state, State::Terminating);
//! # }
//! ```
#![deny(rust_2018_idioms)]

mod admin;
mod connect;
mod endpoint;
pub mod health;
mod http_leave;
mod http_mode;
mod http_pool;
mod metrics;
mod policy;
mod relay;
mod set;
pub mod source;
mod state;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lameduck::http::HttpServer;
use lameduck::{accept_until_closing, Drain, Report, Timing};
use tokio::net::TcpListener;
use tracing::info;

pub use admin::Admin;
pub use connect::{Attempts, ConnectError, Connector};
pub use endpoint::{Backend, Endpoint, EndpointView, InFlight, Lease, Leave};
pub use health::HealthCheck;
pub use metrics::Metrics;
pub use policy::{Algorithm, OnLeave, Policy};
pub use relay::{relay_tcp, relay_tcp_observed, RelayEnd, RelayObserver, Relayed};
pub use set::EndpointSet;
pub use source::{PortSelector, SourceSpec};
pub use state::{Conditions, State};

use source::file::FileSource;
use source::kubernetes::KubernetesSource;

/// What the balancer relays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Any protocol over TCP: one endpoint per client connection.
    #[default]
    Tcp,
    /// HTTP/1.1 and h2c: one endpoint per request, over kept HTTP/1.1
    /// connections.
    Http,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Tcp => "tcp",
            Mode::Http => "http",
        })
    }
}

/// How a balancer runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// What it relays.
    pub mode: Mode,
    /// HTTP mode: limits and timeouts towards clients.
    pub http: HttpServer,
    /// Where endpoints come from.
    pub source: SourceSpec,
    /// Which port of the slices (`--port`); a `kubernetes:` source may name
    /// it instead.
    pub port: Option<PortSelector>,
    /// Address of the admin port.
    pub admin: Option<SocketAddr>,
    /// Take `POST /drain` from other than loopback.
    pub admin_allow_remote: bool,
    /// Algorithm, fallback, drain timeout, ejection.
    pub policy: Policy,
    /// How long one connect to an endpoint may take.
    pub connect_timeout: Duration,
    /// How many times a failed connect is tried on another endpoint.
    pub connect_retries: u32,
    /// Active health checks, if any.
    pub health: Option<HealthCheck>,
    /// The balancer's own drain: delay, deadline.
    pub timing: Timing,
}

/// Why the balancer could not start.
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
    /// The source cannot be used (a missing or broken file, no cluster
    /// configuration, two different ports).
    Source(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Bind { what, addr, source } => {
                write!(f, "cannot listen on {addr} ({what}): {source}")
            }
            Error::Source(e) => write!(f, "--endpoints: {e}"),
        }
    }
}

impl std::error::Error for Error {}

enum Source {
    File(FileSource),
    Kubernetes(KubernetesSource),
}

/// A balancer with its listeners bound and its source opened.
pub struct Balancer {
    config: Config,
    listener: TcpListener,
    admin: Option<TcpListener>,
    drain: Drain,
    set: Arc<EndpointSet>,
    metrics: Arc<Metrics>,
    source: Source,
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balancer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

// === impl Balancer ===

impl Balancer {
    /// Opens the source (a file is read now: one that is missing or broken
    /// fails here), binds the listener and the admin port. Call inside a
    /// tokio runtime.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        let set = EndpointSet::new(config.policy);
        let metrics = Arc::new(Metrics::default());
        let source = match &config.source {
            SourceSpec::File(path) => Source::File(
                FileSource::start(path.clone(), config.port.clone(), &set, &metrics)
                    .map_err(Error::Source)?,
            ),
            SourceSpec::Kubernetes {
                namespace,
                service,
                port,
            } => {
                let port = match (port, &config.port) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(Error::Source(format!(
                            "the port is given twice, {a} in the source and {b} by --port: keep one"
                        )))
                    }
                    (Some(p), _) | (None, Some(p)) => Some(p.clone()),
                    (None, None) => None,
                };
                Source::Kubernetes(
                    KubernetesSource::new(namespace.clone(), service.clone(), port)
                        .await
                        .map_err(Error::Source)?,
                )
            }
        };
        let bind = |what, addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { what, addr, source })
        };
        let listener = bind("--listen", config.listen).await?;
        let admin = match config.admin {
            Some(addr) => Some(bind("--admin", addr).await?),
            None => None,
        };
        Ok(Balancer {
            drain: Drain::with_timing(config.timing),
            config,
            listener,
            admin,
            set,
            metrics,
            source,
        })
    }

    /// The drain this balancer follows: trigger it to begin.
    pub fn drain(&self) -> Drain {
        self.drain.clone()
    }

    /// Where the listener is bound (useful with port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The endpoint set.
    pub fn set(&self) -> Arc<EndpointSet> {
        self.set.clone()
    }

    /// Serves until a drain was triggered and is over; returns what it
    /// found. The source, health checks and admin port run on until the
    /// process ends, so probes keep their answers.
    pub async fn run(self) -> Report {
        let Balancer {
            config,
            listener,
            admin,
            drain,
            set,
            metrics,
            source,
        } = self;
        info!(
            listen = %config.listen,
            mode = %config.mode,
            endpoints = %config.source,
            algorithm = %config.policy.algorithm,
            admin = ?config.admin,
            "balancer listening"
        );
        match source {
            Source::File(file) => {
                tokio::spawn(file.watch(set.clone(), metrics.clone()));
            }
            Source::Kubernetes(kube) => {
                tokio::spawn(kube.watch(set.clone(), metrics.clone()));
                // SIGHUP reloads a file source; here it must not end the
                // process (its default action).
                if let Ok(mut hup) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                {
                    tokio::spawn(async move {
                        while hup.recv().await.is_some() {
                            info!("SIGHUP: the Kubernetes source follows its watch, nothing to read again");
                        }
                    });
                }
            }
        }
        if let Some(check) = config.health.clone() {
            tokio::spawn(health::run(check, set.clone()));
        }
        let connector = Arc::new(Connector {
            set: set.clone(),
            metrics: metrics.clone(),
            timeout: config.connect_timeout,
            retries: config.connect_retries,
        });
        let requests = match config.mode {
            Mode::Http => Some(http_mode::start(
                listener,
                &drain,
                connector,
                config.http.clone(),
            )),
            Mode::Tcp => {
                tokio::spawn(accept_until_closing(
                    listener,
                    drain.watch(),
                    move |stream, peer, watch| {
                        let connector = connector.clone();
                        async move {
                            relay_tcp(stream, peer, watch, connector).await;
                        }
                    },
                ));
                None
            }
        };
        if let Some(admin) = admin {
            tokio::spawn(
                Admin {
                    drain: drain.clone(),
                    set,
                    metrics,
                    requests: requests.clone(),
                    source: config.source.to_string(),
                    allow_remote: config.admin_allow_remote,
                }
                .serve(admin),
            );
        }
        let report = drain.run().await;
        if let Some(requests) = requests {
            requests.drained(report.duration.as_secs_f64());
        }
        report
    }
}
