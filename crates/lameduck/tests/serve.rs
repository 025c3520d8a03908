//! A Rust service served through the drain, with a real hyper client on
//! loopback: no request fails across the drain, a long request completes,
//! readiness flips, an idle service ends right after the delay, and the
//! deadline holds when a handler never finishes.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lameduck::{http::readiness, Drain};
use tokio::net::TcpListener;

/// Set once a request reached the `/never` handler.
static NEVER_ENTERED: AtomicBool = AtomicBool::new(false);

/// `/` says hello, `/slow` takes a second, `/never` never answers,
/// `/ready` is the drain's readiness.
async fn start(drain: &Drain) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let d = drain.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let d = d.clone();
        async move {
            let res = match req.uri().path() {
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Response::new("slow done\n".to_owned())
                }
                "/never" => {
                    NEVER_ENTERED.store(true, Ordering::Release);
                    std::future::pending().await
                }
                "/ready" => readiness(&d),
                _ => Response::new("hello\n".to_owned()),
            };
            Ok::<_, Infallible>(res.map(|b| Full::new(Bytes::from(b))))
        }
    });
    tokio::spawn(lameduck::http::serve(listener, drain.clone(), service));
    format!("http://{addr}")
}

/// Waits until `done` holds; fails the test after 20s rather than hang.
async fn until(what: &str, done: impl Fn() -> bool) {
    let wait = async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .is_err()
    {
        panic!("timed out waiting for {what}");
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    // No retry on a connection the server closed: such a loss must show.
    Client::builder(TokioExecutor::new())
        .retry_canceled_requests(false)
        .build_http()
}

async fn get(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    url: &str,
) -> Result<(StatusCode, bool, String), String> {
    let res = client
        .get(url.parse().expect("url"))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let close = res
        .headers()
        .get("connection")
        .is_some_and(|v| v == "close");
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, close, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn nothing_fails_across_the_drain_and_a_long_request_completes() {
    let drain = Drain::builder()
        .drain_delay(Duration::from_secs(2))
        .grace_period(Duration::from_secs(20))
        .build();
    let base = start(&drain).await;
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let served_after_close = Arc::new(AtomicUsize::new(0));
    let mut loops = Vec::new();
    for _ in 0..3 {
        let (stop, failures, after, url) = (
            stop.clone(),
            failures.clone(),
            served_after_close.clone(),
            format!("{base}/"),
        );
        loops.push(tokio::spawn(async move {
            let client = client();
            let mut told = false;
            while !stop.load(Ordering::Relaxed) {
                match get(&client, &url).await {
                    Ok((StatusCode::OK, close, body)) if body == "hello\n" => {
                        if told {
                            after.fetch_add(1, Ordering::Relaxed);
                        }
                        told |= close;
                    }
                    other => failures
                        .lock()
                        .expect("failures")
                        .push(format!("{other:?}")),
                }
            }
        }));
    }
    let slow = tokio::spawn({
        let url = format!("{base}/slow");
        async move { get(&client(), &url).await }
    });
    let c = client();
    assert_eq!(
        get(&c, &format!("{base}/ready")).await.expect("ready").0,
        StatusCode::OK
    );
    drain.trigger();
    let run = tokio::spawn({
        let drain = drain.clone();
        async move { drain.run().await }
    });
    drain.draining().await;
    let (status, _, _) = get(&client(), &format!("{base}/ready"))
        .await
        .expect("readiness");
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "readiness flips at once"
    );
    until(
        "every client served again after being told to close",
        || served_after_close.load(Ordering::Relaxed) >= 15,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.expect("client loop");
    }
    assert!(
        failures.lock().expect("failures").is_empty(),
        "{:?}",
        failures.lock()
    );
    let (status, close, body) = slow
        .await
        .expect("slow task")
        .expect("the long request completes");
    assert_eq!((status, body.as_str()), (StatusCode::OK, "slow done\n"));
    assert!(
        close,
        "a request that began before the drain is told to close too"
    );
    let report = run.await.expect("run");
    assert_eq!(report.open_at_deadline, 0);
    assert_eq!(report.delay, Duration::from_secs(2));
}

#[tokio::test]
async fn the_deadline_holds_when_a_handler_never_finishes() {
    // A 4s grace period: 1s margin leaves the app 3s, of which it keeps a
    // quarter to stop once idle, as behind `lameduck run`: a 2.25s deadline.
    let drain = Drain::builder()
        .drain_delay(Duration::ZERO)
        .grace_period(Duration::from_secs(4))
        .build();
    assert_eq!(drain.timing().deadline, Duration::from_millis(2250));
    let base = start(&drain).await;
    let stuck = tokio::spawn({
        let url = format!("{base}/never");
        async move { get(&client(), &url).await }
    });
    // Wait until the request is in its handler.
    until("the request to reach its handler", || {
        NEVER_ENTERED.load(Ordering::Acquire)
    })
    .await;
    drain.trigger();
    let report = drain.run().await;
    // The stuck connection alone: the listener closed long before.
    assert_eq!(report.open_at_deadline, 1);
    assert!(
        stuck.await.expect("stuck task").is_err(),
        "the stuck request is cut, not answered"
    );
}
