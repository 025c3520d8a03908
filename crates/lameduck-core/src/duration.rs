//! Durations as users write them in flags and environment variables, and
//! the one bound every duration of lameduck stays within.
//!
//! Every duration lameduck takes (a flag, a `LAMEDUCK_*` variable, a value
//! given to the library's builder) is at most [`MAX_DURATION`], so a deadline
//! computed from it (`now + grace period`) can never overflow a clock and
//! panic, whatever a user wrote.

use std::fmt;
use std::time::{Duration, Instant};

/// The longest duration lameduck accepts anywhere: 8760h (365 days).
///
/// Far longer than any sensible grace period, delay or timeout (Kubernetes'
/// own default grace period is 30s), and short enough that adding it to any
/// reading of a monotonic clock never overflows (`std`'s `Instant` holds
/// about 292 billion years) and stays inside tokio's timer range (about 2.2
/// years), so no deadline computed from user input can panic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `start + after`, for deadlines: never panics. `after` is capped at
/// [`MAX_DURATION`], which no monotonic clock overflows; should the clock
/// still overflow, the deadline is `start` itself (already due) rather than
/// a panic.
pub fn deadline_after(start: Instant, after: Duration) -> Instant {
    start.checked_add(after.min(MAX_DURATION)).unwrap_or(start)
}

/// Why a duration could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {}", self.input, self.reason)?;
        if self.reason != TOO_LONG {
            // How to write one, for a value that is not written right; a
            // value too long is written right and needs no lesson.
            f.write_str("; write it as a number with a unit, like 500ms, 5s, 2m or 1m30s")?;
        }
        Ok(())
    }
}

impl std::error::Error for DurationError {}

/// Reads a duration written as one or more `<number><unit>` parts, at most
/// [`MAX_DURATION`].
///
/// Units are `h`, `m`, `s`, `ms` and `us`; numbers may have a fraction
/// (`1.5s`). A lone `0` needs no unit. This is the notation of Go's
/// `time.ParseDuration`, which Kubernetes users already know.
///
/// ```
/// use std::time::Duration;
/// use lameduck_core::duration;
///
/// assert_eq!(duration::parse("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(duration::parse("1m30s").unwrap(), Duration::from_secs(90));
/// assert!(duration::parse("30").is_err()); // seconds? minutes? say which.
/// assert_eq!(duration::parse("8760h").unwrap(), duration::MAX_DURATION);
/// assert!(duration::parse("8761h").is_err()); // beyond the bound
/// ```
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(err("it is negative"));
    }
    let mut rest = s;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(err("a unit must follow a number"));
        }
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "" => return Err(err("the number has no unit")),
            _ => return Err(err("the unit is not one of h, m, s, ms, us")),
        };
        let value: f64 = number.parse().map_err(|_| err("the number is malformed"))?;
        let part =
            Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| err(TOO_LONG))?;
        total = total.checked_add(part).ok_or_else(|| err(TOO_LONG))?;
        rest = after;
    }
    check(total).map_err(|_| err(TOO_LONG))
}

/// The reason given for a duration beyond [`MAX_DURATION`].
const TOO_LONG: &str = "it is longer than 8760h (365 days), the longest duration lameduck accepts";

/// Refuses a duration beyond [`MAX_DURATION`], for values that come from
/// code rather than text (the library's builder). The error says the bound.
pub fn check(duration: Duration) -> Result<Duration, DurationError> {
    if duration > MAX_DURATION {
        return Err(DurationError {
            input: format(duration),
            reason: TOO_LONG,
        });
    }
    Ok(duration)
}

