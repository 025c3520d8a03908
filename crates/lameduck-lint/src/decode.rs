//! Input bytes to text, a chunk at a time, so a stream of manifests is
//! parsed while it is read and never held whole.
//!
//! UTF-8, with a leading byte order mark dropped (as BuildKit and kubectl
//! do); UTF-16 with a byte order mark, as kubectl reads it (PowerShell's
//! `>` writes UTF-16LE with one) when the caller allows it. A NUL means a
//! binary file, as ripgrep takes it. The first bad byte ends the text, and
//! its place is kept for the error.

use std::cell::Cell;
use std::io::{ErrorKind, Read};
use std::rc::Rc;

/// How many bytes are read at a time.
const CHUNK: usize = 64 * 1024;

/// The encoding of an input, from its byte order mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a byte order mark.
    Utf8,
    /// UTF-16, little-endian (`FF FE`).
    Utf16Le,
    /// UTF-16, big-endian (`FE FF`).
    Utf16Be,
}

/// Why the text ended early: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// 1-based line and column (in bytes of the line, for UTF-8).
    pub place: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

/// The chars of a reader, decoded a chunk at a time.
pub struct Decoder<R> {
    reader: R,
    utf16_allowed: bool,
    encoding: Option<Encoding>,
    /// Undecoded bytes carried over to the next chunk (a split sequence).
    carry: Vec<u8>,
    /// The decoded text not yet handed out, and where the next char is.
    text: String,
    at: usize,
    eof: bool,
    /// Where the start of the next chunk is: line, and bytes into it.
    line: usize,
    column: usize,
    /// Bytes read so far, and the most that may be read.
    read: u64,
    limit: u64,
    error: Option<DecodeError>,
    /// Set when the text ended early, for those that hold no borrow of it.
    failed: Rc<Cell<bool>>,
    /// Every char handed out, when asked to keep them.
    kept: Option<String>,
}

impl<R: Read> Decoder<R> {
    /// Decodes `reader`; UTF-16 only when `utf16_allowed` (manifests, as
    /// kubectl; not Dockerfiles, which BuildKit reads as UTF-8 only).
    pub fn new(reader: R, utf16_allowed: bool) -> Decoder<R> {
        Decoder {
            reader,
            utf16_allowed,
            encoding: None,
            carry: Vec::new(),
            text: String::new(),
            at: 0,
            eof: false,
            line: 1,
            column: 0,
            read: 0,
            limit: u64::MAX,
            error: None,
            failed: Rc::default(),
            kept: None,
        }
    }

    /// Stops with an error after `bytes` bytes.
    pub fn limit(mut self, bytes: u64) -> Self {
        self.set_limit(bytes);
        self
    }

    /// Stops with an error after `bytes` bytes (counted from the start).
    pub fn set_limit(&mut self, bytes: u64) {
        self.limit = bytes;
    }

    /// A flag set when the text ends early: to check from where the
    /// decoder itself is borrowed (by a parser reading it).
    pub fn failed(&self) -> Rc<Cell<bool>> {
        self.failed.clone()
    }

    /// Keeps every char handed out, for [`Decoder::kept`].
    pub fn keep(mut self) -> Self {
        self.kept = Some(String::new());
        self
    }

    /// The text handed out so far, when kept.
    pub fn kept(&mut self) -> Option<String> {
        if let Some(kept) = &mut self.kept {
            kept.push_str(&self.text[..self.at]);
            self.text.drain(..self.at);
            self.at = 0;
        }
        self.kept.take()
    }

    /// Why the text ended early, if it did.
    pub fn error(&self) -> Option<&DecodeError> {
        self.error.as_ref()
    }

    /// The encoding, once the first bytes are read.
    pub fn encoding(&self) -> Option<Encoding> {
        self.encoding
    }

    /// The text decoded ahead and not handed out yet: at least `bytes`
    /// of it unless the input ends first.
    pub fn peek(&mut self, bytes: usize) -> &str {
        while self.text.len() - self.at < bytes && self.fill() {}
        &self.text[self.at..]
    }

