//! A TCP server on the accept loop: sessions live on through the delay,
//! the listener refuses once it is over, and at the deadline each session
//! says goodbye in its own words.

use std::time::Duration;

use lameduck::{accept_until_closing, Drain, Phase, Watch};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn session(stream: TcpStream, mut watch: Watch) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => { let _ = write.write_all(format!("{line}\n").as_bytes()).await; }
                _ => return,
            },
            () = watch.going_away() => {
                let _ = write.write_all(b"bye\n").await;
                return;
            }
        }
    }
}

#[tokio::test]
async fn sessions_outlive_the_delay_and_are_told_goodbye_at_the_deadline() {
    // A 4s grace period: the deadline comes 2.25s after the trigger.
    let drain = Drain::builder()
        .drain_delay(Duration::from_millis(300))
        .grace_period(Duration::from_secs(4))
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(accept_until_closing(
        listener,
        drain.watch(),
        |stream, _peer, watch| session(stream, watch),
    ));
    let client = TcpStream::connect(addr).await.expect("connect");
    let (read, mut write) = client.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"one\n").await.expect("write");
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("one")
    );

    drain.trigger();
    let run = tokio::spawn({
        let drain = drain.clone();
        async move { drain.run().await }
    });
    drain.closing().await;
    // The listener is closed: new connections are refused at once.
    let refused = loop {
        match TcpStream::connect(addr).await {
            Err(e) => break e.kind() == std::io::ErrorKind::ConnectionRefused,
            // Accepted just before the close: taken in from the queue.
            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    assert!(refused);
    // The session works on after the delay.
    write.write_all(b"two\n").await.expect("write");
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("two")
    );
    // At the deadline: its goodbye, then the end.
    assert_eq!(
        lines.next_line().await.expect("read").as_deref(),
        Some("bye")
    );
    assert_eq!(lines.next_line().await.expect("read"), None);
    let report = run.await.expect("run");
    assert_eq!(report.open_at_deadline, 1);
    assert_eq!(drain.phase(), Phase::Stopping);
}
