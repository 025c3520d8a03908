//! The engine over real sockets on loopback: connects retried on another
//! endpoint (refused, or reset before any client byte went upstream), and
//! the policies' ends for established connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lameduck::Drain;
use lameduck_balance::{
    relay_tcp, Backend, Conditions, Connector, EndpointSet, Metrics, Policy, RelayEnd,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(10);

fn backend(addr: SocketAddr) -> Backend {
    Backend {
        addr,
        name: None,
        conditions: Conditions::default(),
    }
}

/// A pod that greets each connection, then echoes lines.
async fn greeter() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"hello\n").await;
                let (r, mut w) = s.split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = w.write_all(format!("{line}\n").as_bytes()).await;
                }
            });
        }
    });
    addr
}

/// A pod whose app died but whose socket still completes handshakes: each
/// connection is reset at once.
async fn resetter() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
        }
    });
    addr
}

/// An address nobody listens on.
async fn refuser() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// A balancer of one connection: accepts it and relays it.
async fn balance_one(
    connector: Arc<Connector>,
) -> (
    SocketAddr,
    tokio::task::JoinHandle<lameduck_balance::Relayed>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let drain = Drain::new();
    let task = tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.expect("accept");
        relay_tcp(stream, peer, drain.watch(), connector).await
    });
    (addr, task)
}

fn connector(set: Arc<EndpointSet>) -> Arc<Connector> {
    Arc::new(Connector {
        set,
        metrics: Arc::new(Metrics::default()),
        timeout: Duration::from_secs(2),
        retries: 2,
    })
}

async fn greeted(addr: SocketAddr) -> (BufReader<TcpStream>, String) {
    let mut stream = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    let mut line = String::new();
    tokio::time::timeout(WAIT, stream.read_line(&mut line))
        .await
        .expect("greeting in time")
        .expect("read");
    (stream, line)
}

#[tokio::test]
async fn refused_and_reset_connects_are_tried_on_another_endpoint() {
    for stale in [refuser().await, resetter().await] {
        let good = greeter().await;
        let set = EndpointSet::new(Policy {
            algorithm: lameduck_balance::Algorithm::RoundRobin,
            ..Policy::default()
        });
        // Round robin tries the stale one first.
        set.update(&[backend(stale), backend(good)]);
        let connector = connector(set.clone());
        let (addr, relay) = balance_one(connector.clone()).await;
        let (mut client, hello) = greeted(addr).await;
        assert_eq!(hello, "hello\n", "the client reached the good pod");
        client.get_mut().write_all(b"ping\n").await.expect("write");
        let mut echo = String::new();
        client.read_line(&mut echo).await.expect("echo");
        assert_eq!(echo, "ping\n");
        drop(client);
        let relayed = tokio::time::timeout(WAIT, relay)
            .await
            .expect("relay ends")
            .expect("relay");
        assert_eq!(
            (relayed.endpoint, relayed.end),
            (Some(good), RelayEnd::Closed)
        );
        let failures: Vec<(SocketAddr, u64, bool)> = set
            .views()
            .iter()
            .map(|v| (v.address, v.connect_failures, v.ejected))
            .collect();
        assert!(failures.contains(&(stale, 1, true)), "{failures:?}");
        assert!(failures.contains(&(good, 0, false)), "{failures:?}");
        let text = connector.metrics.render(&set, lameduck::Phase::Serving);
        assert!(
            text.contains("lameduck_balance_connect_retries_total 1"),
            "{text}"
        );
        assert!(
            text.contains("lameduck_balance_ejections_total 1"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn when_every_try_fails_the_client_gets_a_reset() {
    let set = EndpointSet::new(Policy::default());
    set.update(&[backend(refuser().await), backend(refuser().await)]);
    let connector = connector(set);
    let (addr, relay) = balance_one(connector.clone()).await;
    let mut client = TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(WAIT, client.read(&mut buf))
        .await
        .expect("in time");
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    let relayed = relay.await.expect("relay");
    assert!(matches!(relayed.end, RelayEnd::Unreached(_)), "{relayed:?}");
}

#[tokio::test]
async fn the_reset_policy_resets_established_connections_when_their_endpoint_leaves() {
    let good = greeter().await;
    let set = EndpointSet::new(Policy::reset());
    set.update(&[backend(good)]);
    let (addr, relay) = balance_one(connector(set.clone())).await;
    let (mut client, _) = greeted(addr).await;
    set.update(&[]);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, client.read_to_end(&mut rest))
        .await
        .expect("in time");
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    assert_eq!(relay.await.expect("relay").end, RelayEnd::Reset);
}

#[tokio::test]
async fn the_kube_proxy_policy_keeps_established_connections_after_the_endpoint_left() {
    let good = greeter().await;
    let set = EndpointSet::new(Policy::kube_proxy());
    set.update(&[backend(good)]);
    let (addr, relay) = balance_one(connector(set.clone())).await;
    let (mut client, _) = greeted(addr).await;
    set.update(&[]);
    assert!(set.pick(&[]).is_none(), "no new connection goes there");
    client
        .get_mut()
        .write_all(b"still there\n")
        .await
        .expect("write");
    let mut echo = String::new();
    client.read_line(&mut echo).await.expect("echo");
    assert_eq!(echo, "still there\n");
    drop(client);
    assert_eq!(relay.await.expect("relay").end, RelayEnd::Closed);
}
