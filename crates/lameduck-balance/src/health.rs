//! Active health checks: each endpoint is dialled (`tcp`) or asked
//! `GET PATH` (`http:PATH`) every interval; after `threshold` failures in a
//! row it takes no new connections whatever the source says, after as many
//! successes in a row it is back (HAProxy's `fall` and `rise`). A passing
//! check never makes a terminating endpoint ready: only the source does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::set::EndpointSet;
use crate::state::State;

/// What a check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connect that succeeds.
    Tcp,
    /// `GET PATH` answered with 2xx or 3xx.
    Http(String),
}

impl std::str::FromStr for Probe {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Probe::Tcp),
            _ => match s.strip_prefix("http:") {
                Some(path)
                    if path.starts_with('/')
                        && !path
                            .bytes()
                            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) =>
                {
                    Ok(Probe::Http(path.to_owned()))
                }
                _ => Err(format!(
                    "bad health check {s:?}: use tcp or http:PATH (PATH starting with /, no spaces)"
                )),
            },
        }
    }
}

/// `--health-check` and its timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// What is checked.
    pub probe: Probe,
    /// Time between two checks of one endpoint.
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// Failures (or successes) in a row that change the verdict.
    pub threshold: u32,
}

/// Keeps one checker task per endpoint the source lists.
pub async fn run(check: HealthCheck, set: Arc<EndpointSet>) {
    let check = Arc::new(check);
    let mut tasks: HashMap<SocketAddr, JoinHandle<()>> = HashMap::new();
    let mut changes = set.changes();
    loop {
        let wanted: Vec<SocketAddr> = set
            .endpoints()
            .iter()
            .filter(|e| e.source_state() != State::Gone)
            .map(|e| e.addr())
            .collect();
        tasks.retain(|addr, task| {
            let keep = wanted.contains(addr);
            if !keep {
                task.abort();
            }
            keep
        });
        for addr in wanted {
            tasks
                .entry(addr)
                .or_insert_with(|| tokio::spawn(check_forever(addr, check.clone(), set.clone())));
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

async fn check_forever(addr: SocketAddr, check: Arc<HealthCheck>, set: Arc<EndpointSet>) {
    // An endpoint that comes back keeps its last verdict until the checks
    // change it.
    let mut healthy = set
        .endpoints()
        .iter()
        .find(|e| e.addr() == addr)
        .is_none_or(|e| e.is_healthy());
    let mut streak = 0u32;
    let mut tick = tokio::time::interval(check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ok = match tokio::time::timeout(check.timeout, probe(addr, &check.probe)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                debug!(endpoint = %addr, error = %e, "health check failed");
                false
            }
            Err(_) => {
                debug!(endpoint = %addr, "health check timed out");
                false
            }
        };
        if ok == healthy {
            streak = 0;
            continue;
        }
        streak += 1;
        if streak >= check.threshold.max(1) {
            healthy = ok;
            streak = 0;
            set.set_healthy(addr, healthy);
        }
    }
}

async fn probe(addr: SocketAddr, probe: &Probe) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let Probe::Http(path) = probe else {
        return Ok(());
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: lameduck-balance\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < 12 {
        let read = stream
            .read(&mut head[n..])
            .await
            .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("closed before a status line".into());
        }
        n += read;
    }
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_parse() {
        assert_eq!("tcp".parse(), Ok(Probe::Tcp));
        assert_eq!("http:/healthz".parse(), Ok(Probe::Http("/healthz".into())));
        assert!("http:healthz".parse::<Probe>().is_err());
        assert!("http:/a b".parse::<Probe>().is_err());
        assert!("grpc".parse::<Probe>().is_err());
    }
}
