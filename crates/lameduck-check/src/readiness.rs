//! The readinessProbe, run as the kubelet runs it: every period, a TCP
//! connect or an HTTP GET with a 1 s timeout; ready after one success, not
//! ready after `failureThreshold` failures in a row.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::endpoints::Endpoints;
use crate::ledger::{Ledger, PodEventKind};
use crate::plan::{Probe, Readiness};
use crate::pod::Pod;

/// The kubelet's default `timeoutSeconds`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Probes `pod` until it exits; readiness goes to the endpoints (after their
/// lag) and to the returned channel (at once, as the pod's status does).
pub fn spawn(
    pod: Arc<Pod>,
    readiness: Readiness,
    endpoints: Arc<Endpoints>,
    ledger: Arc<Ledger>,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut failures = 0;
        let mut ready = false;
        let mut ever_ready = false;
        loop {
            // Until the first success, probe often, so that a pod that
            // starts fast is not held back by a long period: startup is not
            // what a rehearsal measures.
            let wait = if ever_ready {
                readiness.period
            } else {
                Duration::from_millis(20)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = pod.exited() => break,
            }
            if probe(&readiness.probe, &pod).await {
                failures = 0;
                if !ready {
                    ready = true;
                    ever_ready = true;
                    let pid1 = pod.current_pid1_name();
                    ledger.event(pod.id, PodEventKind::Ready { pid1 });
                    endpoints.set_ready(pod.id, true);
                    let _ = tx.send(true);
                }
            } else if ever_ready {
                failures += 1;
                if ready && failures >= readiness.failure_threshold {
                    ready = false;
                    ledger.event(pod.id, PodEventKind::NotReady);
                    endpoints.set_ready(pod.id, false);
                    let _ = tx.send(false);
                }
            }
        }
        if ready {
            endpoints.set_ready(pod.id, false);
            let _ = tx.send(false);
        }
    });
    rx
}

async fn probe(probe: &Probe, pod: &Pod) -> bool {
    let app = pod.addr;
    let attempt = async {
        match probe {
            Probe::Tcp { port } => {
                TcpStream::connect(SocketAddr::new(app.ip(), port.unwrap_or(app.port())))
                    .await
                    .is_ok()
            }
            Probe::Exec { command } => pod.exec(command).await.success,
            Probe::Http { port, path } => {
                let addr = SocketAddr::new(app.ip(), port.unwrap_or(app.port()));
                http_get(addr, path)
                    .await
                    .is_some_and(|s| (200..400).contains(&s))
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or(false)
}

/// The status of `GET path`, or `None` when there is no valid answer; also
/// the preStop hook's `httpGet`.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/lameduck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 32];
    let mut n = 0;
    while n < 12 {
        let read = stream.read(&mut head[n..]).await.ok()?;
        if read == 0 {
            break;
        }
        n += read;
    }
    let line = std::str::from_utf8(&head[..n]).ok()?;
    let status = line.strip_prefix("HTTP/1.")?.get(2..5)?;
    status.parse().ok()
}
