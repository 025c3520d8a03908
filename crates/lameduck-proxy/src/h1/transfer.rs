//! Moving a body from one socket to the other, in its framing: a
//! `Content-Length` body is copied without being looked at, a chunked one
//! is decoded and written again canonically, one that lasts until the
//! sender closes is copied (chunked, to an HTTP/1.1 client).

use std::io::{self, IoSlice};

use tokio::net::TcpStream;

use super::buffers::{write_all, Buffer, SIZE};
use super::chunked::{size_line, BadChunk, Decoder, Piece, LAST_CHUNK};

/// Why a body did not get through.
#[derive(Debug)]
pub enum BodyError {
    /// The sender closed before the body ended, or failed.
    Source(io::Error),
    /// The sender's chunked framing was malformed.
    Malformed(BadChunk),
    /// The receiver failed.
    Sink(io::Error),
}

fn ended_early() -> BodyError {
    BodyError::Source(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "closed before the body ended",
    ))
}

async fn fill(src: &TcpStream, buf: &mut Buffer) -> Result<(), BodyError> {
    match buf.read(src, SIZE).await {
        Ok(0) => Err(ended_early()),
        Ok(_) => Ok(()),
        Err(e) => Err(BodyError::Source(e)),
    }
}

/// Copies `len` bytes, those already in `buf` first.
pub async fn copy_length(
    src: &TcpStream,
    buf: &mut Buffer,
    dst: &TcpStream,
    len: u64,
) -> Result<(), BodyError> {
    let mut left = len;
    loop {
        let take = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.bytes().len());
        if take > 0 {
            write_all(dst, &mut [IoSlice::new(&buf.bytes()[..take])])
                .await
                .map_err(BodyError::Sink)?;
            buf.consume(take);
            left -= take as u64;
        }
        if left == 0 {
            return Ok(());
        }
        fill(src, buf).await?;
    }
}

/// Decodes a chunked body and writes it chunked again, without extensions
/// or trailers.
pub async fn copy_chunked(
    src: &TcpStream,
    buf: &mut Buffer,
    dst: &TcpStream,
) -> Result<(), BodyError> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    loop {
        let mut used = 0;
        loop {
            match decoder
                .next(&buf.bytes()[used..])
                .map_err(BodyError::Malformed)?
            {
                Piece::Framing(0) => break,
                Piece::Framing(n) => used += n,
                Piece::Data(n) => {
                    let mut line = [0u8; 18];
                    let l = size_line(n, &mut line);
                    out.extend_from_slice(&line[..l]);
                    out.extend_from_slice(&buf.bytes()[used..used + n]);
                    out.extend_from_slice(b"\r\n");
                    used += n;
                }
                Piece::End(n) => {
                    used += n;
                    out.extend_from_slice(LAST_CHUNK);
                    break;
                }
            }
        }
        buf.consume(used);
        if !out.is_empty() {
            write_all(dst, &mut [IoSlice::new(&out)])
                .await
                .map_err(BodyError::Sink)?;
            out.clear();
        }
        if decoder.is_done() {
            return Ok(());
        }
        fill(src, buf).await?;
    }
}

/// Copies until the sender closes; chunked when `chunk` is set.
pub async fn copy_until_close(
    src: &TcpStream,
    buf: &mut Buffer,
    dst: &TcpStream,
    chunk: bool,
) -> Result<(), BodyError> {
    loop {
        let bytes = buf.bytes();
        if !bytes.is_empty() {
            let mut line = [0u8; 18];
            let l = size_line(bytes.len(), &mut line);
            let mut framed = [
                IoSlice::new(&line[..l]),
                IoSlice::new(bytes),
                IoSlice::new(b"\r\n"),
            ];
            let plain = &mut [IoSlice::new(bytes)];
            let slices: &mut [IoSlice<'_>] = if chunk { &mut framed } else { plain };
            write_all(dst, slices).await.map_err(BodyError::Sink)?;
            let n = bytes.len();
            buf.consume(n);
        }
        match buf.read(src, SIZE).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(BodyError::Source(e)),
        }
    }
    if chunk {
        write_all(dst, &mut [IoSlice::new(LAST_CHUNK)])
            .await
            .map_err(BodyError::Sink)?;
    }
    Ok(())
}
