//! The HTTPS server: `POST /mutate` and `POST /mutate-namespace` over TLS
//! (HTTP/2 or HTTP/1.1 by ALPN, keep-alive), beside the plain-HTTP admin
//! port, until SIGTERM or SIGINT.
//!
//! Every connection is its own task: a client that sends slowly holds only
//! its own connection, within a timeout, never another's review. On SIGTERM
//! the listener closes at once and the reviews under way are finished; run
//! the webhook under `lameduck run`, whose drain delay keeps it serving while
//! endpoints are updated.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use lameduck::{Drain, Phase, Watch};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

use crate::annotations::Scope;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::review::{self, Reply, MAX_BODY};
use crate::tls::CertStore;

/// How long a client may take for the TLS handshake, and to send a request
/// head or body: the API server gives a webhook at most 30 seconds.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The time the webhook gives itself to finish the reviews under way once
/// stopped (the drain's grace period: 2s of it are a safety margin).
const STOP_GRACE: Duration = Duration::from_secs(10);
/// What a client that speaks plain HTTP to the TLS port is told, as Go's
/// servers tell it, before the connection closes.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
/// The most of a refused body read and dropped before the stream is reset.
const DISCARD_LIMIT: usize = 4 * MAX_BODY;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What `lameduck webhook` serves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The HTTPS address the API server calls.
    pub listen: SocketAddr,
    /// The serving certificate chain (PEM), read again when it changes.
    pub tls_cert: PathBuf,
    /// Its private key (PEM).
    pub tls_key: PathBuf,
    /// The plain-HTTP admin address (`/ready`, `/live`, `/metrics`).
    pub admin: Option<SocketAddr>,
    /// The lameduck image the init container copies the binary from.
    pub image: String,
}

/// What every connection shares.
struct Shared {
    image: String,
    metrics: Arc<Metrics>,
}

/// Serves until SIGTERM or SIGINT and the reviews under way are answered.
/// Fails when the certificate cannot be used or an address bound.
pub fn serve(config: Config) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(serve_async(config))
}

async fn serve_async(config: Config) -> Result<(), Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let store = Arc::new(CertStore::load(
        &config.tls_cert,
        &config.tls_key,
        provider,
    )?);
    let acceptor = TlsAcceptor::from(Arc::new(store.clone().server_config()?));
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })
    };
    let listener = bind(config.listen).await?;
    let admin = match config.admin {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let drain = Drain::builder()
        .drain_delay(Duration::ZERO)
        .grace_period(STOP_GRACE)
        .build();
    drain.listen_for_signals().map_err(Error::Runtime)?;
    let metrics = Arc::new(Metrics::new());
    tokio::spawn(store.watch(metrics.clone()));
    if let Some(admin) = admin {
        let local = admin.local_addr().map_err(Error::Runtime)?;
        let (probed, metrics) = (drain.clone(), metrics.clone());
        let service =
            service_fn(move |req| crate::admin::handle(req, probed.clone(), metrics.clone()));
        tokio::spawn(lameduck::http::serve(admin, drain.clone(), service));
        info!(%local, "admin: /ready, /live, /metrics");
    }
    let local = listener.local_addr().map_err(Error::Runtime)?;
    let shared = Arc::new(Shared {
        image: config.image,
        metrics,
    });
    tokio::spawn(lameduck::accept_until_closing(
        listener,
        drain.watch(),
        move |stream, peer, watch| {
            connection(stream, peer, watch, acceptor.clone(), shared.clone())
        },
    ));
    info!(%local, "webhook serving https://{local}/mutate and /mutate-namespace");
    let report = drain.run().await;
    info!(took = ?report.duration, "webhook stopped");
    Ok(())
}

