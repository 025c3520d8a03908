//! The tunnel over in-memory pipes and over real sockets on loopback.

use std::time::Duration;

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::buffers::CHUNK;
use super::*;
use crate::{Delay, Drain, Timing};

/// The client answers the close frame after 3s, inside a close grace of
/// 5s: its answer reaches the upstream.
#[tokio::test(start_paused = true)]
async fn a_websocket_client_gets_the_drains_close_grace_to_answer() {
    let drain = Drain::with_timing(Timing {
        delay: Delay::Fixed(Duration::ZERO),
        deadline: Duration::from_secs(1),
        close_grace: Duration::from_secs(5),
    });
    let (mut client, client_side) = duplex(1024);
    let (mut upstream, upstream_side) = duplex(1024);
    let tunnel = tokio::spawn(tunnel(
        client_side,
        upstream_side,
        drain.watch(),
        TunnelKind::WebSocket,
    ));
    drain.trigger();
    tokio::spawn({
        let drain = drain.clone();
        async move { drain.run().await }
    });
    let mut close = [0u8; 2];
    client.read_exact(&mut close).await.expect("a close frame");
    assert_eq!(close[0], 0x88, "FIN + close opcode");
    tokio::time::sleep(Duration::from_secs(3)).await;
    client.write_all(b"answer").await.expect("write");
    client.shutdown().await.expect("shutdown");
    let mut got = Vec::new();
    upstream.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"answer");
    assert_eq!(tunnel.await.expect("tunnel"), TunnelEnd::WentAway);
}

/// Two connected sockets on loopback.
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (near, far) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (near.expect("connect"), far.expect("accept").0)
}

/// The byte at `i` of the test stream: a pattern that shows a lost, doubled
/// or reordered chunk.
fn byte_at(i: usize) -> u8 {
    (i % 251) as u8
}

/// 32 MiB from the upstream to a client that reads only once the upstream
/// has begun: the client's socket fills, the tunnel keeps what it read in a
/// lent buffer, and every byte still arrives once, in order. Then the
/// upstream's end of stream reaches the client as such, and the client's
/// bytes after it still reach the upstream (half-close).
#[tokio::test]
async fn a_slow_reader_gets_every_byte_in_order_and_half_close_passes() {
    const TOTAL: usize = 32 << 20;
    let (mut client, client_side) = pair().await;
    let (upstream_side, mut upstream) = pair().await;
    let drain = Drain::new();
    let tunnel = tokio::spawn(try_tunnel(
        client_side,
        upstream_side,
        drain.watch(),
        TunnelKind::Opaque,
    ));
    let writer = tokio::spawn(async move {
        let data: Vec<u8> = (0..TOTAL).map(byte_at).collect();
        upstream.write_all(&data).await.expect("upstream writes");
        upstream.shutdown().await.expect("upstream shuts down");
        let mut answer = Vec::new();
        upstream
            .read_to_end(&mut answer)
            .await
            .expect("upstream reads");
        answer
    });
    let mut got = 0usize;
    let mut buf = vec![0u8; 3 * CHUNK + 7];
    loop {
        let n = client.read(&mut buf).await.expect("client reads");
        if n == 0 {
            break;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, byte_at(got + k), "byte {}", got + k);
        }
        got += n;
    }
    assert_eq!(got, TOTAL);
    client
        .write_all(b"after your end")
        .await
        .expect("client writes");
    client.shutdown().await.expect("client shuts down");
    assert_eq!(writer.await.expect("writer"), b"after your end");
    let end = tunnel.await.expect("tunnel");
    assert_eq!(end.expect("no side failed"), TunnelEnd::Closed);
}

/// An upstream that resets the connection: `try_tunnel` says a side
/// failed, `tunnel` calls it closed.
#[tokio::test]
async fn a_reset_is_an_error_of_try_tunnel_and_a_close_of_tunnel() {
    for tell in [true, false] {
        let (_client, client_side) = pair().await;
        let (upstream_side, upstream) = pair().await;
        let drain = Drain::new();
        let end = tokio::spawn(async move {
            if tell {
                try_tunnel(
                    client_side,
                    upstream_side,
                    drain.watch(),
                    TunnelKind::Opaque,
                )
                .await
            } else {
                Ok(tunnel(
                    client_side,
                    upstream_side,
                    drain.watch(),
                    TunnelKind::Opaque,
                )
                .await)
            }
        });
        // A zero linger: the close sends RST.
        socket2::SockRef::from(&upstream)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
        drop(upstream);
        let end = end.await.expect("tunnel");
        if tell {
            assert!(end.is_err(), "{end:?}");
        } else {
            assert_eq!(end.expect("tunnel"), TunnelEnd::Closed);
        }
    }
}

/// An opaque tunnel (a TCP session) that still carries bytes is cut when
/// the drain reaches its deadline.
#[tokio::test]
async fn an_opaque_tunnel_is_cut_at_the_deadline() {
    let (mut client, client_side) = pair().await;
    let (upstream_side, mut upstream) = pair().await;
    let drain = Drain::with_timing(Timing {
        delay: Delay::Fixed(Duration::ZERO),
        deadline: Duration::ZERO,
        close_grace: Duration::ZERO,
    });
    let tunnel = tokio::spawn(tunnel(
        client_side,
        upstream_side,
        drain.watch(),
        TunnelKind::Opaque,
    ));
    client.write_all(b"ping").await.expect("write");
    let mut ping = [0u8; 4];
    upstream.read_exact(&mut ping).await.expect("read");
    assert_eq!(&ping, b"ping");
    drain.trigger();
    tokio::spawn({
        let drain = drain.clone();
        async move { drain.run().await }
    });
    assert_eq!(tunnel.await.expect("tunnel"), TunnelEnd::Cut);
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "nothing after the cut");
}
