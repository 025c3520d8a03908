//! `--balancer lameduck`: the real `lameduck balance`, the same executable
//! as this rehearsal, in front of the pods. The rehearsal plays the
//! EndpointSlice controller and its watch: it writes the pods' EndpointSlices
//! to a file on the kubelet's timeline, each change `--endpoint-lag` late as
//! any balancer sees it (ready once ready, terminating once deleted, gone
//! once exited), atomically, and sends SIGHUP; the balancer reads it as it
//! reads any `file:` source.
//!
//! The rehearsal's clients see the balancer only from outside, as any
//! client does: which pod took a connection is the balancer's business.
//! What became of the connections comes from its `/metrics`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::balancer::StatsSnapshot;
use crate::ledger::PodId;

/// How long the balancer may take to start, or to take a new file.
const TAKE_LIMIT: Duration = Duration::from_secs(10);

/// How often the balancer's admin port is asked while waiting on it.
const POLL: Duration = Duration::from_millis(20);

/// What the file says of one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed {
    /// `ready: true, serving: true, terminating: false`.
    Ready,
    /// Deleted, still serving: `ready: false, serving: true, terminating:
    /// true`.
    Terminating,
}

/// What the balancer is waited on to show of a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Ready: it gets new connections.
    Ready,
    /// Terminating or gone: it gets no new connections.
    NoNewConnections,
    /// Out of the file: gone, or forgotten.
    Gone,
}

/// A running `lameduck balance` and the file it reads.
#[derive(Debug)]
pub struct RealBalancer {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Its admin port.
    pub admin: SocketAddr,
    file: PathBuf,
    dir: PathBuf,
    pid: u32,
    child: Mutex<Option<Child>>,
    /// Serialises writes: the last one written is the last one taken.
    writing: Mutex<()>,
}

