//! Bytes a tunnel read and its peer could not take yet.
//!
//! A tunnel reads into a buffer on the stack and writes at once; only when
//! the write side is full does it need memory that outlives the poll: a
//! buffer lent from the thread's free list ([`crate::buffers`]), given
//! back as soon as its bytes are out. An idle tunnel holds none.

use crate::buffers;

/// The size of one read of a tunnel.
pub(super) const CHUNK: usize = buffers::SIZE;

/// Bytes read from one side and not yet written to the other, in a buffer
/// lent from the thread's free list.
pub(super) struct Held {
    buf: Vec<u8>,
    start: usize,
}

impl Held {
    /// Keeps a copy of `bytes` (at most [`CHUNK`] of them).
    pub(super) fn copy(bytes: &[u8]) -> Held {
        let mut buf = buffers::take();
        buf.extend_from_slice(&bytes[..bytes.len().min(CHUNK)]);
        Held { buf, start: 0 }
    }

    /// What is left to write.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// `n` more bytes were written; true when none is left.
    pub(super) fn advance(&mut self, n: usize) -> bool {
        self.start = (self.start + n).min(self.buf.len());
        self.start == self.buf.len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        buffers::give_back(std::mem::take(&mut self.buf));
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("left", &(self.buf.len() - self.start))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_go_out_and_the_buffer_goes_back_to_the_free_list() {
        let before = buffers::kept();
        let mut held = Held::copy(b"hello");
        assert_eq!(held.bytes(), b"hello");
        assert!(!held.advance(2));
        assert_eq!(held.bytes(), b"llo");
        assert!(held.advance(3));
        drop(held);
        assert_eq!(buffers::kept(), before.max(1));
    }

    #[test]
    fn at_most_a_chunk_is_held() {
        let big = vec![7u8; CHUNK + 5];
        let held = Held::copy(&big);
        assert_eq!(held.bytes().len(), CHUNK);
    }
}
