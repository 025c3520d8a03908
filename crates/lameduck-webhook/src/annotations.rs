//! The annotations a pod asks for injection with, and what they mean.

use std::collections::BTreeMap;
use std::time::Duration;

use lameduck_core::{format_duration, parse_duration};

/// `"true"` opts a pod in, `"false"` opts it out of a namespace-wide
/// injection.
pub const INJECT: &str = "lameduck.io/inject";
/// Comma-separated names of containers to wrap even though they declare no
/// `ports`.
pub const CONTAINERS: &str = "lameduck.io/containers";
/// How long the stop is held back while endpoints are removed (default 5s).
pub const DRAIN_DELAY: &str = "lameduck.io/drain-delay";
/// `LISTEN=APP`: the drain proxy takes port LISTEN and forwards to the app,
/// moved to port APP.
pub const PROXY: &str = "lameduck.io/proxy";
/// Set by the webhook on the pods it changed; a pod that has it is left
/// alone, so injection happens once.
pub const STATUS: &str = "lameduck.io/status";
/// Set by the webhook when it had something to say about a pod it changed:
/// the same lines as the review's warnings, which the user never sees for
/// pods a controller creates.
pub const WARNINGS: &str = "lameduck.io/warnings";

/// The drain delay when the pod names none: the `sleep 5` of the usual
/// preStop hook, and `lameduck run`'s own default inside Kubernetes.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::from_secs(5);
/// The longest drain delay taken: endpoint removal takes seconds, and a
/// longer hold is almost surely a typo (`5m` for `5s`).
pub const MAX_DRAIN_DELAY: Duration = Duration::from_secs(300);

/// Which pods a webhook path injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only pods annotated `lameduck.io/inject: "true"` (`POST /mutate`).
    PodOptIn,
    /// Every pod of a namespace labelled `lameduck.io/inject=true`, unless
    /// the pod says `"false"` (`POST /mutate-namespace`).
    Namespace,
}

/// The drain proxy's ports, from `lameduck.io/proxy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyPorts {
    /// The port clients (the Service) connect to: the proxy's.
    pub listen: u16,
    /// The port the app was moved to, on 127.0.0.1.
    pub app: u16,
}

/// What a pod asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Containers named in `lameduck.io/containers`.
    pub containers: Vec<String>,
    /// The drain delay.
    pub drain_delay: Duration,
    /// The drain proxy, when asked for.
    pub proxy: Option<ProxyPorts>,
}

/// Whether to inject a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Inject it with these options.
    Inject(Options),
    /// Leave it alone: it did not ask, or asked not to be, or is injected
    /// already.
    Skip(&'static str),
    /// Leave it alone and say why: an annotation could not be understood.
    NotUnderstood(String),
}

/// Decides from a pod's annotations, for the webhook path of `scope`.
pub fn decide(annotations: Option<&BTreeMap<String, String>>, scope: Scope) -> Decision {
    let empty = BTreeMap::new();
    let annotations = annotations.unwrap_or(&empty);
    if annotations.contains_key(STATUS) {
        return Decision::Skip("injected already");
    }
    match (annotations.get(INJECT).map(String::as_str), scope) {
        (Some("true"), _) | (None, Scope::Namespace) => {}
        (Some("false"), _) => return Decision::Skip("opted out"),
        (None, Scope::PodOptIn) => return Decision::Skip("not opted in"),
        (Some(other), _) => {
            return Decision::NotUnderstood(format!(
                "{INJECT}: {other:?} is neither \"true\" nor \"false\": pod left unchanged"
            ))
        }
    }
    match options(annotations) {
        Ok(options) => Decision::Inject(options),
        Err(reason) => Decision::NotUnderstood(format!("{reason}: pod left unchanged")),
    }
}

/// Reads the options; an error names the annotation and what is wrong.
fn options(annotations: &BTreeMap<String, String>) -> Result<Options, String> {
    let containers = annotations
        .get(CONTAINERS)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let drain_delay = match annotations.get(DRAIN_DELAY) {
        None => DEFAULT_DRAIN_DELAY,
        Some(value) => {
            let delay = parse_duration(value.trim())
                .map_err(|e| format!("{DRAIN_DELAY}: {value:?}: {e}"))?;
            if delay > MAX_DRAIN_DELAY {
                return Err(format!(
                    "{DRAIN_DELAY}: {value:?} is longer than {}",
                    format_duration(MAX_DRAIN_DELAY)
                ));
            }
            delay
        }
    };
    let proxy = annotations
        .get(PROXY)
        .map(|value| proxy_ports(value).map_err(|e| format!("{PROXY}: {value:?}: {e}")))
        .transpose()?;
    Ok(Options {
        containers,
        drain_delay,
        proxy,
    })
}

/// `8080=8081`: the proxy's port, then the app's.
fn proxy_ports(value: &str) -> Result<ProxyPorts, String> {
    let (listen, app) = value
        .split_once('=')
        .ok_or("write LISTEN=APP, e.g. 8080=8081")?;
    let port = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{s:?} is not a port (1-65535)"))
    };
    let ports = ProxyPorts {
        listen: port(listen)?,
        app: port(app)?,
    };
    if ports.listen == ports.app {
        return Err("the app must move to another port than the proxy's".into());
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn opting_in_and_out() {
        let yes = map(&[(INJECT, "true")]);
        let no = map(&[(INJECT, "false")]);
        assert!(matches!(
            decide(Some(&yes), Scope::PodOptIn),
            Decision::Inject(_)
        ));
        assert_eq!(
            decide(None, Scope::PodOptIn),
            Decision::Skip("not opted in")
        );
        assert!(matches!(
            decide(None, Scope::Namespace),
            Decision::Inject(_)
        ));
        assert_eq!(
            decide(Some(&no), Scope::Namespace),
            Decision::Skip("opted out")
        );
        let done = map(&[(INJECT, "true"), (STATUS, "injected")]);
        assert_eq!(
            decide(Some(&done), Scope::PodOptIn),
            Decision::Skip("injected already")
        );
    }

    #[test]
    fn options_are_read() {
        let a = map(&[
            (INJECT, "true"),
            (CONTAINERS, "worker, ,queue"),
            (DRAIN_DELAY, "10s"),
            (PROXY, "8080=8081"),
        ]);
        let Decision::Inject(options) = decide(Some(&a), Scope::PodOptIn) else {
            panic!("not injected")
        };
        assert_eq!(options.containers, ["worker", "queue"]);
        assert_eq!(options.drain_delay, Duration::from_secs(10));
        assert_eq!(
            options.proxy,
            Some(ProxyPorts {
                listen: 8080,
                app: 8081
            })
        );
    }

    #[test]
    fn bad_values_leave_the_pod_alone_with_a_reason() {
        for (key, value, says) in [
            (INJECT, "yes", "neither"),
            (DRAIN_DELAY, "soon", DRAIN_DELAY),
            (DRAIN_DELAY, "5m1s", "longer than"),
            (PROXY, "8080", "LISTEN=APP"),
            (PROXY, "8080=8080", "another port"),
            (PROXY, "8080=70000", "not a port"),
            (PROXY, "0=1", "not a port"),
        ] {
            let mut a = map(&[(INJECT, "true")]);
            a.insert(key.to_owned(), value.to_owned());
            match decide(Some(&a), Scope::PodOptIn) {
                Decision::NotUnderstood(why) => assert!(why.contains(says), "{why}"),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }
}
