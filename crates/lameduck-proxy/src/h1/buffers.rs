//! A connection's read buffer, held only while bytes move.
//!
//! hyper gives each connection a read buffer and a write buffer for its
//! whole life (about 16 KiB, and no way to give them back while the
//! connection is idle: hyperium/hyper#2303), so 10,000 idle keep-alive
//! connections cost 13 KiB each. Here a connection waits for readiness
//! with no buffer, borrows one from its thread's free list
//! ([`lameduck::buffers`], which the tunnels share) when bytes arrive and
//! returns it when the exchange is over, as HAProxy does with its buffer
//! pool.

use std::io;

use lameduck::buffers;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// The size of a lent buffer: a typical head and a good share of a body.
pub use lameduck::buffers::SIZE;

/// A lent buffer: `data[start..]` holds bytes read and not yet used.
#[derive(Debug, Default)]
pub struct Buffer {
    data: Vec<u8>,
    start: usize,
}

impl Buffer {
    /// An empty buffer holding no memory until it is read into.
    pub const fn empty() -> Self {
        Buffer {
            data: Vec::new(),
            start: 0,
        }
    }

    /// The bytes read and not yet used.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..]
    }

    /// Whether it holds no unused bytes.
    pub fn is_empty(&self) -> bool {
        self.start == self.data.len()
    }

    /// Marks the first `n` unused bytes used.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.is_empty() {
            self.data.clear();
            self.start = 0;
        }
    }

    /// Gives the memory back to the thread's free list when nothing is
    /// left unused in it.
    pub fn release_if_empty(&mut self) {
        if self.is_empty() && self.data.capacity() > 0 {
            self.start = 0;
            buffers::give_back(std::mem::take(&mut self.data));
        }
    }

    /// Makes room to read at least `want` more bytes (at most up to
    /// `limit` in all): borrows a buffer, or moves the unused bytes to
    /// the front, or grows (a large head).
    fn reserve(&mut self, limit: usize) {
        if self.data.capacity() == 0 {
            self.data = buffers::take();
            return;
        }
        if self.data.len() == self.data.capacity() {
            if self.start > 0 {
                self.data.drain(..self.start);
                self.start = 0;
            } else if self.data.len() < limit {
                self.data.reserve(SIZE.min(limit - self.data.len()).max(1));
            }
        }
    }

    /// Reads what the socket has (it was readable): `Ok(0)` at its end,
    /// `WouldBlock` when the readiness was spurious. The buffer holds at
    /// most about `limit` bytes.
    pub fn read_from(&mut self, stream: &TcpStream, limit: usize) -> io::Result<usize> {
        self.reserve(limit);
        let spare = self.data.capacity() - self.data.len();
        if spare == 0 {
            return Err(io::Error::other("buffer full"));
        }
        // A read that left room in the buffer emptied the socket: its
        // readiness is cleared now, as tokio's own `poll_read` does, so
        // the next wait goes to epoll rather than to a `recvfrom` that
        // fails with EAGAIN (one system call in four per request). tokio
        // clears it only if no readiness event came since the read began.
        let mut read = 0;
        let n = stream
            .try_io(Interest::READABLE, || {
                read = stream.try_read_buf(&mut self.data)?;
                if read > 0 && read < spare {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(read)
            })
            .or_else(|e| match e.kind() {
                io::ErrorKind::WouldBlock if read > 0 => Ok(read),
                _ => Err(e),
            });
        if matches!(&n, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.release_if_empty();
        }
        n
    }

    /// Reads, waiting for readiness first.
    pub async fn read(&mut self, stream: &TcpStream, limit: usize) -> io::Result<usize> {
        loop {
            stream.readable().await?;
            match self.read_from(stream, limit) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.data.clear();
        self.start = 0;
        self.release_if_empty();
    }
}

/// Writes all of `bufs` with as few system calls as the socket allows.
pub async fn write_all(stream: &TcpStream, bufs: &mut [io::IoSlice<'_>]) -> io::Result<()> {
    let mut bufs = bufs;
    io::IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        let n = match stream.try_write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stream.writable().await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        io::IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_buffer_holds_no_memory_and_returns_what_it_borrowed() {
        let mut b = Buffer::empty();
        assert_eq!(b.data.capacity(), 0);
        b.reserve(SIZE);
        assert_eq!(b.data.capacity(), SIZE);
        b.data.extend_from_slice(b"abc");
        b.consume(2);
        assert_eq!(b.bytes(), b"c");
        b.release_if_empty();
        assert_eq!(b.data.capacity(), SIZE, "unused bytes keep the buffer");
        b.consume(1);
        b.release_if_empty();
        assert_eq!(b.data.capacity(), 0);
        assert!(buffers::kept() >= 1);
    }
}
