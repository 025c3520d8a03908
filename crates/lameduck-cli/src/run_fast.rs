//! `lameduck run` as PID 1 without building clap's command tree.
//!
//! Every container that adopts lameduck starts it as its entrypoint, and the
//! tools it replaces (tini, dumb-init) are tiny. Building clap's `Command`
//! for the whole binary (every subcommand, every flag, its help) touches
//! code and data in proportion to everything lameduck can do, and page
//! faults pull that into memory around what is touched. So a plain
//! `lameduck run [FLAGS] [--] COMMAND...` is read here, by hand, with the
//! same value parsers clap uses, and goes straight to the supervisor.
//!
//! Anything else returns `None` and clap parses the arguments as before:
//! help, version, an unknown or repeated flag, a value that does not parse,
//! the drain proxy's flags, a `LAMEDUCK_*` variable this path does not know,
//! an empty value, arguments that are not UTF-8. So help and error text stay
//! clap's, byte for byte, and a new flag added to `run` through clap works at
//! once (it only takes the slower path until it is listed here). The tests
//! at the end hold this path to clap's result for the same arguments.

use std::ffi::{OsStr, OsString};
use std::time::Duration;

use lameduck_core::timing::env;
use lameduck_core::{parse_duration, Signal};
use lameduck_supervisor::{Config, Hooks, SignalTarget};

use crate::logging::{self, usage_error, LogFormat};
use crate::proxy::{parse_delay, DelayArg};
use crate::run::{self, DrainArgs, DEFAULT_GRACE_PERIOD, DEFAULT_SIGNAL_TARGET};

/// The global flags, on `lameduck` and on `run` (`-q` is `--quiet`).
const LOG_FORMAT: (&str, &str) = ("log-format", "LAMEDUCK_LOG_FORMAT");
const QUIET: (&str, &str) = ("quiet", "LAMEDUCK_QUIET");

/// `run`'s own flags that take a value, with their environment twins; the
/// drain proxy's are left to clap (with them lameduck is not light anyway).
const RUN_FLAGS: [(&str, &str); 8] = [
    ("drain-delay", env::DRAIN_DELAY),
    ("grace-period", env::GRACE_PERIOD),
    ("safety-margin", env::SAFETY_MARGIN),
    ("stop-signal", "LAMEDUCK_STOP_SIGNAL"),
    ("signal-target", "LAMEDUCK_SIGNAL_TARGET"),
    ("pre-start", "LAMEDUCK_PRE_START"),
    ("on-drain", "LAMEDUCK_ON_DRAIN"),
    ("post-stop", "LAMEDUCK_POST_STOP"),
];

/// `run`'s flags and the global one with a value.
const RUN_FLAGS_AND_LOG_FORMAT: [(&str, &str); 9] = [
    RUN_FLAGS[0],
    RUN_FLAGS[1],
    RUN_FLAGS[2],
    RUN_FLAGS[3],
    RUN_FLAGS[4],
    RUN_FLAGS[5],
    RUN_FLAGS[6],
    RUN_FLAGS[7],
    LOG_FORMAT,
];

