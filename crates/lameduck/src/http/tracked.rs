//! The per-connection bookkeeping of the HTTP server: requests in flight,
//! and the `Connection: close` an HTTP/1.1 answer carries once draining.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http::header::{HeaderValue, CONNECTION};
use http::{Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::service::Service;
use tokio::sync::Notify;

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
}

impl<S, ReqB, B> Service<Request<ReqB>> for Tracked<S>
where
    S: Service<Request<ReqB>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, req: Request<ReqB>) -> Self::Future {
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
                inner: body,
                guard: Some(guard),
            }))
        })
    }
}

/// A response body that ends its request's [`InFlight`] once sent (or
/// dropped, when the client went away).
#[derive(Debug)]
pub struct TrackedBody<B> {
    inner: B,
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
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
