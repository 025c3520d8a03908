//! The client's request body on its way to the upstream, watched: whether
//! it was sent whole (the upstream's time to answer starts then) or broke
//! off malformed (the client's fault, a 400, not the upstream's).

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::sync::Notify;

/// How far the body got.
const SENDING: u8 = 0;
const SENT: u8 = 1;
const FAILED: u8 = 2;

/// What the forwarding side learns of a [`ClientBody`].
#[derive(Debug, Default)]
pub struct BodyState {
    state: AtomicU8,
    ended: Notify,
}

impl BodyState {
    fn end(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.ended.notify_waiters();
    }

    /// Whether reading the client's body failed (a malformed chunk, a
    /// length not met): the request's failure is the client's.
    pub fn failed(&self) -> bool {
        self.state.load(Ordering::Acquire) == FAILED
    }

    /// Resolves once the body was read to its end (at once for a request
    /// without a body); never, if it failed.
    pub async fn sent(&self) {
        loop {
            let ended = self.ended.notified();
            match self.state.load(Ordering::Acquire) {
                SENDING => ended.await,
                SENT => return,
                _ => std::future::pending().await,
            }
        }
    }
}

/// The client's body, streamed to the upstream as it comes.
#[derive(Debug)]
pub struct ClientBody {
    /// `None`: no body (a request sent again, whose body was empty).
    inner: Option<Incoming>,
    state: Arc<BodyState>,
}

impl ClientBody {
    /// Watches `inner`; the state is shared with the caller.
    pub fn new(inner: Incoming) -> (Self, Arc<BodyState>) {
        let state = Arc::new(BodyState::default());
        if inner.is_end_stream() {
            // The client of the upstream never polls an empty body.
            state.end(SENT);
        }
        let body = ClientBody {
            inner: Some(inner),
            state: state.clone(),
        };
        (body, state)
    }

    /// No body at all, sent whole already.
    pub fn empty() -> (Self, Arc<BodyState>) {
        let state = Arc::new(BodyState::default());
        state.end(SENT);
        let body = ClientBody {
            inner: None,
            state: state.clone(),
        };
        (body, state)
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.state.end(SENT),
            Poll::Ready(Some(Err(_))) => self.state.end(FAILED),
            Poll::Ready(Some(Ok(_))) if self.is_end_stream() => self.state.end(SENT),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Incoming::size_hint)
    }
}