/// Writes a duration the way [`parse`] reads it: `0s`, `250ms`, `5s`,
/// `1.5s`, `2m`, `1m30s`.
pub fn format(d: Duration) -> String {
    let millis = d.as_millis();
    if millis == 0 {
        return if d.is_zero() {
            "0s".to_owned()
        } else {
            format!("{}us", d.as_micros())
        };
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let secs = d.as_secs();
    let frac_millis = d.subsec_millis();
    if secs < 60 {
        return if frac_millis == 0 {
            format!("{secs}s")
        } else {
            format!("{}s", trim_fraction(secs, frac_millis))
        };
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || frac_millis > 0 {
        out.push_str(&format!("{}s", trim_fraction(s, frac_millis)));
    }
    out
}

fn trim_fraction(secs: u64, millis: u32) -> String {
    if millis == 0 {
        return secs.to_string();
    }
    let frac = format!("{millis:03}");
    format!("{secs}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::{format as format_duration, parse as parse_duration};

    #[test]
    fn reads_the_usual_forms() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("500ms", 500),
            ("5s", 5_000),
            ("1.5s", 1_500),
            ("2m", 120_000),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            (" 30s ", 30_000),
        ];
        for (input, millis) in cases {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_millis(millis)),
                "{input}"
            );
        }
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_why() {
        for (input, reason) in [
            ("", "empty"),
            ("30", "no unit"),
            ("5x", "not one of"),
            ("-5s", "negative"),
            ("s", "must follow a number"),
            ("1.2.3s", "malformed"),
            ("99999999999999999999h", "longer than 8760h"),
            ("2600000000000000h", "longer than 8760h"),
            ("8761h", "longer than 8760h"),
        ] {
            let message = match parse_duration(input) {
                Ok(d) => panic!("{input:?} was read as {d:?}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains(reason), "{input:?}: {message}");
            assert_eq!(
                message.contains("like 500ms"),
                !reason.contains("longer than"),
                "the notation is taught only to a value not written right: {message}"
            );
        }
    }

    #[test]
    fn formats_back_to_what_it_reads() {
        for input in ["0s", "250ms", "5s", "1.5s", "2m", "1m30s", "1h", "1h0m5s"] {
            let d = parse_duration(input).expect(input);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{input}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(28_500)), "28.5s");
    }
}

#[cfg(test)]
mod bound {
    //! The bound, checked as a property: every duration the parser accepts
    //! is at most MAX_DURATION, and every one up to it is accepted, across
    //! units and at the boundary itself.
    use super::*;

    /// A small deterministic generator, so the property test needs no crate
    /// and every run checks the same values.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }
    }

    const MAX_SECS: u64 = 365 * 24 * 3600;

    #[test]
    fn the_bound_itself_is_accepted_in_every_unit_and_a_microsecond_more_is_not() {
        for ok in [
            "8760h",
            "525600m",
            "31536000s",
            "31536000000ms",
            "31536000000000us",
        ] {
            assert_eq!(parse(ok), Ok(MAX_DURATION), "{ok}");
        }
        for too_long in [
            "8760h1us",
            "525600m0.001ms",
            "31536000000001us",
            "31536001s",
            "8759h60m1s",
        ] {
            let e = parse(too_long).expect_err(too_long);
            assert!(e.to_string().contains("longer than 8760h"), "{e}");
        }
    }

    #[test]
    fn whatever_is_accepted_is_within_the_bound_and_whatever_is_within_is_accepted() {
        let mut rng = Lcg(0x01a3_ed0c);
        let units = [
            ("h", 3600.0),
            ("m", 60.0),
            ("s", 1.0),
            ("ms", 1e-3),
            ("us", 1e-6),
        ];
        for _ in 0..20_000 {
            // Values spread over many magnitudes, many near the bound.
            let (unit, per) = units[(rng.next() % 5) as usize];
            let scale = MAX_SECS as f64 / per;
            let value = match rng.next() % 3 {
                0 => (rng.next() % (scale as u64 * 2 + 2)) as f64,
                1 => scale + (rng.next() % 2001) as f64 - 1000.0,
                _ => (rng.next() % 1_000_000_000_000_000_000) as f64,
            };
            let input = format!("{value}{unit}");
            match parse(&input) {
                Ok(d) => assert!(d <= MAX_DURATION, "{input} gave {d:?}"),
                Err(e) => assert!(
                    value * per > MAX_SECS as f64 * (1.0 - 1e-12),
                    "{input} was refused: {e}"
                ),
            }
        }
    }

    #[test]
    fn check_refuses_what_code_gives_beyond_the_bound() {
        assert_eq!(check(MAX_DURATION), Ok(MAX_DURATION));
        let e = check(Duration::MAX).expect_err("beyond");
        assert!(e.to_string().contains("longer than 8760h"), "{e}");
    }

    #[test]
    fn a_deadline_never_panics() {
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) >= now + MAX_DURATION);
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
