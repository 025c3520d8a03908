//! A pod, as close to a real one as this machine allows: the app's command is
//! PID 1 of its own PID namespace (as in a container), with a network
//! namespace and address of its own when run as root.
//!
//! The namespaces come from util-linux's `unshare` and iproute2's `ip`, the
//! tools a container runtime's own steps can be retraced with; the kernel
//! then treats PID 1 as it treats a container's: a signal it has no handler
//! for is dropped, SIGKILL ends the whole namespace.

mod netns;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lameduck_core::Signal;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::ledger::{Ledger, PodEventKind, PodId};
use crate::plan::{Network, Plan};
pub use netns::PodNetwork;

/// Lines of a pod's output kept for the report.
const KEPT_LINES: usize = 40;

/// A running (or ended) pod.
#[derive(Debug)]
pub struct Pod {
    /// Its number.
    pub id: PodId,
    /// Where the balancer reaches its app.
    pub addr: SocketAddr,
    /// PID 1 of the pod, as this process sees it.
    pid1: i32,
    network: Network,
    exit: watch::Receiver<Option<String>>,
    logs: Arc<Mutex<VecDeque<String>>>,
    _net: Option<PodNetwork>,
}

/// Whether this process can make network namespaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Clears namespaces left behind by earlier rehearsals that were killed.
pub fn remove_stale_networks() {
    if is_root() {
        PodNetwork::remove_stale();
    }
}

