//! The per-connection bookkeeping of the HTTP server: requests in flight,
//! and the `Connection: close` an HTTP/1.1 answer carries once draining.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
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
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Duration, Instant};
use tracing::debug;

use super::h2c::{headers_frame, preface_then, wants_h2c, Prefixed};
use super::{HttpServer, HttpService};
use crate::drain::{PhaseView, Watch};

/// What one connection's tasks share. Kept to atomics: it is touched twice
/// per request, and waking the connection's task for it would cost more.
#[derive(Debug)]
pub(crate) struct ConnState {
    in_flight: AtomicUsize,
    /// Whether the last write to the socket was left waiting for room.
    write_pending: AtomicBool,
    /// The status of a request refused here (0: none).
    rejected: AtomicU16,
    /// Whether any request began on the connection.
    used: AtomicBool,
    /// When the connection last became idle, in nanoseconds after `base`.
    idle_since: AtomicU64,
    base: Instant,
}

impl ConnState {
    pub(crate) fn new() -> Self {
        ConnState {
            in_flight: AtomicUsize::new(0),
            write_pending: AtomicBool::new(false),
            rejected: AtomicU16::new(0),
            used: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Nothing in flight and nothing waiting to be written: the connection
    /// may close without losing anything.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight() == 0 && !self.write_pending.load(Ordering::Acquire)
    }

    /// No request ever began and nothing waits to be written: a connection
    /// that only said hello (an HTTP/2 preface) holds nothing.
    pub(crate) fn is_unused(&self) -> bool {
        !self.used.load(Ordering::Acquire) && !self.write_pending.load(Ordering::Acquire)
    }

    /// The status a request on this connection was refused with, if any.
    pub(crate) fn rejected(&self) -> Option<StatusCode> {
        StatusCode::from_u16(self.rejected.load(Ordering::Acquire)).ok()
    }

    /// When the last request in flight ended (or the connection began).
    pub(crate) fn idle_since(&self) -> Instant {
        self.base + Duration::from_nanos(self.idle_since.load(Ordering::Acquire))
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.used.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

/// One request in flight; ends when dropped.
#[derive(Debug)]
struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let nanos = self.0.base.elapsed().as_nanos();
            self.0
                .idle_since
                .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Release);
        }
    }
}

/// A connection's socket that records in [`ConnState`] whether the last
/// write had to wait for room: a response flushed to the kernel is done,
/// one still in hyper's buffer is not.
#[derive(Debug)]
pub(crate) struct WriteWatched<I> {
    pub(crate) io: I,
    pub(crate) state: Arc<ConnState>,
}

