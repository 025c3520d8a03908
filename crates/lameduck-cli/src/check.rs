//! `lameduck check`: flags to a [`lameduck_check::Plan`], and the report
//! written where asked.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use lameduck_check::plan::{
    BalancerMode, HttpLoad, Network, Probe, Readiness, Scenario, SessionKind,
};
use lameduck_check::{Plan, Report};
use lameduck_core::{parse_duration, Signal};

/// `--scenario`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScenarioArg {
    /// For each replica: start a new one, wait until ready, delete the old
    /// (maxSurge 1, maxUnavailable 0).
    Rolling,
    /// Delete one of the replicas.
    Delete,
}

/// `--balancer`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BalancerArg {
    /// After the lag no new connections; established ones keep flowing.
    KubeProxy,
    /// Removal also resets established connections.
    Reset,
    /// Established connections are kept until they end.
    Graceful,
}

/// `--network`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NetworkArg {
    /// A network namespace per pod when root, else loopback.
    Auto,
    /// A network namespace and address per pod (root).
    Namespace,
    /// One port per pod on loopback.
    Loopback,
}

/// Flags of `lameduck check`; most also read from `LAMEDUCK_CHECK_*`
/// (not the `LAMEDUCK_*` of `lameduck run`, which the pods' own
/// `lameduck run` would read too).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    lameduck check --replicas 2 --endpoint-lag 1s --grace-period 10s -- ./myapp --port '{port}'\n  \
    lameduck check --pre-stop 'sleep 2' --long websocket:20 --report report.html -- ./myapp --port '{port}'\n  \
    lameduck check --readiness http:9901/ready -- lameduck run --listen '0.0.0.0:{port}' \\\n      --upstream 127.0.0.1:9000 --admin 0.0.0.0:9901 -- ./myapp --port 9000\n\n\
    Exit status: 0 nothing lost, 1 something lost (or the rehearsal could not run), 2 usage.")]
