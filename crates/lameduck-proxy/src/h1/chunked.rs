//! The chunked transfer coding (RFC 9112 §7.1): a decoder that reads it
//! strictly, and the framing written when a body is sent on chunked.
//!
//! A body is decoded and encoded again rather than passed through, so the
//! upstream sees one canonical framing whatever the client wrote: chunk
//! extensions and trailers stay behind (hyper drops them as well). Each
//! size line is checked: hex digits that fit in 64 bits, an extension of
//! printable bytes, CRLF (a bare CR or LF is refused: lenient readers of
//! them were the smuggling vectors of CVE-2023-44487's era, e.g.
//! "chunk extensions" in the 2021 HTTP smuggling research).

/// The longest chunk size line taken (size, extension, CRLF).
const MAX_SIZE_LINE: usize = 4096;
/// The most bytes of trailer fields taken (they are dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// A chunked body that is not well-formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadChunk(pub &'static str);

impl std::fmt::Display for BadChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed chunked body: {}", self.0)
    }
}

impl std::error::Error for BadChunk {}

/// What the decoder made of the start of its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// So many bytes of framing were consumed (0: more input is needed).
    Framing(usize),
    /// The first so many bytes of the input (never none) are body data.
    Data(usize),
    /// So many bytes of framing ended the body.
    End(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// In the hex digits of a size.
    Size { digits: u8 },
    /// After `;`: an extension, to the CR.
    Extension,
    /// After the size line's CR.
    SizeLf,
    /// In a chunk's data.
    Data,
    /// After a chunk's data: its CR.
    DataCr,
    /// After a chunk's data: its LF.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// In a trailer field's name.
    TrailerName,
    /// In a trailer field's value.
    TrailerValue,
    /// After a trailer line's CR.
    TrailerLf { last: bool },
    /// The body ended.
    Done,
}

/// Decodes a chunked body fed in pieces.
#[derive(Clone, Debug)]
pub struct Decoder {
    state: State,
    /// The size being read, then what is left of the chunk's data.
    remaining: u64,
    /// Bytes of the current size line, or of all trailers.
    line: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size { digits: 0 },
            remaining: 0,
            line: 0,
        }
    }
}

impl Decoder {
    /// Whether the body ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads from the start of `input`. Always makes progress on a
    /// non-empty input until the body ends.
    pub fn next(&mut self, input: &[u8]) -> Result<Piece, BadChunk> {
        if self.state == State::Data {
            if input.is_empty() {
                return Ok(Piece::Framing(0));
            }
            let n = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            self.remaining -= n as u64;
            if self.remaining == 0 {
                self.state = State::DataCr;
            }
            return Ok(Piece::Data(n));
        }
        let mut used = 0;
        for &b in input {
            if self.state == State::Data || self.state == State::Done {
                break;
            }
            used += 1;
            self.byte(b)?;
        }
        if self.state == State::Done {
            return Ok(Piece::End(used));
        }
        Ok(Piece::Framing(used))
    }

