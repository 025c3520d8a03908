//! `HttpServer::max_connection_age` with real hyper clients on loopback:
//! an HTTP/1.1 client is told `Connection: close` after the age and loses
//! nothing, and keeps one connection without the option; an HTTP/2 stream
//! past the age finishes and the connection ends after it (GOAWAY); with a
//! grace, a stream still open after it is cut.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lameduck::http::HttpServer;
use lameduck::Drain;
use tokio::net::{TcpListener, TcpStream};

/// How long any one expected event may take before the test fails.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves `/` (hello) and `/slow?ms=N` with `server` until the test ends.
async fn start(server: HttpServer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let service = service_fn(|req: Request<Incoming>| async move {
        let ms: u64 = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("ms="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
    });
    tokio::spawn(async move { server.serve_listener(listener, Drain::new(), service).await });
    addr
}

fn aged(age: Duration, grace: Option<Duration>) -> HttpServer {
    HttpServer {
        max_connection_age: Some(age),
        max_connection_age_grace: grace,
        ..HttpServer::default()
    }
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "age")
        .body(Empty::new())
        .expect("request")
}

/// What a keep-alive HTTP/1.1 client saw in `seconds` of requests.
#[derive(Debug, Default)]
struct Seen {
    ok: u32,
    failed: u32,
    connections: u32,
    told_to_close: u32,
    /// The last answer said close, and the run ended before another
    /// connection was opened.
    closed_at_end: bool,
}

