//! HTTP/2 streams to an HTTP/1.1 app go through the engine's upstream
//! side: curl (HTTP/2, prior knowledge) in front, a raw HTTP/1.1 upstream
//! behind that records the bytes it gets and answers in every framing.
//! Checked: the head the app receives, the answer curl sees, the reuse of
//! the upstream connection, and the 502 when the app fails.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lameduck::http::HttpServer;
use lameduck_proxy::{Config, Mode, Proxy, UpstreamProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Request heads the app got, each with the number of its connection.
type Seen = Arc<Mutex<Vec<(usize, String)>>>;

/// The app's answer to a path.
fn answer_to(path: &str) -> Option<&'static [u8]> {
    Some(match path {
        "/length" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-App: 1\r\nKeep-Alive: timeout=5\r\n\r\nhello",
        "/chunked" => b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        "/empty" => b"HTTP/1.1 204 No Content\r\n\r\n",
        "/interim" => b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "/close" => b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        "/switch" => b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        _ => return None,
    })
}

/// An HTTP/1.1 app that answers heads without bodies, keeps connections
/// open, and closes one (answering nothing) for `/fail`.
async fn app(listener: TcpListener, seen: Seen) {
    let mut n = 0;
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        n += 1;
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                buf.drain(..end + 4);
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().expect("test setup").push((n, head));
                let Some(answer) = answer_to(&path) else {
                    return;
                };
                if conn.write_all(answer).await.is_err() || path == "/close" {
                    return;
                }
            }
        });
    }
}

struct Setup {
    proxy: SocketAddr,
    upstream: SocketAddr,
    seen: Seen,
}

async fn setup() -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
    let upstream = listener.local_addr().expect("test setup");
    let seen = Seen::default();
    tokio::spawn(app(listener, seen.clone()));
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("test setup"),
        upstream: upstream.to_string().parse().expect("test setup"),
        upstream_protocol: UpstreamProtocol::Http1,
        mode: Mode::Http,
        admin: None,
        admin_allow_remote: false,
        timing: Default::default(),
        connect_timeout: Duration::from_secs(5),
        max_upstream_connections: 100,
        upstream_timeout: Some(Duration::from_secs(10)),
        http: HttpServer::default(),
        workers: Default::default(),
    };
    let proxy = Proxy::bind(config).await.expect("test setup");
    let addr = proxy.local_addr().expect("test setup");
    tokio::spawn(proxy.run());
    Setup {
        proxy: addr,
        upstream,
        seen,
    }
}

/// curl over HTTP/2 (prior knowledge): the head it got and the body, for
/// each URL in turn, a connection each (curl 7.88 fails a second request
/// on a prior-knowledge connection with "Error in the HTTP2 framing
/// layer", whatever the server).
async fn curl(args: &[String]) -> String {
    let (urls, options): (Vec<String>, Vec<String>) =
        args.iter().cloned().partition(|a| a.starts_with("http://"));
    let mut all = String::new();
    for url in urls {
        let options = options.clone();
        all += &tokio::task::spawn_blocking(move || {
            let head = if options.iter().any(|o| o == "-I") {
                None
            } else {
                Some(["-D", "-"])
            };
            let out = Command::new("curl")
                .args(["-s", "-S", "--http2-prior-knowledge", "--max-time", "10"])
                .args(head.iter().flatten())
                .args(&options)
                .arg(&url)
                .output()
                .expect("curl");
            let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.is_empty(), "curl {url}: {err}");
            // hyper's server dates every answer.
            text.split_inclusive('\n')
                .filter(|l| !l.starts_with("date: "))
                .collect::<String>()
        })
        .await
        .expect("test setup");
    }
    all
}

fn url(s: &Setup, path: &str) -> String {
    format!("http://{}{path}", s.proxy)
}

#[tokio::test]
async fn a_stream_reaches_the_app_as_hyper_would_write_it_and_the_answer_comes_back_in_every_framing(
) {
    let s = setup().await;
    let paths = ["/length", "/chunked", "/empty", "/interim", "/length"];
    let mut args: Vec<String> = paths.iter().map(|p| url(&s, p)).collect();
    args.extend([
        "-H".into(),
        "X-Forwarded-For: 10.0.0.1".into(),
        "-H".into(),
        "X-Forwarded-Proto: https".into(),
    ]);
    args.extend(["-H".into(), "TE: trailers".into(), "-A".into(), "ua".into()]);
    let out = curl(&args).await;
    let expected = "HTTP/2 200 \nx-app: 1\ncontent-length: 5\n\nhello\
        HTTP/2 201 \n\nhello world\
        HTTP/2 204 \n\n\
        HTTP/2 200 \ncontent-length: 2\n\nok\
        HTTP/2 200 \nx-app: 1\ncontent-length: 5\n\nhello";
    assert_eq!(out, expected);
    let seen = s.seen.lock().expect("test setup").clone();
    let heads: Vec<&str> = seen.iter().map(|(_, h)| h.as_str()).collect();
    let want = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\nuser-agent: ua\r\naccept: */*\r\n\
             x-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\n\r\n",
            s.proxy
        )
    };
    let wanted: Vec<String> = paths.iter().map(|p| want(p)).collect();
    assert_eq!(heads, wanted);
    // One kept connection served every stream, one after the other.
    assert!(seen.iter().all(|(n, _)| *n == seen[0].0), "{seen:?}");
    let _ = s.upstream;
}

#[tokio::test]
async fn head_answers_keep_their_length_and_a_body_until_close_ends_the_connection() {
    let s = setup().await;
    let out = curl(&["-I".into(), url(&s, "/head")]).await;
    assert_eq!(out, "HTTP/2 200 \ncontent-length: 1234\n\n");
    let out = curl(&[url(&s, "/close"), url(&s, "/length")]).await;
    assert_eq!(
        out,
        "HTTP/2 200 \n\nuntil the end\
         HTTP/2 200 \nx-app: 1\ncontent-length: 5\n\nhello"
    );
    let seen = s.seen.lock().expect("test setup").clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen[0].1.starts_with("HEAD /head HTTP/1.1\r\n"));
    // The HEAD's connection was kept; the one the app closed was not.
    assert_eq!(seen[1].0, seen[0].0);
    assert_ne!(seen[2].0, seen[1].0);
}

#[tokio::test]
async fn an_app_that_fails_or_switches_protocols_unasked_gets_a_502() {
    let s = setup().await;
    let out = curl(&[url(&s, "/fail"), url(&s, "/switch"), url(&s, "/length")]).await;
    assert_eq!(
        out,
        "HTTP/2 502 \ncontent-type: text/plain; charset=utf-8\ncontent-length: 21\n\nupstream unavailable\n\
         HTTP/2 502 \ncontent-type: text/plain; charset=utf-8\ncontent-length: 21\n\nupstream unavailable\n\
         HTTP/2 200 \nx-app: 1\ncontent-length: 5\n\nhello"
    );
}

#[tokio::test]
async fn a_kept_connection_the_app_closed_is_not_used_and_the_stream_is_answered() {
    let s = setup().await;
    // `/close` answers on a connection the app then closes; the next
    // stream must go to a new one, whatever the pool had kept.
    let out = curl(&[url(&s, "/length"), url(&s, "/close"), url(&s, "/length")]).await;
    assert!(out.ends_with("hello"), "{out}");
    let mut raw = TcpStream::connect(s.proxy).await.expect("test setup");
    raw.write_all(b"GET /length HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("test setup");
    let mut got = vec![0u8; 256];
    let n = raw.read(&mut got).await.expect("test setup");
    assert!(got[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
}
