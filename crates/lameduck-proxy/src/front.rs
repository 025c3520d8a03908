//! The proxy's HTTP side as one piece: a client connection is told apart
//! (HTTP/1.1 or h2c), HTTP/1.1 goes through the proxy's own engine and
//! HTTP/2 through hyper, both to the upstream of a [`Connector`], which
//! dials one fixed address or asks a [`Dial`] (a balancer) request by
//! request.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use lameduck::http::{ConnEnd, HttpServer, Protocol};
use lameduck::{Drain, Watch};
use tokio::net::TcpStream;
use tracing::debug;

use crate::config::UpstreamProtocol;
use crate::dial::Dial;
use crate::forward::{Forward, Shared};
use crate::h1;
use crate::metrics::{self, Metrics};
use crate::upstream::{self, Connector};

/// Serves HTTP client connections towards an upstream.
#[derive(Debug)]
pub struct HttpFront {
    server: Arc<HttpServer>,
    shared: Arc<Shared>,
    /// The HTTP/1.1 engine, for an HTTP/1.1 upstream.
    engine: Option<Arc<h1::Engine>>,
}

/// What an [`HttpFront`] over a [`Dial`] is told.
#[derive(Debug)]
pub struct FrontConfig {
    /// The `Host` of requests that bring none (HTTP/1.0), and the name of
    /// the upstream in logs.
    pub authority: Authority,
    /// Limits and timeouts towards clients.
    pub http: HttpServer,
    /// How long the upstream may take to begin its answer once it has the
    /// whole request; `None` waits as long as the client does.
    pub upstream_timeout: Option<Duration>,
    /// The drain the client connections follow.
    pub drain: Drain,
    /// Where requests and connections are counted.
    pub metrics: Arc<Metrics>,
}

// === impl HttpFront ===

impl HttpFront {
    /// The HTTP side of the drain proxy, over `connector`.
    pub(crate) fn new(
        connector: Connector,
        protocol: UpstreamProtocol,
        config: FrontConfig,
    ) -> Self {
        let FrontConfig {
            authority,
            http,
            upstream_timeout,
            drain,
            metrics,
        } = config;
        let shared = Arc::new(Shared {
            client: upstream::client(connector.clone(), protocol),
            h1_upstream: (protocol == UpstreamProtocol::Http1).then(|| Arc::new(connector.clone())),
            protocol,
            upstream: authority.clone(),
            drain: drain.clone(),
            metrics: metrics.clone(),
            upstream_timeout,
        });
        let server = Arc::new(http);
        // HTTP/1.1 to an HTTP/1.1 upstream goes through the engine; to an
        // HTTP/2 upstream, through hyper's client.
        let engine = (protocol == UpstreamProtocol::Http1).then(|| {
            Arc::new(h1::Engine {
                connector,
                metrics,
                phase: drain.watch().phase_view(),
                drain,
                upstream: authority,
                upstream_timeout,
                limits: h1::parse::Limits {
                    max_head: server.max_header_bytes,
                    max_headers: server.max_headers,
                },
                server: server.clone(),
                shared: shared.clone(),
                wake: Default::default(),
                ticks: Default::default(),
            })
        });
        if let Some(engine) = &engine {
            tokio::spawn(h1::tick(engine.clone()));
        }
        HttpFront {
            server,
            shared,
            engine,
        }
    }

    /// HTTP/1.1 and h2c from clients, HTTP/1.1 to the connections `dial`
    /// hands out, request by request (a balancer's HTTP mode).
    pub fn dialing(dial: Arc<dyn Dial>, config: FrontConfig) -> Self {
        let connector = Connector::dialing(config.authority.as_str(), dial, config.metrics.clone());
        HttpFront::new(connector, UpstreamProtocol::Http1, config)
    }

