//! `lameduck`: makes a Kubernetes pod leave without losing a request.
//!
//! This binary only parses arguments and wires the lameduck crates together;
//! the behaviour lives in them.
#![deny(rust_2018_idioms)]

mod balance;
mod check;
mod lint;
mod logging;
mod proxy;
mod run;
mod run_fast;
mod suggest;
mod webhook;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use logging::LogFormat;

/// Makes a Kubernetes pod leave without losing a request, a connection or a
/// message, also when the app inside never handles SIGTERM.
#[derive(Debug, Parser)]
#[command(
    name = "lameduck",
    version = env!("LAMEDUCK_LONG_VERSION"),
    long_about = None,
    propagate_version = true,
    after_help = "Start with `lameduck lint Dockerfile k8s/` to find what loses requests today,\n\
    `lameduck check -- ./myapp --port '{port}'` to rehearse a rolling update under load,\n\
    and `ENTRYPOINT [\"lameduck\", \"run\", \"--\"]` to fix it. `lameduck help COMMAND` for each."
)]
struct Cli {
    /// Log format: `human` lines or `json` objects, one per event, on stderr.
    #[arg(
        long,
        global = true,
        env = "LAMEDUCK_LOG_FORMAT",
        default_value = "human",
        value_name = "FORMAT"
    )]
    log_format: LogFormat,

    /// Log only warnings and errors.
    #[arg(long, short, global = true, env = "LAMEDUCK_QUIET", value_parser = clap::builder::BoolishValueParser::new())]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run COMMAND as the container's entrypoint: forward signals, reap
    /// zombies, hold the stop back for the drain delay, keep the grace period.
    Run(run::RunArgs),
    /// Run the drain proxy alone, as a sidecar beside the app's container:
    /// readiness, drain delay, go-away and deadline in front of the app.
    Proxy(ProxyCmdArgs),
    /// Find the termination mistakes in Dockerfiles and manifests before
    /// they ship.
    Lint(lint::LintArgs),
    /// Rehearse a pod's end under load, the way Kubernetes ends it, and
    /// count every lost request and session, with its cause and its fix.
    Check(Box<check::CheckArgs>),
    /// Balance connections over a Service's pods straight from its
    /// EndpointSlices: a terminating pod gets no new connections and keeps
    /// its established ones; a refused connect is tried on another pod.
    Balance(Box<balance::BalanceArgs>),
    /// Serve the admission webhook that injects lameduck into the pods that
    /// ask for it, or make its certificates.
    Webhook(webhook::WebhookArgs),
}

/// Flags of `lameduck proxy`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example, as a sidecar (readinessProbe on :9901/ready):\n  \
    lameduck proxy --listen 0.0.0.0:8080 --upstream 127.0.0.1:8081 --admin 0.0.0.0:9901"
)]
struct ProxyCmdArgs {
    #[command(flatten)]
    drain: run::DrainArgs,
    #[command(flatten)]
    proxy: proxy::ProxyArgs,
}

fn main() {
    // PID 1 in most containers: read without building clap's command tree.
    if let Some(code) = run_fast::try_run() {
        std::process::exit(code);
    }
    let mut command = Cli::command();
    let cli = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|matches| Cli::from_arg_matches(&matches))
        .unwrap_or_else(|err| suggest::subcommand(err, &command).exit());
    logging::init(cli.log_format, cli.quiet);
    let code = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Check(args) => check::run(*args),
        Command::Balance(args) => balance::run(*args),
        Command::Proxy(args) => proxy::sidecar(&args.proxy, &args.drain),
        Command::Webhook(args) => webhook::run(args),
    };
    std::process::exit(code);
}
