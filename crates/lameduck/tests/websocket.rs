//! WebSockets through the drain, with tokio-tungstenite as the client: the
//! session keeps working through the delay and gets close 1001 (going away)
//! at the deadline, after which the drain ends.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use hyper_util::service::TowerToHyperService;
use lameduck::{Drain, Watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as ClientMessage;

async fn echo(mut socket: WebSocket, mut watch: Watch) {
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(t))) => { let _ = socket.send(Message::Text(t)).await; }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = watch.going_away() => {
                let close = CloseFrame { code: 1001, reason: "server going away".into() };
                let _ = socket.send(Message::Close(Some(close))).await;
                return;
            }
        }
    }
}

#[tokio::test]
async fn a_websocket_works_through_the_delay_and_gets_1001_at_the_deadline() {
    // A 4s grace period: the deadline comes 2.25s after the trigger.
    let drain = Drain::builder()
        .drain_delay(Duration::from_millis(500))
        .grace_period(Duration::from_secs(4))
        .build();
    let app = Router::new()
        .route(
            "/ws",
            get(
                |ws: WebSocketUpgrade, State(drain): State<Drain>| async move {
                    let watch = drain.watch();
                    ws.on_upgrade(move |socket| echo(socket, watch))
                },
            ),
        )
        .with_state(drain.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(lameduck::http::serve(
        listener,
        drain.clone(),
        TowerToHyperService::new(app),
    ));

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("handshake");
    drain.trigger();
    let run = tokio::spawn({
        let drain = drain.clone();
        async move { drain.run().await }
    });
    drain.draining().await;
    // Messages go on through the delay and after it, until the deadline.
    let mut echoed = 0;
    let close = loop {
        // Fails harmlessly once the server said goodbye.
        let _ = ws.send(ClientMessage::text(format!("m{echoed}"))).await;
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no stall")
        {
            Some(Ok(ClientMessage::Text(t))) => {
                assert_eq!(t.as_str(), format!("m{echoed}"));
                echoed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some(Ok(ClientMessage::Close(frame))) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    let frame = close.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away);
    // 2s of messages every 50 ms, most of it past the 500 ms delay.
    assert!(echoed >= 20, "only {echoed} messages echoed");
    let report = run.await.expect("run");
    assert_eq!(
        report.open_at_deadline, 1,
        "the session was open at the deadline"
    );
}
