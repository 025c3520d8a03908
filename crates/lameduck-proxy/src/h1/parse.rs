//! Request and response heads, parsed with `httparse` (the parser hyper
//! itself uses), and the framing of the body that follows them.
//!
//! A proxy and the app behind it must agree on where each request ends, or
//! a client can hide a second request in the first one's body (request
//! smuggling, RFC 9112 §11.2). So whatever two readers could frame
//! differently is refused here rather than normalised: `Content-Length`
//! with `Transfer-Encoding`, differing lengths, a coding other than
//! `chunked`, obs-fold, whitespace before a colon, a bare CR.

use std::mem::MaybeUninit;
use std::ops::Range;

use http::uri::{Authority, PathAndQuery};
use http::StatusCode;
use lameduck::TunnelKind;

pub use super::fields::parse_length;
use super::fields::{check_value, FramingFields, Tokens, HOP_BY_HOP};

/// Why a request was refused before it reached the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status of the answer.
    pub status: StatusCode,
    /// Its body, one line, also logged.
    pub why: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.why.trim_end())
    }
}

impl std::error::Error for Refusal {}

pub(super) const fn refuse(status: StatusCode, why: &'static str) -> Refusal {
    Refusal { status, why }
}

pub(super) const fn bad(why: &'static str) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, why)
}

/// How a message's body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Exactly so many bytes (0: no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
}

/// The limits on a request head.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most bytes of a head (request line, fields, empty line).
    pub max_head: usize,
    /// The most header fields.
    pub max_headers: usize,
}

/// One header field, as ranges into the buffer it was read into.
#[derive(Clone, Debug)]
pub struct Field {
    /// Its name, as sent.
    pub name: Range<usize>,
    /// Its value, without surrounding whitespace.
    pub value: Range<usize>,
    /// Whether it stays on this hop (never forwarded as is).
    pub hop: bool,
}

/// A request head that may be forwarded.
#[derive(Debug)]
pub struct RequestHead {
    /// Its length in the buffer: the body (or the next request) follows.
    pub len: usize,
    /// The method, as sent.
    pub method: Range<usize>,
    /// Whether the method is `HEAD` (the answer has no body).
    pub is_head: bool,
    /// The path and query sent on (origin form).
    pub path: PathAndQuery,
    /// The authority of an absolute-form target.
    pub authority: Option<Authority>,
    /// `HTTP/1.0` (false) or `HTTP/1.1` (true).
    pub http11: bool,
    /// The fields.
    pub fields: Vec<Field>,
    /// Which field is `Host`, if any.
    pub host: Option<usize>,
    /// Which field is the first `X-Forwarded-For`, if any.
    pub forwarded_for: Option<usize>,
    /// How the body is framed.
    pub body: Framing,
    /// Whether the connection is to stay open after the answer.
    pub keep_alive: bool,
    /// The `Upgrade` field when `Connection: upgrade` asks for it.
    pub upgrade: Option<usize>,
    /// The tunnel an upgrade asks for.
    pub upgrade_kind: Option<TunnelKind>,
    /// Whether the client waits for `100 Continue` before its body.
    pub expect_continue: bool,
    /// Whether it asks for a cleartext HTTP/2 upgrade (served by hyper).
    pub h2c: bool,
    /// Whether it is gRPC (no upstream timeout: it carries its own).
    pub grpc: bool,
}

/// A response head from the upstream.
#[derive(Debug)]
pub struct ResponseHead {
    /// Its length in the buffer.
    pub len: usize,
    /// The status code.
    pub status: u16,
    /// The reason phrase.
    pub reason: Range<usize>,
    /// `HTTP/1.1` (true) or `HTTP/1.0`.
    pub http11: bool,
    /// The fields.
    pub fields: Vec<Field>,
    /// How its body is framed, given the request.
    pub body: Framing,
    /// The `Content-Length` it gave (a `HEAD` answer's says what a `GET`
    /// would get).
    pub length: Option<u64>,
    /// Whether the upstream keeps the connection open after it.
    pub keep_alive: bool,
}

