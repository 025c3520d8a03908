//! What the end-to-end tests of `lameduck balance` share: pods on loopback
//! addresses of their own, EndpointSlice files written as Kubernetes prints
//! them, the real balancer, and the Python clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::net::{free_port, request, status};
use crate::support::{lameduck_bin, python, wait_file, wait_until, Lameduck, Options};

/// A fixture of `tests/balance/`.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/balance")
        .join(name)
        .display()
        .to_string()
}

/// A pod: `tests/balance/pod.py` on an address of its own.
pub struct Pod {
    /// Its name, in every answer.
    pub name: String,
    /// Its address.
    pub ip: String,
    child: Child,
}

/// The ports every pod of a test listens on, as a Deployment's pods do.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// The line server.
    pub tcp: u16,
    /// The WebSocket echo server.
    pub ws: u16,
    /// The HTTP server.
    pub http: u16,
}

impl Ports {
    /// Three ports free on loopback.
    pub fn free() -> Self {
        Ports {
            tcp: free_port(),
            ws: free_port(),
            http: free_port(),
        }
    }
}

impl Pod {
    /// Starts pod `name` on `ip` and waits until it listens.
    pub fn start(dir: &Path, name: &str, ip: &str, ports: Ports) -> Pod {
        let ready = dir.join(format!("{name}.ready"));
        let child = Command::new(python())
            .arg(fixture("pod.py"))
            .args(["--name", name, "--host", ip])
            .args(["--tcp-port", &ports.tcp.to_string()])
            .args(["--ws-port", &ports.ws.to_string()])
            .args(["--http-port", &ports.http.to_string()])
            .arg("--ready")
            .arg(&ready)
            .stdin(Stdio::null())
            .spawn()
            .expect("start pod.py");
        wait_file(&ready);
        Pod {
            name: name.to_owned(),
            ip: ip.to_owned(),
            child,
        }
    }

    /// SIGTERM: the pod says goodbye to its sessions and exits.
    pub fn terminate(&mut self) {
        // SAFETY: kill has no memory arguments.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("pod exit");
        assert!(status.success(), "pod {} exited {status:?}", self.name);
    }

    /// SIGKILL: the pod is gone, its port refuses.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One endpoint of a slice: pod name, address, and its conditions as
/// `ready, serving, terminating` (None: left out of the object).
pub type Ep<'a> = (&'a str, &'a str, [Option<bool>; 3]);

/// Ready, as the EndpointSlice controller writes it.
pub const READY: [Option<bool>; 3] = [Some(true), Some(true), Some(false)];
/// Deleted but still serving: weight 0.
pub const TERMINATING: [Option<bool>; 3] = [Some(false), Some(true), Some(true)];
/// No condition at all: read as ready.
pub const NIL: [Option<bool>; 3] = [None, None, None];

/// An EndpointSlice of Service `web` as `kubectl get -o yaml` prints it.
pub fn slice_yaml(name: &str, ports: Ports, endpoints: &[Ep<'_>]) -> String {
    let mut out = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  namespace: shop\n  labels:\n    kubernetes.io/service-name: web\naddressType: IPv4\nports:\n- name: tcp\n  port: {}\n  protocol: TCP\n- name: ws\n  port: {}\n  protocol: TCP\n- name: http\n  port: {}\n  protocol: TCP\nendpoints:\n",
        ports.tcp, ports.ws, ports.http
    );
    for (pod, ip, [ready, serving, terminating]) in endpoints {
        out += &format!("- addresses:\n  - {ip}\n  targetRef:\n    kind: Pod\n    name: {pod}\n    namespace: shop\n");
        let conditions: Vec<String> = [
            ("ready", ready),
            ("serving", serving),
            ("terminating", terminating),
        ]
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
        .collect();
        if !conditions.is_empty() {
            out += &format!("  conditions: {{{}}}\n", conditions.join(", "));
        }
    }
    out
}

/// Writes `text` to `path` atomically, as a careful writer (or a ConfigMap
/// update) does.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A running `lameduck balance` with its addresses.
pub struct Balance {
    /// The process.
    pub lameduck: Lameduck,
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The admin port.
    pub admin: SocketAddr,
}

impl Balance {
    /// Starts `lameduck balance --endpoints SOURCE` with `flags`, and waits
    /// for /ready to be 200 if `wait_ready`.
    pub fn start(source: &str, flags: &[&str], env: &[(&str, &str)], wait_ready: bool) -> Balance {
        let [listen, admin] =
            [free_port(), free_port()].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let (l, a) = (listen.to_string(), admin.to_string());
        let mut args = vec![
            "balance",
            "--listen",
            &l,
            "--admin",
            &a,
            "--endpoints",
            source,
        ];
        args.extend_from_slice(flags);
        let lameduck = Lameduck::start_with(
            &args,
            Options {
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Options::default()
            },
        );
        if wait_ready {
            wait_until("the balancer's /ready to answer 200", || {
                status(admin, "/ready") == 200
            });
        }
        Balance {
            lameduck,
            listen,
            admin,
        }
    }

