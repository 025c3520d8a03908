//! The per-connection bookkeeping of the HTTP server: requests in flight,
//! and the `Connection: close` an HTTP/1.1 answer carries once draining.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use std::error::Error as StdError;

use bytes::Buf;
use http::header::{HeaderValue, CONNECTION, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tracing::debug;

use super::h2c::{headers_frame, preface_then, wants_h2c, Prefixed};
use super::{HttpServer, HttpService};
use crate::drain::Watch;

/// What one connection's tasks share.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    in_flight: AtomicUsize,
    /// Woken when a request starts or the last one in flight ends.
    pub(crate) changed: Notify,
}

impl ConnState {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        InFlight(self.clone())
    }
}

/// One request in flight; ends when dropped.
#[derive(Debug)]
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// Wraps the user's service: counts requests in flight until their response
/// body is sent, and asks HTTP/1.1 clients to close once draining.
#[derive(Debug, Clone)]
pub(crate) struct Tracked<S> {
    pub(crate) inner: S,
    pub(crate) state: Arc<ConnState>,
    pub(crate) watch: Watch,
    /// On HTTP/1.1 connections: the server that takes `Upgrade: h2c`.
    pub(crate) h2c: Option<Arc<HttpServer>>,
}

impl<S, B> Service<Request<Incoming>> for Tracked<S>
where
    S: HttpService<B> + Service<Request<Incoming>, Response = Response<B>>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        if let Some(server) = self.h2c.as_ref().filter(|_| wants_h2c(&req)) {
            if let Some(first_request) = headers_frame(&req) {
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(serve_upgraded_h2c(
                    upgrade,
                    first_request,
                    server.clone(),
                    self.inner.clone(),
                    self.watch.clone(),
                ));
                let mut res = Response::new(TrackedBody::empty());
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                res.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("upgrade"));
                res.headers_mut()
                    .insert(UPGRADE, HeaderValue::from_static("h2c"));
                return Box::pin(async move { Ok(res) });
            }
        }
        let guard = self.state.start();
        let http1 = req.version() < Version::HTTP_2;
        let watch = self.watch.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            // Read the phase when the answer is ready, not when the request
            // came: a long request that began before the drain still tells
            // its client to move.
            if http1 && watch.phase().is_stopping() {
                res.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(res.map(|body| TrackedBody {
                inner: Some(body),
                guard: Some(guard),
            }))
        })
    }
}

/// Serves the connection upgraded to h2c, its first request fed in as
/// stream 1. Boxed: it runs a [`Tracked`] service itself.
fn serve_upgraded_h2c<S, B>(
    upgrade: hyper::upgrade::OnUpgrade,
    first_request: bytes::Bytes,
    server: Arc<HttpServer>,
    service: S,
    watch: Watch,
) -> Pin<Box<dyn Future<Output = ()> + Send>>
where
    S: HttpService<B>,
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    Box::pin(async move {
        let mut io = match upgrade.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => return debug!(error = %e, "h2c upgrade did not complete"),
        };
        let preface = tokio::time::timeout(
            server.header_read_timeout,
            preface_then(&mut io, first_request),
        )
        .await;
        let prefix = match preface {
            Ok(Ok(prefix)) => prefix,
            Ok(Err(e)) => return debug!(error = %e, "h2c upgrade failed"),
            Err(_) => return debug!("h2c upgrade: no preface within the header read timeout"),
        };
        server
            .serve_http2(Prefixed { prefix, io }, service, watch)
            .await;
    })
}

/// A response body that ends its request's [`InFlight`] once sent (or
/// dropped, when the client went away).
#[derive(Debug)]
pub struct TrackedBody<B> {
    /// `None` for an empty body of lameduck's own (a `101`).
    inner: Option<B>,
    guard: Option<InFlight>,
}

impl<B> TrackedBody<B> {
    fn empty() -> Self {
        TrackedBody {
            inner: None,
            guard: None,
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body + Unpin,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
