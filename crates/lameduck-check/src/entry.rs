//! `lameduck check` from settings to exit status: the one entry point the
//! binary calls. It owns the runtime, the signals that end a rehearsal
//! early (SIGTERM, SIGHUP, SIGINT: every pod is removed first), the
//! outputs, and the rule that no verdict is given that the rehearsal cannot
//! stand behind.

use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lameduck_core::Signal;
use tokio::signal::unix::{signal, Signal as Stream, SignalKind};

use crate::report::Report;
use crate::settings::Settings;
use crate::RehearsalError;

/// Where the results go besides the summary on stdout.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--report FILE`: the HTML page.
    pub report: Option<PathBuf>,
}

/// What `lameduck check` was asked to do.
#[derive(Debug)]
pub enum Invocation {
    /// Rehearse, and write the outputs.
    Rehearse {
        /// The settings as given.
        settings: Box<Settings>,
        /// Where the results go.
        outputs: Outputs,
    },
    /// `--compare A.json B.json`: two runs side by side.
    Compare {
        /// The run before.
        before: PathBuf,
        /// The run after.
        after: PathBuf,
        /// `--report FILE`.
        report: Option<PathBuf>,
    },
}

/// An error that ends the rehearsal: one line through the process's log
/// subscriber, as every lameduck command reports its errors.
fn say(message: impl std::fmt::Display) {
    tracing::error!("{message}");
}

/// Runs `lameduck check`; the exit status: 0 passed, 1 failed (something
/// lost, a pod killed, or no verdict could be given), 2 usage, 128 + N when
/// signal N ended it.
pub fn main(invocation: Invocation) -> i32 {
    match invocation {
        Invocation::Rehearse { settings, outputs } => rehearse(*settings, &outputs),
        Invocation::Compare {
            before,
            after,
            report,
        } => crate::report::compare::run(&before, &after, report.as_deref()),
    }
}

fn rehearse(settings: Settings, outputs: &Outputs) -> i32 {
    let plan = match settings.plan() {
        Ok(plan) => plan,
        Err(e) => {
            say(e);
            return 2;
        }
    };
    for note in &plan.notes {
        tracing::info!("{note}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(format!("could not rehearse: no async runtime: {e}"));
            return 1;
        }
    };
    let progress = std::io::stderr().is_terminal();
    // A panic unwinds through the rehearsal: the pods' handles drop, which
    // kills them and removes their namespaces, and the verdict is refused.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            let signals = Signals::new().map_err(|e| {
                RehearsalError::Failed(format!(
                    "could not watch for SIGTERM, SIGHUP and SIGINT, so pods could be left behind: {e}"
                ))
            })?;
            crate::rehearse(plan, progress, signals.first()).await
        })
    }));
    runtime.shutdown_timeout(Duration::from_secs(2));
    let report = match result {
        Err(_) => {
            say("could not rehearse: the rehearsal panicked (a bug: please report it); its pods were removed");
            return 1;
        }
        Ok(Err(RehearsalError::Interrupted(signal))) => {
            tracing::warn!(
                "interrupted by {signal}: every pod and its network namespace were removed"
            );
            return 128 + signal.number();
        }
        Ok(Err(e)) => {
            say(format!("could not rehearse: {e}"));
            return 1;
        }
        Ok(Ok(report)) => report,
    };
    print!("{}", crate::report::summary(&report));
    if let Err(e) = write_outputs(outputs, &report) {
        say(format!("could not write the results: {e}"));
        return 1;
    }
    i32::from(report.failed)
}

/// The signals that end a rehearsal early.
struct Signals {
    term: Stream,
    hup: Stream,
    int: Stream,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The first of them to arrive.
    async fn first(mut self) -> Signal {
        let number = tokio::select! {
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.hup.recv() => libc::SIGHUP,
            _ = self.int.recv() => libc::SIGINT,
        };
        Signal::from_number(number).unwrap_or(Signal::TERM)
    }
}

fn write_outputs(outputs: &Outputs, report: &Report) -> Result<(), String> {
    if let Some(path) = &outputs.json {
        let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        write(path, &json)?;
    }
    if let Some(path) = &outputs.report {
        write(path, &crate::report::html(report))?;
    }
    Ok(())
}

/// Writes `text` to `path`, naming the path in the error.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
