//! One line per event on stderr, for people or for log pipelines.

mod line;

use std::io::{IsTerminal, Write};

use tracing::level_filters::LevelFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-01-02T03:04:05.678Z  INFO lameduck: app started pid=42`
    Human,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// Installs the global subscriber. Called once, before anything logs.
pub fn init(format: LogFormat, quiet: bool) {
    let subscriber = line::LineSubscriber {
        max_level: if quiet {
            LevelFilter::WARN
        } else {
            LevelFilter::INFO
        },
        json: matches!(format, LogFormat::Json),
        ansi: matches!(format, LogFormat::Human) && std::io::stderr().is_terminal(),
        sink: Box::new(|line| {
            // Errors writing to stderr have nowhere to be reported.
            let _ = std::io::stderr().lock().write_all(line);
        }),
    };
    // Fails only if a subscriber is set already: the first one stays.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Reports a failure of lameduck itself (not of the app), the one way
/// every command reports errors: one line at error level through the log,
/// human or JSON as `--log-format` says (so a log pipeline sees it, and
/// `--quiet` does not hide it). Returns `code`, the status to exit with.
pub fn fail(code: i32, message: impl std::fmt::Display) -> i32 {
    tracing::error!("{message}");
    code
}

/// Reports a usage error (a flag, a variable, a combination of them):
/// status 2, as clap's own usage errors.
pub fn usage_error(message: impl std::fmt::Display) -> i32 {
    fail(2, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn the_kubernetes_client_says_warnings_and_not_its_request_failures() {
        let on =
            |max: LevelFilter, target: &str, level: Level| line::enabled_for(max, target, &level);
        let info = LevelFilter::INFO;
        assert!(on(
            info,
            "lameduck_balance::source::kubernetes",
            Level::INFO
        ));
        assert!(on(info, "kube_runtime::watcher", Level::WARN));
        assert!(!on(info, "kube_runtime::watcher", Level::INFO));
        assert!(on(info, "kube_client::config", Level::ERROR));
        assert!(!on(info, "kube_client::client::builder", Level::ERROR));
        // --quiet keeps lameduck's own at WARN.
        assert!(!on(LevelFilter::WARN, "lameduck", Level::INFO));
    }
}
