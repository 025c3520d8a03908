use super::*;

const LIMITS: Limits = Limits {
    max_head: 60 * 1024,
    max_headers: 100,
};

fn verdict(raw: &[u8]) -> Result<Option<RequestHead>, Refusal> {
    parse_request(raw, LIMITS)
}

#[test]
fn a_plain_request_is_framed() {
    let head = verdict(b"POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .expect("valid")
        .expect("complete");
    assert_eq!(head.body, Framing::Length(5));
    assert_eq!(head.path.as_str(), "/a?b");
    assert!(head.keep_alive);
}

#[test]
fn smuggling_shapes_are_refused() {
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    ] {
        assert!(verdict(raw).is_err(), "{:?} was taken", String::from_utf8_lossy(raw));
    }
}

#[test]
fn identical_lengths_are_one() {
    let head =
        verdict(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
            .expect("valid")
            .expect("complete");
    assert_eq!(head.body, Framing::Length(5));
}

#[test]
fn limits_answer_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..101 {
        raw.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    let status = verdict(&raw).err().map(|r| r.status);
    assert_eq!(status, Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
    let big = vec![b'a'; 61 * 1024];
    let status = verdict(&big).err().map(|r| r.status);
    assert_eq!(status, Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE));
}

#[test]
fn a_head_ends_at_an_empty_line() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nX", 0), Some(18));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r", 0), None);
    assert_eq!(head_end(b"GET / HTTP/1.1\n\n", 10), Some(16));
}