pub struct CheckArgs {
    /// Replicas running before the scenario.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_REPLICAS",
        default_value_t = 2,
        value_name = "N"
    )]
    replicas: usize,

    /// What happens to them.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_SCENARIO",
        default_value = "rolling",
        value_name = "SCENARIO"
    )]
    scenario: ScenarioArg,

    /// How the balancer treats a removed pod's established connections.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_BALANCER",
        default_value = "kube-proxy",
        value_name = "KIND"
    )]
    balancer: BalancerArg,

    /// How long the balancer goes on sending new connections to a deleted
    /// pod (endpoint propagation).
    #[arg(long, env = "LAMEDUCK_CHECK_ENDPOINT_LAG", value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    endpoint_lag: Duration,

    /// terminationGracePeriodSeconds: SIGKILL this long after the start of
    /// preStop.
    #[arg(long, env = "LAMEDUCK_CHECK_GRACE_PERIOD", value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    grace_period: Duration,

    /// A preStop exec hook, run with `sh -c` inside the pod.
    #[arg(long, env = "LAMEDUCK_CHECK_PRE_STOP", value_name = "CMD")]
    pre_stop: Option<String>,

    /// The signal the kubelet sends to PID 1 (the image's STOPSIGNAL).
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_STOP_SIGNAL",
        default_value = "TERM",
        value_name = "SIGNAL"
    )]
    stop_signal: Signal,

    /// The readinessProbe: `tcp` (a connect to the app's port), or
    /// `http:/PATH` or `http:PORT/PATH`.
    #[arg(long, env = "LAMEDUCK_CHECK_READINESS", default_value = "tcp", value_parser = parse_probe, value_name = "PROBE")]
    readiness: Probe,

    /// The probe's periodSeconds (Kubernetes' default is 10s).
    #[arg(long, env = "LAMEDUCK_CHECK_READINESS_PERIOD", value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    readiness_period: Duration,

    /// The probe's failureThreshold.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_READINESS_FAILURE_THRESHOLD",
        default_value_t = 3,
        value_name = "N"
    )]
    readiness_failure_threshold: u32,

    /// The app's port, in `$PORT` and `{port}` of the command.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_PORT",
        default_value_t = 8080,
        value_name = "PORT"
    )]
    port: u16,

    /// Where pods live: `auto` is a network namespace per pod when root,
    /// else one port per pod on loopback.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_NETWORK",
        default_value = "auto",
        value_name = "KIND"
    )]
    network: NetworkArg,

    /// HTTP keep-alive clients (0: no HTTP load).
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_CLIENTS",
        default_value_t = 4,
        value_name = "N"
    )]
    clients: usize,

    /// Requests per second over all clients. Default: as fast as answers
    /// come.
    #[arg(long, env = "LAMEDUCK_CHECK_RPS", value_name = "N")]
    rps: Option<u32>,

    /// The share of requests sent on a fresh connection (0 to 1).
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_NEW_CONNECTION_RATIO",
        default_value_t = 0.1,
        value_name = "RATIO"
    )]
    new_connection_ratio: f64,

    /// HTTP/2 (h2c, prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,

    /// The path requested.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_PATH",
        default_value = "/",
        value_name = "PATH"
    )]
    path: String,

    /// How long an answer may take.
    #[arg(long, env = "LAMEDUCK_CHECK_TIMEOUT", value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    timeout: Duration,

    /// Stop sending after this many requests.
    #[arg(long, env = "LAMEDUCK_CHECK_MAX_REQUESTS", value_name = "N")]
    max_requests: Option<u64>,

    /// Long-lived sessions, `websocket:N` or `tcp:N`, sending a message every
    /// 100 ms and expecting it back (repeatable).
    #[arg(long = "long", value_parser = parse_long, value_name = "KIND:N")]
    long: Vec<(SessionKind, usize)>,

    /// The path of WebSocket sessions.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_WEBSOCKET_PATH",
        default_value = "/ws",
        value_name = "PATH"
    )]
    websocket_path: String,

    /// How long a pod may take to become ready.
    #[arg(long, env = "LAMEDUCK_CHECK_START_TIMEOUT", value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    start_timeout: Duration,

    /// Load before the first pod is deleted.
    #[arg(long, env = "LAMEDUCK_CHECK_WARMUP", value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    warmup: Duration,

    /// Load after the last deleted pod has exited.
    #[arg(long, env = "LAMEDUCK_CHECK_SETTLE", value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    settle: Duration,

    /// Where the balancer listens (default: a free port on loopback), so
    /// that clients of your own can send load through it too.
    #[arg(long, env = "LAMEDUCK_CHECK_BALANCER_LISTEN", value_name = "ADDR")]
    balancer_listen: Option<std::net::SocketAddr>,

    /// Write the whole result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Write a self-contained HTML page with the timeline to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// The pod's command; `{port}` in it becomes the pod's port.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn parse_probe(text: &str) -> Result<Probe, String> {
    if text == "tcp" {
        return Ok(Probe::Tcp);
    }
    let rest = text
        .strip_prefix("http:")
        .ok_or_else(|| format!("`{text}`: expected `tcp`, `http:/PATH` or `http:PORT/PATH`"))?;
    let slash = rest
        .find('/')
        .ok_or_else(|| format!("`{text}`: the HTTP path must start with `/`"))?;
    let port = match &rest[..slash] {
        "" => None,
        p => Some(
            p.parse::<u16>()
                .map_err(|_| format!("`{text}`: `{p}` is not a port"))?,
        ),
    };
    Ok(Probe::Http {
        port,
        path: rest[slash..].to_string(),
    })
}

fn parse_long(text: &str) -> Result<(SessionKind, usize), String> {
    let (kind, n) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: expected `websocket:N` or `tcp:N`"))?;
    let kind = match kind {
        "websocket" | "ws" => SessionKind::Websocket,
        "tcp" => SessionKind::Tcp,
        other => return Err(format!("`{other}`: sessions are `websocket` or `tcp`")),
    };
    let n = n
        .parse()
        .map_err(|_| format!("`{n}` is not a number of sessions"))?;
    Ok((kind, n))
}