/// One client connection: TLS, then HTTP/2 or HTTP/1.1 until the client
/// leaves or the webhook stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    mut watch: Watch,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    match tokio::time::timeout(CLIENT_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if first[0] != TLS_HANDSHAKE {
        debug!(%peer, "plain HTTP on the TLS port: answered 400 and closed");
        shared.metrics.handshake_failed();
        let mut stream = stream;
        let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
        let _ = stream.shutdown().await;
        return;
    }
    let tls = match tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "TLS handshake failed");
            shared.metrics.handshake_failed();
            return;
        }
        Err(_) => {
            debug!(%peer, "TLS handshake timed out");
            shared.metrics.handshake_failed();
            return;
        }
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let io = TokioIo::new(tls);
    let service = service_fn(move |req| review_request(req, shared.clone()));
    // The same steps for either protocol: serve until the client leaves;
    // once the webhook stops, finish what is under way (HTTP/2 GOAWAY,
    // HTTP/1.1 closes after the answer), and cut it at the deadline.
    macro_rules! drive {
        ($conn:expr) => {{
            let mut conn = pin!($conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r { debug!(%peer, error = %e, "connection ended with an error"); }
                    return;
                }
                () = watch.reached(Phase::Closing) => conn.as_mut().graceful_shutdown(),
            }
            tokio::select! {
                _ = conn.as_mut() => {}
                () = watch.reached(Phase::Stopping) => debug!(%peer, "connection cut at the deadline"),
            }
        }};
    }
    if h2 {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new());
        drive!(builder.serve_connection(io, service));
    } else {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(CLIENT_TIMEOUT);
        drive!(builder.serve_connection(io, service));
    }
}

/// Routes and answers one request.
async fn review_request(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let reply = match (req.method(), req.uri().path()) {
        (&Method::POST, "/mutate") => read_and_answer(req, Scope::PodOptIn, &shared.image).await,
        (&Method::POST, "/mutate-namespace") => {
            read_and_answer(req, Scope::Namespace, &shared.image).await
        }
        (_, path) => {
            let reply = if matches!(path, "/mutate" | "/mutate-namespace") {
                review::bad_request(405, "method not allowed: POST an AdmissionReview".into())
            } else {
                review::bad_request(
                    404,
                    format!("no webhook at {path:?}: POST to /mutate or /mutate-namespace"),
                )
            };
            let deadline = tokio::time::Instant::now() + CLIENT_TIMEOUT;
            tokio::spawn(discard(req.into_body(), deadline));
            reply
        }
    };
    shared.metrics.reviewed(reply.outcome, started.elapsed());
    let mut res = Response::new(Full::new(Bytes::from(reply.body)));
    *res.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST);
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// Reads the body (at most [`MAX_BODY`], within [`CLIENT_TIMEOUT`]) and
/// answers the review in it.
async fn read_and_answer(req: Request<Incoming>, scope: Scope, image: &str) -> Reply {
    let too_large = || {
        review::bad_request(
            413,
            format!("the body is larger than {MAX_BODY} bytes, the API server's own limit for a request"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let deadline = tokio::time::Instant::now() + CLIENT_TIMEOUT;
    let mut body = req.into_body();
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        tokio::spawn(discard(body, deadline));
        return too_large();
    }
    let mut bytes = Vec::with_capacity(declared.map_or(16 * 1024, |n| n as usize));
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if bytes.len() + data.len() > MAX_BODY {
                        tokio::spawn(discard(body, deadline));
                        return too_large();
                    }
                    bytes.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(e))) => {
                return review::bad_request(400, format!("cannot read the body: {e}"))
            }
            Ok(None) => break,
            Err(_) => {
                return review::bad_request(
                    408,
                    format!("the body did not arrive within {CLIENT_TIMEOUT:?}"),
                )
            }
        }
    }
    review::answer(&bytes, scope, image)
}

/// Reads and drops the rest of a body refused as too large, so the client
/// gets the answer on a stream still open (HTTP/2 clients such as curl take
/// an early reset as an error), up to [`DISCARD_LIMIT`] and the deadline;
/// past those the stream is reset.
async fn discard(mut body: Incoming, deadline: tokio::time::Instant) {
    let mut dropped = 0usize;
    while dropped <= DISCARD_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                dropped += frame.data_ref().map_or(0, |d| d.len());
            }
            _ => return,
        }
    }
}
