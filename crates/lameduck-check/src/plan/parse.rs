//! The rehearsal's values as users write them on the command line (and in
//! `LAMEDUCK_CHECK_*`): each type reads itself with [`FromStr`], so the
//! binary only hands strings over and every message is written here once.

use std::fmt;
use std::str::FromStr;

use super::{BalancerMode, Probe, Scenario, SessionKind};

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rolling" => Ok(Scenario::Rolling),
            "delete" => Ok(Scenario::Delete),
            _ => Err(format!("`{s}`: the scenario is `rolling` or `delete`")),
        }
    }
}

impl FromStr for BalancerMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kube-proxy" => Ok(BalancerMode::KubeProxy),
            "reset" => Ok(BalancerMode::Reset),
            "graceful" => Ok(BalancerMode::Graceful),
            "lameduck" => Ok(BalancerMode::Lameduck),
            _ => Err(format!(
                "`{s}`: the balancer is `kube-proxy`, `reset`, `graceful` or `lameduck`"
            )),
        }
    }
}

/// `--network`: where pods live, `auto` deciding by whether this process is
/// root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkChoice {
    /// A network namespace per pod when root, else loopback.
    Auto,
    /// A network namespace and address per pod (root).
    Namespace,
    /// One port per pod on loopback.
    Loopback,
}

impl FromStr for NetworkChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(NetworkChoice::Auto),
            "namespace" => Ok(NetworkChoice::Namespace),
            "loopback" => Ok(NetworkChoice::Loopback),
            _ => Err(format!(
                "`{s}`: the network is `auto`, `namespace` or `loopback`"
            )),
        }
    }
}

impl FromStr for Probe {
    type Err = String;
    /// `tcp`, `tcp:PORT`, `http:/PATH`, `http:PORT/PATH` or `exec:COMMAND`
    /// (run with `sh -c` inside the pod).
    fn from_str(text: &str) -> Result<Self, String> {
        let expected =
            "expected `tcp`, `tcp:PORT`, `http:/PATH`, `http:PORT/PATH` or `exec:COMMAND`";
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("`{text}`: `{p}` is not a port"))
        };
        if text == "tcp" {
            return Ok(Probe::Tcp { port: None });
        }
        if let Some(p) = text.strip_prefix("tcp:") {
            return Ok(Probe::Tcp {
                port: Some(port(p)?),
            });
        }
        if let Some(command) = text.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err(format!("`{text}`: the command is empty"));
            }
            return Ok(Probe::Exec {
                command: vec!["sh".into(), "-c".into(), command.into()],
            });
        }
        let rest = text
            .strip_prefix("http:")
            .ok_or_else(|| format!("`{text}`: {expected}"))?;
        let slash = rest
            .find('/')
            .ok_or_else(|| format!("`{text}`: the HTTP path must start with `/`"))?;
        let p = match &rest[..slash] {
            "" => None,
            p => Some(port(p)?),
        };
        Ok(Probe::Http {
            port: p,
            path: rest[slash..].to_string(),
        })
    }
}

impl FromStr for SessionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "websocket" | "ws" => Ok(SessionKind::Websocket),
            "tcp" => Ok(SessionKind::Tcp),
            other => Err(format!("`{other}`: sessions are `websocket` or `tcp`")),
        }
    }
}

/// `--long KIND:N`: N long-lived sessions of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    /// WebSocket or TCP.
    pub kind: SessionKind,
    /// How many are kept open at once.
    pub count: usize,
}

impl FromStr for SessionSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, n) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: expected `websocket:N` or `tcp:N`"))?;
        let count = n
            .parse()
            .map_err(|_| format!("`{n}` is not a number of sessions"))?;
        Ok(SessionSpec {
            kind: kind.parse()?,
            count,
        })
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp { port: None } => f.write_str("tcp"),
            Probe::Tcp { port: Some(p) } => write!(f, "tcp:{p}"),
            Probe::Http { port: None, path } => write!(f, "http:{path}"),
            Probe::Http {
                port: Some(p),
                path,
            } => write!(f, "http:{p}{path}"),
            Probe::Exec { command } => write!(f, "exec:{}", command.join(" ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_read_as_written_and_print_back() {
        for text in ["tcp", "tcp:81", "http:/ready", "http:9901/ready"] {
            let probe: Probe = text.parse().expect(text);
            assert_eq!(probe.to_string(), text);
        }
        assert!("http:99999/x".parse::<Probe>().is_err());
        assert!("http:ready".parse::<Probe>().is_err());
        assert!("udp".parse::<Probe>().is_err());
        assert!("exec: ".parse::<Probe>().is_err());
    }

    #[test]
    fn sessions_and_enums_name_what_is_accepted() {
        let s: SessionSpec = "ws:3".parse().expect("ws");
        assert_eq!((s.kind, s.count), (SessionKind::Websocket, 3));
        let e = "carrier-pigeon:3".parse::<SessionSpec>().expect_err("no");
        assert!(e.contains("`websocket` or `tcp`"), "{e}");
        assert!("blue-green".parse::<Scenario>().is_err());
        assert_eq!(
            "kube-proxy".parse::<BalancerMode>(),
            Ok(BalancerMode::KubeProxy)
        );
    }
}
