//! The lines are tracing-subscriber's, byte for byte but the time: the
//! same events go through both, set up as lameduck set tracing-subscriber up
//! before it had its own writer.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tracing::level_filters::LevelFilter;
use tracing::{debug, error, info, warn};

use super::{LineSubscriber, Timestamp};

type Buffer = Arc<Mutex<Vec<u8>>>;

struct Capture(Buffer);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn text(buffer: &Buffer) -> String {
    String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

#[derive(Debug)]
struct Outer(std::io::Error);

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot start the \x1b[31mhook")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Every kind of field lameduck's events carry, and the awkward ones.
fn events() {
    let signal = "SIGTERM";
    let left = vec![12, 13];
    let code: Option<i32> = Some(143);
    let none: Option<i32> = None;
    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
    let outer = Outer(std::io::Error::other("inner \u{9b}2J"));
    info!(
        pid = 42,
        command = ?["sleep", "30"],
        drain_delay = %"0s (default outside Kubernetes)",
        pid1 = false,
        "app started"
    );
    info!(%signal, sender = 7u64, code, none, "stop requested");
    warn!(pids = ?left, "deadline reached: sending SIGKILL to what is left");
    error!(hook = "on-drain", "cannot start the on-drain hook: {}", io);
    info!(
        r#type = "group",
        ratio = 0.25f64,
        big = -5i64,
        "raw names and numbers"
    );
    error!("quotes \" and \\ and\nnew lines\tand \x01 \x1b[2J \u{85} \u{7f} ünïcode");
    warn!(
        error = &io as &(dyn std::error::Error + 'static),
        "plain error"
    );
    warn!(
        error = &outer as &(dyn std::error::Error + 'static),
        "error with sources"
    );
    info!(message = "a message given as a field");
    debug!(pid = 1, "not written at info");
}

/// `line` without its time (the first word, or the JSON `timestamp`).
fn timeless(line: &str) -> String {
    if let Some(start) = line.find("\"timestamp\":\"") {
        let from = start + "\"timestamp\":\"".len();
        let to = from + line[from..].find('"').unwrap_or(0);
        assert_eq!(to - from, 27, "{line}");
        return format!("{}T{}", &line[..from], &line[to..]);
    }
    // A message's own new lines continue it on lines without a time.
    match line.split_once(' ') {
        Some((time, rest)) if time.len() == 27 && time.starts_with("20") && time.ends_with('Z') => {
            rest.to_owned()
        }
        _ => line.to_owned(),
    }
}

fn ours(json: bool, ansi: bool) -> Vec<String> {
    let buffer = Buffer::default();
    let sink = buffer.clone();
    let subscriber = LineSubscriber {
        max_level: LevelFilter::INFO,
        json,
        ansi,
        sink: Box::new(move |line| {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(line)
        }),
    };
    tracing::subscriber::with_default(subscriber, events);
    text(&buffer).lines().map(timeless).collect()
}

fn tracing_subscribers(json: bool, ansi: bool) -> Vec<String> {
    let buffer = Buffer::default();
    let sink = buffer.clone();
    let builder = tracing_subscriber::fmt()
        .with_writer(move || Capture(sink.clone()))
        .with_max_level(LevelFilter::INFO)
        .with_target(false);
    if json {
        let subscriber = builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
    } else {
        let subscriber = builder
            .with_ansi(ansi)
            .event_format(reference::HumanFormat)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
    }
    text(&buffer).lines().map(timeless).collect()
}

#[test]
fn human_lines_are_tracing_subscribers() {
    let ours = ours(false, false);
    assert_eq!(ours.len(), 10, "{ours:#?}");
    assert_eq!(ours, tracing_subscribers(false, false));
}

#[test]
fn coloured_human_lines_are_tracing_subscribers() {
    assert_eq!(ours(false, true), tracing_subscribers(false, true));
}

#[test]
fn json_lines_are_tracing_subscribers() {
    let ours = ours(true, false);
    assert_eq!(ours.len(), 9, "{ours:#?}");
    assert_eq!(ours, tracing_subscribers(true, false));
}

#[test]
fn times_are_rfc3339_utc_with_microseconds() {
    let at = |secs: i64, nanos: u32| {
        let t = match secs >= 0 {
            true => SystemTime::UNIX_EPOCH + Duration::new(secs as u64, nanos),
            false => {
                SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
                    + Duration::new(0, nanos)
            }
        };
        Timestamp(t).to_string()
    };
    // Values from `date -u -d @SECONDS +%FT%T`.
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
    assert_eq!(at(951_782_400, 1_999), "2000-02-29T00:00:00.000001Z");
    assert_eq!(
        at(4_107_542_399, 999_999_999),
        "2100-02-28T23:59:59.999999Z"
    );
    assert_eq!(
        at(1_795_001_469, 939_806_000),
        "2026-11-18T11:31:09.939806Z"
    );
    assert_eq!(at(-1, 500_000_000), "1969-12-31T23:59:59.500000Z");
    assert_eq!(at(253_402_300_800, 0), "+10000-01-01T00:00:00.000000Z");
}

/// The human format lameduck gave tracing-subscriber.
mod reference {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;

    pub struct HumanFormat;

    impl<S, N> FormatEvent<S, N> for HumanFormat
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &tracing::Event<'_>,
        ) -> std::fmt::Result {
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
}