    /// `GET /endpoints`, parsed.
    pub fn endpoints(&self) -> serde_json::Value {
        let answer = request(self.admin, "GET", "/endpoints").expect("GET /endpoints");
        assert_eq!(answer.status, 200, "{}", answer.body);
        serde_json::from_str(&answer.body).expect("/endpoints is JSON")
    }

    /// The `/endpoints` entry of pod `name`.
    pub fn endpoint(&self, name: &str) -> Option<serde_json::Value> {
        self.endpoints()["endpoints"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
    }

    /// Waits until pod `name` is in `state` (`None`: not listed).
    pub fn wait_state(&self, name: &str, state: Option<&str>) {
        wait_until(&format!("{name} to be {state:?}"), || {
            self.endpoint(name)
                .map(|e| e["state"].as_str().unwrap_or_default().to_owned())
                == state.map(str::to_owned)
        });
    }

    /// A counter or gauge of `/metrics`, 0 when absent.
    pub fn metric(&self, prefix: &str) -> f64 {
        crate::support::net::metric(self.admin, prefix).unwrap_or(0.0)
    }
}

/// Runs `client.py short`: `count` connections one after the other.
pub fn short_connections(dir: &Path, listen: SocketAddr, count: usize) -> serde_json::Value {
    let out = dir.join(format!("short-{}.json", free_port()));
    let status = Command::new(python())
        .arg(fixture("client.py"))
        .args([
            "short",
            "--addr",
            &listen.to_string(),
            "--count",
            &count.to_string(),
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .expect("client.py short");
    assert!(status.success());
    serde_json::from_str(&wait_file(&out)).expect("client output")
}

/// A long TCP session of `client.py session`.
pub struct Session {
    child: Child,
    /// Its result, once it ended.
    pub out: PathBuf,
    progress: PathBuf,
    /// The pod it landed on.
    pub pod: String,
}

impl Session {
    /// Opens a session through the balancer; returns once it had its first
    /// answer.
    pub fn open(dir: &Path, listen: SocketAddr, tag: &str) -> Session {
        let [out, ready, progress] =
            ["out", "ready", "progress"].map(|k| dir.join(format!("session-{tag}.{k}")));
        let child = Command::new(python())
            .arg(fixture("client.py"))
            .args(["session", "--addr", &listen.to_string()])
            .arg("--out")
            .arg(&out)
            .arg("--ready")
            .arg(&ready)
            .arg("--progress")
            .arg(&progress)
            .spawn()
            .expect("client.py session");
        let pod = wait_file(&ready);
        Session {
            child,
            out,
            progress,
            pod,
        }
    }

    /// Answers so far.
    pub fn answered(&self) -> u64 {
        std::fs::read_to_string(&self.progress)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits for `more` answers beyond now.
    pub fn wait_more(&self, more: u64) {
        let target = self.answered() + more;
        wait_until(
            &format!("session on {} to get {more} more answers", self.pod),
            || self.answered() >= target,
        );
    }

    /// Waits for the session to end by itself; returns its result.
    pub fn result(mut self) -> serde_json::Value {
        let text = wait_file(&self.out);
        let _ = self.child.wait();
        serde_json::from_str(&text).expect("session output")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lameduck` run to its end with `args`; its exit code and stderr.
pub fn run_balance(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(lameduck_bin())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("run lameduck");
    (
        out.status.code().expect("exited by itself"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A WebSocket session of `tests/apps/ws_client.py`.
pub struct WsSession {
    child: Child,
    out: PathBuf,
}

impl WsSession {
    /// Opens a session through the balancer; returns once its handshake
    /// is done.
    pub fn open(dir: &Path, listen: SocketAddr, tag: &str) -> WsSession {
        let out = dir.join(format!("ws-{tag}.json"));
        let ready = dir.join(format!("ws-{tag}.ready"));
        let child = Command::new(python())
            .arg(crate::support::net::app("ws_client.py"))
            .args(["--url", &format!("ws://{listen}/"), "--interval-ms", "50"])
            .arg("--out")
            .arg(&out)
            .arg("--ready")
            .arg(&ready)
            .spawn()
            .expect("ws_client.py");
        wait_file(&ready);
        WsSession { child, out }
    }

    /// Whether it ended by itself.
    pub fn ended(&self) -> bool {
        self.out.exists()
    }

    /// SIGTERM: the client closes with 1000; its result.
    pub fn stop(mut self) -> serde_json::Value {
        // SAFETY: kill has no memory arguments.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.result()
    }

    /// Its result, once it ended.
    pub fn result(&mut self) -> serde_json::Value {
        let text = wait_file(&self.out);
        let _ = self.child.wait();
        serde_json::from_str(&text).expect("ws_client output")
    }
}

impl Drop for WsSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
