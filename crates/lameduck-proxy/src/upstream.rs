//! The way to the app: a connector that always dials the upstream and
//! holds at most so many connections to it, the pooled HTTP client over it,
//! and the start-up readiness probe.

use std::any::Any;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{timeout_at, Instant};
use tracing::{debug, info};

use crate::body::ClientBody;
use crate::config::UpstreamProtocol;
use crate::dial::Dial;
use crate::metrics::{GaugeGuard, Metrics};

/// Dials the upstream whatever the request's authority says, so that the
/// request keeps the client's `Host`; never holds more than its limit of
/// connections (Envoy's circuit breaker, HAProxy's `maxconn` per server).
#[derive(Clone, Debug)]
pub struct Connector {
    upstream: Arc<str>,
    timeout: Duration,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    /// Whether hyper's client gives its HTTP/1.1 connections back to the
    /// engine's pool when done, rather than keeping them in its own.
    recycle: bool,
    /// Who chooses the upstream of each request instead of the one
    /// address, and keeps its idle connections (a balancer).
    dial: Option<Arc<dyn Dial>>,
    /// Bumped when every slot is taken: with `--workers`, other workers'
    /// idle connections may hold slots, and they let them go (see
    /// `workers::release_idle_on_pressure`).
    pressure: Arc<tokio::sync::watch::Sender<u64>>,
    /// How many connections wait for a slot right now: while any does, a
    /// connection done with its exchange is closed rather than kept idle.
    waiting: Arc<AtomicUsize>,
}

/// The upstream connection limit was reached and no connection came free
/// within the connect timeout.
#[derive(Debug)]
pub struct ConnectionLimit;

impl std::fmt::Display for ConnectionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every upstream connection is busy (--max-upstream-connections)")
    }
}

impl std::error::Error for ConnectionLimit {}

/// Whether `e`, or an error under it, is a [`ConnectionLimit`].
pub fn is_connection_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        let inner = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .map(|i| i as &(dyn std::error::Error + 'static));
        if e.is::<ConnectionLimit>() || inner.is_some_and(|i| i.is::<ConnectionLimit>()) {
            return true;
        }
        next = e.source();
    }
    false
}

impl Connector {
    /// A connector to `upstream` holding at most `max_connections`; a
    /// connection waits `timeout` for a free slot and the app's accept.
    pub fn new(
        upstream: &str,
        timeout: Duration,
        max_connections: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Connector {
            upstream: upstream.into(),
            timeout,
            slots: Arc::new(Semaphore::new(
                max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            metrics,
            recycle: false,
            dial: None,
            pressure: Arc::new(tokio::sync::watch::Sender::new(0)),
            waiting: Arc::default(),
        }
    }

    /// A connector whose connections `dial` chooses, request by request;
    /// `name` stands for the upstream in logs.
    pub fn dialing(name: &str, dial: Arc<dyn Dial>, metrics: Arc<Metrics>) -> Self {
        Connector {
            dial: Some(dial),
            ..Connector::new(name, Duration::MAX, Semaphore::MAX_PERMITS, metrics)
        }
    }

    /// A connection for one request: a kept one unless `fresh`, or a new
    /// one; `true` with a kept one (the app may have closed it meanwhile).
    pub async fn checkout(&self, fresh: bool) -> io::Result<(UpstreamConn, bool)> {
        if let Some(dial) = &self.dial {
            return dial.checkout(fresh).await;
        }
        if !fresh {
            if let Some(idle) = crate::h1::pool::take(&self.upstream) {
                return Ok((idle, true));
            }
        }
        // Boxed: opening is most of this future's size, and a kept
        // connection the common case. Every request's future holds this
        // one, and stays small without it.
        Box::pin(self.open()).await.map(|conn| (conn, false))
    }

    /// Keeps `conn`, which finished an exchange cleanly, for the next
    /// request.
    pub fn checkin(&self, conn: UpstreamConn) {
        match &self.dial {
            Some(dial) => dial.checkin(conn),
            None => crate::h1::pool::put(&self.upstream, conn),
        }
    }

    /// Changes whenever a connection had to wait for a slot.
    pub fn pressure(&self) -> tokio::sync::watch::Receiver<u64> {
        self.pressure.subscribe()
    }

    /// An idle connection the engine kept, or else opens one TCP
    /// connection to the upstream, once a slot is free (the
    /// longest waiter first); fails with [`ConnectionLimit`] when none came
    /// free within the connect timeout.
    pub async fn connect(&self) -> io::Result<UpstreamConn> {
        // A connection the HTTP/1.1 engine keeps idle holds a slot: it is
        // the first to use, whoever asks (hyper's client for HTTP/2).
        self.checkout(false).await.map(|(conn, _)| conn)
    }

    /// Opens one TCP connection to the upstream within the limit.
    async fn open(&self) -> io::Result<UpstreamConn> {
        // No deadline when the timeout is beyond the clock's reach.
        let deadline = Instant::now().checked_add(self.timeout);
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                self.pressure.send_modify(|n| *n = n.wrapping_add(1));
                let _waiting = SlotWaiter::new(&self.waiting);
                before(deadline, self.slots.clone().acquire_owned())
                    .await
                    .ok_or_else(|| io::Error::other(ConnectionLimit))?
                    .map_err(io::Error::other)?
            }
        };
        let stream = before(deadline, self.dial())
            .await
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        Ok(UpstreamConn {
            stream,
            _slot: Some(slot),
            waiting: Some(self.waiting.clone()),
            _open: self.metrics.upstream_connection(),
            tag: None,
        })
    }

