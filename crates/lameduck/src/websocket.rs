//! Just enough of WebSocket framing (RFC 6455 §5.2) for a byte tunnel to
//! say goodbye: where frames end, and a close frame with code 1001.
//!
//! The tunnel forwards bytes untouched, extensions and all; it only needs to
//! know where one frame ends so that a close frame is never written into the
//! middle of another. Control frames may come between the fragments of a
//! message (§5.4), so any frame end will do.

/// The close code for "going away": the server is shutting down, the client
/// should reconnect (elsewhere).
pub const GOING_AWAY: u16 = 1001;

/// Follows the frames of one direction of a WebSocket byte stream.
#[derive(Clone, Debug, Default)]
pub struct FrameTracker {
    header: [u8; 14],
    have: usize,
    /// Payload bytes left in the current frame, once its header is complete.
    payload_left: u64,
    in_payload: bool,
}

// === impl FrameTracker ===

impl FrameTracker {
    /// A tracker at the start of a stream, between frames.
    pub fn new() -> Self {
        FrameTracker::default()
    }

    /// Whether the bytes seen so far end exactly at the end of a frame.
    pub fn at_boundary(&self) -> bool {
        !self.in_payload && self.have == 0
    }

    /// Reads `data` through; returns how many bytes were taken. With
    /// `stop_at_boundary`, stops right after the first frame that ends within
    /// `data` (and takes nothing when already at a boundary).
    pub fn advance(&mut self, data: &[u8], stop_at_boundary: bool) -> usize {
        let mut i = 0;
        while i < data.len() {
            if stop_at_boundary && self.at_boundary() {
                return i;
            }
            if self.in_payload {
                let take = (self.payload_left).min((data.len() - i) as u64) as usize;
                i += take;
                self.payload_left -= take as u64;
                if self.payload_left == 0 {
                    self.in_payload = false;
                }
                continue;
            }
            self.header[self.have] = data[i];
            self.have += 1;
            i += 1;
            if let Some(payload) = self.header_complete() {
                self.have = 0;
                self.payload_left = payload;
                self.in_payload = payload > 0;
            }
        }
        i
    }

    /// The payload length once the header in `self.header[..have]` is whole.
    fn header_complete(&self) -> Option<u64> {
        let h = &self.header[..self.have];
        if h.len() < 2 {
            return None;
        }
        let masked = h[1] & 0x80 != 0;
        let mask_len = if masked { 4 } else { 0 };
        let (len_len, short) = match h[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        if h.len() < 2 + len_len + mask_len {
            return None;
        }
        let payload = short.unwrap_or_else(|| {
            h[2..2 + len_len]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        });
        Some(payload)
    }
}

/// A close frame as a server sends it (unmasked), with `code` and `reason`
/// (at most 123 bytes; longer reasons are cut).
pub fn server_close_frame(code: u16, reason: &str) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut frame = Vec::with_capacity(4 + reason.len());
    frame.push(0x88); // FIN + opcode close
    frame.push(2 + reason.len() as u8);
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(reason);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload_len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x82];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload_len {
            n if n < 126 => f.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                f.push(mask_bit | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(mask_bit | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(7, payload_len));
        f
    }

    #[test]
    fn boundaries_are_found_for_every_length_form_and_split() {
        for (len, masked) in [
            (0, false),
            (5, true),
            (125, false),
            (300, true),
            (70_000, false),
        ] {
            let mut stream = frame(len, masked);
            stream.extend(frame(3, masked));
            let first = frame(len, masked).len();
            // Fed one byte at a time, the boundary shows exactly at frame ends.
            let mut t = FrameTracker::new();
            for (i, b) in stream.iter().enumerate() {
                t.advance(std::slice::from_ref(b), false);
                let end = i + 1 == first || i + 1 == stream.len();
                assert_eq!(t.at_boundary(), end, "len {len} byte {i}");
            }
            // Fed at once with stop_at_boundary, it stops after the first frame.
            let mut t = FrameTracker::new();
            assert_eq!(
                t.advance(&stream[..1], true),
                0,
                "nothing is taken at a boundary"
            );
            assert_eq!(t.advance(&stream[..1], false), 1);
            assert_eq!(t.advance(&stream[1..], true), first - 1);
            assert!(t.at_boundary());
            assert_eq!(t.advance(&stream[first..], true), 0);
        }
    }

    #[test]
    fn the_close_frame_says_going_away() {
        let f = server_close_frame(GOING_AWAY, "draining");
        assert_eq!(&f[..4], &[0x88, 10, 0x03, 0xE9]);
        assert_eq!(&f[4..], b"draining");
        assert_eq!(server_close_frame(1000, &"x".repeat(200)).len(), 4 + 123);
    }
}
