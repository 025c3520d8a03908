//! HTTP clients: keep-alive connections through the balancer, some requests
//! on fresh connections, each request's end written to the ledger.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use crate::balancer::{Route, Routes, Upstream};
use crate::ledger::{Ledger, LostRequest, RequestOutcome};
use crate::plan::HttpLoad;

/// A connection's sender, HTTP/1.1 or HTTP/2.
enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

struct Connection {
    sender: Sender,
    route: Arc<Route>,
}

/// What a client shares with the others.
pub struct Shared {
    /// The balancer.
    pub target: SocketAddr,
    /// Routes of the balancer's connections.
    pub routes: Arc<Routes>,
    /// Where results go.
    pub ledger: Arc<Ledger>,
    /// The load's settings.
    pub load: HttpLoad,
    /// Requests sent so far, for `max_requests`.
    pub sent: AtomicU64,
}

/// One keep-alive client until `stop` turns true.
pub async fn client(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let load = &shared.load;
    let mut pace = load.rps.map(|rps| {
        let every = Duration::from_secs_f64(load.clients as f64 / f64::from(rps.max(1)));
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let mut kept: Option<Connection> = None;
    // Fresh connections at the asked share, spread evenly rather than at
    // random so that two runs send the same mix.
    let mut fresh_share = 0.0;
    loop {
        if let Some(pace) = pace.as_mut() {
            tokio::select! {
                _ = pace.tick() => {}
                () = async { let _ = stop.wait_for(|s| *s).await; } => return,
            }
        }
        if *stop.borrow() {
            return;
        }
        if let Some(max) = load.max_requests {
            if shared.sent.fetch_add(1, Ordering::Relaxed) >= max {
                return;
            }
        }
        fresh_share += load.new_connection_ratio;
        let fresh = fresh_share >= 1.0;
        if fresh {
            fresh_share -= 1.0;
            let mut conn = None;
            request(&shared, &mut conn, true).await;
        } else {
            request(&shared, &mut kept, false).await;
        }
    }
}

/// Sends one request on `conn` (opening it when needed) and records its
/// end. A request that never left because the connection had just closed
/// is sent again on a new one, as every HTTP client does.
async fn request(shared: &Shared, conn: &mut Option<Connection>, fresh: bool) {
    let ledger = &shared.ledger;
    let first_try = ledger.now();
    for _attempt in 0..ATTEMPTS {
        if let Some(c) = conn.as_mut() {
            let usable = match &mut c.sender {
                Sender::H1(s) => s.ready().await.is_ok(),
                Sender::H2(s) => s.ready().await.is_ok(),
            };
            if !usable {
                *conn = None;
            }
        }
        let sent = ledger.now();
        if conn.is_none() {
            match connect(shared).await {
                Ok(c) => *conn = Some(c),
                Err((detail, route)) => {
                    lose(shared, sent, route.as_deref(), fresh, None, detail);
                    return;
                }
            }
        }
        let Some(c) = conn.as_mut() else { return };
        let mut req = hyper::Request::get(shared.load.path.as_str());
        if matches!(c.sender, Sender::H1(_)) {
            req = req.header(hyper::header::HOST, "rehearsal");
            if fresh {
                req = req.header(hyper::header::CONNECTION, "close");
            }
        } else {
            req = req.uri(format!("http://rehearsal{}", shared.load.path));
        }
        let Ok(req) = req.body(Empty::<Bytes>::new()) else {
            return;
        };
        let exchange = async {
            let response = match &mut c.sender {
                Sender::H1(s) => s.send_request(req).await,
                Sender::H2(s) => s.send_request(req).await,
            };
            let response = match response {
                Ok(r) => r,
                Err(e) if e.is_canceled() || never_processed(&e) => return Err(None),
                Err(e) => return Err(Some((RequestOutcome::Reset, describe(&e)))),
            };
            let status = response.status();
            match response.into_body().collect().await {
                Err(e) => Err(Some((
                    RequestOutcome::Truncated,
                    format!("answer {status} cut: {}", describe(&e)),
                ))),
                Ok(_) if status.is_server_error() => Err(Some((
                    RequestOutcome::ServerError,
                    format!("answer {status}"),
                ))),
                Ok(_) => Ok(()),
            }
        };
        let result = tokio::time::timeout(shared.load.timeout, exchange).await;
        let route = c.route.clone();
        match result {
            Ok(Ok(())) => {
                ledger.ok();
                return;
            }
            // Never sent: the connection closed first. Try a new one,
            // unless the balancer had found no pod to take it.
            Ok(Err(None)) => {
                *conn = None;
                if matches!(
                    route.upstream.get(),
                    Some(Upstream::NoEndpoint | Upstream::Failed(_))
                ) {
                    lose(shared, sent, Some(&route), fresh, None, String::new());
                    return;
                }
                continue;
            }
            Ok(Err(Some((outcome, detail)))) => {
                if outcome != RequestOutcome::ServerError {
                    *conn = None;
                }
                lose(shared, sent, Some(&route), fresh, Some(outcome), detail);
                return;
            }
            Err(_) => {
                *conn = None;
                let detail = format!("no answer within {:?}", shared.load.timeout);
                lose(
                    shared,
                    sent,
                    Some(&route),
                    fresh,
                    Some(RequestOutcome::TimedOut),
                    detail,
                );
                return;
            }
        }
    }
    // Every connection closed before the request could leave: the client
    // gives up, and so it is lost, not forgotten.
    let detail = format!("{ATTEMPTS} connections in a row closed before the request could be sent");
    lose(
        shared,
        first_try,
        None,
        fresh,
        Some(RequestOutcome::Reset),
        detail,
    );
}

/// How many connections a request is tried on when each closes before it
/// could be sent.
const ATTEMPTS: usize = 3;

/// Records a loss; what the balancer saw of the connection decides whether
/// a reset was in truth a refusal (the pod refused, or none was routed).
fn lose(
    shared: &Shared,
    sent: Duration,
    route: Option<&Route>,
    fresh: bool,
    outcome: Option<RequestOutcome>,
    detail: String,
) {
    let by_balancer = route.is_some_and(|r| r.cut.get().is_some());
    let (outcome, detail) = match route.and_then(|r| r.upstream.get()) {
        Some(Upstream::NoEndpoint) => (RequestOutcome::Refused, "no pod was routed".to_string()),
        Some(Upstream::Failed(why)) => (RequestOutcome::Refused, format!("the pod refused: {why}")),
        _ if by_balancer => (
            RequestOutcome::Reset,
            "reset by the balancer at the pod's removal".to_string(),
        ),
        _ => (outcome.unwrap_or(RequestOutcome::Reset), detail),
    };
    shared.ledger.lost(LostRequest {
        at: shared.ledger.now(),
        sent,
        outcome,
        pod: route.and_then(|r| r.pod),
        fresh_connection: fresh,
        by_balancer,
        detail,
    });
}

async fn connect(shared: &Shared) -> Result<Connection, (String, Option<Arc<Route>>)> {
    let (stream, route) = crate::balancer::connect(shared.target, &shared.routes).await;
    let stream = stream.map_err(|e| (format!("could not connect: {e}"), Some(route.clone())))?;
    let io = TokioIo::new(stream);
    let failed = |e: hyper::Error, route: &Arc<Route>| (describe(&e), Some(route.clone()));
    let sender = if shared.load.http2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| failed(e, &route))?;
        tokio::spawn(conn);
        Sender::H2(sender)
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(|e| failed(e, &route))?;
        tokio::spawn(conn);
        Sender::H1(sender)
    };
    Ok(Connection { sender, route })
}

/// Whether HTTP/2 says the server never processed the stream: refused, or
/// beyond the last stream of a GOAWAY. Clients send such requests again
/// (RFC 9113, 8.7), so they are not lost.
fn never_processed(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR));
        }
        source = s.source();
    }
    false
}

/// The error and its causes, in one line.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