impl CheckArgs {
    fn plan(&self) -> Result<Plan, String> {
        let network = match self.network {
            NetworkArg::Namespace if !lameduck_check::pod::is_root() => {
                return Err(
                    "--network namespace needs root: run as root or use --network loopback".into(),
                )
            }
            NetworkArg::Namespace => Network::Namespace,
            NetworkArg::Loopback => Network::Loopback,
            NetworkArg::Auto if lameduck_check::pod::is_root() => Network::Namespace,
            NetworkArg::Auto => {
                eprintln!("lameduck check: not root, so pods share loopback, each on a port of its own (root gives each pod a network namespace and address)");
                Network::Loopback
            }
        };
        let plan = Plan {
            command: self.command.clone(),
            port: self.port,
            replicas: self.replicas,
            scenario: match self.scenario {
                ScenarioArg::Rolling => Scenario::Rolling,
                ScenarioArg::Delete => Scenario::Delete,
            },
            balancer: match self.balancer {
                BalancerArg::KubeProxy => BalancerMode::KubeProxy,
                BalancerArg::Reset => BalancerMode::Reset,
                BalancerArg::Graceful => BalancerMode::Graceful,
            },
            endpoint_lag: self.endpoint_lag,
            grace_period: self.grace_period,
            pre_stop: self.pre_stop.clone(),
            stop_signal: self.stop_signal,
            readiness: Readiness {
                probe: self.readiness.clone(),
                period: self.readiness_period,
                failure_threshold: self.readiness_failure_threshold,
            },
            network,
            http: HttpLoad {
                clients: self.clients,
                rps: self.rps,
                new_connection_ratio: self.new_connection_ratio,
                http2: self.http2,
                path: self.path.clone(),
                timeout: self.timeout,
                max_requests: self.max_requests,
            },
            sessions: self.long.clone(),
            websocket_path: self.websocket_path.clone(),
            start_timeout: self.start_timeout,
            warmup: self.warmup,
            settle: self.settle,
            balancer_listen: self.balancer_listen,
        };
        plan.validate().map_err(|e| e.to_string())?;
        Ok(plan)
    }
}

/// Runs `lameduck check`; the exit code.
pub fn run(args: CheckArgs) -> i32 {
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("lameduck check: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lameduck check: no async runtime: {e}");
            return 1;
        }
    };
    let progress = std::io::stderr().is_terminal();
    let result = runtime.block_on(async {
        tokio::select! {
            r = lameduck_check::rehearse(plan, progress) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    // Ends whatever still runs: pods are killed and their namespaces removed
    // as their handles drop.
    runtime.shutdown_timeout(Duration::from_secs(2));
    let report = match result {
        None => {
            eprintln!("lameduck check: interrupted");
            return 130;
        }
        Some(Err(e)) => {
            eprintln!("lameduck check: could not rehearse: {e}");
            return 1;
        }
        Some(Ok(report)) => report,
    };
    print!("{}", lameduck_check::report::summary(&report));
    if let Err(code) = write_outputs(&args, &report) {
        return code;
    }
    i32::from(report.lost)
}

fn write_outputs(args: &CheckArgs, report: &Report) -> Result<(), i32> {
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(report).map_err(|e| {
            eprintln!("lameduck check: could not write JSON: {e}");
            1
        })?;
        write(path, &json)?;
    }
    if let Some(path) = &args.report {
        write(path, &lameduck_check::report::html(report))?;
    }
    Ok(())
}

fn write(path: &PathBuf, text: &str) -> Result<(), i32> {
    std::fs::write(path, text).map_err(|e| {
        eprintln!("lameduck check: could not write {}: {e}", path.display());
        1
    })
}
