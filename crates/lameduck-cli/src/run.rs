//! `lameduck run`: flags to [`lameduck_supervisor::Config`].

use std::ffi::OsString;
use std::time::Duration;

use clap::Args;
use lameduck_core::{parse_duration, Budget, DrainDelay, Signal};
use lameduck_supervisor::{Config, Hooks, SignalTarget};

/// Flags of `lameduck run`; each also read from its `LAMEDUCK_*` variable.
#[derive(Debug, Args)]
#[command(after_help = "Example, as a Dockerfile's entrypoint:\n  \
    ENTRYPOINT [\"lameduck\", \"run\", \"--\"]\n  \
    CMD [\"myapp\", \"--port\", \"8080\"]")]
pub struct RunArgs {
    /// How long to hold the stop back while balancers catch up (the built-in
    /// preStop sleep). Default: 5s when KUBERNETES_SERVICE_HOST is set, else 0.
    #[arg(long, env = "LAMEDUCK_DRAIN_DELAY", value_parser = parse_duration, value_name = "DURATION")]
    drain_delay: Option<Duration>,

    /// The pod's terminationGracePeriodSeconds, less any preStop you keep:
    /// whatever runs a safety margin before it ends is killed.
    #[arg(long, env = "LAMEDUCK_GRACE_PERIOD", value_parser = parse_duration, default_value = "30s", value_name = "DURATION")]
    grace_period: Duration,

    /// Time kept free before the kubelet's SIGKILL. Default: 2s, or a quarter
    /// of a grace period shorter than 8s.
    #[arg(long, env = "LAMEDUCK_SAFETY_MARGIN", value_parser = parse_duration, value_name = "DURATION")]
    safety_margin: Option<Duration>,

    /// The signal the app gets when the stop is passed on (QUIT for nginx,
    /// WINCH for Apache httpd). Default: the signal lameduck received.
    #[arg(long, env = "LAMEDUCK_STOP_SIGNAL", value_name = "SIGNAL")]
    stop_signal: Option<Signal>,

    /// Who forwarded signals go to: `group` (the app's process group, so
    /// `sh -c` wrappers and their children hear them) or `child`.
    #[arg(
        long,
        env = "LAMEDUCK_SIGNAL_TARGET",
        default_value = "group",
        value_name = "TARGET"
    )]
    signal_target: SignalTarget,

    /// Shell command run before the app; if it fails, the app never starts
    /// and lameduck exits with its code.
    #[arg(long, env = "LAMEDUCK_PRE_START", value_name = "CMD")]
    pre_start: Option<String>,

    /// Shell command run when the stop begins, alongside the drain delay
    /// (deregister, tell clients to move). The stop waits for it, for at most
    /// half the time the app has to stop.
    #[arg(long, env = "LAMEDUCK_ON_DRAIN", value_name = "CMD")]
    on_drain: Option<String>,

    /// Shell command run after the app is gone.
    #[arg(long, env = "LAMEDUCK_POST_STOP", value_name = "CMD")]
    post_stop: Option<String>,

    /// The app and its arguments, run as is (no shell added).
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Runs the supervisor; returns the status lameduck exits with.
pub fn run(args: RunArgs) -> i32 {
    let kubernetes = std::env::var("KUBERNETES_SERVICE_HOST").ok();
    let mut budget = Budget::new(args.grace_period);
    if let Some(margin) = args.safety_margin {
        budget = budget.with_margin(margin);
    }
    let config = Config {
        command: args.command,
        signal_target: args.signal_target,
        stop_signal: args.stop_signal,
        drain_delay: DrainDelay::resolve(args.drain_delay, kubernetes.as_deref()),
        budget,
        hooks: Hooks {
            pre_start: args.pre_start,
            on_drain: args.on_drain,
            post_stop: args.post_stop,
        },
    };
    match lameduck_supervisor::run(config) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e}");
            e.exit_code()
        }
    }
}