    /// The upstream's `host:port`, the key of pooled connections.
    pub fn address(&self) -> &Arc<str> {
        &self.upstream
    }

    /// One TCP connection, outside the limit (for the readiness probe).
    async fn dial(&self) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(&*self.upstream).await?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Counts a connection waiting for a slot while it lives (also when the
/// wait is given up).
struct SlotWaiter<'a>(&'a AtomicUsize);

impl<'a> SlotWaiter<'a> {
    fn new(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        SlotWaiter(waiting)
    }
}

impl Drop for SlotWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl UpstreamConn {
    /// Whether another connection waits for the slot this one holds: then
    /// it is closed when done rather than kept idle.
    pub fn is_wanted(&self) -> bool {
        self.waiting
            .as_ref()
            .is_some_and(|w| w.load(Ordering::Acquire) > 0)
    }

    /// The socket, for readiness-driven reads and writes.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub(crate) fn with_tag(
        stream: TcpStream,
        metrics: &Metrics,
        tag: Box<dyn Any + Send + Sync>,
    ) -> Self {
        UpstreamConn {
            stream,
            _slot: None,
            waiting: None,
            _open: metrics.upstream_connection(),
            tag: Some(tag),
        }
    }

    pub(crate) fn tag_ref(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.tag.as_deref()
    }

    pub(crate) fn tag_ref_mut(&mut self) -> Option<&mut (dyn Any + Send + Sync)> {
        self.tag.as_deref_mut()
    }
}

/// `fut`'s output if it comes before `deadline` (any time without one).
async fn before<F: Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => timeout_at(deadline, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// A connection to the upstream, holding its slot until closed.
#[derive(Debug)]
pub struct UpstreamConn {
    stream: TcpStream,
    _slot: Option<OwnedSemaphorePermit>,
    /// The connector's count of connections waiting for a slot (none for a
    /// connection a [`Dial`] opened: it holds no slot).
    waiting: Option<Arc<AtomicUsize>>,
    _open: GaugeGuard,
    /// What a [`Dial`] tied to it.
    tag: Option<Box<dyn Any + Send + Sync>>,
}

impl AsyncRead for UpstreamConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpstreamConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Connection for UpstreamConn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// A connection lent to hyper's client. With `recycle`, a graceful
/// shutdown (hyper's at the end of a clean exchange) is not passed on: the
/// connection goes back to the engine's pool, so one pool of idle
/// connections serves HTTP/1.1 clients and HTTP/2 streams alike and no
/// idle connection of one holds a slot the other needs.
#[derive(Debug)]
pub struct Lent {
    /// Always `Some` until dropped.
    conn: Option<UpstreamConn>,
    recycle: Option<Arc<str>>,
    clean: bool,
    /// The dialer that takes it back instead of the engine's pool.
    dial: Option<Arc<dyn Dial>>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let (true, Some(address), Some(conn)) =
            (self.clean, self.recycle.take(), self.conn.take())
        {
            match &self.dial {
                Some(dial) => dial.checkin(conn),
                None => crate::h1::pool::put(&address, conn),
            }
        }
    }
}

impl Lent {
    fn io(&mut self) -> io::Result<Pin<&mut UpstreamConn>> {
        self.conn
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl AsyncRead for Lent {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io()?.poll_read(cx, buf)
    }
}

impl AsyncWrite for Lent {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io()?.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io()?.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.recycle.is_some() {
            self.clean = true;
            return Poll::Ready(Ok(()));
        }
        self.io()?.poll_shutdown(cx)
    }
}

impl Connection for Lent {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Lent>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let conn = this.connect().await?;
            Ok(TokioIo::new(Lent {
                conn: Some(conn),
                recycle: this.recycle.then(|| this.upstream.clone()),
                clean: false,
                dial: this.dial.clone(),
            }))
        })
    }
}

/// The pooled client to the upstream.
pub type UpstreamClient = Client<Connector, ClientBody>;

/// A client that keeps connections to the upstream alive and reuses them.
pub fn client(mut connector: Connector, protocol: UpstreamProtocol) -> UpstreamClient {
    let mut builder = Client::builder(TokioExecutor::new());
    if protocol == UpstreamProtocol::Http1 {
        // Idle HTTP/1.1 connections wait in the engine's pool (see `Lent`).
        connector.recycle = true;
        builder.pool_max_idle_per_host(0);
    }
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        // Below the shortest keep-alive timeout common in apps (Node's 5s),
        // so a pooled connection is rarely reused just as the app closes it.
        .pool_idle_timeout(Duration::from_secs(4))
        .http2_only(protocol == UpstreamProtocol::Http2)
        .retry_canceled_requests(true);
    builder.build(connector)
}

/// Whether the upstream accepted a connection since start-up.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Whether the upstream is up.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Dials the upstream until it accepts (every 50 ms at first, then up to
    /// every second), then marks it ready.
    pub async fn probe(&self, connector: &Connector) {
        let mut pause = Duration::from_millis(50);
        loop {
            match connector.dial().await {
                Ok(_) => {
                    self.0.store(true, Ordering::Release);
                    return info!(upstream = %connector.upstream, "upstream accepts connections: ready");
                }
                Err(e) => debug!(upstream = %connector.upstream, error = %e, "upstream not up yet"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
