//! A pod, as close to a real one as this machine allows: the app's command is
//! PID 1 of its own PID namespace (as in a container), with a network
//! namespace and address of its own when run as root.
//!
//! The namespaces come from util-linux's `unshare` and iproute2's `ip`, the
//! tools a container runtime's own steps can be retraced with; the kernel
//! then treats PID 1 as it treats a container's: a signal it has no handler
//! for is dropped, SIGKILL ends the whole namespace.

mod netns;
pub mod startup;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// How a command run inside a pod ended.
#[derive(Debug)]
pub struct Exec {
    /// Exit 0.
    pub success: bool,
    /// `exit N`, `killed by SIGNAL`, or why it could not run.
    pub description: String,
}

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
    /// The environment the container got, for commands run inside it.
    env: Vec<(String, String)>,
    /// Set when the rehearsal ends the pod at its own end: its exit then
    /// is not an event of the rehearsal.
    kept: Arc<AtomicBool>,
    /// Set when the rehearsal sent PID 1 SIGKILL: the status `unshare`
    /// reports then is its own, not the app's.
    sigkilled: Arc<AtomicBool>,
    net: Mutex<Option<PodNetwork>>,
}

/// The address the kubelet gives `KUBERNETES_SERVICE_HOST`: the
/// `kubernetes` Service's cluster IP, the first of kubeadm's default
/// service range. Nothing answers there; what runs in the pod only learns
/// that it is inside Kubernetes, as it would be.
const KUBERNETES_SERVICE_HOST: &str = "10.96.0.1";

/// The environment a container gets from the kubelet and the runtime:
/// `HOSTNAME` (the pod's name), the `kubernetes` Service's variables
/// (<https://kubernetes.io/docs/concepts/containers/container-environment/>),
/// then the container's own `env`. `PORT` and `POD_NAME` are the
/// rehearsal's own, for commands that take their port from the environment;
/// `LAMEDUCK_LOG_FORMAT=json` (unless the container sets it) lets the
/// rehearsal read what a `lameduck run` inside decided.
fn container_env(id: PodId, port: &str, plan: &Plan) -> Vec<(String, String)> {
    let host = KUBERNETES_SERVICE_HOST;
    let mut env: Vec<(String, String)> = [
        ("HOSTNAME", crate::pod_name(id)),
        ("KUBERNETES_SERVICE_HOST", host.into()),
        ("KUBERNETES_SERVICE_PORT", "443".into()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443".into()),
        ("KUBERNETES_PORT", format!("tcp://{host}:443")),
        ("KUBERNETES_PORT_443_TCP", format!("tcp://{host}:443")),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp".into()),
        ("KUBERNETES_PORT_443_TCP_PORT", "443".into()),
        ("KUBERNETES_PORT_443_TCP_ADDR", host.into()),
        ("PORT", port.into()),
        ("POD_NAME", crate::pod_name(id)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if !plan.env.iter().any(|(k, _)| k == "LAMEDUCK_LOG_FORMAT") {
        env.push(("LAMEDUCK_LOG_FORMAT".into(), "json".into()));
    }
    env.extend(
        plan.env
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{port}", port))),
    );
    env
}

/// Whether a variable of this process's environment is left out of a
/// pod's: a container does not inherit the shell's `LAMEDUCK_*` nor a
/// Kubernetes of the machine's.
fn not_inherited(name: &str) -> bool {
    name.starts_with("LAMEDUCK_") || name.starts_with("KUBERNETES_")
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
        let env = container_env(id, &port, plan);
        for (name, _) in std::env::vars_os() {
            if not_inherited(&name.to_string_lossy()) {
                cmd.env_remove(name);
            }
        }
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"])
            .args(&args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", crate::pod_name(id)))?;
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(keep_lines(out, logs.clone(), id, ledger.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_lines(err, logs.clone(), id, ledger.clone()));
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
        let kept = Arc::new(AtomicBool::new(false));
        let kept_to_the_end = kept.clone();
        let sigkilled = Arc::new(AtomicBool::new(false));
        let killed_here = sigkilled.clone();
        tokio::spawn(async move {
            let status = match child.wait().await {
                _ if killed_here.load(Ordering::SeqCst) => "killed by SIGKILL".to_string(),
                Ok(s) => describe(s),
                Err(e) => format!("unknown ({e})"),
            };
            if !kept_to_the_end.load(Ordering::SeqCst) {
                exit_ledger.event(
                    id,
                    PodEventKind::Exited {
                        status: status.clone(),
                    },
                );
            }
            let _ = tx.send(Some(status));
        });
        Ok(Pod {
            id,
            addr,
            pid1,
            network: plan.network,
            exit,
            logs,
            env,
            kept,
            sigkilled,
            net: Mutex::new(net),
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

    /// Ends a pod kept to the end of the rehearsal: its exit is not an
    /// event of the rehearsal.
    pub fn end_kept(&self) {
        self.kept.store(true, Ordering::SeqCst);
        self.kill();
    }

    /// Removes the pod's network namespace (once PID 1 is gone).
    pub fn remove_network(&self) {
        if let Ok(mut net) = self.net.lock() {
            net.take();
        }
    }

    /// SIGKILL to PID 1, which ends every process of the pod.
    pub fn kill(&self) {
        if self.pid1 > 0 && !self.has_exited() {
            self.sigkilled.store(true, Ordering::SeqCst);
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

    /// Runs `command` inside the pod (its PID, mount and network
    /// namespaces), as the kubelet runs an exec hook or probe, and says how
    /// it ended.
    pub async fn exec(&self, command: &[String]) -> Exec {
        let Some((program, args)) = command.split_first() else {
            return Exec {
                success: false,
                description: "no command".into(),
            };
        };
        let pid = self.pid1.to_string();
        let mut cmd = if is_root() {
            let mut c = Command::new("nsenter");
            c.args(["-t", &pid, "-p", "-m"]);
            if self.network == Network::Namespace {
                c.arg("-n");
            }
            c.arg("--").arg(program).args(args);
            c
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match cmd.output().await {
            Ok(out) => {
                for line in String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                {
                    push_line(&self.logs, format!("exec: {line}"));
                }
                Exec {
                    success: out.status.success(),
                    description: describe(out.status),
                }
            }
            Err(e) => Exec {
                success: false,
                description: format!("could not run `{program}`: {e}"),
            },
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

pub(crate) fn free_port() -> Result<u16, String> {
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

async fn keep_lines(
    out: impl AsyncRead + Unpin,
    logs: Arc<Mutex<VecDeque<String>>>,
    id: PodId,
    ledger: Arc<Ledger>,
) {
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(pod = %crate::pod_name(id), "{line}");
        if startup::is_unshare_noise(&line) {
            continue;
        }
        if let Some(t) = startup::parse(&line) {
            ledger.event(
                id,
                PodEventKind::LameduckRun {
                    drain_delay: t.drain_delay,
                    drain_delay_source: t.drain_delay_source,
                    grace_period: t.grace_period,
                },
            );
        }
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
