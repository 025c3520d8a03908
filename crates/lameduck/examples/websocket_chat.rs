//! A WebSocket chat room that moves its clients elsewhere when the pod ends.
//!
//! ```sh
//! cargo run -p lameduck --example websocket_chat     # ws://127.0.0.1:3001/chat
//! ```
//!
//! Every text message is sent to everyone in the room. On SIGTERM the room
//! tells its members the server is draining and keeps working through the
//! drain delay and beyond; at the deadline each member gets a close frame
//! 1001 (going away), which clients take as "reconnect elsewhere", and the
//! process exits once the last one left.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hyper_util::service::TowerToHyperService;
use lameduck::{http::readiness, Drain, Phase};
use tokio::sync::broadcast;

#[derive(Clone)]
struct Room {
    drain: Drain,
    messages: broadcast::Sender<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let drain = Drain::from_env()?;
    drain.listen_for_signals()?;
    let room = Room {
        drain: drain.clone(),
        messages: broadcast::channel(64).0,
    };
    let notice = room.messages.clone();
    drain.on(Phase::Draining, "tell the room", move || async move {
        let _ = notice.send("server: draining, you will be moved shortly".into());
        Ok::<_, std::io::Error>(())
    });
    let app = Router::new()
        .route("/chat", get(join))
        .route(
            "/ready",
            get(|State(room): State<Room>| async move { readiness(&room.drain) }),
        )
        .with_state(room);
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("chat: ws://{addr}/chat");
    tokio::spawn(lameduck::http::serve(
        listener,
        drain.clone(),
        TowerToHyperService::new(app),
    ));
    let report = drain.run().await;
    eprintln!(
        "chat: drained in {:?}, {} member(s) moved",
        report.duration, report.open_at_deadline
    );
    Ok(())
}

async fn join(ws: WebSocketUpgrade, State(room): State<Room>) -> Response {
    // Taken before the upgrade: the drain waits for this member too.
    let watch = room.drain.watch();
    ws.on_upgrade(move |socket| member(socket, room, watch))
}

async fn member(mut socket: WebSocket, room: Room, mut watch: lameduck::Watch) {
    let mut messages = room.messages.subscribe();
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => { let _ = room.messages.send(text.to_string()); }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            Ok(text) = messages.recv() => {
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            () = watch.going_away() => {
                let close = CloseFrame { code: 1001, reason: "server going away".into() };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
        }
    }
}
