//! Property tests of the HTTP/1.1 engine's parser and chunked decoder on
//! random and mutated input: never a panic, never a stall (every step on
//! non-empty input makes progress), and a body either decoded exactly or
//! refused.

use lameduck_proxy::h1::chunked::{Decoder, Piece};
use lameduck_proxy::h1::parse::{head_end, parse_request, Framing, Limits};
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    max_head: 60 * 1024,
    max_headers: 100,
};

/// Decodes `input` fed in pieces of `step` bytes: `Ok(Some(body, used))`
/// when it ended, `Ok(None)` when more is needed, `Err` when refused.
fn decode(input: &[u8], step: usize) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut d = Decoder::default();
    let (mut at, mut body) = (0, Vec::new());
    let mut fed = step.min(input.len());
    // Each turn makes progress or asks for more: bounded by twice the input.
    for _ in 0..=(2 * input.len() + 2) {
        match d.next(&input[at..fed]).map_err(|e| e.to_string())? {
            Piece::Framing(0) if fed == input.len() => return Ok(None),
            Piece::Framing(0) => fed = (fed + step).min(input.len()),
            Piece::Framing(n) => at += n,
            Piece::Data(0) => panic!("an empty piece of data"),
            Piece::Data(n) => {
                body.extend_from_slice(&input[at..at + n]);
                at += n;
            }
            Piece::End(n) => return Ok(Some((body, at + n))),
        }
        assert!(at <= fed, "the decoder read past its input");
    }
    panic!("the decoder stalled on {input:?}");
}

/// `chunks` written in the chunked coding, with an extension and a
/// trailer when asked.
fn encode(chunks: &[Vec<u8>], ext: bool, trailer: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:X}", c.len()).as_bytes());
        if ext {
            out.extend_from_slice(b";a=b");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"x-sum: 1\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// A well-formed body decodes to exactly its data, whatever the
    /// pieces it arrives in, and the bytes after it are left alone.
    #[test]
    fn well_formed_bodies_decode_exactly(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
        ext in any::<bool>(),
        trailer in any::<bool>(),
        step in 1usize..64,
    ) {
        let mut wire = encode(&chunks, ext, trailer);
        let end = wire.len();
        wire.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        let (body, used) = decode(&wire, step).expect("valid").expect("complete");
        prop_assert_eq!(body, chunks.concat());
        prop_assert_eq!(used, end);
    }

    /// A mutated body is refused, or incomplete, or decodes to a body
    /// that encodes back to what a canonical sender would write: never a
    /// panic or a stall.
    #[test]
    fn mutated_bodies_are_decoded_exactly_or_refused(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..5),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        step in 1usize..16,
    ) {
        let mut wire = encode(&chunks, false, false);
        for (at, byte) in &flips {
            let i = at.index(wire.len());
            wire[i] = *byte;
        }
        if let Ok(Some((body, used))) = decode(&wire, step) {
            // What was taken is framed exactly like a body of that data:
            // decoding it again in one piece gives the same.
            let again = decode(&wire[..used], used.max(1)).expect("same verdict");
            prop_assert_eq!(again.map(|(b, _)| b), Some(body));
        }
    }

    /// Random bytes: no panic, no stall.
    #[test]
    fn random_bytes_never_stall_the_decoder(input in prop::collection::vec(any::<u8>(), 0..512), step in 1usize..32) {
        let _ = decode(&input, step);
    }

    /// Random and mutated request heads: no panic; a head taken has one
    /// framing, and ends where the search for its end says.
    #[test]
    fn request_heads_are_taken_whole_or_refused(
        method in "(GET|POST|PUT|HEAD|OPTIONS|DELETE|[A-Z]{1,8})",
        path in "/[a-zA-Z0-9/?=&%._~-]{0,40}",
        fields in prop::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,40}"), 0..12),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: example\r\n");
        for (n, v) in &fields {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        let mut raw = raw.into_bytes();
        for (at, byte) in &flips {
            let i = at.index(raw.len());
            raw[i] = *byte;
        }
        if let Ok(Some(head)) = parse_request(&raw, LIMITS) {
            prop_assert!(head.len <= raw.len());
            prop_assert!(head_end(&raw, 0).is_some());
            match head.body {
                Framing::Length(_) | Framing::Chunked => {}
                Framing::UntilClose => prop_assert!(false, "a request body until close"),
            }
        }
    }

    /// Every prefix of a valid head is incomplete, never refused.
    #[test]
    fn prefixes_of_a_valid_head_wait_for_more(cut in 0usize..60) {
        let raw = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n";
        let cut = cut.min(raw.len() - 1);
        prop_assert!(matches!(parse_request(&raw[..cut], LIMITS), Ok(None)));
    }
}
