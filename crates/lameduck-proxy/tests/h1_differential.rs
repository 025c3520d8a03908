//! One corpus of malformed and borderline HTTP/1.1 requests, sent to
//! hyper's server and to the drain proxy's own engine: the verdicts must be
//! the same, or the engine's stricter where written down here with why;
//! and for every request the engine takes, the bytes the upstream receives
//! are checked exactly.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use lameduck::http::HttpServer;
use lameduck_proxy::{Config, Mode, Proxy, UpstreamProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What a server made of a request: its answer's status.
type Verdict = u16;

/// One request of the corpus.
struct Case {
    name: &'static str,
    raw: String,
    /// The engine's verdict.
    engine: Verdict,
    /// Why the engine refuses what hyper takes, if it does.
    stricter: Option<&'static str>,
    /// What the upstream receives, `{up}` standing for its address.
    upstream: Option<String>,
}

fn case(name: &'static str, raw: &str, engine: Verdict, upstream: Option<&str>) -> Case {
    Case {
        name,
        raw: raw.to_owned(),
        engine,
        stricter: None,
        upstream: upstream.map(str::to_owned),
    }
}

fn stricter(name: &'static str, raw: &str, engine: Verdict, why: &'static str) -> Case {
    Case {
        name,
        raw: raw.to_owned(),
        engine,
        stricter: Some(why),
        upstream: None,
    }
}

const XF: &str = "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n";

fn corpus() -> Vec<Case> {
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "v".repeat(61 * 1024)
    );
    vec![
        case("plain GET", "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n", 200,
            Some(&format!("GET /a?b=1 HTTP/1.1\r\nhost: x\r\n{XF}\r\n"))),
        case("Content-Length body", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 200,
            Some(&format!("POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n{XF}\r\nhello"))),
        case("identical Content-Lengths", "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 200,
            Some(&format!("POST /p HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n{XF}\r\nhello"))),
        case("chunked with an extension and a trailer",
            "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n", 200,
            Some(&format!("POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n{XF}\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"))),
        case("absolute form", "GET http://x/a?b HTTP/1.1\r\nHost: x\r\n\r\n", 200,
            Some(&format!("GET /a?b HTTP/1.1\r\nhost: x\r\n{XF}\r\n"))),
        case("bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", 200,
            Some(&format!("GET / HTTP/1.1\r\nhost: x\r\n{XF}\r\n"))),
        case("HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", 200,
            Some(&format!("GET / HTTP/1.1\r\nhost: {{up}}\r\n{XF}\r\n"))),
        case("hop-by-hop and named fields stay behind",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Kept: 2\r\n\r\n", 200,
            Some(&format!("GET / HTTP/1.1\r\nhost: x\r\nx-kept: 2\r\n{XF}\r\n"))),
        case("X-Forwarded-For appended, -Proto replaced",
            "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n", 200,
            Some("GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\n\r\n")),
        case("differing Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, None),
        case("a Content-Length list that differs", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400, None),
        case("a signed Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400, None),
        case("a negative Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, None),
        case("chunked not last", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, None),
        case("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, None),
        case("whitespace before the colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 400, None),
        case("a bare CR in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, None),
        case("a NUL in a value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400, None),
        case("a space in the target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, None),
        case("not hex chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, None),
        case("chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400, None),
        case("chunk data longer than its size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", 400, None),
        case("too many fields", &format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n"), 431, None),
        stricter("a head too large, in one burst", &big, 431,
            "hyper's max_buf_size bounds a head only when it arrives in several reads: in one burst it takes up to about twice the limit"),
        case("not HTTP", "NOT HTTP AT ALL\r\n\r\n", 400, None),
        stricter("Content-Length and Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
            "RFC 9112 §6.1 lets a server drop Content-Length, but an upstream that reads it instead is how requests are smuggled; HAProxy's and Envoy's strict modes refuse"),
        stricter("a coding under chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
            "the body is re-framed on its way, so a coding under chunked would be lost; RFC 9112 §6.1 answers 501 to a coding not understood"),
        case("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, None),
        stricter("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400,
            "RFC 9112 §3.2: a request with more than one Host gets 400 (HAProxy does); hyper passes both on"),
        stricter("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400,
            "RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400; hyper leaves it to the service"),
        stricter("whitespace after a chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400,
            "RFC 9112 §7.1 has no whitespace after the size; hyper tolerates it, a stricter upstream would not"),
        case("a bare LF after a chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, None),
    ]
}

/// hyper's HTTP/1.1 server with the proxy's limits: 200 once the body was
/// read, 400 when it could not be.
async fn hyper_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let status = match req.into_body().collect().await {
                        Ok(_) => 200,
                        Err(_) => 400,
                    };
                    let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
                    *res.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
                    Ok::<_, Infallible>(res)
                });
                let _ = http1::Builder::new()
                    .max_buf_size(60 * 1024)
                    .max_headers(100)
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// An upstream that records each request's bytes (head and framed body)
/// and answers 200.
async fn recording_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if let Some(len) = request_len(&got) {
                        let rest = got.split_off(len);
                        let _ = tx.send(std::mem::replace(&mut got, rest));
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(ok).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// The length of the first whole request in `buf` (the engine writes a
/// canonical framing: a length, or chunks ending in `0\r\n\r\n`).
fn request_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    if text.contains("transfer-encoding: chunked") {
        let end = buf[head..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head + end + 5);
    }
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    (buf.len() >= head + len).then_some(head + len)
}

/// Sends `raw` on a new connection and reads the status of the answer.
async fn verdict(addr: SocketAddr, raw: &[u8]) -> Verdict {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let _ = conn.write_all(raw).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer to {:?}",
        String::from_utf8_lossy(raw)
    );
    let line = String::from_utf8_lossy(&answer);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_engine_is_as_strict_as_hyper_or_stricter_as_written_and_forwards_exactly() {
    let hyper = hyper_server().await;
    let (up, mut received) = recording_upstream().await;
    let config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        mode: Mode::Http,
        upstream: up.to_string().parse().expect("upstream"),
        upstream_protocol: UpstreamProtocol::Http1,
        admin: None,
        admin_allow_remote: false,
        timing: lameduck::Timing::default(),
        http: HttpServer::default(),
        connect_timeout: Duration::from_secs(2),
        max_upstream_connections: 64,
        upstream_timeout: Some(Duration::from_secs(5)),
        workers: Default::default(),
    };
    let proxy = Proxy::bind(config).await.expect("bind");
    let engine = proxy.local_addr().expect("addr");
    tokio::spawn(proxy.run());
    let mut failures = Vec::new();
    for case in corpus() {
        let theirs = verdict(hyper, case.raw.as_bytes()).await;
        let ours = verdict(engine, case.raw.as_bytes()).await;
        if ours != case.engine {
            failures.push(format!(
                "{}: the engine answered {ours}, not {}",
                case.name, case.engine
            ));
        }
        match case.stricter {
            None if theirs / 100 != ours / 100 => failures.push(format!(
                "{}: hyper answered {theirs}, the engine {ours}, and no reason is written down",
                case.name
            )),
            Some(_) if !(200..300).contains(&theirs) => failures.push(format!(
                "{}: written down as stricter, but hyper refuses it too ({theirs})",
                case.name
            )),
            _ => {}
        }
        match (&case.upstream, (200..300).contains(&ours)) {
            (Some(expected), true) => {
                let got = tokio::time::timeout(Duration::from_secs(5), received.recv())
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let expected = expected.replace("{up}", &up.to_string());
                if got != expected.as_bytes() {
                    failures.push(format!(
                        "{}: the upstream received {:?}, not {expected:?}",
                        case.name,
                        String::from_utf8_lossy(&got)
                    ));
                }
            }
            (None, true) => failures.push(format!("{}: taken, with no expected bytes", case.name)),
            _ => {}
        }
    }
    // Nothing refused reached the upstream.
    assert!(
        received.try_recv().is_err(),
        "a refused request reached the upstream"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
