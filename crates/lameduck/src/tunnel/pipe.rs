//! One direction of a tunnel: bytes read from one side are written to the
//! other at once, from a buffer on the stack; only what the other side
//! cannot take yet is kept, in a lent buffer ([`Held`]). An end of stream
//! is passed on as a shutdown of the write side.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::buffers::{Held, CHUNK};
use crate::websocket::{server_close_frame, FrameTracker, GOING_AWAY};

/// Reads one poll may do before it lets other tasks run: a side that
/// always has bytes must not starve the rest of the thread.
const READS_PER_POLL: usize = 16;

/// What a direction lets through, and how it ends early.
pub(super) trait Gate {
    /// How many of `data`, just read, go on (the rest is dropped).
    fn take(&mut self, data: &[u8]) -> usize;
    /// Bytes to end the direction with instead of reading on (a goodbye),
    /// asked before each read.
    fn last_words(&mut self) -> Option<Vec<u8>>;
}

/// Any protocol: everything goes through.
pub(super) struct Opaque;

impl Gate for Opaque {
    fn take(&mut self, data: &[u8]) -> usize {
        data.len()
    }

    fn last_words(&mut self) -> Option<Vec<u8>> {
        None
    }
}

/// A WebSocket's server-to-client direction: once `stopping`, the frame
/// under way is finished, then the client gets close 1001 and the
/// direction ends.
pub(super) struct WebSocketDown {
    frames: FrameTracker,
    /// The drain reached its deadline.
    pub(super) stopping: bool,
    /// The close frame was sent.
    pub(super) said_goodbye: bool,
}

impl WebSocketDown {
    pub(super) fn new() -> Self {
        WebSocketDown {
            frames: FrameTracker::new(),
            stopping: false,
            said_goodbye: false,
        }
    }
}

impl Gate for WebSocketDown {
    fn take(&mut self, data: &[u8]) -> usize {
        self.frames.advance(data, self.stopping)
    }

    fn last_words(&mut self) -> Option<Vec<u8>> {
        if self.stopping && !self.said_goodbye && self.frames.at_boundary() {
            self.said_goodbye = true;
            return Some(server_close_frame(GOING_AWAY, "server going away"));
        }
        None
    }
}

/// The state of one direction between polls: a few words, and a lent
/// buffer only while the write side is behind.
#[derive(Debug, Default)]
pub(super) struct Pipe {
    held: Option<Held>,
    /// The read side ended (or the gate said its last words): shut the
    /// write side down once `held` is out.
    ending: bool,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// The write side was shut down: this direction is over.
    pub(super) done: bool,
}

impl Pipe {
    /// Moves bytes from `from` to `to` until `from` has none ready, `to`
    /// takes no more, or the direction is over (`Ready(Ok)`). An error of
    /// either side ends it (`Ready(Err)`). `last`: the other direction is
    /// over, so the tunnel ends with this one and both streams are dropped
    /// (closed) at once: `to` is flushed, not shut down first, which would
    /// cost every connection a system call for the FIN the close sends.
    pub(super) fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut from: Pin<&mut R>,
        mut to: Pin<&mut W>,
        gate: &mut impl Gate,
        last: bool,
    ) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        let mut reads = 0;
        loop {
            if let Some(held) = &mut self.held {
                while !held.bytes().is_empty() {
                    let n = ready!(to.as_mut().poll_write(cx, held.bytes()))?;
                    if n == 0 {
                        return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                    }
                    self.unflushed = true;
                    held.advance(n);
                }
                // Out: the buffer goes back to the free list.
                self.held = None;
            }
            if self.ending {
                if last {
                    ready!(to.as_mut().poll_flush(cx))?;
                } else {
                    // A shutdown flushes first.
                    ready!(to.as_mut().poll_shutdown(cx))?;
                }
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if let Some(words) = gate.last_words() {
                self.held = Some(Held::copy(&words));
                self.ending = true;
                continue;
            }
            if reads == READS_PER_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            reads += 1;
            let mut stack = [MaybeUninit::<u8>::uninit(); CHUNK];
            let mut buf = ReadBuf::uninit(&mut stack);
            if from.as_mut().poll_read(cx, &mut buf)?.is_pending() {
                // Nothing more to read for now: what was written must not
                // wait in a buffering writer.
                if self.unflushed {
                    ready!(to.as_mut().poll_flush(cx))?;
                    self.unflushed = false;
                }
                return Poll::Pending;
            }
            let read = buf.filled();
            if read.is_empty() {
                self.ending = true;
                continue;
            }
            let mut data = &read[..gate.take(read)];
            while !data.is_empty() {
                match to.as_mut().poll_write(cx, data)? {
                    Poll::Ready(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(n) => {
                        self.unflushed = true;
                        data = &data[n..];
                    }
                    Poll::Pending => {
                        // The other side is behind: keep the rest until it
                        // takes it (its waker is registered).
                        self.held = Some(Held::copy(data));
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}
