//! An axum service that ends without losing a request.
//!
//! ```sh
//! cargo run -p lameduck --example axum                # listens on 127.0.0.1:3000
//! LAMEDUCK_DRAIN_DELAY=5s LAMEDUCK_GRACE_PERIOD=30s cargo run -p lameduck --example axum
//! ```
//!
//! The `Router` is served as is, through `TowerToHyperService`. On SIGTERM,
//! `/ready` answers 503 while requests are still served for the drain delay;
//! HTTP/1.1 answers then carry `Connection: close` and HTTP/2 clients get
//! GOAWAY; the listener closes after the delay; a request in flight (try
//! `/slow` and Ctrl-C) finishes; the process exits as soon as nothing is open.
//!
//! Connections are renewed after 5 minutes (±10% each), as gRPC servers do
//! with MaxConnectionAge, so clients that keep their connections spread over
//! the new pods of a scale-up; `MAX_CONNECTION_AGE_SECS=2` shows it: a
//! keep-alive client's answers say `Connection: close` after 2s.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use hyper_util::service::TowerToHyperService;
use lameduck::http::{readiness, HttpServer};
use lameduck::{Drain, Phase};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let drain = Drain::from_env()?;
    drain.listen_for_signals()?;
    drain.on(Phase::Draining, "deregister", || async {
        eprintln!("axum: draining: a real service would leave its registry here");
        Ok::<_, std::io::Error>(())
    });

    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "slow done\n"
            }),
        )
        .route(
            "/ready",
            get(|State(drain): State<Drain>| async move { readiness(&drain) }),
        )
        .with_state(drain.clone());

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("axum: listening on {addr}");
    let age_secs = match std::env::var("MAX_CONNECTION_AGE_SECS") {
        Ok(secs) => secs.parse()?,
        Err(_) => 300,
    };
    let server = HttpServer {
        max_connection_age: Some(Duration::from_secs(age_secs)),
        ..HttpServer::default()
    };
    let service = TowerToHyperService::new(app);
    let serving = drain.clone();
    tokio::spawn(async move { server.serve_listener(listener, serving, service).await });
    let report = drain.run().await;
    eprintln!("axum: drained in {:?}", report.duration);
    Ok(())
}