/// Header fields parsed at once on the stack; more go to the heap.
const STACK_FIELDS: usize = 128;

/// Where a head could end in `buf`, searching only from `from` (the bytes
/// before were searched already): just past an empty line.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let tail = buf.get(start..)?;
    tail.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| start + i + 2)
        .into_iter()
        .chain(
            tail.windows(3)
                .position(|w| w == b"\n\r\n")
                .map(|i| start + i + 3),
        )
        .min()
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is
/// incomplete and within the limits.
pub fn parse_request(buf: &[u8], limits: Limits) -> Result<Option<RequestHead>, Refusal> {
    let too_large = refuse(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "request head too large\n",
    );
    // Left uninitialised for httparse to fill: 4 KiB of empty headers
    // written on every parse otherwise.
    let mut stack = [const { MaybeUninit::uninit() }; STACK_FIELDS];
    let mut heap;
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if limits.max_headers <= STACK_FIELDS {
        &mut stack[..limits.max_headers]
    } else {
        heap = vec![MaybeUninit::uninit(); limits.max_headers];
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head => return Err(too_large),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(too_large),
        Err(_) => return Err(bad("malformed request head\n")),
    };
    if len > limits.max_head {
        return Err(too_large);
    }
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(bad("malformed request head\n"));
    };
    if method == "CONNECT" {
        return Err(refuse(
            StatusCode::NOT_IMPLEMENTED,
            "CONNECT is not supported: lameduck is a reverse proxy\n",
        ));
    }
    let (path, authority) = request_target(target)?;
    let http11 = version == 1;
    let mut head = RequestHead {
        len,
        method: range_in(buf, method.as_bytes()),
        is_head: method == "HEAD",
        path,
        authority,
        http11,
        fields: Vec::with_capacity(req.headers.len()),
        host: None,
        forwarded_for: None,
        body: Framing::Length(0),
        keep_alive: http11,
        upgrade: None,
        upgrade_kind: None,
        expect_continue: false,
        h2c: false,
        grpc: false,
    };
    let mut framing = FramingFields::default();
    let mut connection = Tokens::default();
    let mut upgrade_field = None;
    let mut hosts = 0;
    for (i, h) in req.headers.iter().enumerate() {
        let name = h.name;
        check_value(h.value)?;
        let mut hop = HOP_BY_HOP.iter().any(|n| name.eq_ignore_ascii_case(n));
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if Authority::try_from(h.value).is_err() {
                return Err(bad("bad Host header\n"));
            }
            head.host = Some(i);
        } else if name.eq_ignore_ascii_case("content-length") {
            framing.length(h.value)?;
            // Sent on once, as the one length it stands for.
            hop = true;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            framing.coding(h.value)?;
        } else if name.eq_ignore_ascii_case("connection") {
            connection.add(h.value);
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade_field = Some(i);
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            head.forwarded_for.get_or_insert(i);
            hop = true;
        } else if name.eq_ignore_ascii_case("x-forwarded-proto") {
            // The scheme the client used with us, never the one it claims.
            hop = true;
        } else if name.eq_ignore_ascii_case("content-type") {
            head.grpc = h.value.starts_with(b"application/grpc");
        }
        head.fields.push(Field {
            name: range_in(buf, name.as_bytes()),
            value: range_in(buf, h.value),
            hop,
        });
    }
    match hosts {
        0 if http11 => return Err(bad("HTTP/1.1 request without Host\n")),
        0 | 1 => {}
        // Which one the app would read is anyone's guess: request
        // smuggling's raw material (RFC 9112 §3.2; HAProxy answers 400).
        _ => return Err(bad("more than one Host header\n")),
    }
    head.body = framing.framing(http11)?;
    for field in &mut head.fields {
        if connection.names(&buf[field.name.clone()]) {
            field.hop = true;
        }
    }
    if connection.close {
        head.keep_alive = false;
    } else if !http11 && connection.keep_alive {
        head.keep_alive = true;
    }
    if let Some(i) = upgrade_field.filter(|_| connection.upgrade && http11) {
        let value = &buf[head.fields[i].value.clone()];
        if value
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"h2c"))
        {
            head.h2c = true;
        } else {
            head.upgrade = Some(i);
            let websocket = value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"));
            head.upgrade_kind = Some(if websocket {
                TunnelKind::WebSocket
            } else {
                TunnelKind::Opaque
            });
        }
    }
    Ok(Some(head))
}

