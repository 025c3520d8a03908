//! `lameduck run`: flags to [`lameduck_supervisor::Config`].

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;
use lameduck_core::timing::{env, in_kubernetes};
use lameduck_core::{parse_duration, DelaySetting, Plan, Settings, Signal};
use lameduck_supervisor::{Config, Hooks, SignalTarget};

use crate::logging::{fail, usage_error};
use crate::proxy::{parse_delay, DelayArg, ProxyArgs, ProxyDrainer};

/// The timing flags `run` and `proxy` share.
#[derive(Debug, Args)]
pub struct DrainArgs {
    /// How long to keep serving after the stop was asked for, while balancers
    /// catch up (the built-in preStop sleep); `auto` (with the proxy) keeps
    /// accepting until no new connection came for --quiet-period.
    /// Default: 5s when KUBERNETES_SERVICE_HOST is set, else 0.
    #[arg(long, env = env::DRAIN_DELAY, value_parser = parse_delay, value_name = "DURATION|auto")]
    pub drain_delay: Option<DelayArg>,

    /// The pod's terminationGracePeriodSeconds, less any preStop you keep:
    /// whatever runs a safety margin before it ends is killed.
    #[arg(long, env = env::GRACE_PERIOD, value_parser = parse_duration, default_value = DEFAULT_GRACE_PERIOD, value_name = "DURATION")]
    pub grace_period: Duration,

    /// Time kept free before the kubelet's SIGKILL. Default: 2s, or a quarter
    /// of a grace period shorter than 8s.
    #[arg(long, env = env::SAFETY_MARGIN, value_parser = parse_duration, value_name = "DURATION")]
    pub safety_margin: Option<Duration>,
}

impl DrainArgs {
    /// The one plan of the stop, from these flags and the proxy's auto-delay
    /// flags, with `KUBERNETES_SERVICE_HOST` read here, once; or a usage
    /// error in the flags' terms.
    pub fn plan(&self, proxy: &ProxyArgs) -> Result<Plan, String> {
        self.plan_with_auto(
            proxy.quiet_period,
            proxy.drain_delay_min,
            proxy.drain_delay_max,
        )
    }

    /// The plan without the drain proxy: `--drain-delay auto` needs it.
    pub fn plan_alone(&self) -> Result<Plan, String> {
        match self.drain_delay {
            Some(DelayArg::Auto) => Err(AUTO_NEEDS_LISTEN.to_owned()),
            // No auto delay: its quiet period and bounds are not read.
            _ => self.plan_with_auto(Duration::ZERO, None, None),
        }
    }

    /// [`DrainArgs::plan`] for a command whose `--drain-delay auto` takes
    /// its quiet period and bounds from elsewhere (the balancer's are fixed).
    pub fn plan_with_auto(
        &self,
        quiet: Duration,
        min: Option<Duration>,
        max: Option<Duration>,
    ) -> Result<Plan, String> {
        let host = std::env::var(env::KUBERNETES_SERVICE_HOST).ok();
        let settings = Settings {
            grace_period: self.grace_period,
            safety_margin: self.safety_margin,
            drain_delay: match self.drain_delay {
                None => DelaySetting::Default,
                Some(DelayArg::Fixed(d)) => DelaySetting::Fixed(d),
                Some(DelayArg::Auto) => DelaySetting::Auto { quiet, min, max },
            },
            close_grace: None,
            kubernetes: in_kubernetes(host.as_deref()),
        };
        settings.plan().map_err(|e| e.to_string())
    }
}

/// `--drain-delay auto` without the proxy it watches.
const AUTO_NEEDS_LISTEN: &str =
    "--drain-delay auto needs --listen: it watches the proxy's connections";

/// `--grace-period`'s default: Kubernetes' terminationGracePeriodSeconds.
pub const DEFAULT_GRACE_PERIOD: &str = "30s";

/// `--signal-target`'s default.
pub const DEFAULT_SIGNAL_TARGET: &str = "group";

