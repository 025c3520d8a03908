//! `lameduck balance`: flags to [`lameduck_balance::Config`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use lameduck::http::HttpServer;
use lameduck::Timing;
use lameduck_balance::health::Probe;
use lameduck_balance::{
    Algorithm, Balancer, Config, HealthCheck, Mode, OnLeave, Policy, PortSelector, SourceSpec,
};
use lameduck_core::parse_duration;

use crate::logging::{fail, usage_error};
use crate::run::DrainArgs;

/// What the balancer relays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BalanceMode {
    /// Any protocol over TCP, one endpoint per client connection.
    Tcp,
    /// HTTP/1.1 and h2c, one endpoint per request, over kept HTTP/1.1
    /// connections.
    Http,
}

/// Flags of `lameduck balance`; each also read from its `LAMEDUCK_*`
/// variable.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    lameduck balance --listen 0.0.0.0:8080 --endpoints kubernetes:shop/web:http --admin 0.0.0.0:9901\n  \
    lameduck balance --listen 127.0.0.1:8080 --endpoints file:endpoints.yaml --port http\n  \
    lameduck balance --mode http --listen 0.0.0.0:8080 --endpoints kubernetes:shop/web:http\n\n\
  A terminating endpoint gets no new connections (in HTTP mode, no new requests);\n  its established ones carry on.\n  \
  Reload a file source with SIGHUP (it is also read again when it changes).")]
pub struct BalanceArgs {
    #[command(flatten)]
    drain: DrainArgs,

    /// Address clients connect to.
    #[arg(long, env = "LAMEDUCK_LISTEN", value_name = "ADDR")]
    listen: SocketAddr,

    /// Where endpoints come from: `file:PATH` (EndpointSlices in YAML or
    /// JSON) or `kubernetes:NAMESPACE/SERVICE[:PORT]` (a watch on the
    /// Service's EndpointSlices).
    #[arg(long, env = "LAMEDUCK_ENDPOINTS", value_name = "SOURCE")]
    endpoints: SourceSpec,

    /// The slices' port to connect to: its name (the Service port's name)
    /// or the pod's port number. Default: the slices' only TCP port.
    #[arg(long, env = "LAMEDUCK_ENDPOINT_PORT", value_name = "NAME|NUMBER")]
    port: Option<PortSelector>,

    /// `tcp`: any protocol, one endpoint per client connection. `http`:
    /// HTTP/1.1 and h2c, one endpoint per request; kept connections to an
    /// endpoint that stops being ready are closed.
    #[arg(
        long,
        env = "LAMEDUCK_MODE",
        default_value = "tcp",
        value_name = "MODE"
    )]
    mode: BalanceMode,

    /// Address of /ready, /live, /metrics, /endpoints and POST /drain.
    #[arg(long, env = "LAMEDUCK_ADMIN", value_name = "ADDR")]
    admin: Option<SocketAddr>,

    /// Take POST /drain from other than loopback.
    #[arg(long, env = "LAMEDUCK_ADMIN_ALLOW_REMOTE")]
    admin_allow_remote: bool,

    /// `least-connections` (of two endpoints picked at random) or
    /// `round-robin`.
    #[arg(
        long,
        env = "LAMEDUCK_ALGORITHM",
        default_value = "least-connections",
        value_name = "ALGORITHM"
    )]
    algorithm: Algorithm,

    /// How long one connect to an endpoint may take.
    #[arg(long, env = "LAMEDUCK_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "2s", value_name = "DURATION")]
    connect_timeout: Duration,

    /// How many times a connect that was refused, reset or timed out before
    /// any client byte went upstream is tried on another endpoint.
    #[arg(long, env = "LAMEDUCK_CONNECT_RETRIES", default_value = "2", value_parser = clap::value_parser!(u32).range(0..=10), value_name = "N")]
    connect_retries: u32,

    /// How long an endpoint whose connect failed is passed over.
    #[arg(long, env = "LAMEDUCK_EJECTION_TIME", value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    ejection_time: Duration,

    /// How long established connections to an endpoint that is gone or no
    /// longer serving may run on before they are closed.
    #[arg(long, env = "LAMEDUCK_DRAIN_TIMEOUT", value_parser = parse_duration, default_value = "5m", value_name = "DURATION")]
    drain_timeout: Duration,

    /// Never send new connections to terminating endpoints, even when no
    /// endpoint is ready (default: fall back to them, as kube-proxy does).
    #[arg(long, env = "LAMEDUCK_NO_FALLBACK")]
    no_fallback: bool,

    /// Check each endpoint: `tcp` (a connect) or `http:PATH` (GET, 2xx or
    /// 3xx). An endpoint that fails takes no new connections, whatever the
    /// source says.
    #[arg(long, env = "LAMEDUCK_HEALTH_CHECK", value_name = "tcp|http:PATH")]
    health_check: Option<Probe>,

    /// Time between two health checks of one endpoint.
    #[arg(long, env = "LAMEDUCK_HEALTH_INTERVAL", value_parser = parse_duration, default_value = "2s", value_name = "DURATION")]
    health_interval: Duration,

    /// How long one health check may take.
    #[arg(long, env = "LAMEDUCK_HEALTH_TIMEOUT", value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    health_timeout: Duration,

    /// Failed (or passed) checks in a row that take an endpoint out (or
    /// bring it back).
    #[arg(long, env = "LAMEDUCK_HEALTH_THRESHOLD", default_value = "3", value_parser = clap::value_parser!(u32).range(1..=100), value_name = "N")]
    health_threshold: u32,

    /// Threads relaying connections. Default: the CPUs this process may use.
    #[arg(long, env = "LAMEDUCK_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    threads: Option<u16>,
}