    /// Serves one client connection from `peer` until it closes, following
    /// `watch`. A plain `fn` returning an `async` block that keeps its
    /// arguments once (an `async fn` copies them into its state a second
    /// time): the task of every idle connection is sized by it.
    pub fn serve(
        self: &Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        watch: Watch,
    ) -> impl Future<Output = ()> + Send + 'static {
        let front = self.clone();
        let accepted: Accepted = Box::new((stream, peer, watch));
        async move {
            // Boxed: its timer and peek would otherwise size the task of
            // every connection for its whole life, idle ones too.
            let protocol = match Box::pin(front.server.detect(&accepted.0, &accepted.2)).await {
                Ok(Some(p)) => p,
                Ok(None) => return,
                Err(e) => {
                    let peer = accepted.1;
                    return debug!(%peer, error = %e, "connection closed before a request");
                }
            };
            let label = match protocol {
                Protocol::Http1 => metrics::Protocol::Http1,
                Protocol::Http2 => metrics::Protocol::Http2,
            };
            front.shared.metrics.accepted(label);
            if protocol == Protocol::Http1 {
                // Matched on the place itself: a temporary here would be
                // kept in the state of every connection.
                if let Some(engine) = &front.engine {
                    // The engine logged the refusal with the client's address.
                    if let ConnEnd::BadRequest(_) = serve_h1(accepted, engine.clone()).await {
                        front.shared.metrics.outcome(metrics::Outcome::Rejected);
                    }
                    return;
                }
            }
            let (stream, peer, watch) = *accepted;
            let metrics = front.shared.metrics.clone();
            let _open = metrics.connection(label);
            let service = Forward::new(front.shared.clone(), peer);
            // Boxed: hyper's connection state would otherwise size the task
            // of every connection, HTTP/1.1 ones waiting idle in the engine too.
            match Box::pin(front.server.serve(stream, protocol, service, watch)).await {
                ConnEnd::Closed => {}
                ConnEnd::Cut => metrics.cut(label),
                ConnEnd::BadRequest(status) => {
                    debug!(%peer, %status, "request refused before a service saw it");
                    metrics.outcome(metrics::Outcome::Rejected);
                }
            }
        }
    }
}

/// A connection as accepted, boxed until its protocol is known: the task
/// of every connection then holds it once, in the state of whoever serves
/// it, and not a second time in its own.
type Accepted = Box<(TcpStream, SocketAddr, Watch)>;

/// The engine's future for an accepted connection, unboxed.
#[allow(clippy::boxed_local)] // the box is what keeps the caller's state small
fn serve_h1(accepted: Accepted, engine: Arc<h1::Engine>) -> impl Future<Output = ConnEnd> + Send {
    let (stream, peer, watch) = *accepted;
    h1::serve(stream, peer, watch, engine)
}

#[cfg(test)]
mod sizes {
    use super::*;
    use tokio::net::TcpListener;

    /// A front to an HTTP/1.1 upstream that is never dialled.
    fn front(drain: &Drain) -> Arc<HttpFront> {
        let metrics = Arc::new(Metrics::new());
        let connector = Connector::new("127.0.0.1:1", Duration::from_secs(1), 10, metrics.clone());
        Arc::new(HttpFront::new(
            connector,
            UpstreamProtocol::Http1,
            FrontConfig {
                authority: "127.0.0.1:1".parse().expect("authority"),
                http: HttpServer::default(),
                upstream_timeout: None,
                drain: drain.clone(),
                metrics,
            },
        ))
    }

    /// The task of an idle HTTP/1.1 connection is its future: what it holds
    /// while it waits for the next head is the memory of every idle
    /// keep-alive connection (bench/RESULTS.md measures it whole).
    #[tokio::test]
    async fn the_future_of_an_idle_connection_stays_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (stream, peer) = listener.accept().await.expect("accept");
        let drain = Drain::new();
        let front = front(&drain);
        let engine = front.engine.clone().expect("an HTTP/1.1 engine");
        let h1 = h1::serve(stream, peer, drain.watch(), engine);
        eprintln!("h1::serve: {} bytes", std::mem::size_of_val(&h1));
        drop(h1);
        let (stream, peer) = {
            let _c = TcpStream::connect(addr).await.expect("connect");
            listener.accept().await.expect("accept")
        };
        let task = front.serve(stream, peer, drain.watch());
        eprintln!("HttpFront::serve: {} bytes", std::mem::size_of_val(&task));
        // 352 bytes in a debug build (344 in release, in a 512-byte task
        // cell): a timer or a finished request's result kept across the
        // idle wait would show here.
        assert!(std::mem::size_of_val(&task) <= 512);
    }

    /// An HTTP/2 stream's future is boxed for every stream. From 1,008
    /// bytes on, glibc serves such a box from its arena whenever its
    /// per-thread cache has none of the size (100 streams in flight), and
    /// first consolidates its free small chunks: 1% of the proxy's time
    /// under h2load when it was 2 KiB.
    #[tokio::test]
    async fn the_future_of_an_http2_stream_stays_under_the_allocators_cache_size() {
        let front = front(&Drain::new());
        let size = crate::forward::stream_future_size(front.shared.clone())
            .expect("a way to an HTTP/1.1 upstream");
        eprintln!("an HTTP/2 stream's future: {size} bytes");
        // 976 bytes in debug and release builds; holding the whole URI
        // again would make it 1,064.
        assert!(size <= 1000, "{size} bytes");
    }
}