impl Pod {
    /// Starts pod `id` with the plan's command, `{port}` and `$PORT` set to
    /// its port.
    pub async fn start(id: PodId, plan: &Plan, ledger: &Arc<Ledger>) -> Result<Pod, String> {
        let (net, addr) = match plan.network {
            Network::Namespace => {
                let net = PodNetwork::create(id)?;
                let addr = SocketAddr::from((net.address, plan.port));
                (Some(net), addr)
            }
            Network::Loopback => {
                let port = free_port()?;
                (None, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            }
        };
        let port = addr.port().to_string();
        let args: Vec<String> = plan
            .command
            .iter()
            .map(|a| a.replace("{port}", &port))
            .collect();
        let mut cmd = match &net {
            Some(net) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &net.name, "unshare"]);
                c
            }
            None => Command::new("unshare"),
        };
        if !is_root() {
            cmd.args(["--user", "--map-root-user"]);
        }
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
            .args(&args)
            .env("PORT", &port)
            .env("POD_NAME", crate::pod_name(id))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", crate::pod_name(id)))?;
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(keep_lines(out, logs.clone(), id));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_lines(err, logs.clone(), id));
        }
        let outer = child.id().map(|p| p as i32).unwrap_or(0);
        let pid1 = find_pid1(outer, &mut child).await.map_err(|e| {
            format!(
                "{} did not start: {e}{}",
                crate::pod_name(id),
                tail(&logs, "\n  ")
            )
        })?;
        let pid1_name = wait_for_exec(pid1).await;
        ledger.event(
            id,
            PodEventKind::Started {
                pid1: pid1_name.clone(),
            },
        );
        let (tx, exit) = watch::channel(None);
        let exit_ledger = ledger.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => describe(s),
                Err(e) => format!("unknown ({e})"),
            };
            exit_ledger.event(
                id,
                PodEventKind::Exited {
                    status: status.clone(),
                },
            );
            let _ = tx.send(Some(status));
        });
        Ok(Pod {
            id,
            addr,
            pid1,
            network: plan.network,
            exit,
            logs,
            _net: net,
        })
    }

    /// PID 1's name now (`/proc/PID/comm`): a wrapper such as a version
    /// manager's shim may have executed the app since the pod started.
    pub fn current_pid1_name(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/comm", self.pid1))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// Whether PID 1 will get `signal`: the kernel drops a signal sent to
    /// a PID namespace's init unless init catches it (`SigCgt`) or blocks it
    /// to take it later (`SigBlk`, as lameduck does).
    pub fn handles(&self, signal: Signal) -> bool {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid1)) else {
            return false;
        };
        let mask = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .unwrap_or(0)
        };
        let bit = 1u64 << (signal.number() - 1);
        // In sigtimedwait the waited signals are unblocked for the wait (the
        // kernel keeps the real mask aside), and they are delivered.
        let waiting = std::fs::read_to_string(format!("/proc/{}/syscall", self.pid1))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<libc::c_long>().ok())
            == Some(libc::SYS_rt_sigtimedwait);
        waiting || (mask("SigCgt:") | mask("SigBlk:")) & bit != 0
    }

    /// Sends `signal` to PID 1, as the kubelet does through the runtime.
    pub fn signal(&self, signal: Signal) {
        if self.pid1 > 0 && !self.has_exited() {
            // SAFETY: kill has no memory preconditions; a pid that is gone
            // gives ESRCH, which changes nothing.
            unsafe { libc::kill(self.pid1, signal.number()) };
        }
    }

    /// SIGKILL to PID 1, which ends every process of the pod.
    pub fn kill(&self) {
        if self.pid1 > 0 && !self.has_exited() {
            // SAFETY: as in `signal`.
            unsafe { libc::kill(self.pid1, libc::SIGKILL) };
        }
    }

    /// Whether PID 1 has exited.
    pub fn has_exited(&self) -> bool {
        self.exit.borrow().is_some()
    }

    /// Waits until PID 1 has exited, and says how.
    pub async fn exited(&self) -> String {
        let mut rx = self.exit.clone();
        let status = match rx.wait_for(|s| s.is_some()).await {
            Ok(s) => s.clone().unwrap_or_default(),
            Err(_) => "unknown".into(),
        };
        status
    }

    /// Runs `sh -c script` inside the pod (its PID, mount and network
    /// namespaces), as the kubelet runs an exec hook, and says how it ended.
    pub async fn exec(&self, script: &str) -> String {
        let pid = self.pid1.to_string();
        let mut cmd = if is_root() {
            let mut c = Command::new("nsenter");
            c.args(["-t", &pid, "-p", "-m"]);
            if self.network == Network::Namespace {
                c.arg("-n");
            }
            c.args(["--", "sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match cmd.output().await {
            Ok(out) => {
                for line in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                {
                    push_line(&self.logs, format!("preStop: {line}"));
                }
                describe(out.status)
            }
            Err(e) => format!("could not run: {e}"),
        }
    }

    /// The last lines the pod wrote.
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.kill();
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => match Signal::from_number(sig) {
            Some(s) => format!("killed by {s}"),
            None => format!("killed by signal {sig}"),
        },
        _ => "unknown".into(),
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on loopback: {e}"))
}

/// The pid of the child that `unshare --fork` made: PID 1 of the pod.
async fn find_pid1(outer: i32, child: &mut Child) -> Result<i32, String> {
    let path = format!("/proc/{outer}/task/{outer}/children");
    for _ in 0..2500 {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some(pid) = text.split_whitespace().next().and_then(|p| p.parse().ok()) {
                return Ok(pid);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited at once ({})", describe(status)));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Err("its PID 1 never appeared (is util-linux's unshare installed?)".into())
}

/// PID 1's name once `unshare` has executed the command.
async fn wait_for_exec(pid1: i32) -> String {
    let path = format!("/proc/{pid1}/comm");
    let mut name = String::new();
    for _ in 0..500 {
        name = std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if !name.is_empty() && name != "unshare" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    name
}

async fn keep_lines(out: impl AsyncRead + Unpin, logs: Arc<Mutex<VecDeque<String>>>, id: PodId) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(pod = %crate::pod_name(id), "{line}");
        push_line(&logs, line);
    }
}

fn push_line(logs: &Mutex<VecDeque<String>>, line: String) {
    if let Ok(mut logs) = logs.lock() {
        if logs.len() == KEPT_LINES {
            logs.pop_front();
        }
        logs.push_back(line);
    }
}

fn tail(logs: &Mutex<VecDeque<String>>, sep: &str) -> String {
    let lines = logs
        .lock()
        .map(|l| l.iter().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    if lines.is_empty() {
        String::new()
    } else {
        format!("; it wrote:{sep}{}", lines.join(sep))
    }
}

/// The last lines a pod wrote, for error messages.
pub fn describe_logs(pod: &Pod) -> String {
    tail(&pod.logs, "\n  ")
}
