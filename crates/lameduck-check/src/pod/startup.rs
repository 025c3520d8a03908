//! What a `lameduck run` inside a pod decided, read from its start-up log
//! line (`app started … drain_delay=5s (…) grace_period=30s`), in JSON when
//! the pod's environment asks for it (`LAMEDUCK_LOG_FORMAT=json`) and in the
//! human format otherwise. The diagnosis then names lameduck's own setting
//! that fell short instead of advising what is already there.

use std::time::Duration;

use lameduck_core::parse_duration;

/// The timing a `lameduck run` inside a pod started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LameduckRunTiming {
    /// How long it holds the stop back (`--drain-delay`).
    pub drain_delay: Duration,
    /// Why that long: `configured`, `default inside Kubernetes, …`.
    pub drain_delay_source: String,
    /// The grace period it plans for (`--grace-period`).
    pub grace_period: Duration,
}

/// The message of the start-up line.
const STARTED: &str = "app started";

/// Reads a start-up line of `lameduck run`, JSON or human; `None` for any
/// other line.
pub fn parse(line: &str) -> Option<LameduckRunTiming> {
    if !line.contains(STARTED) || !line.contains("drain_delay") {
        return None;
    }
    let (delay, grace) = if line.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v["message"].as_str() != Some(STARTED) {
            return None;
        }
        (
            v["drain_delay"].as_str()?.to_string(),
            v["grace_period"].as_str()?.to_string(),
        )
    } else {
        // `drain_delay=5s (default inside Kubernetes, …) grace_period=30s`:
        // the delay's reason has spaces, so it runs up to the next field.
        let after = line.split_once(" drain_delay=")?.1;
        let (delay, rest) = after.split_once(" grace_period=")?;
        let grace = rest.split_whitespace().next()?;
        (delay.to_string(), grace.to_string())
    };
    let (amount, source) = match delay.split_once(' ') {
        Some((amount, why)) => (
            amount,
            why.trim_start_matches('(')
                .trim_end_matches(')')
                .to_string(),
        ),
        None => (delay.as_str(), String::new()),
    };
    Some(LameduckRunTiming {
        drain_delay: parse_duration(amount).ok()?,
        drain_delay_source: source,
        grace_period: parse_duration(&grace).ok()?,
    })
}

/// The noise util-linux's `unshare` writes when the pod's PID 1 it waits
/// for is killed, which says nothing about the app.
pub fn is_unshare_noise(line: &str) -> bool {
    line.starts_with("unshare: sigprocmask unblock failed")
        || line.starts_with("unshare: failed to execute")
            && line.contains("Interrupted system call")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_start_up_line_gives_the_delay_its_reason_and_the_grace_period() {
        let line = r#"{"timestamp":"2026-12-01T12:00:00.000Z","level":"INFO","message":"app started","pid":7,"command":"[\"python3\"]","drain_delay":"5s (default inside Kubernetes, KUBERNETES_SERVICE_HOST is set)","grace_period":"30s","signal_target":"group","pid1":true}"#;
        let t = parse(line).expect("a start-up line");
        assert_eq!(t.drain_delay, Duration::from_secs(5));
        assert_eq!(
            t.drain_delay_source,
            "default inside Kubernetes, KUBERNETES_SERVICE_HOST is set"
        );
        assert_eq!(t.grace_period, Duration::from_secs(30));
    }

    #[test]
    fn the_human_start_up_line_reads_the_same() {
        let line = "2026-12-01T12:00:00.000Z  INFO lameduck: app started pid=7 command=[\"python3\", \"-m\"] drain_delay=500ms (configured) grace_period=10s signal_target=group pid1=true";
        let t = parse(line).expect("a start-up line");
        assert_eq!(t.drain_delay, Duration::from_millis(500));
        assert_eq!(t.drain_delay_source, "configured");
        assert_eq!(t.grace_period, Duration::from_secs(10));
        assert_eq!(parse("app started, but not lameduck's line"), None);
        assert_eq!(
            parse(r#"{"message":"stop requested","drain_delay":"1s"}"#),
            None
        );
    }
}