impl BalanceArgs {
    fn config(&self) -> Result<Config, String> {
        if self.health_interval.is_zero() || self.health_timeout.is_zero() {
            return Err("--health-interval and --health-timeout must be longer than 0".into());
        }
        if self.connect_timeout.is_zero() {
            return Err("--connect-timeout must be longer than 0".into());
        }
        const DAY: Duration = Duration::from_secs(24 * 3600);
        for (flag, d) in [
            ("--health-interval", self.health_interval),
            ("--health-timeout", self.health_timeout),
            ("--connect-timeout", self.connect_timeout),
        ] {
            if d > DAY {
                return Err(format!(
                    "{flag} is longer than a day: give a shorter duration"
                ));
            }
        }
        // `auto` waits for a second without new connections, within the
        // plan's bounds: the balancer has no flags of its own for them.
        let plan = self
            .drain
            .plan_with_auto(Duration::from_secs(1), None, None)?;
        Ok(Config {
            listen: self.listen,
            mode: match self.mode {
                BalanceMode::Tcp => Mode::Tcp,
                BalanceMode::Http => Mode::Http,
            },
            http: HttpServer::default(),
            source: self.endpoints.clone(),
            port: self.port.clone(),
            admin: self.admin,
            admin_allow_remote: self.admin_allow_remote,
            policy: Policy {
                algorithm: self.algorithm,
                fallback_to_terminating: !self.no_fallback,
                on_leave: OnLeave::CloseAfter(self.drain_timeout),
                ejection: self.ejection_time,
            },
            connect_timeout: self.connect_timeout,
            connect_retries: self.connect_retries,
            health: self.health_check.clone().map(|probe| HealthCheck {
                probe,
                interval: self.health_interval,
                timeout: self.health_timeout,
                threshold: self.health_threshold,
            }),
            timing: Timing::from(&plan),
        })
    }
}

/// Runs the balancer until its drain is over; returns the exit status: 0
/// once drained, 2 for bad flags or an unusable source, 1 when it cannot
/// run.
pub fn run(args: BalanceArgs) -> i32 {
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    let threads = args.threads.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => return fail(1, format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(async move {
        let balancer = match Balancer::bind(config).await {
            Ok(b) => b,
            Err(e @ lameduck_balance::Error::Source(_)) => return usage_error(e),
            Err(e) => return fail(1, e),
        };
        if let Err(e) = balancer.drain().listen_for_signals() {
            return fail(1, format!("cannot listen for signals: {e}"));
        }
        balancer.run().await;
        0
    })
}
