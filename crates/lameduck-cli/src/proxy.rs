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

    /// Renew each client connection after this long, give or take 10% per
    /// connection (gRPC's MaxConnectionAge): HTTP/1.1 answers then say
    /// `Connection: close`, HTTP/2 gets GOAWAY, so clients that hold their
    /// connections spread over new pods after a scale-up. At least 1s.
    /// Default: kept for their life.
    #[arg(long, env = "LAMEDUCK_MAX_CONNECTION_AGE", value_parser = parse_age, value_name = "DURATION")]
    pub max_connection_age: Option<Duration>,

    /// With --max-connection-age: how long requests in flight may still take
    /// once a connection is past its age before it is closed anyway (gRPC's
    /// MaxConnectionAgeGrace). Default: they finish.
    #[arg(long, env = "LAMEDUCK_MAX_CONNECTION_AGE_GRACE", value_parser = parse_age_grace, value_name = "DURATION")]
    pub max_connection_age_grace: Option<Duration>,

    /// Threads serving the listener, each with its own listener on the same
    /// address (SO_REUSEPORT) and its own idle upstream connections; one
    /// drain, admin port, metrics and --max-upstream-connections for all.
    /// `auto`: the container's CPU limit (cgroup cpu.max or CFS quota,
    /// rounded up), else the cores. Default: 1. At most 1024.
    #[arg(long, env = "LAMEDUCK_WORKERS", value_name = "N|auto")]
    pub workers: Option<Workers>,
}

/// The shortest `--max-connection-age` taken, grpc-java's floor: shorter
/// ages renew connections faster than they are worth opening.
const SHORTEST_AGE: Duration = Duration::from_secs(1);

/// Parses `--max-connection-age`: a duration of at least [`SHORTEST_AGE`].
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let age = parse_duration(s).map_err(|e| e.to_string())?;
    if age < SHORTEST_AGE {
        return Err(format!(
            "a connection age of {s} would renew connections all the time: give 1s or more \
             (leave the flag out to keep connections for their life)"
        ));
    }
    Ok(age)
}

/// Parses `--max-connection-age-grace`: a duration above zero.
pub fn parse_age_grace(s: &str) -> Result<Duration, String> {
    let grace = parse_duration(s).map_err(|e| e.to_string())?;
    if grace.is_zero() {
        return Err(
            "a grace of 0 would cut every request in flight at the age: give a \
                    duration above 0 (leave the flag out to let them finish)"
                .to_owned(),
        );
    }
    Ok(grace)
}

impl ProxyArgs {
    /// The proxy's configuration, or a usage error.
    pub fn config(&self, plan: &Plan) -> Result<Config, String> {
        let listen = self.listen.ok_or("--listen is required")?;
        let upstream = self
            .upstream
            .clone()
            .ok_or("--upstream is required with --listen")?;
        if self.max_connection_age_grace.is_some() && self.max_connection_age.is_none() {
            return Err("--max-connection-age-grace needs --max-connection-age".into());
        }
        if self.max_connection_age.is_some() && self.mode == Mode::Tcp {
            return Err(
                "--max-connection-age needs --mode http: a TCP session cannot be \
                        told to move without losing what is in flight"
                    .into(),
            );
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
                max_concurrent_streams: self.max_concurrent_streams,
                max_connection_age: self.max_connection_age,
                max_connection_age_grace: self.max_connection_age_grace,
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
