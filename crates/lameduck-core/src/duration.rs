//! Durations as users write them in flags and environment variables.

use std::fmt;
use std::time::Duration;

/// Why a duration could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {}; write it as a number with a unit, like 500ms, 5s, 2m or 1m30s",
            self.input, self.reason
        )
    }
}

impl std::error::Error for DurationError {}

/// Reads a duration written as one or more `<number><unit>` parts.
///
/// Units are `h`, `m`, `s`, `ms` and `us`; numbers may have a fraction
/// (`1.5s`). A lone `0` needs no unit. This is the notation of Go's
/// `time.ParseDuration`, which Kubernetes users already know.
///
/// ```
/// use std::time::Duration;
/// use lameduck_core::parse_duration;
///
/// assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
/// assert!(parse_duration("30").is_err()); // seconds? minutes? say which.
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
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
        let part = Duration::try_from_secs_f64(value * seconds_per_unit)
            .map_err(|_| err("it is too large"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| err("it is too large"))?;
        rest = after;
    }
    Ok(total)
}

/// Writes a duration the way [`parse_duration`] reads it: `0s`, `250ms`,
/// `5s`, `1.5s`, `2m`, `1m30s`.
pub fn format_duration(d: Duration) -> String {
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
            ("99999999999999999999h", "too large"),
        ] {
            let message = match parse_duration(input) {
                Ok(d) => panic!("{input:?} was read as {d:?}"),
                Err(e) => e.to_string(),
            };
            assert!(message.contains(reason), "{input:?}: {message}");
            assert!(message.contains("like 500ms"), "{message}");
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
