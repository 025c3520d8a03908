//! `lameduck`: makes a Kubernetes pod leave without losing a request.
//!
//! This binary only parses arguments and wires the lameduck crates together;
//! the behaviour lives in them.
#![deny(rust_2018_idioms)]

mod logging;
mod run;

use clap::{Parser, Subcommand};

use logging::LogFormat;

/// Ends a Kubernetes pod without losing a request, a connection or a message.
#[derive(Debug, Parser)]
#[command(name = "lameduck", version, about, long_about = None, propagate_version = true)]
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
}

fn main() {
    let cli = Cli::parse();
    logging::init(cli.log_format, cli.quiet);
    let code = match cli.command {
        Command::Run(args) => run::run(args),
    };
    std::process::exit(code);
}