    /// The rest of the text, whole.
    pub fn rest(&mut self) -> String {
        while self.fill() {}
        let rest = self.text.split_off(self.at);
        self.text.clear();
        self.at = 0;
        if let Some(kept) = &mut self.kept {
            kept.push_str(&rest);
        }
        rest
    }

    /// Decodes one more chunk; false at the end (or at an error).
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut bytes = std::mem::take(&mut self.carry);
        let start = bytes.len();
        bytes.resize(start + CHUNK, 0);
        let n = loop {
            match self.reader.read(&mut bytes[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail(None, format!("cannot read: {e}"));
                    return false;
                }
            }
        };
        bytes.truncate(start + n);
        self.read += n as u64;
        let last = n == 0;
        if self.read > self.limit {
            let limit = self.limit;
            self.fail(None, format!("larger than {limit} bytes: not linted"));
            return false;
        }
        if self.encoding.is_none() {
            if bytes.len() < 3 && !last {
                self.carry = bytes;
                return true;
            }
            let (encoding, bom) = match bytes.as_slice() {
                [0xef, 0xbb, 0xbf, ..] => (Encoding::Utf8, 3),
                [0xff, 0xfe, ..] => (Encoding::Utf16Le, 2),
                [0xfe, 0xff, ..] => (Encoding::Utf16Be, 2),
                _ => (Encoding::Utf8, 0),
            };
            self.encoding = Some(encoding);
            if encoding != Encoding::Utf8 && !self.utf16_allowed {
                self.fail(Some((1, 1)), "UTF-16 (it starts with a UTF-16 byte order mark): not linted (save the file as UTF-8)".into());
                return false;
            }
            bytes.drain(..bom);
        }
        // Handed-out text is dropped, so the buffer stays one chunk large.
        if let Some(kept) = &mut self.kept {
            kept.push_str(&self.text[..self.at]);
        }
        self.text.drain(..self.at);
        self.at = 0;
        let decoded = match self.encoding {
            Some(Encoding::Utf16Le) => self.utf16(&bytes, last, u16::from_le_bytes),
            Some(Encoding::Utf16Be) => self.utf16(&bytes, last, u16::from_be_bytes),
            _ => self.utf8(bytes, last),
        };
        self.eof = last || self.error.is_some();
        decoded
    }

    fn utf8(&mut self, mut bytes: Vec<u8>, last: bool) -> bool {
        let (valid, bad) = match std::str::from_utf8(&bytes) {
            Ok(_) => (bytes.len(), None),
            // A sequence split by the chunk's end: finish it next time.
            Err(e) if e.error_len().is_none() && !last => (e.valid_up_to(), None),
            Err(e) => (e.valid_up_to(), Some(bytes[e.valid_up_to()])),
        };
        // A NUL anywhere in the chunk means binary, even after a bad byte
        // (gzip's second byte is not UTF-8, its fourth is NUL).
        let nul = bytes
            .iter()
            .position(|&b| b == 0)
            .filter(|&n| n < valid || bad.is_some());
        let end = nul.map_or(valid, |n| n.min(valid));
        let text = std::str::from_utf8(&bytes[..end]).unwrap_or_default();
        self.push(text);
        if let Some(n) = nul {
            let place = self.place_after(&bytes[end..n]);
            self.fail(
                Some(place),
                "a NUL byte: binary, not text; not linted".into(),
            );
        } else if let Some(byte) = bad {
            self.fail(
                Some(self.place()),
                format!("byte 0x{byte:02x} is not UTF-8: not linted (save the file as UTF-8)"),
            );
        }
        self.carry = bytes.split_off(valid);
        true
    }

    fn utf16(&mut self, bytes: &[u8], last: bool, unit: fn([u8; 2]) -> u16) -> bool {
        let mut even = bytes.len() - bytes.len() % 2;
        // A surrogate pair split by the chunk's end: finish it next time.
        if !last && even >= 2 {
            let u = unit([bytes[even - 2], bytes[even - 1]]);
            if (0xd800..0xdc00).contains(&u) {
                even -= 2;
            }
        }
        let units = bytes[..even].chunks_exact(2).map(|p| unit([p[0], p[1]]));
        let mut text = String::with_capacity(even / 2);
        let mut bad = None;
        for c in char::decode_utf16(units) {
            match c {
                Ok('\0') => {
                    bad = Some("a NUL character: binary, not text; not linted".to_owned());
                    break;
                }
                Ok(c) => text.push(c),
                Err(e) => {
                    bad = Some(format!(
                        "unpaired UTF-16 surrogate 0x{:04x}: not linted",
                        e.unpaired_surrogate()
                    ));
                    break;
                }
            }
        }
        self.push(&text);
        if let Some(message) = bad {
            self.fail(Some(self.place()), message);
        } else if last && even < bytes.len() {
            self.fail(
                Some(self.place()),
                "an odd number of bytes in UTF-16: not linted".into(),
            );
        } else {
            self.carry = bytes[even..].to_vec();
        }
        true
    }

    /// Appends decoded text, counting its lines.
    fn push(&mut self, text: &str) {
        match text.rfind('\n') {
            Some(i) => {
                self.line += text.matches('\n').count();
                self.column = text.len() - i - 1;
            }
            None => self.column += text.len(),
        }
        self.text.push_str(text);
    }

    /// Where the text decoded so far ends.
    fn place(&self) -> (usize, usize) {
        (self.line, self.column + 1)
    }

    /// Where the text decoded so far ends, `bytes` further on.
    fn place_after(&self, bytes: &[u8]) -> (usize, usize) {
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => (
                self.line + bytes.iter().filter(|&&b| b == b'\n').count(),
                bytes.len() - i,
            ),
            None => (self.line, self.column + bytes.len() + 1),
        }
    }

    fn fail(&mut self, place: Option<(usize, usize)>, message: String) {
        self.eof = true;
        self.failed.set(true);
        self.error.get_or_insert(DecodeError { place, message });
    }
}