/// Requests `/` one after another for `run`, 10ms apart, on one connection
/// until an answer says `Connection: close`, then on a new one. No retry:
/// a request the server dropped shows as failed.
async fn keep_alive_client(addr: &str, run: Duration) -> Seen {
    let mut seen = Seen::default();
    let mut sender = None;
    let end = Instant::now() + run;
    while Instant::now() < end {
        let current = match sender.as_mut() {
            Some(s) => s,
            None => {
                let stream = TcpStream::connect(addr).await.expect("connect");
                let (s, conn) = http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                tokio::spawn(conn);
                seen.connections += 1;
                sender.insert(s)
            }
        };
        match current.send_request(get("/")).await {
            Ok(res) => {
                let close = res
                    .headers()
                    .get("connection")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
                let status = res.status();
                let body = res.into_body().collect().await.map(|b| b.to_bytes());
                match body {
                    Ok(body) if status == 200 && body == "hello\n" => seen.ok += 1,
                    _ => seen.failed += 1,
                }
                if close {
                    seen.told_to_close += 1;
                    sender = None;
                }
            }
            Err(_) => {
                seen.failed += 1;
                sender = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.closed_at_end = sender.is_none();
    seen
}

#[tokio::test]
async fn an_http1_client_is_told_to_close_after_the_age_and_loses_nothing() {
    let addr = start(aged(Duration::from_secs(1), None)).await;
    let seen = keep_alive_client(&addr, Duration::from_secs(3)).await;
    assert_eq!(seen.failed, 0, "{seen:?}");
    assert!(seen.ok > 50, "{seen:?}");
    // 3s at an age of 0.9s to 1.1s.
    assert!(seen.told_to_close >= 2, "{seen:?}");
    // A new connection after each one told to close, and for no other
    // reason (none failed): one fewer when the run ended right after it.
    assert_eq!(
        seen.connections + u32::from(seen.closed_at_end),
        seen.told_to_close + 1,
        "{seen:?}"
    );
}

#[tokio::test]
async fn without_an_age_an_http1_client_keeps_its_connection() {
    let addr = start(HttpServer::default()).await;
    let seen = keep_alive_client(&addr, Duration::from_millis(2500)).await;
    assert_eq!(seen.failed, 0, "{seen:?}");
    assert_eq!((seen.connections, seen.told_to_close), (1, 0), "{seen:?}");
}

/// An HTTP/2 connection to `addr`: its sender and the task driving it.
async fn h2_connection(
    addr: &str,
) -> (
    http2::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<Result<(), hyper::Error>>,
) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    (sender, tokio::spawn(conn))
}

#[tokio::test]
async fn an_http2_stream_past_the_age_finishes_and_the_connection_ends_after_it() {
    let addr = start(aged(Duration::from_secs(1), None)).await;
    let (mut sender, conn) = h2_connection(&addr).await;
    let started = Instant::now();
    let res = sender
        .send_request(get("/slow?ms=1600"))
        .await
        .expect("the stream begun before the age is answered");
    let body = res.into_body().collect().await.expect("whole body");
    assert_eq!(body.to_bytes(), "hello\n");
    // The server said GOAWAY at the age and closes once its last stream
    // is done: the client's connection ends cleanly.
    let ended = tokio::time::timeout(EVENT_TIMEOUT, conn)
        .await
        .expect("the connection ends after its last stream")
        .expect("task");
    assert!(ended.is_ok(), "{ended:?}");
    assert!(started.elapsed() >= Duration::from_millis(1600));
    assert!(
        sender.send_request(get("/")).await.is_err(),
        "no new stream on a connection that went away"
    );
}

#[tokio::test]
async fn with_a_grace_an_http2_stream_still_open_after_it_is_cut() {
    let addr = start(aged(
        Duration::from_secs(1),
        Some(Duration::from_millis(300)),
    ))
    .await;
    let (mut sender, _conn) = h2_connection(&addr).await;
    let started = Instant::now();
    let answer = async {
        let res = sender.send_request(get("/slow?ms=5000")).await?;
        res.into_body().collect().await.map(|_| ())
    };
    let result = tokio::time::timeout(EVENT_TIMEOUT, answer)
        .await
        .expect("an end");
    assert!(result.is_err(), "cut, not answered");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

/// Reads from `stream` into `buf` until `done` says what it holds is
/// enough; fails the test when the connection ends first.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    use tokio::io::AsyncReadExt;
    while !done(buf) {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "connection ended early: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The end of the first HTTP/1.1 head in `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The length of the HTTP/2 frame `buf` begins with, its 9-byte header
/// included, once the header is there.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let head = buf.get(..3)?;
    let payload = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    (buf.len() >= 9).then_some(9 + payload)
}

/// An HTTP/1.1 connection upgraded to h2c keeps the age it was given when
/// accepted; it is not drawn again at the upgrade. Time is the runtime's
/// paused clock, so the 25 seconds between the two requests (within the
/// header read timeout that ends an idle HTTP/1.1 connection) cost nothing, and
/// the age's window is exact.
#[tokio::test(start_paused = true)]
async fn an_h2c_upgrade_keeps_the_age_of_its_http1_connection() {
    use tokio::io::AsyncWriteExt;
    let addr = start(aged(Duration::from_secs(100), None)).await;
    let accepted = tokio::time::Instant::now();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let mut buf = Vec::new();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: age\r\n\r\n")
        .await
        .expect("write");
    read_until(&mut stream, &mut buf, |b| b.ends_with(b"hello\n")).await;
    buf.clear();
    tokio::time::sleep(Duration::from_secs(25)).await;
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nhost: age\r\nconnection: Upgrade, HTTP2-Settings\r\n\
            upgrade: h2c\r\nhttp2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
        )
        .await
        .expect("write");
    read_until(&mut stream, &mut buf, |b| head_end(b).is_some()).await;
    assert!(
        buf.starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    buf.drain(..head_end(&buf).unwrap_or(0));
    // The client's preface and an empty SETTINGS frame.
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    stream.write_all(&preface).await.expect("write");
    // Frames until the GOAWAY; PINGs are answered, as a live client does.
    loop {
        read_until(&mut stream, &mut buf, |b| {
            frame_len(b).is_some_and(|n| b.len() >= n)
        })
        .await;
        let len = frame_len(&buf).unwrap_or(0);
        let frame: Vec<u8> = buf.drain(..len).collect();
        let (kind, flags) = (frame[3], frame[4]);
        if kind == 0x6 && flags & 0x1 == 0 {
            let mut ack = frame.clone();
            ack[4] = 0x1;
            stream.write_all(&ack).await.expect("write");
        }
        if kind == 0x7 {
            break;
        }
    }
    // Drawn at accept: 90s to 110s. Drawn again at the upgrade, it would
    // be 115s to 135s.
    let at = accepted.elapsed();
    assert!(
        at >= Duration::from_secs(90) && at <= Duration::from_secs(111),
        "GOAWAY {at:?} after the connection was accepted"
    );
}
