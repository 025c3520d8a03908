//! The drain proxy's flags, shared by `lameduck proxy` (a sidecar) and
//! `lameduck run --listen` (in front of the app it supervises).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use lameduck::http::HttpServer;
use lameduck::{Drain, Timing};
use lameduck_core::{parse_duration, Plan};
use lameduck_proxy::{Config, Mode, Proxy, UpstreamProtocol};
use lameduck_supervisor::{Drainer, Waker};
use tracing::error;

/// `--drain-delay`: a duration, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayArg {
    /// A fixed delay.
    Fixed(Duration),
    /// Until arrivals stop (proxy only).
    Auto,
}

/// Parses `auto` or a duration.
pub fn parse_delay(s: &str) -> Result<DelayArg, String> {
    if s == "auto" {
        return Ok(DelayArg::Auto);
    }
    parse_duration(s)
        .map(DelayArg::Fixed)
        .map_err(|e| format!("{e}, or auto"))
}

/// Flags of the drain proxy; each also read from its `LAMEDUCK_*` variable.
#[derive(Debug, Args)]
#[command(next_help_heading = "Drain proxy")]
pub struct ProxyArgs {
    /// Address clients connect to (with `run`, this turns the proxy on).
    #[arg(long, env = "LAMEDUCK_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// The app's address, `host:port`.
    #[arg(long, env = "LAMEDUCK_UPSTREAM", value_name = "HOST:PORT")]
    pub upstream: Option<String>,

    /// `http` (HTTP/1.1, HTTP/2, gRPC, WebSocket) or `tcp` (any protocol as
    /// a byte stream).
    #[arg(
        long,
        env = "LAMEDUCK_MODE",
        default_value = "http",
        value_name = "MODE"
    )]
    pub mode: Mode,

    /// HTTP spoken to the app: `h1` (keep-alive pool, upgrades) or `h2`
    /// (cleartext, for gRPC servers).
    #[arg(
        long,
        env = "LAMEDUCK_UPSTREAM_PROTOCOL",
        default_value = "h1",
        value_name = "PROTO"
    )]
    pub upstream_protocol: UpstreamProtocol,

    /// Address of /ready, /live, /metrics and POST /drain.
    #[arg(long, env = "LAMEDUCK_ADMIN", value_name = "ADDR")]
    pub admin: Option<SocketAddr>,

    /// Take POST /drain from other than loopback.
    #[arg(long, env = "LAMEDUCK_ADMIN_ALLOW_REMOTE")]
    pub admin_allow_remote: bool,

    /// With `--drain-delay auto`: how long without a new connection means
    /// the balancers stopped sending.
    #[arg(long, env = lameduck_core::timing::env::QUIET_PERIOD, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub quiet_period: Duration,

    /// With `--drain-delay auto`: the shortest delay. Default: the quiet period.
    #[arg(long, env = lameduck_core::timing::env::DRAIN_DELAY_MIN, value_parser = parse_duration, value_name = "DURATION")]
    pub drain_delay_min: Option<Duration>,

    /// With `--drain-delay auto`: the longest delay. Default: 30s, less when
    /// the grace period is shorter.
    #[arg(long, env = lameduck_core::timing::env::DRAIN_DELAY_MAX, value_parser = parse_duration, value_name = "DURATION")]
    pub drain_delay_max: Option<Duration>,

    /// How long a client may take to send a request's head.
    #[arg(long, env = "LAMEDUCK_CLIENT_TIMEOUT", value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    pub client_timeout: Duration,

    /// How long a client connection may stay idle between requests.
    #[arg(long, env = "LAMEDUCK_IDLE_TIMEOUT", value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// How long to wait for the app to accept a connection.
    #[arg(long, env = "LAMEDUCK_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub connect_timeout: Duration,
}

impl ProxyArgs {
    /// The proxy's configuration, or a usage error.
    pub fn config(&self, plan: &Plan) -> Result<Config, String> {
        let listen = self.listen.ok_or("--listen is required")?;
        let upstream = self
            .upstream
            .clone()
            .ok_or("--upstream is required with --listen")?;
        let port_ok = upstream.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !port_ok {
            return Err(format!(
                "bad --upstream {upstream:?}: give host:port, e.g. 127.0.0.1:8081"
            ));
        }
        Ok(Config {
            listen,
            mode: self.mode,
            upstream,
            upstream_protocol: self.upstream_protocol,
            admin: self.admin,
            admin_allow_remote: self.admin_allow_remote,
            timing: Timing::from(plan),
            http: HttpServer {
                header_read_timeout: self.client_timeout,
                idle_timeout: self.idle_timeout,
                ..HttpServer::default()
            },
            connect_timeout: self.connect_timeout,
        })
    }
}

/// A tokio runtime for the proxy: one thread, as the proxy is meant to sit
/// on one core beside the app.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The proxy as the supervisor's [`Drainer`]: runs on a thread of its own.
pub struct ProxyDrainer {
    drain: Drain,
    done: Arc<AtomicBool>,
}

impl ProxyDrainer {
    /// Binds the proxy and starts it on a new thread; fails if it cannot bind.
    pub fn start(config: Config, waker: Waker) -> Result<Box<dyn Drainer>, String> {
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let done_flag = done.clone();
        std::thread::Builder::new()
            .name("lameduck-proxy".into())
            .spawn(move || {
                let rt = match runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        return drop(bound_tx.send(Err(format!("cannot start the proxy: {e}"))))
                    }
                };
                rt.block_on(async move {
                    let proxy = match Proxy::bind(config).await {
                        Ok(p) => p,
                        Err(e) => return drop(bound_tx.send(Err(e.to_string()))),
                    };
                    let drain = proxy.drain();
                    let _ = bound_tx.send(Ok(drain.clone()));
                    // The drain may begin from the admin port.
                    tokio::spawn(async move {
                        drain.triggered().await;
                        waker.wake();
                    });
                    proxy.run().await;
                    done_flag.store(true, Ordering::Release);
                    waker.wake();
                    // Keep answering probes and finishing tunnels until the
                    // supervisor exits the process.
                    std::future::pending::<()>().await;
                });
            })
            .map_err(|e| format!("cannot start the proxy thread: {e}"))?;
        let drain = bound_rx
            .recv()
            .map_err(|_| "the proxy thread ended before binding".to_string())??;
        Ok(Box::new(ProxyDrainer { drain, done }))
    }
}

impl Drainer for ProxyDrainer {
    fn begin(&mut self) {
        // The supervisor logged the stop and its plan.
        self.drain.trigger_logged();
    }

    fn hurry(&mut self) {
        self.drain.hurry();
    }

    fn app_exited(&mut self) {
        self.drain.trigger();
        self.drain.hurry();
    }

    fn requested(&self) -> bool {
        self.drain.is_triggered()
    }

    fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// `lameduck proxy`: the drain proxy alone, as a sidecar. Drains on SIGTERM
/// or SIGINT (a second SIGINT cuts the delay short) or `POST /drain`, and
/// exits 0 once drained.
pub fn sidecar(args: &ProxyArgs, drain: &crate::run::DrainArgs) -> i32 {
    let config = match drain.plan(args).and_then(|plan| args.config(&plan)) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}");
            return 2;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let proxy = match Proxy::bind(config).await {
            Ok(p) => p,
            Err(e) => {
                error!("{e}");
                return 1;
            }
        };
        if let Err(e) = proxy.drain().listen_for_signals() {
            error!("cannot listen for signals: {e}");
            return 1;
        }
        proxy.run().await;
        0
    })
}
