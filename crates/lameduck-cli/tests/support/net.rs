//! What the drain proxy's end-to-end tests share: free loopback ports, a
//! proxy in front of one of the test apps, and a tiny HTTP/1.1 client for
//! the admin port (Connection: close, read to the end).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{python, tempdir, wait_until, Lameduck, EVENT_TIMEOUT};

/// The lowest port the ports of [`free_port`] are taken from.
const LOWEST_PORT: u32 = 10_000;

/// A loopback port nobody listens on right now, for a process the test
/// starts to bind.
///
/// Not one the kernel picks (`bind` to port 0): those come from its
/// ephemeral range, where every client connection of the tests running
/// beside this one takes its source port too, and one of them took such a
/// port before the proxy could bind it ("Address already in use", once in
/// three full runs of the suite). These come from below that range, one after the
/// other within the test binary (which runs its tests in parallel; cargo
/// runs the binaries one at a time), from a start that differs by process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(LOWEST_PORT).max(1_000);
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOWEST_PORT + (start + n) % span).expect("a port number");
        // Nobody listens on it now (a daemon, or a test's own listener).
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {ephemeral}")
}

/// A test app under `tests/apps/`.
pub fn app(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apps")
        .join(name)
        .display()
        .to_string()
}

/// An HTTP answer, as read off the wire.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The head, status line and headers, as text.
    pub head: String,
    /// The body as sent (chunked framing left in).
    pub body: String,
}

/// Sends `raw` to `addr` and reads until the server closes.
pub fn exchange(addr: SocketAddr, raw: &str) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(EVENT_TIMEOUT))?;
    stream.write_all(raw.as_bytes())?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    let text = String::from_utf8_lossy(&all).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    })
}

/// `METHOD path` on `addr`, with `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<Answer> {
    exchange(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    )
}

/// The status of `GET path`, 0 if the connection failed.
pub fn status(addr: SocketAddr, path: &str) -> u16 {
    request(addr, "GET", path).map_or(0, |a| a.status)
}

/// The value of the first sample of /metrics that starts with `prefix`.
pub fn metric(admin: SocketAddr, prefix: &str) -> Option<f64> {
    let answer = request(admin, "GET", "/metrics").ok()?;
    answer
        .body
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `lameduck run --listen ... -- python3 APP --port U --ready FILE ...`,
/// started and ready (its /ready answers 200).
pub struct ProxiedApp {
    /// The running lameduck.
    pub lameduck: Lameduck,
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The app's own address.
    pub upstream: SocketAddr,
    /// The admin port.
    pub admin: SocketAddr,
    /// Markers and outputs.
    pub dir: tempfile::TempDir,
}

impl ProxiedApp {
    /// Starts `app` (a file of `tests/apps/`) with `app_args` behind
    /// `lameduck run` with `flags`, and waits until /ready is 200.
    pub fn start(app_name: &str, app_args: &[&str], flags: &[&str]) -> Self {
        let dir = tempdir();
        let [listen, upstream, admin] =
            [free_port(), free_port(), free_port()].map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
        let (l, u, a) = (listen.to_string(), upstream.to_string(), admin.to_string());
        let ready = dir.path().join("app-ready").display().to_string();
        let port = upstream.port().to_string();
        let script = app(app_name);
        let mut args = vec!["run", "--listen", &l, "--upstream", &u, "--admin", &a];
        args.extend_from_slice(flags);
        args.extend(["--", python(), &script, "--port", &port, "--ready", &ready]);
        args.extend_from_slice(app_args);
        let lameduck = Lameduck::start(&args);
        wait_until("/ready to answer 200", || status(admin, "/ready") == 200);
        ProxiedApp {
            lameduck,
            listen,
            upstream,
            admin,
            dir,
        }
    }

    /// A path in the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits until the proxy counts `n` requests in flight.
    pub fn wait_in_flight(&self, protocol: &str, n: f64) {
        let prefix = format!("lameduck_in_flight_requests{{protocol=\"{protocol}\"}}");
        wait_until(&format!("{n} {protocol} requests in flight"), || {
            metric(self.admin, &prefix) == Some(n)
        });
    }
}

/// Whether a connection to `addr` is refused at once.
pub fn refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}
