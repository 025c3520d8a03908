//! gRPC through the drain: tonic's health service, served by
//! `lameduck::http::serve`, answers SERVING until the drain begins and
//! NOT_SERVING from then on, also on a Watch stream that stays open through
//! the drain. The client speaks gRPC over hyper's HTTP/2 client: the
//! messages are written and read as bytes, as on the wire.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use lameduck::Drain;
use tonic_health::ServingStatus;

const SERVING: u8 = 1;
const NOT_SERVING: u8 = 2;

/// A gRPC frame holding `HealthCheckRequest { service }`.
fn health_request(service: &str) -> Bytes {
    let mut proto = vec![0x0a, service.len() as u8];
    proto.extend_from_slice(service.as_bytes());
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(proto.len() as u32).to_be_bytes());
    frame.extend_from_slice(&proto);
    Bytes::from(frame)
}

/// The status in one `HealthCheckResponse` message (field 1, a varint).
fn status_of(message: &[u8]) -> u8 {
    match message {
        [0x08, status, ..] => *status,
        // Field left out: the default, UNKNOWN.
        _ => 0,
    }
}

async fn connect(addr: std::net::SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    sender
}

fn call(method: &str, service: &str) -> Request<Full<Bytes>> {
    Request::post(format!("http://test/grpc.health.v1.Health/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(health_request(service)))
        .expect("request")
}

async fn check(addr: std::net::SocketAddr, service: &str) -> u8 {
    let mut sender = connect(addr).await;
    let res = sender
        .send_request(call("Check", service))
        .await
        .expect("Check");
    let body = res.into_body().collect().await.expect("body");
    let trailers = body.trailers().cloned().expect("trailers");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );
    let bytes = body.to_bytes();
    status_of(&bytes[5..])
}

#[tokio::test]
async fn health_turns_not_serving_when_the_drain_begins_and_streams_go_on() {
    let drain = Drain::builder()
        .drain_delay(Duration::from_millis(500))
        .grace_period(Duration::from_secs(4))
        .build();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("echo.Echo", ServingStatus::Serving)
        .await;
    lameduck::grpc::health_follows(&drain, reporter, ["echo.Echo"]);
    let routes = tonic::service::Routes::new(health);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(lameduck::http::serve(
        listener,
        drain.clone(),
        TowerToHyperService::new(routes),
    ));

    assert_eq!(check(addr, "").await, SERVING);
    assert_eq!(check(addr, "echo.Echo").await, SERVING);

    // A Watch stream opened before the drain.
    let mut watcher = connect(addr).await;
    let res = watcher
        .send_request(call("Watch", "echo.Echo"))
        .await
        .expect("Watch");
    let mut stream = res.into_body();
    let mut next_status = async || loop {
        let frame = stream.frame().await.expect("a frame").expect("no error");
        if let Ok(mut data) = frame.into_data() {
            data.advance(5);
            return status_of(&data);
        }
    };
    assert_eq!(next_status().await, SERVING);

    drain.trigger();
    let run = tokio::spawn({
        let drain = drain.clone();
        async move { drain.run().await }
    });
    drain.draining().await;
    // The stream opened before the drain hears of it, and stays open.
    assert_eq!(next_status().await, NOT_SERVING);
    // New connections are still taken during the delay, and told the same.
    assert_eq!(check(addr, "echo.Echo").await, NOT_SERVING);
    assert_eq!(check(addr, "").await, NOT_SERVING);

    let report = run.await.expect("run");
    assert_eq!(
        report.open_at_deadline, 1,
        "the Watch stream ran until the deadline"
    );
    assert!(report
        .hooks
        .iter()
        .all(|h| h.result == lameduck::HookResult::Succeeded));
}
