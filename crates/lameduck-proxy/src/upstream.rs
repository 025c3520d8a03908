//! The way to the app: a connector that always dials the upstream, the
//! pooled HTTP client over it, and the start-up readiness probe.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::{debug, info};

use crate::config::UpstreamProtocol;

/// Dials the upstream whatever the request's authority says, so that the
/// request keeps the client's `Host`.
#[derive(Clone, Debug)]
pub struct Connector {
    upstream: Arc<str>,
    timeout: Duration,
}

impl Connector {
    /// A connector to `upstream` (`host:port`).
    pub fn new(upstream: &str, timeout: Duration) -> Self {
        Connector {
            upstream: upstream.into(),
            timeout,
        }
    }

    /// Opens one TCP connection to the upstream.
    pub async fn connect(&self) -> io::Result<TcpStream> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(&*self.upstream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect().await.map(TokioIo::new) })
    }
}

/// The pooled client to the upstream.
pub type UpstreamClient = Client<Connector, Incoming>;

/// A client that keeps connections to the upstream alive and reuses them.
pub fn client(connector: Connector, protocol: UpstreamProtocol) -> UpstreamClient {
    let mut builder = Client::builder(TokioExecutor::new());
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
            match connector.connect().await {
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