/// The path to send on and the authority of an absolute-form target.
fn request_target(target: &str) -> Result<(PathAndQuery, Option<Authority>), Refusal> {
    let bad_target = bad("bad request target\n");
    if target.starts_with('/') || target == "*" {
        let path = PathAndQuery::try_from(target).map_err(|_| bad_target)?;
        return Ok((path, None));
    }
    let uri = http::Uri::try_from(target).map_err(|_| bad_target)?;
    match (uri.scheme_str(), uri.authority()) {
        (Some(s), Some(a)) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
            let path = uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            Ok((path, Some(a.clone())))
        }
        _ => Err(bad_target),
    }
}

/// The range `part` takes in `buf` (`part` is a slice of `buf`).
fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    start..start + part.len()
}

/// Parses the response head at the start of `buf` to the request `req`
/// (`HEAD` or not): `Ok(None)` while incomplete.
pub fn parse_response(
    buf: &[u8],
    max_head: usize,
    head_request: bool,
) -> Result<Option<ResponseHead>, &'static str> {
    let mut slots = [const { MaybeUninit::uninit() }; STACK_FIELDS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_head => {
            return Err("response head too large")
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("too many response header fields"),
        Err(_) => return Err("malformed response head"),
    };
    let (Some(status), Some(version)) = (res.code, res.version) else {
        return Err("malformed response head");
    };
    let http11 = version == 1;
    let mut framing = FramingFields::default();
    let mut connection = Tokens::default();
    let mut fields = Vec::with_capacity(res.headers.len());
    for h in res.headers.iter() {
        check_value(h.value).map_err(|_| "bad character in a response header")?;
        let name = h.name;
        let mut hop = HOP_BY_HOP.iter().any(|n| name.eq_ignore_ascii_case(n));
        if name.eq_ignore_ascii_case("content-length") {
            framing
                .length(h.value)
                .map_err(|_| "bad Content-Length in the response")?;
            hop = true;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            framing
                .coding(h.value)
                .map_err(|_| "bad Transfer-Encoding in the response")?;
        } else if name.eq_ignore_ascii_case("connection") {
            connection.add(h.value);
        }
        fields.push(Field {
            name: range_in(buf, name.as_bytes()),
            value: range_in(buf, h.value),
            hop,
        });
    }
    for field in &mut fields {
        if connection.names(&buf[field.name.clone()]) {
            field.hop = true;
        }
    }
    let reason = res.reason.map_or(0..0, |r| range_in(buf, r.as_bytes()));
    let body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if framing.any_coding() {
        if framing.chunked_last && framing.codings == 1 && framing.length.is_none() {
            Framing::Chunked
        } else if framing.chunked_last {
            return Err("response framing the proxy cannot pass on");
        } else {
            Framing::UntilClose
        }
    } else {
        framing.length.map_or(Framing::UntilClose, Framing::Length)
    };
    let keep_alive = if http11 {
        !connection.close
    } else {
        connection.keep_alive && !connection.close
    };
    Ok(Some(ResponseHead {
        len,
        status,
        reason,
        http11,
        fields,
        keep_alive: keep_alive && body != Framing::UntilClose,
        body,
        length: framing.length,
    }))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
