//! What the fields of a head say, checked as they come: the framing of the
//! body (`Content-Length`, `Transfer-Encoding`), the tokens of
//! `Connection`, the fields that stay on this hop, and the characters no
//! value may carry. Whatever two readers could frame differently is
//! refused here rather than normalised (RFC 9112 §11.2).

use http::StatusCode;

use super::parse::{bad, refuse, Framing, Refusal};

/// Headers that belong to one connection and are never forwarded (RFC 9110
/// §7.6.1), besides those the `Connection` field names.
pub(super) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// httparse takes obs-text and tabs in values, as RFC 9110 §5.5 does; a CR,
/// LF or NUL left in a value would be read as a line end by someone.
pub(super) fn check_value(value: &[u8]) -> Result<(), Refusal> {
    if value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(bad("bad character in a header value\n"));
    }
    Ok(())
}

/// The framing fields of a message, checked as they come.
#[derive(Default)]
pub(super) struct FramingFields {
    pub(super) length: Option<u64>,
    pub(super) codings: usize,
    pub(super) chunked_last: bool,
}

impl FramingFields {
    /// A `Content-Length`: one number, or a list of the same number.
    pub(super) fn length(&mut self, value: &[u8]) -> Result<(), Refusal> {
        for item in value.split(|b| *b == b',') {
            let n = parse_length(item.trim_ascii()).ok_or(bad("bad Content-Length\n"))?;
            match self.length {
                Some(seen) if seen != n => return Err(bad("differing Content-Length\n")),
                _ => self.length = Some(n),
            }
        }
        Ok(())
    }

    /// A `Transfer-Encoding`: only `chunked` is understood, once.
    pub(super) fn coding(&mut self, value: &[u8]) -> Result<(), Refusal> {
        for item in value.split(|b| *b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() {
                continue;
            }
            if self.chunked_last {
                // Chunked applied twice, or another coding after it.
                return Err(bad("chunked is not the last transfer coding\n"));
            }
            self.codings += 1;
            self.chunked_last = item.eq_ignore_ascii_case(b"chunked");
        }
        Ok(())
    }

    pub(super) fn any_coding(&self) -> bool {
        self.codings > 0 || self.chunked_last
    }

    /// The request body's framing (RFC 9112 §6.3).
    pub(super) fn framing(&self, http11: bool) -> Result<Framing, Refusal> {
        if self.any_coding() {
            if self.length.is_some() {
                return Err(bad("both Content-Length and Transfer-Encoding\n"));
            }
            if !http11 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request\n"));
            }
            if !self.chunked_last {
                return Err(bad("chunked is not the last transfer coding\n"));
            }
            if self.codings > 1 {
                // A coding under chunked would be lost when the body is
                // re-framed (RFC 9112 §6.1 answers 501 to unknown codings).
                return Err(refuse(
                    StatusCode::NOT_IMPLEMENTED,
                    "transfer codings other than chunked are not supported\n",
                ));
            }
            return Ok(Framing::Chunked);
        }
        Ok(Framing::Length(self.length.unwrap_or(0)))
    }
}

/// A length: 1 to 19 decimal digits (no sign, no space, fits in a u64).
pub fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The tokens of `Connection` fields.
#[derive(Default)]
pub(super) struct Tokens {
    pub(super) close: bool,
    pub(super) keep_alive: bool,
    pub(super) upgrade: bool,
    /// Other names, lowercase: those fields stay on this hop.
    named: Vec<Vec<u8>>,
}

impl Tokens {
    pub(super) fn add(&mut self, value: &[u8]) {
        for t in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if t.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else if !t.is_empty() {
                self.named.push(t.to_ascii_lowercase());
            }
        }
    }

    /// Whether the field `name` is one `Connection` named.
    pub(super) fn names(&self, name: &[u8]) -> bool {
        self.named.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}
