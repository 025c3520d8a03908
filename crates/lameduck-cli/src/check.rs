//! `lameduck check`: flags to [`lameduck_check::Settings`], and one call to
//! [`lameduck_check::main`]. Each value parses itself in `lameduck-check`
//! (`FromStr`); defaults, the manifest and the validation live there too.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use lameduck_check::plan::{BalancerMode, NetworkChoice, Probe, Scenario, SessionSpec};
use lameduck_check::{Invocation, Outputs, Settings};
use lameduck_core::{parse_duration, Signal};

/// Flags of `lameduck check`; most also read from `LAMEDUCK_CHECK_*`
/// (not the `LAMEDUCK_*` of `lameduck run`, which the pods' own
/// `lameduck run` would read too).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    lameduck check --replicas 2 --endpoint-lag 1s --grace-period 10s -- ./myapp --port '{port}'\n  \
    lameduck check --pre-stop 'sleep 2' --long websocket:20 --report report.html -- ./myapp --port '{port}'\n  \
    lameduck check --readiness http:9901/ready -- lameduck run --listen '0.0.0.0:{port}' \\\n      --upstream 127.0.0.1:9000 --admin 0.0.0.0:9901 -- ./myapp --port 9000\n\n\
    Exit status: 0 nothing lost and no pod killed; 1 something lost, a pod killed at its\n  \
    deadline, or the rehearsal could not run; 2 usage; 128+N ended by signal N (pods removed).")]
pub struct CheckArgs {
    /// Replicas running before the scenario. Default: the manifest's, else 2.
    #[arg(long, env = "LAMEDUCK_CHECK_REPLICAS", value_name = "N")]
    replicas: Option<usize>,

    /// What happens to them:
    /// `rolling` (for each replica: start a new one, wait until ready,
    /// delete an old one, within maxSurge and maxUnavailable) or `delete`
    /// (delete one of the replicas). Default: rolling.
    #[arg(long, env = "LAMEDUCK_CHECK_SCENARIO", value_name = "SCENARIO")]
    scenario: Option<Scenario>,

    /// How the balancer treats a removed pod's established connections:
    /// `kube-proxy` (after the lag no new connections, established ones
    /// keep flowing), `reset` (removal also resets them), `graceful`
    /// (kept until they end) or `lameduck` (the real `lameduck balance`,
    /// fed EndpointSlice files: terminating pods get no new connections,
    /// refused connects are retried). Default: kube-proxy.
    #[arg(long, env = "LAMEDUCK_CHECK_BALANCER", value_name = "KIND")]
    balancer: Option<BalancerMode>,

    /// How long the balancer goes on sending new connections to a deleted
    /// pod (endpoint propagation).
    /// Default: 1s.
    #[arg(long, env = "LAMEDUCK_CHECK_ENDPOINT_LAG", value_parser = parse_duration, value_name = "DURATION")]
    endpoint_lag: Option<Duration>,

    /// terminationGracePeriodSeconds: SIGKILL this long after the start of
    /// preStop.
    /// Default: the manifest's, else 30s.
    #[arg(long, env = "LAMEDUCK_CHECK_GRACE_PERIOD", value_parser = parse_duration, value_name = "DURATION")]
    grace_period: Option<Duration>,

    /// A preStop exec hook, run with `sh -c` inside the pod.
    #[arg(long, env = "LAMEDUCK_CHECK_PRE_STOP", value_name = "CMD")]
    pre_stop: Option<String>,

    /// The signal the kubelet sends to PID 1 (the image's STOPSIGNAL).
    /// Default: TERM.
    #[arg(long, env = "LAMEDUCK_CHECK_STOP_SIGNAL", value_name = "SIGNAL")]
    stop_signal: Option<Signal>,

    /// The readinessProbe: `tcp` (a connect to the app's port), `tcp:PORT`,
    /// `http:/PATH`, `http:PORT/PATH` or `exec:COMMAND` (`sh -c` inside the
    /// pod). Default: the manifest's, else tcp.
    #[arg(long, env = "LAMEDUCK_CHECK_READINESS", value_name = "PROBE")]
    readiness: Option<Probe>,

    /// The probe's periodSeconds (Kubernetes' default is 10s).
    /// Default: the manifest's, else 1s.
    #[arg(long, env = "LAMEDUCK_CHECK_READINESS_PERIOD", value_parser = parse_duration, value_name = "DURATION")]
    readiness_period: Option<Duration>,

