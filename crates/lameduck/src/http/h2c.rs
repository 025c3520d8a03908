//! HTTP/2 reached by `Upgrade: h2c` from HTTP/1.1 (RFC 7540 §3.2).
//!
//! RFC 9113 deprecates the mechanism, but curl's `--http2` and several
//! client libraries still open cleartext HTTP/2 this way. hyper serves
//! HTTP/2 only from the connection preface, so after the `101` the first
//! request (which RFC 7540 makes stream 1, half-closed by the client) is fed
//! to the HTTP/2 server as a HEADERS frame placed right after the client's
//! preface and SETTINGS. Only requests without a body are upgraded; others
//! are answered over HTTP/1.1, which the RFC allows.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::{Request, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::H2_PREFACE;

/// The largest frame payload every HTTP/2 peer accepts.
const MAX_FRAME: usize = 16_384;

/// Whether `req` asks to upgrade to h2c in a way this server takes.
pub(crate) fn wants_h2c<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    // Asked on every HTTP/1.1 request: nothing to parse without `Upgrade`.
    if !h.contains_key(header::UPGRADE) {
        return false;
    }
    let tokens = |name: HeaderName| -> Vec<String> {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect()
    };
    let connection = tokens(header::CONNECTION);
    let no_body = h.get(header::TRANSFER_ENCODING).is_none()
        && h.get(header::CONTENT_LENGTH).is_none_or(|v| v == "0");
    req.version() == Version::HTTP_11
        && tokens(header::UPGRADE).iter().any(|t| t == "h2c")
        && connection.iter().any(|t| t == "upgrade")
        && connection.iter().any(|t| t == "http2-settings")
        && h.contains_key("http2-settings")
        && no_body
}

