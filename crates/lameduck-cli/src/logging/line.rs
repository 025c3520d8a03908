//! The log subscriber: one line per event, human or JSON, written to stderr
//! with one `write` call.
//!
//! It writes the lines tracing-subscriber's `fmt` subscriber wrote for
//! lameduck (the human format with `lameduck:` in front of the fields, and
//! the JSON format with the fields flattened), byte for byte: log pipelines
//! and the tests read them. It is not tracing-subscriber because lameduck is
//! PID 1: a registry of spans, per-thread buffers and a generic formatter
//! are code that start-up touches and page faults pull into memory, for
//! features lameduck's lines never use (spans are neither entered nor
//! printed here). The tests in `tests.rs` hold the lines to
//! tracing-subscriber's.

use std::fmt::{self, Write as _};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Where finished lines go (stderr; a buffer in tests).
pub type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

/// The subscriber of every lameduck command.
pub struct LineSubscriber {
    /// The most verbose level written.
    pub max_level: LevelFilter,
    /// JSON objects instead of human lines.
    pub json: bool,
    /// Colour the level (human lines on a terminal).
    pub ansi: bool,
    /// Where lines go.
    pub sink: Sink,
}

/// Whether an event of `level` from `target` is written under `max`:
/// lameduck's own at `max`, the Kubernetes client's only from WARN up.
/// kube-client's HTTP trace layer (`kube_client::client::builder`) logs
/// every failed request at ERROR ("failed with error client error
/// (Connect)") and also returns that error to the caller, which logs the
/// line that means something (the balancer's "EndpointSlice watch failed,
/// retrying with backoff"): it is left out, so a retry loop is not an error
/// line per attempt.
pub(super) fn enabled_for(max: LevelFilter, target: &str, level: &tracing::Level) -> bool {
    let ceiling = if target.starts_with("kube_client::client::builder") {
        LevelFilter::OFF
    } else if target.starts_with("kube_client") || target.starts_with("kube_runtime") {
        LevelFilter::WARN
    } else {
        LevelFilter::TRACE
    };
    *level <= max.min(ceiling)
}

impl Subscriber for LineSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        enabled_for(self.max_level, metadata.target(), metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max_level)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Spans are not printed: one id for all (ids must not be 0).
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = String::with_capacity(256);
        let level = *event.metadata().level();
        let _ = match self.json {
            false => self.human(&mut line, level, event),
            true => json(&mut line, level, event),
        };
        line.push('\n');
        (self.sink)(line.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

impl LineSubscriber {
    /// `2026-01-02T03:04:05.678901Z  INFO lameduck: message key=value`.
    fn human(&self, line: &mut String, level: Level, event: &Event<'_>) -> fmt::Result {
        write!(line, "{}", Timestamp(SystemTime::now()))?;
        let padded = format!("{level:>5}");
        if self.ansi {
            let colour = match level {
                Level::ERROR => "31",
                Level::WARN => "33",
                Level::INFO => "32",
                _ => "34",
            };
            write!(line, " \x1b[{colour}m{padded}\x1b[0m lameduck: ")?;
        } else {
            write!(line, " {padded} lameduck: ")?;
        }
        let mut fields = HumanFields {
            line,
            ansi: self.ansi,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result
    }
}

/// The fields of a human line: the message, then ` name=value` (values in
/// their `Debug` form; names italic and `=` dimmed on a terminal).
struct HumanFields<'a> {
    line: &'a mut String,
    ansi: bool,
    first: bool,
    result: fmt::Result,
}

impl Visit for HumanFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"))
        } else {
            self.record_debug(field, &value)
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let Some(source) = value.source() else {
            return self.record_debug(field, &format_args!("{}", Escaped(value)));
        };
        let (italic, dimmed) = self.styles();
        let reset = self.reset();
        let name = field.name();
        self.record_debug(
            field,
            &format_args!(
                "{} {italic}{name}{reset}{italic}.sources{reset}{dimmed}={reset}{:?}",
                Escaped(value),
                Sources(source),
            ),
        )
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        if !std::mem::take(&mut self.first) {
            self.line.push(' ');
        }
        let name = field.name();
        self.result = if name == "message" {
            write!(self.line, "{:?}", Escaped(value))
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            let (italic, dimmed) = self.styles();
            let reset = self.reset();
            write!(self.line, "{italic}{name}{reset}{dimmed}={reset}{value:?}")
        };
    }
}

impl HumanFields<'_> {
    fn styles(&self) -> (&'static str, &'static str) {
        match self.ansi {
            true => ("\x1b[3m", "\x1b[2m"),
            false => ("", ""),
        }
    }

    fn reset(&self) -> &'static str {
        match self.ansi {
            true => "\x1b[0m",
            false => "",
        }
    }
}

/// A message with the control characters a terminal would act on written
/// out (`\x1b`, C1 codes): an app's output quoted in a message cannot move
/// the cursor or change the colours of the log.
struct Escaped<T>(T);

impl<T: fmt::Debug> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{:?}", self.0)
    }
}

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

/// An error and its sources, `[first, second]`, each escaped.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Debug for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(error) = next {
            list.entry(&Escaped(format_args!("{error}")));
            next = error.source();
        }
        list.finish()
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

/// `{"timestamp":"…","level":"INFO","message":"…","key":value}`: numbers and
/// booleans as themselves, everything else as a string.
fn json(line: &mut String, level: Level, event: &Event<'_>) -> fmt::Result {
    line.push_str("{\"timestamp\":");
    json_string(line, &Timestamp(SystemTime::now()).to_string());
    line.push_str(",\"level\":");
    json_string(line, level.as_str());
    let mut fields = JsonFields { line };
    event.record(&mut fields);
    line.push('}');
    Ok(())
}

struct JsonFields<'a> {
    line: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        json_string(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // serde_json's own number format (and `null` for NaN and infinities).
        match serde_json::to_string(&value) {
            Ok(number) => self.line.push_str(&number),
            Err(_) => self.line.push_str("null"),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_string(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        json_string(self.line, &format!("{value:?}"));
    }
}

/// A JSON string as serde_json writes it: `"` and `\` escaped, control
/// characters as `\n`-style or `\u00XX` escapes, the rest as is.
fn json_string(line: &mut String, s: &str) {
    line.push('"');
    for ch in s.chars() {
        match ch {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            '\x08' => line.push_str("\\b"),
            '\x0c' => line.push_str("\\f"),
            '\0'..='\x1f' => {
                let _ = write!(line, "\\u{:04x}", ch as u32);
            }
            _ => line.push(ch),
        }
    }
    line.push('"');
}

/// An RFC 3339 UTC time with microseconds, `2026-01-02T03:04:05.678901Z`.
pub struct Timestamp(pub SystemTime);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Seconds and nanoseconds since the epoch, floored (a clock set
        // before 1970 gives negative seconds and positive nanoseconds).
        let (secs, nanos) = match self.0.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                match d.subsec_nanos() {
                    0 => (-(d.as_secs() as i64), 0),
                    n => (-(d.as_secs() as i64) - 1, 1_000_000_000 - n),
                }
            }
        };
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        if year > 9999 {
            write!(f, "+{year}")?;
        } else if year < 0 {
            write!(f, "{year:05}")?;
        } else {
            write!(f, "{year:04}")?;
        }
        write!(
            f,
            "-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            nanos / 1_000
        )
    }
}

/// Year, month and day of a day count from 1970-01-01 (the proleptic
/// Gregorian calendar; H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
