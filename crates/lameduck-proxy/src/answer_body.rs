//! The body of every answer hyper's side of the proxy gives: the common
//! one (an HTTP/2 stream's answer read from the engine's upstream
//! connection) held as it is, any other boxed. One allocation and a
//! dynamic call per poll fewer on every HTTP/2 stream than boxing all.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};

use crate::h1::streams::UpstreamBody;

/// What a body of an answer fails with: hyper's error, or the engine's.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of an answer of the proxy.
#[derive(Debug)]
pub enum ProxyBody {
    /// An HTTP/2 stream's answer from an HTTP/1.1 app, read as polled.
    Stream(UpstreamBody),
    /// Anything else: hyper's client's bodies, the proxy's own answers.
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ProxyBody::Stream(body) => Pin::new(body).poll_frame(cx),
            ProxyBody::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Stream(body) => body.is_end_stream(),
            ProxyBody::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Stream(body) => body.size_hint(),
            ProxyBody::Boxed(body) => body.size_hint(),
        }
    }
}