impl<I> WriteWatched<I> {
    fn note<T>(&self, polled: Poll<T>) -> Poll<T> {
        self.state
            .write_pending
            .store(polled.is_pending(), Ordering::Release);
        polled
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteWatched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteWatched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.note(polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.note(polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.note(polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Wraps the user's service: counts requests in flight until their response
/// body is sent, and asks HTTP/1.1 clients to close once draining.
#[derive(Debug, Clone)]
pub(crate) struct Tracked<S> {
    pub(crate) inner: S,
    pub(crate) state: Arc<ConnState>,
    /// The drain's phase; not counted as open work (the connection is).
    pub(crate) view: PhaseView,
    /// On HTTP/1.1 connections: the server that takes `Upgrade: h2c`.
    pub(crate) h2c: Option<Arc<HttpServer>>,
    /// On HTTP/1.1 connections: the largest request head taken. hyper's
    /// read buffer bounds a head only when it comes in several reads.
    pub(crate) max_head: Option<usize>,
    /// On HTTP/1.1 connections with a max age: when the connection reaches
    /// it; answers ready from then on carry `Connection: close`.
    pub(crate) age: Option<Instant>,
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
    type Future = TrackedFuture<S::Future>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        if let Some(max) = self.max_head.filter(|max| head_len(&req) > *max) {
            debug!(max, "request head too large: 431");
            let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            self.state
                .rejected
                .store(status.as_u16(), Ordering::Release);
            let mut res = Response::new(());
            *res.status_mut() = status;
            res.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return TrackedFuture::Ready { res: Some(res) };
        }
        if let Some(server) = self.h2c.as_ref().filter(|_| wants_h2c(&req)) {
            if let Some(first_request) = headers_frame(&req) {
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(serve_upgraded_h2c(
                    upgrade,
                    first_request,
                    server.clone(),
                    self.inner.clone(),
                    self.view.watch(),
                    self.age,
                ));
                let mut res = Response::new(());
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                res.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("upgrade"));
                res.headers_mut()
                    .insert(UPGRADE, HeaderValue::from_static("h2c"));
                return TrackedFuture::Ready { res: Some(res) };
            }
        }
        let guard = self.state.start();
        let http1 = req.version() < Version::HTTP_2;
        TrackedFuture::Call {
            fut: self.inner.call(req),
            guard: Some(guard),
            // Read when the answer is ready, not when the request came: a
            // long request that began before the drain still tells its
            // client to move.
            close_when_draining: http1.then(|| self.view.clone()),
            age: self.age.filter(|_| http1),
        }
    }
}

pin_project! {
    /// The future of [`Tracked`]: the user's, whose answer it marks.
    #[project = TrackedProj]
    pub(crate) enum TrackedFuture<F> {
        Call {
            #[pin]
            fut: F,
            guard: Option<InFlight>,
            close_when_draining: Option<PhaseView>,
            age: Option<Instant>,
        },
        Ready {
            res: Option<Response<()>>,
        },
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            TrackedProj::Call {
                fut,
                guard,
                close_when_draining,
                age,
            } => {
                let mut res = std::task::ready!(fut.poll(cx))?;
                // Past the connection's age, the answer closes it as one
                // from `Draining` on does. The clock is read only when
                // the server has an age.
                let aged = || age.is_some_and(|at| Instant::now() >= at);
                if close_when_draining
                    .as_ref()
                    .is_some_and(|p| p.get().is_stopping())
                    || aged()
                {
                    res.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                let guard = guard.take();
                Poll::Ready(Ok(res.map(|body| TrackedBody {
                    inner: Some(body),
                    guard,
                })))
            }
            TrackedProj::Ready { res } => {
                let res = res.take().map(|r| {
                    r.map(|_| TrackedBody {
                        inner: None,
                        guard: None,
                    })
                });
                match res {
                    Some(res) => Poll::Ready(Ok(res)),
                    // Polled again after it was ready: a caller's bug.
                    None => Poll::Pending,
                }
            }
        }
    }
}

/// The size of an HTTP/1.1 request head as sent: request line, fields
/// with their `: ` and line ends, the empty line.
fn head_len<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    req.headers().iter().fold(line + 2, |n, (name, value)| {
        n + name.as_str().len() + 2 + value.len() + 2
    })
}

/// Serves the connection upgraded to h2c, its first request fed in as
/// stream 1. Boxed: it runs a [`Tracked`] service itself.
fn serve_upgraded_h2c<S, B>(
    upgrade: hyper::upgrade::OnUpgrade,
    first_request: bytes::Bytes,
    server: Arc<HttpServer>,
    service: S,
    watch: Watch,
    age: Option<Instant>,
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
            .serve_http2(Prefixed { prefix, io }, service, watch, age)
            .await;
    })
}

/// A response body that ends its request's time in flight once sent (or
/// dropped, when the client went away).
#[derive(Debug)]
pub struct TrackedBody<B> {
    /// `None` for an empty body of lameduck's own (a `101`).
    inner: Option<B>,
    guard: Option<InFlight>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_measured_as_sent() {
        let raw = "GET /p?q=1 HTTP/1.1\r\nhost: example\r\nx-a: bcd\r\n\r\n";
        let req = Request::get("/p?q=1")
            .header("host", "example")
            .header("x-a", "bcd")
            .body(())
            .expect("request");
        assert_eq!(head_len(&req), raw.len());
        let absolute = Request::get("http://example/p").body(()).expect("request");
        assert_eq!(
            head_len(&absolute),
            "GET http://example/p HTTP/1.1\r\n\r\n".len()
        );
    }
}