impl<R: Read> Iterator for Decoder<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            if let Some(c) = self.text[self.at..].chars().next() {
                self.at += c.len_utf8();
                return Some(c);
            }
            if !self.fill() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], utf16: bool) -> (String, Option<DecodeError>) {
        let mut d = Decoder::new(bytes, utf16);
        let text = d.rest();
        (text, d.error().cloned())
    }

    #[test]
    fn binary_and_latin1_inputs_say_where() {
        let (_, e) = decode(b"FROM a\nCMD \x00x", false);
        assert_eq!(
            e,
            Some(DecodeError {
                place: Some((2, 5)),
                message: "a NUL byte: binary, not text; not linted".into()
            })
        );
        let (_, e) = decode(b"FROM a\n\nCMD caf\xe9\n", false);
        let e = e.expect("latin-1");
        assert_eq!(e.place, Some((3, 8)));
        assert!(e.message.starts_with("byte 0xe9 is not UTF-8"), "{e:?}");
        assert_eq!(
            decode(b"\xef\xbb\xbfFROM a\n", false),
            ("FROM a\n".into(), None)
        );
    }

    #[test]
    fn utf16_with_a_byte_order_mark_as_kubectl_reads_it() {
        let text = "kind: Pod\nmetadata: {name: caf\u{e9}} # \u{1f600}\n";
        let mut le = vec![0xff, 0xfe];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xfe, 0xff];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&le, true), (text.into(), None));
        assert_eq!(decode(&be, true), (text.into(), None));
        let (_, e) = decode(&le, false);
        assert!(e.expect("refused").message.starts_with("UTF-16"));
    }

    #[test]
    fn chunks_split_sequences_and_surrogates_anywhere() {
        // Multi-byte chars straddle every chunk boundary somewhere.
        let text: String = "é€😀a\n".repeat(CHUNK / 3);
        let (got, e) = decode(text.as_bytes(), false);
        assert_eq!((got == text, e), (true, None));
        let mut le = vec![0xff, 0xfe, 0x61];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        le.remove(2);
        let (got, e) = decode(&le, true);
        assert_eq!((got == text, e), (true, None));
    }

    #[test]
    fn a_limit_ends_an_endless_input() {
        let mut d = Decoder::new(std::io::repeat(b'a'), false).limit(1 << 20);
        assert!(d.rest().len() <= 1 << 20);
        assert!(d.error().expect("limit").message.contains("larger than"));
    }
}
