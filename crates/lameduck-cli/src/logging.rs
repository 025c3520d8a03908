//! One line per event on stderr, for people or for log pipelines.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    let level = if quiet {
        LevelFilter::WARN
    } else {
        LevelFilter::INFO
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .event_format(HumanFormat)
            .finish()
            .with(targets(level))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .finish()
            .with(targets(level))
            .init(),
    }
}

/// Which events are written: lameduck's at `level`, the Kubernetes
/// client's only from WARN up. kube-client's HTTP trace layer
/// (`kube_client::client::builder`) logs every failed request at ERROR
/// ("failed with error client error (Connect)") and also returns that
/// error to the caller, which logs the line that means something (the
/// balancer's "EndpointSlice watch failed, retrying with backoff"): it is
/// left out, so a retry loop is not an error line per attempt.
fn targets(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(level)
        .with_target("kube_client", LevelFilter::WARN)
        .with_target("kube_runtime", LevelFilter::WARN)
        .with_target("kube_client::client::builder", LevelFilter::OFF)
}

/// The default human format, with `lameduck:` in front of every message so
/// its lines stand out among the app's own on the same stderr.
struct HumanFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for HumanFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
        use tracing_subscriber::fmt::FormatFields;
        SystemTime.format_time(&mut writer)?;
        let level = *event.metadata().level();
        let padded = format!("{level:>5}");
        if writer.has_ansi_escapes() {
            let colour = match level {
                tracing::Level::ERROR => "31",
                tracing::Level::WARN => "33",
                tracing::Level::INFO => "32",
                _ => "34",
            };
            write!(writer, " \x1b[{colour}m{padded}\x1b[0m lameduck: ")?;
        } else {
            write!(writer, " {padded} lameduck: ")?;
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
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
        let t = targets(LevelFilter::INFO);
        assert!(t.would_enable("lameduck_balance::source::kubernetes", &Level::INFO));
        assert!(t.would_enable("kube_runtime::watcher", &Level::WARN));
        assert!(!t.would_enable("kube_runtime::watcher", &Level::INFO));
        assert!(t.would_enable("kube_client::config", &Level::ERROR));
        assert!(!t.would_enable("kube_client::client::builder", &Level::ERROR));
        // --quiet keeps lameduck's own at WARN.
        assert!(!targets(LevelFilter::WARN).would_enable("lameduck", &Level::INFO));
    }
}
