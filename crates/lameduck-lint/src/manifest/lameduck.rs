//! A container that runs lameduck, read as lameduck reads itself: which
//! subcommand, and its timing settings from a flag or, as clap does for
//! lameduck, from the flag's `LAMEDUCK_*` twin in the container's `env`
//! (the flag wins).

use crate::yaml::Node;
use lameduck_core::timing::env;

/// The subcommands that hold their own stop back: readiness fails at
/// SIGTERM and they keep accepting for `--drain-delay` (5s in Kubernetes)
/// before they stop, so a preStop sleep is not needed in front of them.
const HOLDING: &[&str] = &["run", "proxy", "balance"];

/// The lameduck a container runs, when it runs one that holds its stop.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lameduck<'a> {
    /// `run`, `proxy` or `balance`.
    pub subcommand: &'a str,
    container: &'a Node,
}

impl<'a> Lameduck<'a> {
    /// The lameduck of `container`, whose `command` then `args` are `argv`:
    /// `lameduck SUBCOMMAND` by any path; or, with no `command`, `args`
    /// starting with the subcommand in lameduck's own image, whose
    /// ENTRYPOINT is `lameduck` (see the repository's Dockerfile).
    pub fn of(container: &'a Node, argv: &[&'a str]) -> Option<Self> {
        let image = container.get("image").and_then(Node::as_str);
        let subcommand = if container.get("command").is_some() {
            match argv {
                [program, sub, ..] if program.rsplit('/').next() == Some("lameduck") => *sub,
                _ => return None,
            }
        } else if image.is_some_and(is_lameduck_image) {
            *argv.first()?
        } else {
            return None;
        };
        HOLDING.contains(&subcommand).then_some(Lameduck {
            subcommand,
            container,
        })
    }

    /// `--drain-delay` in seconds, else `LAMEDUCK_DRAIN_DELAY`; `None`
    /// when neither is given or the value is `auto`.
    pub fn drain_delay(&self, argv: &[&str]) -> Option<f64> {
        self.setting(argv, "--drain-delay", env::DRAIN_DELAY)
            .and_then(|(seconds, _)| seconds)
    }

    /// `--grace-period` in seconds, else `LAMEDUCK_GRACE_PERIOD`, with how
    /// it was written (`lameduck run --grace-period 40s`,
    /// `LAMEDUCK_GRACE_PERIOD=60s in env of lameduck run`).
    pub fn grace_period(&self, argv: &[&str]) -> Option<(f64, String)> {
        let (seconds, written) = self.setting(argv, "--grace-period", env::GRACE_PERIOD)?;
        Some((seconds?, written))
    }

    /// The flag's value, else its env twin's, each read as seconds, with
    /// how it was written.
    fn setting(&self, argv: &[&str], flag: &str, variable: &str) -> Option<(Option<f64>, String)> {
        let sub = self.subcommand;
        match lameduck_core::grace::run_flag(argv, flag) {
            Some(value) => Some((
                super::pod::parse_seconds(value),
                format!("lameduck {sub} {flag} {value}"),
            )),
            None => env_value(self.container, variable).map(|value| {
                (
                    super::pod::parse_seconds(value),
                    format!("{variable}={value} in env of lameduck {sub}"),
                )
            }),
        }
    }
}

/// `ghcr.io/lameduck-dev/lameduck:TAG`, `lameduck@sha256:…`: the image's
/// repository name is `lameduck`.
fn is_lameduck_image(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split(':').next() == Some("lameduck")
}

/// A variable's `value` in the container's `env`; the last entry of a name
/// wins, as the kubelet takes it.
fn env_value<'a>(container: &'a Node, name: &str) -> Option<&'a str> {
    container
        .get("env")?
        .items()
        .iter()
        .rev()
        .find(|e| e.get("name").and_then(Node::as_str) == Some(name))?
        .get("value")
        .and_then(Node::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_name_is_its_last_path_segment_without_tag_or_digest() {
        assert!(is_lameduck_image("ghcr.io/lameduck-dev/lameduck:0.1.0"));
        assert!(is_lameduck_image("localhost:5000/lameduck@sha256:00"));
        assert!(is_lameduck_image("lameduck"));
        assert!(!is_lameduck_image("lameduck/web:1"));
        assert!(!is_lameduck_image("registry.example.com/lameduck-app:1"));
    }
}
