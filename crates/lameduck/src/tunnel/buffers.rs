//! Buffers lent to a tunnel only while bytes wait for a peer that cannot
//! take them yet.
//!
//! A tunnel reads into a buffer on the stack and writes at once; only when
//! the write side is full does it need memory that outlives the poll: a
//! buffer from this thread's free list, given back as soon as its bytes are
//! out. An idle tunnel holds none, as HAProxy takes a buffer from its pool
//! only while data is in flight.

use std::cell::RefCell;

/// The size of one read, and of one lent buffer.
pub(super) const CHUNK: usize = 16 * 1024;

/// Free buffers kept per thread: enough for as many slow readers at once
/// as a busy thread meets, bounded so a burst does not stay resident
/// (64 × 16 KiB = 1 MiB per thread at most).
const KEPT: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// Bytes read from one side and not yet written to the other, in a buffer
/// lent from the thread's free list.
pub(super) struct Held {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Held {
    /// Keeps a copy of `bytes` (at most [`CHUNK`] of them).
    pub(super) fn copy(bytes: &[u8]) -> Held {
        let mut buf = FREE
            .try_with(|free| free.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0u8; CHUNK].into_boxed_slice());
        let end = bytes.len().min(buf.len());
        buf[..end].copy_from_slice(&bytes[..end]);
        Held { buf, start: 0, end }
    }

    /// What is left to write.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// `n` more bytes were written; true when none is left.
    pub(super) fn advance(&mut self, n: usize) -> bool {
        self.start = (self.start + n).min(self.end);
        self.start == self.end
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // A thread that is ending has no list left: the buffer is freed.
        let _ = FREE.try_with(|free| {
            let mut free = free.borrow_mut();
            if free.len() < KEPT {
                free.push(buf);
            }
        });
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("left", &(self.end - self.start))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_now() -> usize {
        FREE.with(|free| free.borrow().len())
    }

    #[test]
    fn a_buffer_goes_back_to_the_free_list_and_is_lent_again() {
        let before = free_now();
        let mut held = Held::copy(b"hello");
        assert_eq!(held.bytes(), b"hello");
        assert!(!held.advance(2));
        assert_eq!(held.bytes(), b"llo");
        assert!(held.advance(3));
        drop(held);
        assert_eq!(free_now(), before + 1);
        let again = Held::copy(b"x");
        assert_eq!(free_now(), before, "the free buffer was lent again");
        drop(again);
    }

    #[test]
    fn the_free_list_is_bounded() {
        let many: Vec<Held> = (0..KEPT + 10).map(|_| Held::copy(b"x")).collect();
        drop(many);
        assert_eq!(free_now(), KEPT);
    }
}
