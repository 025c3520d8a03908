//! The drain proxy's flags, shared by `lameduck proxy` (a sidecar) and
//! `lameduck run --listen` (in front of the app it supervises).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use lameduck::http::HttpServer;
use lameduck::Timing;
use lameduck_core::{parse_duration, Plan};
pub use lameduck_proxy::ProxyDrainer;
use lameduck_proxy::{Config, Mode, Upstream, UpstreamProtocol, Workers};

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
    pub upstream: Option<Upstream>,

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

    /// How long to wait for the app to accept a connection, and for one to
    /// come free when all `--max-upstream-connections` are busy (then 503).
    #[arg(long, env = "LAMEDUCK_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// The most connections open to the app at once (Envoy's circuit
    /// breaker default).
    #[arg(long, env = "LAMEDUCK_MAX_UPSTREAM_CONNECTIONS", default_value = "1024", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_upstream_connections: u32,

    /// The most streams one HTTP/2 client connection may have open at once
    /// (advertised in SETTINGS).
    #[arg(long, env = "LAMEDUCK_MAX_CONCURRENT_STREAMS", default_value = "100", value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_concurrent_streams: u32,

    /// How long the app may take to begin its answer once it has the whole
    /// request (then 504); `0s` waits as long as the client does.
    #[arg(long, env = "LAMEDUCK_UPSTREAM_TIMEOUT", value_parser = parse_duration, default_value = "60s", value_name = "DURATION")]
    pub upstream_timeout: Duration,

    /// Threads serving the listener, each with its own listener on the same
    /// address (SO_REUSEPORT) and its own idle upstream connections; one
    /// drain, admin port, metrics and --max-upstream-connections for all.
    /// `auto`: the container's CPU limit (cgroup cpu.max or CFS quota,
    /// rounded up), else the cores. Default: 1. At most 1024.
    #[arg(long, env = "LAMEDUCK_WORKERS", value_name = "N|auto")]
    pub workers: Option<Workers>,
}

impl ProxyArgs {
    /// The proxy's configuration, or a usage error.
    pub fn config(&self, plan: &Plan) -> Result<Config, String> {
        let listen = self.listen.ok_or("--listen is required")?;
        let upstream = self
            .upstream
            .clone()
            .ok_or("--upstream is required with --listen")?;
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
                max_concurrent_streams: self.max_concurrent_streams,
                ..HttpServer::default()
            },
            connect_timeout: self.connect_timeout,
            max_upstream_connections: self.max_upstream_connections as usize,
            upstream_timeout: Some(self.upstream_timeout).filter(|t| !t.is_zero()),
            workers: self.workers.clone().unwrap_or_default(),
        })
    }
}

/// `lameduck proxy`: the drain proxy alone, as a sidecar. Drains on SIGTERM
/// or SIGINT (a second SIGINT cuts the delay short) or `POST /drain`, and
/// exits 0 once drained.
pub fn sidecar(args: &ProxyArgs, drain: &crate::run::DrainArgs) -> i32 {
    let config = match drain.plan(args).and_then(|plan| args.config(&plan)) {
        Ok(c) => c,
        Err(e) => return crate::logging::usage_error(e),
    };
    match lameduck_proxy::run_sidecar(config) {
        Ok(_) => 0,
        Err(e) => crate::logging::fail(1, e),
    }
}
