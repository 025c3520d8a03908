//! The heads the engine writes: the request as the upstream gets it (RFC
//! 9110 §7.6: hop-by-hop fields dropped, `X-Forwarded-For` and `-Proto`
//! set, one framing), the answer as the client gets it, and the proxy's own
//! short answers.

use std::io::Write;
use std::net::IpAddr;

use http::uri::Authority;
use http::StatusCode;

use super::parse::{Framing, RequestHead, ResponseHead};

/// Appends `name` as HTTP/2 and hyper send it: lowercase (copied whole,
/// then lowered in place: a byte-by-byte extend is several times slower).
fn push_name(out: &mut Vec<u8>, name: &[u8]) {
    let start = out.len();
    out.extend_from_slice(name);
    out[start..].make_ascii_lowercase();
}

pub(super) fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    push_name(out, name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn push_number(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The request head the upstream gets for `head` (read from `buf`) from
/// the client at `peer_ip`.
pub fn upstream_request(
    buf: &[u8],
    head: &RequestHead,
    peer_ip: IpAddr,
    default_authority: &Authority,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len + 96);
    out.extend_from_slice(&buf[head.method.clone()]);
    out.push(b' ');
    out.extend_from_slice(head.path.as_str().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for f in head.fields.iter().filter(|f| !f.hop) {
        push_field(&mut out, &buf[f.name.clone()], &buf[f.value.clone()]);
    }
    if head.host.is_none() {
        let authority = head.authority.as_ref().unwrap_or(default_authority);
        push_field(&mut out, b"host", authority.as_str().as_bytes());
    }
    match head.body {
        Framing::Length(0) if !needs_length(&buf[head.method.clone()]) => {}
        Framing::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_number(&mut out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::UntilClose => {}
    }
    if let Some(i) = head.upgrade {
        out.extend_from_slice(b"connection: upgrade\r\n");
        push_field(&mut out, b"upgrade", &buf[head.fields[i].value.clone()]);
    }
    let prior = head
        .forwarded_for
        .map(|i| &buf[head.fields[i].value.clone()])
        .filter(|v| v.iter().all(|b| (b' '..=b'~').contains(b) || *b == b'\t'));
    push_forwarded(&mut out, prior, |out| push_ip(out, peer_ip));
    out.extend_from_slice(b"\r\n");
    out
}

/// Appends `X-Forwarded-For` (the client's `prior` value, if it sent a
/// usable one, then the client's address as `push_client` writes it) and
/// `X-Forwarded-Proto`: the fields every request to the app ends with,
/// whichever side of the proxy read it.
pub(super) fn push_forwarded(
    out: &mut Vec<u8>,
    prior: Option<&[u8]>,
    push_client: impl FnOnce(&mut Vec<u8>),
) {
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prior) = prior {
        out.extend_from_slice(prior);
        out.extend_from_slice(b", ");
    }
    push_client(out);
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
}

/// Appends `ip` as `Display` writes it; an IPv4 address without the
/// formatting machinery (0.7% of the proxy's samples per request in a
/// profile, about 3% of its time in user space).
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_number(out, u64::from(octet));
            }
        }
        // Writing to a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Whether a request of `method` states its length even when 0, as hyper's
/// client does: the methods whose requests are expected to carry a body.
pub(super) fn needs_length(method: &[u8]) -> bool {
    matches!(method, b"POST" | b"PUT" | b"PATCH")
}

/// How the answer's body goes to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// As many bytes as the upstream said.
    Length(u64),
    /// Chunked (re-chunked, or a body of unknown length to HTTP/1.1).
    Chunked,
    /// To the end of the connection (an HTTP/1.0 client).
    UntilClose,
    /// No body.
    Empty,
}

/// The answer's head to the client, and how its body follows.
pub fn client_response(
    buf: &[u8],
    res: &ResponseHead,
    client_http11: bool,
    keep_alive: bool,
) -> (Vec<u8>, Outgoing) {
    let mut out = Vec::with_capacity(res.len + 64);
    status_line(&mut out, res.status, &buf[res.reason.clone()]);
    for f in res.fields.iter().filter(|f| !f.hop) {
        push_field(&mut out, &buf[f.name.clone()], &buf[f.value.clone()]);
    }
    let outgoing = match res.body {
        Framing::Length(n) => {
            if let Some(stated) = res.length {
                out.extend_from_slice(b"content-length: ");
                push_number(&mut out, stated);
                out.extend_from_slice(b"\r\n");
            }
            if n == 0 {
                Outgoing::Empty
            } else {
                Outgoing::Length(n)
            }
        }
        Framing::Chunked | Framing::UntilClose if client_http11 => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            Outgoing::Chunked
        }
        Framing::Chunked | Framing::UntilClose => Outgoing::UntilClose,
    };
    let keep_alive = keep_alive && outgoing != Outgoing::UntilClose;
    match (keep_alive, client_http11) {
        (false, _) => out.extend_from_slice(b"connection: close\r\n"),
        (true, false) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        (true, true) => {}
    }
    out.extend_from_slice(b"\r\n");
    (out, outgoing)
}

/// A `101` as the upstream sent it: its `Upgrade` and `Connection` intact.
pub fn switching_protocols(buf: &[u8], res: &ResponseHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(res.len + 16);
    status_line(&mut out, res.status, &buf[res.reason.clone()]);
    for f in &res.fields {
        push_field(&mut out, &buf[f.name.clone()], &buf[f.value.clone()]);
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn status_line(out: &mut Vec<u8>, status: u16, reason: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_number(out, u64::from(status));
    out.push(b' ');
    let canonical = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason());
    match canonical {
        Some(r) => out.extend_from_slice(r.as_bytes()),
        None => out.extend_from_slice(reason),
    }
    out.extend_from_slice(b"\r\n");
}

/// A short plain-text answer of the proxy's own.
pub fn short(status: StatusCode, body: &str, keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    status_line(&mut out, status.as_u16(), b"");
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\ncontent-length: ");
    push_number(&mut out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let ips = [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.3.255",
            "::1",
            "2001:db8::8:800:200c:417a",
            "::ffff:1.2.3.4",
        ];
        for ip in ips {
            let ip: IpAddr = ip.parse().expect("address");
            let mut out = b"x".to_vec();
            push_ip(&mut out, ip);
            assert_eq!(out, format!("x{ip}").into_bytes());
        }
    }

    #[test]
    fn names_are_lowered() {
        let mut out = b"Keep".to_vec();
        push_name(&mut out, b"X-Forwarded-FOR");
        assert_eq!(out, b"Keepx-forwarded-for");
    }
}
