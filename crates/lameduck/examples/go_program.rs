//! A typical Go service, in Rust: an HTTP API, a metrics server, a debug
//! server (pprof's place) and a gRPC server with health, all ended under
//! one deadline.
//!
//! ```sh
//! cargo run -p lameduck --example go_program
//! # API :8080, metrics :9090, debug :6060, gRPC :9000 (all on 127.0.0.1)
//! ```
//!
//! In Go the same service needs a signal channel, a list of shutdown functions,
//! `Shutdown(ctx)` per HTTP server, `GracefulStop` after setting health to
//! NOT_SERVING, and a wait group for the TCP loop. Here one `Drain` does all
//! of it: every listener keeps accepting for the drain delay, readiness and
//! gRPC health fail at once, each server closes its listener after the
//! delay, and the process exits as soon as the last connection on any of
//! them ended, or at the one deadline.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::service::TowerToHyperService;
use lameduck::{http::readiness, Drain, Phase};
use tokio::net::TcpListener;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let drain = Drain::from_env()?;
    drain.listen_for_signals()?;
    let requests = Arc::new(AtomicU64::new(0));

    // The API: counts its requests, answers readiness.
    let api = {
        let (drain, requests) = (drain.clone(), requests.clone());
        service_fn(move |req: Request<Incoming>| {
            let (drain, requests) = (drain.clone(), requests.clone());
            async move {
                requests.fetch_add(1, Ordering::Relaxed);
                let res = match req.uri().path() {
                    "/ready" => readiness(&drain),
                    _ => Response::new("hello from the API\n".to_owned()),
                };
                Ok::<_, Infallible>(res.map(|b| Full::new(Bytes::from(b))))
            }
        })
    };
    // Metrics, Prometheus text.
    let metrics = {
        let (drain, requests) = (drain.clone(), requests.clone());
        service_fn(move |_req: Request<Incoming>| {
            let text = format!(
                "# TYPE api_requests_total counter\napi_requests_total {}\n# TYPE draining gauge\ndraining {}\n",
                requests.load(Ordering::Relaxed),
                u8::from(drain.phase().is_stopping()),
            );
            async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text)))) }
        })
    };
    // A debug server in the spirit of pprof's index.
    let debug = service_fn(|_req: Request<Incoming>| async {
        let text = format!(
            "pid {}\nthreads: see /proc/{}/task\n",
            std::process::id(),
            std::process::id()
        );
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
    });
    // gRPC: health only here; add your services to the same routes.
    let (reporter, health) = tonic_health::server::health_reporter();
    lameduck::grpc::health_follows(&drain, reporter, Vec::<String>::new());
    let grpc = TowerToHyperService::new(tonic::service::Routes::new(health));

    drain.on(Phase::Stopping, "flush", || async {
        eprintln!("go_program: flushing buffers before exit");
        Ok::<_, Infallible>(())
    });

    tokio::spawn(lameduck::http::serve(
        TcpListener::bind("127.0.0.1:8080").await?,
        drain.clone(),
        api,
    ));
    tokio::spawn(lameduck::http::serve(
        TcpListener::bind("127.0.0.1:9090").await?,
        drain.clone(),
        metrics,
    ));
    tokio::spawn(lameduck::http::serve(
        TcpListener::bind("127.0.0.1:6060").await?,
        drain.clone(),
        debug,
    ));
    tokio::spawn(lameduck::http::serve(
        TcpListener::bind("127.0.0.1:9000").await?,
        drain.clone(),
        grpc,
    ));
    eprintln!("go_program: API :8080, metrics :9090, debug :6060, gRPC :9000");

    let report = drain.run().await;
    eprintln!(
        "go_program: drained in {:?}; {} connection(s) cut at the deadline; hooks: {:?}",
        report.duration, report.open_at_deadline, report.hooks
    );
    Ok(())
}
