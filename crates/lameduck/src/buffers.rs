//! One free list of I/O buffers per thread, for everything that moves
//! bytes: the drain proxy's HTTP/1.1 connections and the tunnels.
//!
//! A connection that keeps a buffer for its whole life costs that buffer
//! while it is idle too (hyper keeps about 16 KiB per connection, and has
//! no way to give it back: hyperium/hyper#2303). Here a connection or a
//! tunnel takes a buffer only while bytes wait to be used, and gives it
//! back at once, as HAProxy takes buffers from its pool only while data is
//! in flight. One list serves both, so a thread that moves from HTTP
//! exchanges to tunnels reuses the same memory.

use std::cell::RefCell;

/// The size of a lent buffer: a typical head and a good share of a body,
/// and one read of a tunnel.
pub const SIZE: usize = 16 * 1024;

/// The most free buffers a thread keeps (64 × 16 KiB = 1 MiB): beyond,
/// they are freed, so a burst does not stay resident and the allocator can
/// reuse the memory for anything else.
const KEPT: usize = 64;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for [`SIZE`] bytes: a free one of this
/// thread's, or a new one.
pub fn take() -> Vec<u8> {
    FREE.try_with(|free| free.try_borrow_mut().ok().and_then(|mut f| f.pop()))
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(SIZE))
}

/// Gives `buf` back to this thread's free list, emptied. One of another
/// size (grown for a large head) is freed, as is one beyond what the list
/// keeps, or one given back while the thread ends.
pub fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() != SIZE {
        return;
    }
    buf.clear();
    let _ = FREE.try_with(|free| {
        if let Ok(mut free) = free.try_borrow_mut() {
            if free.len() < KEPT {
                free.push(buf);
            }
        }
    });
}

/// How many free buffers this thread keeps now.
pub fn kept() -> usize {
    FREE.try_with(|free| free.try_borrow().map_or(0, |f| f.len()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_lent_again_empty() {
        let before = kept();
        let mut buf = take();
        assert_eq!((buf.len(), buf.capacity()), (0, SIZE));
        buf.extend_from_slice(b"hello");
        give_back(buf);
        assert_eq!(kept(), before + 1);
        let again = take();
        assert_eq!(kept(), before, "the free buffer was lent again");
        assert!(again.is_empty());
        give_back(again);
    }

    #[test]
    fn a_grown_buffer_is_freed_and_the_list_is_bounded() {
        let before = kept();
        let mut grown = take();
        grown.reserve(SIZE + 1);
        give_back(grown);
        assert_eq!(kept(), before.saturating_sub(1), "the grown one was freed");
        let many: Vec<Vec<u8>> = (0..KEPT + 10).map(|_| take()).collect();
        many.into_iter().for_each(give_back);
        assert_eq!(kept(), KEPT);
    }
}