    fn byte(&mut self, b: u8) -> Result<(), BadChunk> {
        match self.state {
            State::Size { .. } | State::Extension | State::SizeLf => {
                self.line += 1;
                if self.line > MAX_SIZE_LINE {
                    return Err(BadChunk("chunk size line too long"));
                }
            }
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf { .. } => {
                self.line += 1;
                if self.line > MAX_TRAILERS {
                    return Err(BadChunk("trailers too large"));
                }
            }
            _ => {}
        }
        self.state = match (self.state, b) {
            (State::Size { digits }, _) if b.is_ascii_hexdigit() => {
                let d = u64::from(match b {
                    b'0'..=b'9' => b - b'0',
                    _ => (b | 0x20) - b'a' + 10,
                });
                self.remaining = self
                    .remaining
                    .checked_mul(16)
                    .and_then(|n| n.checked_add(d))
                    .ok_or(BadChunk("chunk size too large"))?;
                State::Size {
                    digits: digits.saturating_add(1),
                }
            }
            (State::Size { digits: 1.. }, b';') => State::Extension,
            (State::Size { digits: 1.. }, b'\r') => State::SizeLf,
            (State::Size { .. }, _) => return Err(BadChunk("bad chunk size")),
            (State::Extension, b'\r') => State::SizeLf,
            (State::Extension, b'\t' | b' '..=b'~' | 0x80..) => State::Extension,
            (State::Extension, _) => return Err(BadChunk("bad chunk extension")),
            (State::SizeLf, b'\n') => {
                self.line = 0;
                if self.remaining == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                }
            }
            (State::SizeLf, _) => return Err(BadChunk("bare CR in a chunk size line")),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size { digits: 0 },
            (State::DataCr | State::DataLf, _) => {
                return Err(BadChunk("chunk data not followed by CRLF"))
            }
            (State::TrailerStart, b'\r') => State::TrailerLf { last: true },
            (State::TrailerStart | State::TrailerName, _) if is_token(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerStart | State::TrailerName, _) => {
                return Err(BadChunk("bad trailer field"))
            }
            (State::TrailerValue, b'\r') => State::TrailerLf { last: false },
            (State::TrailerValue, b'\t' | b' '..=b'~' | 0x80..) => State::TrailerValue,
            (State::TrailerValue, _) => return Err(BadChunk("bad trailer value")),
            (State::TrailerLf { last: true }, b'\n') => State::Done,
            (State::TrailerLf { last: false }, b'\n') => State::TrailerStart,
            (State::TrailerLf { .. }, _) => return Err(BadChunk("bare CR in trailers")),
            (State::Data | State::Done, _) => self.state,
        };
        Ok(())
    }
}

/// A field name's characters (RFC 9110 §5.6.2 tchar).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The size line of a chunk of `len` bytes, written into `out`; returns
/// how many bytes of `out` it took.
pub fn size_line(len: usize, out: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for i in 0..digits {
        out[digits - 1 - i] = HEX[(len >> (4 * i)) & 0xf];
    }
    out[digits] = b'\r';
    out[digits + 1] = b'\n';
    digits + 2
}

/// The end of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` whole: the body, and how many bytes it took.
    pub(crate) fn decode(input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, BadChunk> {
        let mut d = Decoder::default();
        let (mut at, mut body) = (0, Vec::new());
        loop {
            match d.next(&input[at..])? {
                Piece::Framing(0) => return Ok(None),
                Piece::Framing(n) => at += n,
                Piece::Data(n) => {
                    body.extend_from_slice(&input[at..at + n]);
                    at += n;
                }
                Piece::End(n) => return Ok(Some((body, at + n))),
            }
        }
    }

    #[test]
    fn well_formed_bodies_decode() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (
                b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
                b"abc0123456789",
            ),
            (b"2\r\nhi\r\n0\r\nx-t: 1\r\n\r\n", b"hi"),
        ];
        for (input, body) in cases {
            let (got, used) = decode(input).expect("valid").expect("complete");
            assert_eq!(got, body);
            assert_eq!(used, input.len());
        }
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for input in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello",
            b"5\r\nhelloX\r\n",
            b" 5\r\nhello\r\n",
            b"5 \r\nhello\r\n",
            b"-5\r\n",
            b"10000000000000000\r\n",
            b"0\r\nbad trailer\r\n\r\n",
            b"0\r\n\r\r",
            b"1;\x00\r\n",
        ] {
            assert!(decode(input).is_err(), "{input:?} was taken");
        }
    }

    #[test]
    fn size_lines_are_hex() {
        let mut out = [0u8; 18];
        for (len, line) in [(0, "0\r\n"), (10, "a\r\n"), (4096, "1000\r\n")] {
            let n = size_line(len, &mut out);
            assert_eq!(&out[..n], line.as_bytes());
        }
        let n = size_line(usize::MAX, &mut out);
        assert_eq!(n, 18);
    }
}