/// What a plain `lameduck run` was asked for.
#[derive(Debug)]
pub struct RunRequest {
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--quiet`.
    pub quiet: bool,
    /// `--drain-delay` (never `auto`, which needs the proxy).
    pub drain_delay: Option<Duration>,
    /// `--grace-period`.
    pub grace_period: Duration,
    /// `--safety-margin`.
    pub safety_margin: Option<Duration>,
    /// `--stop-signal`.
    pub stop_signal: Option<Signal>,
    /// `--signal-target`.
    pub signal_target: SignalTarget,
    /// `--pre-start`, `--on-drain`, `--post-stop`.
    pub hooks: Hooks,
    /// The app and its arguments.
    pub command: Vec<OsString>,
}

/// Runs `lameduck run` when the arguments and the environment are plain;
/// `None` leaves them to clap. Returns the status to exit with.
pub fn try_run() -> Option<i32> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let request = parse(&args, std::env::vars_os())?;
    logging::init(request.log_format, request.quiet);
    let drain = DrainArgs {
        drain_delay: request.drain_delay.map(DelayArg::Fixed),
        grace_period: request.grace_period,
        safety_margin: request.safety_margin,
    };
    let timing = match drain.plan_alone() {
        Ok(plan) => plan,
        Err(e) => return Some(usage_error(e)),
    };
    Some(run::supervise(Config {
        command: request.command,
        signal_target: request.signal_target,
        stop_signal: request.stop_signal,
        timing,
        hooks: request.hooks,
    }))
}

/// The values given, by flag name: from the command line, else from the
/// flag's variable.
#[derive(Default)]
struct Given<'a> {
    values: Vec<(&'static str, &'a str)>,
    quiet: bool,
}

impl<'a> Given<'a> {
    /// Records `name = value`; `None` when given twice (clap's error) or empty.
    fn set(&mut self, name: &'static str, value: &'a str) -> Option<()> {
        if value.is_empty() || self.get(name).is_some() {
            return None;
        }
        self.values.push((name, value));
        Some(())
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Reads `argv` (program name first) and the environment as clap would for
/// `lameduck [GLOBAL] run [FLAGS] [--] COMMAND...`; `None` for anything
/// this path leaves to clap.
pub fn parse(
    argv: &[OsString],
    vars: impl Iterator<Item = (OsString, OsString)>,
) -> Option<RunRequest> {
    let mut given = Given::default();
    let mut args = argv.iter().skip(1);

    // Global flags, then `run`.
    loop {
        let arg = args.next()?.to_str()?;
        if arg == "run" {
            break;
        }
        flag(arg, &[LOG_FORMAT], &mut args, &mut given)?;
    }

    // `run`'s flags (global ones may come here too), then the command: from
    // the first argument that is not a flag, or everything after `--`.
    let mut command = Vec::new();
    while let Some(arg) = args.next() {
        let text = arg.to_str();
        if text == Some("--") {
            break;
        }
        if !text.is_some_and(|t| t.starts_with('-')) {
            command.push(arg.clone());
            break;
        }
        flag(text?, &RUN_FLAGS_AND_LOG_FORMAT, &mut args, &mut given)?;
    }
    command.extend(args.cloned());
    if command.is_empty() {
        return None;
    }

    // Environment twins of the flags not given, as clap reads them.
    let mut env_values = Vec::new();
    for (key, value) in vars {
        let Some(key) = key.to_str() else { continue };
        if !key.starts_with("LAMEDUCK_") {
            continue;
        }
        let value = value.into_string().ok()?;
        env_values.push((key.to_owned(), value));
    }
    for (key, value) in &env_values {
        // clap reads the global flags' variables on `lameduck` itself, so
        // it checks them even when `run` was given the flag: a global flag
        // given both ways, rare, is left to clap.
        if key == QUIET.1 {
            let quiet = boolish(value)?;
            if given.quiet {
                return None;
            }
            given.quiet = quiet;
            continue;
        }
        let (name, _) = RUN_FLAGS_AND_LOG_FORMAT
            .iter()
            .find(|(_, var)| var == key)?;
        if *name == LOG_FORMAT.0 || given.get(name).is_none() {
            given.set(name, value)?;
        }
    }

    let duration = |name| given.get(name).map(parse_duration).transpose().ok();
    let drain_delay = match given.get("drain-delay").map(parse_delay) {
        None => None,
        Some(Ok(DelayArg::Fixed(d))) => Some(d),
        Some(Ok(DelayArg::Auto) | Err(_)) => return None,
    };
    Some(RunRequest {
        log_format: match given.get(LOG_FORMAT.0).unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            _ => return None,
        },
        quiet: given.quiet,
        drain_delay,
        grace_period: parse_duration(given.get("grace-period").unwrap_or(DEFAULT_GRACE_PERIOD))
            .ok()?,
        safety_margin: duration("safety-margin")?,
        stop_signal: given
            .get("stop-signal")
            .map(Signal::parse_stop_signal)
            .transpose()
            .ok()?,
        signal_target: given
            .get("signal-target")
            .unwrap_or(DEFAULT_SIGNAL_TARGET)
            .parse()
            .ok()?,
        hooks: Hooks {
            pre_start: given.get("pre-start").map(str::to_owned),
            on_drain: given.get("on-drain").map(str::to_owned),
            post_stop: given.get("post-stop").map(str::to_owned),
        },
        command,
    })
}

/// `--quiet`, `-q`, or one of `flags` with its value (`--name=value` or
/// `--name value`); `None` for anything else, and for a value that looks like
/// a flag (clap's error).
fn flag<'a>(
    arg: &'a str,
    flags: &[(&'static str, &str)],
    rest: &mut impl Iterator<Item = &'a OsString>,
    given: &mut Given<'a>,
) -> Option<()> {
    if arg == "--quiet" || arg == "-q" {
        if given.quiet {
            return None;
        }
        given.quiet = true;
        return Some(());
    }
    let flag = arg.strip_prefix("--")?;
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    let (name, _) = flags.iter().find(|(n, _)| *n == name)?;
    let value = match value {
        Some(value) => value,
        None => rest
            .next()
            .map(OsString::as_os_str)
            .and_then(OsStr::to_str)?,
    };
    if value.starts_with('-') && !arg.contains('=') {
        return None;
    }
    given.set(name, value)
}

/// The values clap's `BoolishValueParser` takes.
fn boolish(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "y" | "yes" | "t" | "true" | "on" | "1" => Some(true),
        "n" | "no" | "f" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
