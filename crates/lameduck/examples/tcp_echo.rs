//! A TCP echo server that ends without cutting a session short.
//!
//! ```sh
//! cargo run -p lameduck --example tcp_echo          # listens on 127.0.0.1:7007
//! LAMEDUCK_DRAIN_DELAY=2s cargo run -p lameduck --example tcp_echo
//! ```
//!
//! On SIGTERM (or Ctrl-C) it keeps accepting for the drain delay, then closes
//! the listener; sessions go on until the deadline, where each client is told
//! "bye: server going away, reconnect" in the protocol's own words, and the
//! process exits as soon as the last session ended.

use lameduck::{accept_until_closing, Drain};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let drain = Drain::from_env()?;
    drain.listen_for_signals()?;
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:7007".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo: listening on {addr}");
    tokio::spawn(accept_until_closing(
        listener,
        drain.watch(),
        |stream, _peer, watch| session(stream, watch),
    ));
    let report = drain.run().await;
    eprintln!(
        "echo: drained in {:?}, {} session(s) told to go away",
        report.duration, report.open_at_deadline
    );
    Ok(())
}

/// Echoes lines until the client leaves or the drain's deadline comes.
async fn session(stream: TcpStream, mut watch: lameduck::Watch) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if write.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
                _ => return,
            },
            () = watch.going_away() => {
                let _ = write.write_all(b"bye: server going away, reconnect\n").await;
                return;
            }
        }
    }
}
