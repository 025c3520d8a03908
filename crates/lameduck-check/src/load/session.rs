//! Long-lived sessions: a WebSocket or a TCP connection that sends a message
//! every 100 ms and expects it back, as a game or meeting client does. A
//! session that ends is opened again, as such clients reconnect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use crate::balancer::{Route, Routes, Upstream};
use crate::ledger::{Ledger, SessionEnd, SessionRecord};
use crate::plan::SessionKind;

/// How often a session sends.
const EVERY: Duration = Duration::from_millis(100);
/// How long an echo may take before the session counts as cut.
const ECHO_TIMEOUT: Duration = Duration::from_secs(2);

/// What sessions share.
pub struct Shared {
    /// The balancer.
    pub target: SocketAddr,
    /// Routes of the balancer's connections.
    pub routes: Arc<Routes>,
    /// Where results go.
    pub ledger: Arc<Ledger>,
    /// The WebSocket path.
    pub path: String,
}

/// Keeps one session of `kind` open (opening it again when it ends) until
/// `stop` turns true.
pub async fn keep_open(shared: Arc<Shared>, kind: SessionKind, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let (stream, route) = crate::balancer::connect(shared.target, &shared.routes).await;
        let Ok(stream) = stream else {
            pause(&mut stop).await;
            continue;
        };
        let opened = shared.ledger.now();
        let (echoes, end) = match kind {
            SessionKind::Websocket => websocket(&shared, stream, &mut stop).await,
            SessionKind::Tcp => {
                let (echoes, end) = tcp(stream, &mut stop).await;
                // Opened only if the balancer reached a pod.
                if route.upstream.get() == Some(&Upstream::Connected) {
                    (Some(echoes), Some(end))
                } else {
                    (None, None)
                }
            }
        };
        let Some((echoes, end)) = echoes.zip(end) else {
            // The session never opened (refused, no pod): try again.
            pause(&mut stop).await;
            continue;
        };
        let end = mark_balancer_cut(end, &route);
        shared.ledger.session(SessionRecord {
            kind,
            pod: route.pod,
            opened,
            ended: shared.ledger.now(),
            echoes,
            end,
        });
        pause(&mut stop).await;
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn pause(stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(EVERY) => {}
        () = stopped(stop) => {}
    }
}

fn mark_balancer_cut(end: SessionEnd, route: &Route) -> SessionEnd {
    match end {
        SessionEnd::Cut { detail, .. } if route.cut.get().is_some() => SessionEnd::Cut {
            detail,
            by_balancer: true,
        },
        end => end,
    }
}

fn cut(detail: impl Into<String>) -> SessionEnd {
    SessionEnd::Cut {
        detail: detail.into(),
        by_balancer: false,
    }
}

/// Runs a WebSocket session; `None`s when the handshake failed.
async fn websocket(
    shared: &Shared,
    stream: TcpStream,
    stop: &mut watch::Receiver<bool>,
) -> (Option<u64>, Option<SessionEnd>) {
    let url = format!("ws://rehearsal{}", shared.path);
    let Ok((mut ws, _)) = tokio_tungstenite::client_async(url, stream).await else {
        return (None, None);
    };
    let mut echoes = 0u64;
    let mut tick = tokio::time::interval(EVERY);
    let mut awaiting: Option<tokio::time::Instant> = None;
    let end = loop {
        let deadline = awaiting.map(|t| t + ECHO_TIMEOUT);
        tokio::select! {
            () = stopped(stop) => {
                let _ = ws
                    .close(Some(CloseFrame { code: CloseCode::Normal, reason: "rehearsal over".into() }))
                    .await;
                break SessionEnd::StillOpen;
            }
            _ = tick.tick(), if awaiting.is_none() => {
                if ws.send(Message::text(format!("ping {echoes}"))).await.is_err() {
                    break cut("could not send");
                }
                awaiting = Some(tokio::time::Instant::now());
            }
            _ = sleep_until(deadline) => break cut(format!("no echo within {ECHO_TIMEOUT:?}")),
            message = ws.next() => match message {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    echoes += 1;
                    awaiting = None;
                }
                Some(Ok(Message::Close(frame))) => {
                    break SessionEnd::Goodbye { code: frame.map(|f| u16::from(f.code)) };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break cut(e.to_string()),
                None => break cut("closed without a close frame"),
            },
        }
    };
    (Some(echoes), Some(end))
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs a TCP echo session.
async fn tcp(stream: TcpStream, stop: &mut watch::Receiver<bool>) -> (u64, SessionEnd) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut echoes = 0u64;
    let mut tick = tokio::time::interval(EVERY);
    let mut awaiting: Option<tokio::time::Instant> = None;
    let end = loop {
        let deadline = awaiting.map(|t| t + ECHO_TIMEOUT);
        tokio::select! {
            () = stopped(stop) => {
                let _ = write.shutdown().await;
                break SessionEnd::StillOpen;
            }
            _ = tick.tick(), if awaiting.is_none() => {
                if let Err(e) = write.write_all(format!("ping {echoes}\n").as_bytes()).await {
                    break cut(format!("could not send: {e}"));
                }
                awaiting = Some(tokio::time::Instant::now());
            }
            _ = sleep_until(deadline) => break cut(format!("no echo within {ECHO_TIMEOUT:?}")),
            line = lines.next_line() => match line {
                Ok(Some(_)) => {
                    echoes += 1;
                    awaiting = None;
                }
                // FIN with every message answered: the server said goodbye.
                Ok(None) if awaiting.is_none() => break SessionEnd::Goodbye { code: None },
                Ok(None) => break cut("closed with a message unanswered"),
                Err(e) => break cut(e.to_string()),
            },
        }
    };
    (echoes, end)
}