/// The request as an HTTP/2 HEADERS frame on stream 1 that ends the stream,
/// its fields as HPACK literals that touch no dynamic table. `None` when it
/// does not fit in one frame.
pub(crate) fn headers_frame<B>(req: &Request<B>) -> Option<Bytes> {
    let mut block = BytesMut::new();
    let authority = req
        .headers()
        .get(header::HOST)
        .map(|v| v.as_bytes())
        .or_else(|| req.uri().authority().map(|a| a.as_str().as_bytes()))
        .unwrap_or(b"");
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    literal(&mut block, b":method", req.method().as_str().as_bytes());
    literal(&mut block, b":scheme", b"http");
    literal(&mut block, b":authority", authority);
    literal(&mut block, b":path", path.as_bytes());
    // Headers the client's `Connection` names are for this hop alone (RFC
    // 9110 §7.6.1), like the connection-specific ones HTTP/2 forbids.
    let named: Vec<String> = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in req.headers() {
        let connection_specific = named.iter().any(|n| n == name.as_str())
            || matches!(
                name.as_str(),
                "connection"
                    | "upgrade"
                    | "http2-settings"
                    | "host"
                    | "keep-alive"
                    | "proxy-connection"
                    | "transfer-encoding"
            )
            || (name == header::TE && value != "trailers");
        if !connection_specific {
            literal(&mut block, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if block.len() > MAX_FRAME {
        return None;
    }
    let mut frame = BytesMut::with_capacity(9 + block.len());
    let len = block.len() as u32;
    frame.extend_from_slice(&len.to_be_bytes()[1..]);
    frame.extend_from_slice(&[0x1, 0x4 | 0x1]); // HEADERS, END_HEADERS | END_STREAM
    frame.extend_from_slice(&1u32.to_be_bytes());
    frame.extend_from_slice(&block);
    Some(frame.freeze())
}

/// An HPACK "literal header field without indexing, new name" (RFC 7541 §6.2.2).
fn literal(block: &mut BytesMut, name: &[u8], value: &[u8]) {
    block.extend_from_slice(&[0x00]);
    string(block, name);
    string(block, value);
}

/// An HPACK string literal, not Huffman-coded, its length a 7-bit prefix integer.
fn string(block: &mut BytesMut, s: &[u8]) {
    let mut n = s.len();
    if n < 127 {
        block.extend_from_slice(&[n as u8]);
    } else {
        block.extend_from_slice(&[127]);
        n -= 127;
        while n >= 128 {
            block.extend_from_slice(&[(n % 128) as u8 | 0x80]);
            n /= 128;
        }
        block.extend_from_slice(&[n as u8]);
    }
    block.extend_from_slice(s);
}

/// Reads the client's preface and first SETTINGS frame off `io`, and returns
/// them with `first_request` placed after them, for [`Prefixed`].
pub(crate) async fn preface_then<I: AsyncRead + Unpin>(
    io: &mut I,
    first_request: Bytes,
) -> io::Result<Bytes> {
    let mut head = [0u8; 24 + 9];
    io.read_exact(&mut head).await?;
    let bad = |what| io::Error::new(io::ErrorKind::InvalidData, what);
    if &head[..24] != H2_PREFACE {
        return Err(bad("no HTTP/2 preface after the h2c upgrade"));
    }
    let frame = &head[24..];
    let len = u32::from_be_bytes([0, frame[0], frame[1], frame[2]]) as usize;
    if frame[3] != 0x4 || len > MAX_FRAME {
        return Err(bad("the HTTP/2 preface is not followed by SETTINGS"));
    }
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await?;
    let mut all = BytesMut::with_capacity(head.len() + len + first_request.len());
    all.extend_from_slice(&head);
    all.extend_from_slice(&payload);
    all.extend_from_slice(&first_request);
    Ok(all.freeze())
}

/// An IO that reads `prefix` before the bytes of `io`.
pub(crate) struct Prefixed<I> {
    pub(crate) prefix: Bytes,
    pub(crate) io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.prefix.has_remaining() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_http11_requests_with_the_full_handshake_upgrade() {
        let req = |extra: &[(&str, &str)]| {
            let mut b = Request::get("/x")
                .header("host", "a")
                .header("upgrade", "h2c");
            b = b
                .header("connection", "Upgrade, HTTP2-Settings")
                .header("http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA");
            for (k, v) in extra {
                b = b.header(*k, *v);
            }
            b.body(()).expect("request")
        };
        assert!(wants_h2c(&req(&[])));
        assert!(!wants_h2c(&req(&[("content-length", "5")])));
        let mut no_settings = req(&[]);
        no_settings.headers_mut().remove("http2-settings");
        assert!(!wants_h2c(&no_settings));
    }

    #[test]
    fn long_strings_use_the_multi_byte_length() {
        let mut block = BytesMut::new();
        string(&mut block, &[b'a'; 300]);
        // 127 in the prefix, then 300 - 127 = 173 = 0b1_0101101: 0xAD, 0x01.
        assert_eq!(&block[..3], &[127, 0xAD, 0x01]);
        assert_eq!(block.len(), 3 + 300);
    }

    #[test]
    fn the_frame_is_headers_on_stream_one_ending_the_stream() {
        let req = Request::get("/p?q=1")
            .header("host", "example")
            .header("x-a", "b")
            .body(())
            .expect("request");
        let frame = headers_frame(&req).expect("a frame");
        let len = u32::from_be_bytes([0, frame[0], frame[1], frame[2]]) as usize;
        assert_eq!(len, frame.len() - 9);
        assert_eq!(&frame[3..9], &[0x1, 0x5, 0, 0, 0, 1]);
        let text = String::from_utf8_lossy(&frame[9..]);
        for part in [
            ":method",
            "GET",
            ":authority",
            "example",
            ":path",
            "/p?q=1",
            "x-a",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        assert!(!text.contains("host"), "host travels as :authority");
    }

    #[test]
    fn headers_named_in_connection_stay_behind() {
        let req = Request::get("/")
            .header("host", "example")
            .header("connection", "Upgrade, HTTP2-Settings, X-Secret")
            .header("x-secret", "1")
            .header("x-kept", "yes")
            .body(())
            .expect("request");
        let frame = headers_frame(&req).expect("a frame");
        let text = String::from_utf8_lossy(&frame[9..]);
        assert!(text.contains("x-kept"), "{text}");
        assert!(!text.contains("x-secret"), "{text}");
    }
}
