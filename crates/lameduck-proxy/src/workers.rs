//! `--workers N`: N single-threaded runtimes, each on its own thread with
//! its own listener on the same address (`SO_REUSEPORT`, so the kernel
//! spreads new connections over them, as HAProxy's `nbthread` with a
//! listener per thread and Envoy's workers do).
//!
//! A worker owns everything a connection touches on its way: its accept
//! loop, its connections' tasks, its idle upstream connections (the
//! HTTP/1.1 engine's pool is per thread) and its own pooled hyper client
//! for HTTP/2 upstreams. What the workers share is what must be one for the
//! process: the drain (one readiness, one delay, one deadline, every
//! worker's listener closed at `Closing`), the upstream connection limit
//! (one semaphore), the metrics, and the admin port and the readiness probe,
//! which run on the first worker, the caller's runtime.
//!
//! With one worker (the default) nothing changes: no thread is started and
//! the listener is bound without `SO_REUSEPORT`.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;

use lameduck::{accept_until_closing, Drain, Watch};
use lameduck_core::Phase;
use tokio::net::{TcpListener, TcpSocket};
use tokio::runtime::Runtime;
use tracing::debug;

use crate::front::{FrontConfig, HttpFront};
use crate::metrics::Metrics;
use crate::upstream::Connector;
use crate::{h1, serve_tcp, Config, Error, Mode};

/// The backlog of each listener: what tokio's `TcpListener::bind` uses.
const BACKLOG: u32 = 1024;

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct Common {
    /// The proxy's configuration.
    pub config: Config,
    /// Dials the upstream; its clones share one connection limit.
    pub connector: Connector,
    /// The one drain.
    pub drain: Drain,
    /// The one set of metrics.
    pub metrics: Arc<Metrics>,
}

/// Workers past the first, bound and waiting on their threads for the
/// proxy to run; dropped unrun, they end.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    go: Vec<mpsc::Sender<(Arc<Common>, Watch)>>,
}

impl Waiting {
    /// Starts every waiting worker serving, each with its own watch of the
    /// drain taken now, so the drain waits for their listeners.
    pub fn start(self, common: &Arc<Common>) {
        for go in self.go {
            // A worker whose thread is gone has nothing to serve.
            let _ = go.send((common.clone(), common.drain.watch()));
        }
    }
}

/// Binds the first worker's listener on the caller's runtime and, for more
/// than one worker, the others on runtimes of their own, each on a thread
/// waiting for [`Waiting::start`]. Every fallible step happens here, so a
/// proxy that cannot start all its workers fails before it serves.
pub(crate) async fn bind(
    listen: SocketAddr,
    count: usize,
) -> Result<(TcpListener, Waiting), Error> {
    let bind_error = |source| Error::Bind {
        what: "--listen",
        addr: listen,
        source,
    };
    if count <= 1 {
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        return Ok((listener, Waiting::default()));
    }
    // SO_REUSEPORT would also let these listeners join another process's
    // on the same port (a second proxy of the same user started by
    // mistake) and split its clients silently: a plain bind first fails
    // with "address in use" as one worker's would.
    if listen.port() != 0 {
        drop(std::net::TcpListener::bind(listen).map_err(bind_error)?);
    }
    let first = shared_listener(listen).map_err(bind_error)?;
    // Port 0 picked a port: the other workers join that one.
    let addr = first.local_addr().map_err(bind_error)?;
    let mut waiting = Waiting::default();
    for worker in 1..count {
        let runtime = runtime()?;
        let listener = {
            let _inside = runtime.enter();
            shared_listener(addr).map_err(bind_error)?
        };
        let (go, started) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("lameduck-proxy-{worker}"))
            .spawn(move || run_worker(worker, runtime, listener, started))
            .map_err(Error::Thread)?;
        waiting.go.push(go);
    }
    Ok((first, waiting))
}

/// A tokio runtime for one worker: one thread.
pub(crate) fn runtime() -> Result<Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// A listener on `addr` that other workers' listeners may share.
fn shared_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The thread of worker `worker`: waits to be started, serves its listener,
/// then keeps its connections' tasks running until the proxy is finished
/// ([`Phase::Exited`]) or the process exits.
fn run_worker(
    worker: usize,
    runtime: Runtime,
    listener: TcpListener,
    started: mpsc::Receiver<(Arc<Common>, Watch)>,
) {
    let Ok((common, watch)) = started.recv() else {
        return;
    };
    runtime.block_on(async move {
        debug!(worker, "worker serving");
        serve(listener, worker, watch, &common);
        common.drain.reached(Phase::Exited).await;
    });
}

/// Closes this worker's idle upstream connections whenever a connection
/// of any worker had to wait for a slot of the one
/// `--max-upstream-connections` limit: idle connections kept by a worker
/// whose clients went quiet would otherwise hold slots another worker needs
/// until it next looks at its pool. (A connection that finishes its
/// exchange while one waits is closed instead of kept: see
/// `UpstreamConn::is_wanted`.)
async fn release_idle_on_pressure(connector: Connector) {
    let mut pressure = connector.pressure();
    let address = connector.address().clone();
    while pressure.changed().await.is_ok() {
        h1::pool::drop_idle(&address);
    }
}

/// Serves `listener` as worker `worker` on the current runtime, until the
/// drain closes it: spawns its accept loop, with this worker's own hyper
/// client and HTTP/1.1 engine.
pub(crate) fn serve(listener: TcpListener, worker: usize, watch: Watch, common: &Common) {
    let Common {
        config,
        connector,
        drain,
        metrics,
    } = common;
    if config.workers.count() > 1 {
        tokio::spawn(release_idle_on_pressure(connector.clone()));
    }
    match config.mode {
        Mode::Http => {
            // This worker's own hyper client and HTTP/1.1 engine.
            let front = Arc::new(HttpFront::new(
                connector.clone(),
                config.upstream_protocol,
                FrontConfig {
                    authority: config.upstream.authority().clone(),
                    http: config.http.clone(),
                    upstream_timeout: config.upstream_timeout,
                    drain: drain.clone(),
                    metrics: metrics.clone(),
                },
            ));
            let metrics = metrics.clone();
            tokio::spawn(accept_until_closing(
                listener,
                watch,
                move |stream, peer, watch| {
                    metrics.worker_accepted(worker);
                    front.serve(stream, peer, watch)
                },
            ));
        }
        Mode::Tcp => {
            let metrics = metrics.clone();
            let connector = connector.clone();
            tokio::spawn(accept_until_closing(
                listener,
                watch,
                move |stream, peer, watch| {
                    metrics.worker_accepted(worker);
                    serve_tcp(stream, peer, watch, connector.clone(), metrics.clone())
                },
            ));
        }
    }
}