/// Flags of `lameduck run`; each also read from its `LAMEDUCK_*` variable.
#[derive(Debug, Args)]
#[command(after_help = "Examples, as a Dockerfile's entrypoint:\n  \
    ENTRYPOINT [\"lameduck\", \"run\", \"--\"]\n  \
    CMD [\"myapp\", \"--port\", \"8080\"]\n\n\
  With the drain proxy in front (readinessProbe on :9901/ready):\n  \
    lameduck run --listen 0.0.0.0:8080 --upstream 127.0.0.1:8081 --admin 0.0.0.0:9901 -- myapp --port 8081")]
pub struct RunArgs {
    #[command(flatten)]
    pub(crate) drain: DrainArgs,

    /// The signal the app gets when the stop is passed on (QUIT for nginx,
    /// WINCH for Apache httpd). Default: the signal lameduck received.
    #[arg(long, env = "LAMEDUCK_STOP_SIGNAL", value_parser = Signal::parse_stop_signal, value_name = "SIGNAL")]
    pub(crate) stop_signal: Option<Signal>,

    /// Who forwarded signals go to: `group` (the app's process group, so
    /// `sh -c` wrappers and their children hear them) or `child`.
    #[arg(
        long,
        env = "LAMEDUCK_SIGNAL_TARGET",
        default_value = DEFAULT_SIGNAL_TARGET,
        value_name = "TARGET"
    )]
    pub(crate) signal_target: SignalTarget,

    /// Shell command run before the app; if it fails, the app never starts
    /// and lameduck exits with its code.
    #[arg(long, env = "LAMEDUCK_PRE_START", value_name = "CMD")]
    pub(crate) pre_start: Option<String>,

    /// Shell command run when the stop begins, alongside the drain delay
    /// (deregister, tell clients to move). The stop waits for it, for at most
    /// half the time the app has to stop.
    #[arg(long, env = "LAMEDUCK_ON_DRAIN", value_name = "CMD")]
    pub(crate) on_drain: Option<String>,

    /// Shell command run after the app is gone.
    #[arg(long, env = "LAMEDUCK_POST_STOP", value_name = "CMD")]
    pub(crate) post_stop: Option<String>,

    /// The app and its arguments, run as is (no shell added).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub(crate) command: Vec<OsString>,

    #[command(flatten)]
    pub(crate) proxy: ProxyArgs,
}

/// Runs the supervisor; returns the status lameduck exits with.
pub fn run(args: RunArgs) -> i32 {
    let proxy_wanted = args.proxy.listen.is_some();
    if !proxy_wanted
        && (args.proxy.upstream.is_some()
            || args.proxy.admin.is_some()
            || args.proxy.workers.is_some())
    {
        return usage_error("--upstream, --admin and --workers need --listen (the drain proxy)");
    }
    if !proxy_wanted && args.proxy.max_connection_age.is_some() {
        return usage_error("--max-connection-age needs --listen (the drain proxy)");
    }
    let plan = match proxy_wanted {
        true => args.drain.plan(&args.proxy),
        false => args.drain.plan_alone(),
    };
    let timing = match plan {
        Ok(plan) => plan,
        Err(e) => return usage_error(e),
    };
    let proxy = match proxy_wanted {
        true => match args.proxy.config(&timing) {
            Ok(config) => Some(config),
            Err(e) => return usage_error(e),
        },
        false => None,
    };
    let config = Config {
        command: args.command,
        signal_target: args.signal_target,
        stop_signal: args.stop_signal,
        timing,
        hooks: Hooks {
            pre_start: args.pre_start,
            on_drain: args.on_drain,
            post_stop: args.post_stop,
        },
    };
    match proxy {
        None => supervise(config),
        Some(proxy) => match lameduck_supervisor::run_with_drainer(config, |waker| {
            ProxyDrainer::start(proxy, waker)
        }) {
            Ok(result) => result.unwrap_or_else(|e| fail(e.exit_code(), e)),
            Err(e) => fail(1, e),
        },
    }
}

/// Runs the supervisor without the drain proxy: what PID 1 does in most
/// containers, also reached from [`crate::run_fast`] without clap.
pub fn supervise(config: Config) -> i32 {
    lameduck_supervisor::run(config).unwrap_or_else(|e| fail(e.exit_code(), e))
}