    /// The probe's failureThreshold.
    /// Default: the manifest's, else 3.
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_READINESS_FAILURE_THRESHOLD",
        value_name = "N"
    )]
    readiness_failure_threshold: Option<u32>,

    /// The app's port, in `$PORT` and `{port}` of the command.
    /// Default: the manifest's first containerPort, else 8080.
    #[arg(long, env = "LAMEDUCK_CHECK_PORT", value_name = "PORT")]
    port: Option<u16>,

    /// New pods a rolling update starts above the replicas at once: a
    /// count or a percentage, rounded up. Default: the manifest's, else 1.
    #[arg(long, env = "LAMEDUCK_CHECK_MAX_SURGE", value_name = "N|N%")]
    max_surge: Option<String>,

    /// Old pods a rolling update deletes before their replacements are
    /// ready: a count or a percentage, rounded down. Default: the
    /// manifest's, else 0.
    #[arg(long, env = "LAMEDUCK_CHECK_MAX_UNAVAILABLE", value_name = "N|N%")]
    max_unavailable: Option<String>,

    /// Where pods live: `auto` is a network namespace per pod when root,
    /// else one port per pod on loopback.
    #[arg(long, env = "LAMEDUCK_CHECK_NETWORK", value_name = "KIND")]
    network: Option<NetworkChoice>,

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
    #[arg(long = "long", value_name = "KIND:N")]
    long: Vec<SessionSpec>,

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

    /// Write a self-contained HTML page with the timeline to FILE (with
    /// --compare: both runs on the same scales).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// Rehearse the pod spec that ships: a Deployment, StatefulSet,
    /// DaemonSet or Pod (or a `helm template` stream with one of them):
    /// command and args, env, ports, readinessProbe, preStop,
    /// terminationGracePeriodSeconds, replicas, maxSurge and
    /// maxUnavailable. Flags given here win.
    #[arg(long, env = "LAMEDUCK_CHECK_MANIFEST", value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// The container of the manifest's pod to rehearse (needed when it has
    /// several).
    #[arg(
        long,
        env = "LAMEDUCK_CHECK_CONTAINER",
        value_name = "NAME",
        requires = "manifest"
    )]
    container: Option<String>,

    /// Compare two runs written with --json: a summary of both, and with
    /// --report a page with both timelines on the same scales.
    #[arg(long, num_args = 2, value_names = ["BEFORE.json", "AFTER.json"], conflicts_with_all = ["manifest", "json", "command"])]
    compare: Option<Vec<PathBuf>>,

    /// The pod's command; `{port}` in it becomes the pod's port. With
    /// --manifest, the container's command is used when none is given here.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `lameduck check`; the exit code.
pub fn run(args: CheckArgs) -> i32 {
    let invocation = match args.compare {
        Some(files) => {
            let mut files = files.into_iter();
            match (files.next(), files.next()) {
                (Some(before), Some(after)) => Invocation::Compare {
                    before,
                    after,
                    report: args.report,
                },
                _ => return 2,
            }
        }
        None => Invocation::Rehearse {
            settings: Box::new(Settings {
                replicas: args.replicas,
                scenario: args.scenario,
                balancer: args.balancer,
                endpoint_lag: args.endpoint_lag,
                grace_period: args.grace_period,
                pre_stop: args.pre_stop,
                stop_signal: args.stop_signal,
                readiness: args.readiness,
                readiness_period: args.readiness_period,
                readiness_failure_threshold: args.readiness_failure_threshold,
                port: args.port,
                max_surge: args.max_surge,
                max_unavailable: args.max_unavailable,
                network: args.network,
                clients: Some(args.clients),
                rps: args.rps,
                new_connection_ratio: Some(args.new_connection_ratio),
                http2: args.http2,
                path: Some(args.path),
                timeout: Some(args.timeout),
                max_requests: args.max_requests,
                long: args.long,
                websocket_path: Some(args.websocket_path),
                start_timeout: Some(args.start_timeout),
                warmup: Some(args.warmup),
                settle: Some(args.settle),
                balancer_listen: args.balancer_listen,
                manifest: args.manifest,
                container: args.container,
                command: args.command,
            }),
            outputs: Outputs {
                json: args.json,
                report: args.report,
            },
        },
    };
    lameduck_check::main(invocation)
}