impl RealBalancer {
    /// Starts `lameduck balance` listening on `listen` (port 0: a free
    /// one) with an empty endpoint file, and waits until it is ready.
    pub async fn start(listen: SocketAddr) -> Result<RealBalancer, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find this executable to run `balance`: {e}"))?;
        let dir = std::env::temp_dir().join(format!("lameduck-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let file = dir.join("endpointslices.json");
        let listen = match listen.port() {
            0 => SocketAddr::new(listen.ip(), crate::pod::free_port()?),
            _ => listen,
        };
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, crate::pod::free_port()?));
        let log_path = dir.join("balance.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let mut this = RealBalancer {
            listen,
            admin,
            file,
            dir,
            pid: 0,
            child: Mutex::new(None),
            writing: Mutex::new(()),
        };
        this.write(&[])?;
        let mut command = Command::new(exe);
        // The rehearsal's own settings must not reach the balancer through
        // the variables both read.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LAMEDUCK_") {
                command.env_remove(key);
            }
        }
        command
            .arg("balance")
            .args(["--listen", &listen.to_string()])
            .args(["--admin", &admin.to_string()])
            .arg("--endpoints")
            .arg(format!("file:{}", this.file.display()))
            .args(["--connect-timeout", "1s"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start lameduck balance: {e}"))?;
        this.pid = child.id().unwrap_or(0);
        let ready = async {
            loop {
                if get(admin, "/ready").await.is_some_and(|(s, _)| s == 200) {
                    return Ok(());
                }
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("it exited ({status})"));
                }
                tokio::time::sleep(POLL).await;
            }
        };
        let started = tokio::time::timeout(TAKE_LIMIT, ready)
            .await
            .unwrap_or_else(|_| Err(format!("not ready within {TAKE_LIMIT:?}")));
        if let Err(why) = started {
            let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
            let _ = child.start_kill();
            let _ = std::fs::remove_dir_all(&this.dir);
            return Err(format!("lameduck balance did not start: {why}\n{logs}"));
        }
        *this.child.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(this)
    }

    /// Writes the pods' EndpointSlices (one slice per pod, as each may
    /// have a port of its own) atomically and tells the balancer.
    pub fn write(&self, pods: &[(PodId, SocketAddr, Listed)]) -> Result<(), String> {
        let _serial = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let items: Vec<serde_json::Value> = pods
            .iter()
            .map(|&(pod, addr, listed)| slice(pod, addr, listed))
            .collect();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        let tmp = self.file.with_extension("json.tmp");
        std::fs::write(&tmp, list.to_string())
            .and_then(|()| std::fs::rename(&tmp, &self.file))
            .map_err(|e| format!("cannot write {}: {e}", self.file.display()))?;
        if self.pid != 0 {
            // SAFETY: kill has no memory arguments; the pid is our child's,
            // reaped only when it is dropped.
            unsafe { libc::kill(self.pid as i32, libc::SIGHUP) };
        }
        Ok(())
    }

    /// Waits until the balancer's `/endpoints` shows `pod` as `taken`, up
    /// to ten seconds (then a warning, and the rehearsal goes on).
    pub async fn wait_taken(&self, pod: PodId, taken: Taken) {
        let name = crate::pod_name(pod);
        let want = match taken {
            Taken::Ready => &["ready"][..],
            Taken::NoNewConnections => &["terminating", "gone", "not_serving", ""][..],
            Taken::Gone => &["gone", "not_serving", ""][..],
        };
        let shown = async {
            loop {
                if let Some((200, body)) = get(self.admin, "/endpoints").await {
                    let state = state_of(&body, &name);
                    if want.contains(&state.as_str()) {
                        return;
                    }
                }
                tokio::time::sleep(POLL).await;
            }
        };
        if tokio::time::timeout(TAKE_LIMIT, shown).await.is_err() {
            tracing::warn!(
                "lameduck balance did not take {name} as {taken:?} within {TAKE_LIMIT:?}"
            );
        }
    }

    /// What became of every connection, from the balancer's `/metrics`.
    pub async fn stats(&self) -> StatsSnapshot {
        let text = match get(self.admin, "/metrics").await {
            Some((200, body)) => body,
            _ => {
                tracing::warn!("lameduck balance's /metrics did not answer");
                String::new()
            }
        };
        let count = |name: &str| metric(&text, &format!("lameduck_balance_{name}"));
        let accepted = count("connections");
        let refused = count("connect_failures");
        let no_endpoint = count("no_endpoint");
        StatsSnapshot {
            accepted,
            connected: accepted.saturating_sub(refused + no_endpoint),
            refused,
            no_endpoint,
            cut: count("reset_at_leave"),
            reset: 0,
            retried: count("connect_retries"),
        }
    }

    /// Ends the balancer and removes its file.
    pub async fn stop(&self) {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = child {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The EndpointSlice of one pod, as the EndpointSlice controller writes it.
fn slice(pod: PodId, addr: SocketAddr, listed: Listed) -> serde_json::Value {
    let name = crate::pod_name(pod);
    let (ready, serving, terminating) = match listed {
        Listed::Ready => (true, true, false),
        Listed::Terminating => (false, true, true),
    };
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": format!("rehearsal-{name}"),
            "labels": {"kubernetes.io/service-name": "rehearsal"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": addr.port(), "protocol": "TCP"}],
        "endpoints": [{
            "addresses": [addr.ip().to_string()],
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
            "targetRef": {"kind": "Pod", "name": name},
        }],
    })
}

/// The state `/endpoints` gives the endpoint named `name` ("" when not
/// listed).
fn state_of(body: &str, name: &str) -> String {
    let page: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    page["endpoints"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["name"] == name))
        .and_then(|e| e["state"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// A counter of an OpenMetrics text (`NAME_total VALUE`), 0 when absent.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            let key = key.strip_suffix("_total").unwrap_or(key);
            (key == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .next()
        .map_or(0, |v| v as u64)
}

/// `GET path` on loopback: status and body.
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let status = head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .ok()?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_counters_and_states() {
        let text = "# TYPE lameduck_balance_connections counter\nlameduck_balance_connections_total 12\nlameduck_balance_connect_retries_total 3\n";
        assert_eq!(metric(text, "lameduck_balance_connections"), 12);
        assert_eq!(metric(text, "lameduck_balance_connect_retries"), 3);
        assert_eq!(metric(text, "lameduck_balance_no_endpoint"), 0);
        let body = r#"{"endpoints":[{"name":"pod-1","state":"terminating"}]}"#;
        assert_eq!(state_of(body, "pod-1"), "terminating");
        assert_eq!(state_of(body, "pod-2"), "");
    }
}
