//! Where the endpoints come from: `file:PATH` (EndpointSlices as
//! Kubernetes prints them) or `kubernetes:NAMESPACE/SERVICE[:PORT]` (a
//! watch on the Service's EndpointSlices).

use std::path::PathBuf;

pub mod file;
pub mod kubernetes;
pub mod slice;

/// `--endpoints`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// EndpointSlice objects in a YAML or JSON file, reloaded on change and
    /// on SIGHUP.
    File(PathBuf),
    /// The EndpointSlices of a Service, watched through the API server.
    Kubernetes {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        service: String,
        /// The port, when given after the name.
        port: Option<PortSelector>,
    },
}

/// Which of an EndpointSlice's ports to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSelector {
    /// The port of this name (the Service port's name), looked up in each
    /// slice: pods of one Service may listen on different numbers.
    Name(String),
    /// This port number on every endpoint.
    Number(u16),
}

impl std::str::FromStr for PortSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty port: give a port name or number".into());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<u16>() {
                Ok(p) if p > 0 => Ok(PortSelector::Number(p)),
                _ => Err(format!("port {s} is out of range: 1 to 65535")),
            };
        }
        // An IANA_SVC_NAME, as Service port names are.
        let ok = s.len() <= 15
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(PortSelector::Name(s.to_owned()))
        } else {
            Err(format!(
                "bad port {s:?}: give a number or a port name (lowercase letters, digits and '-', at most 15)"
            ))
        }
    }
}

impl std::fmt::Display for PortSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortSelector::Name(n) => f.write_str(n),
            PortSelector::Number(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err("file: needs a path, e.g. file:/etc/lameduck/endpoints.yaml".into());
            }
            return Ok(SourceSpec::File(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("kubernetes:") {
            let usage = "give kubernetes:NAMESPACE/SERVICE or kubernetes:NAMESPACE/SERVICE:PORT";
            let (namespace, service) = rest
                .split_once('/')
                .ok_or_else(|| format!("bad source {s:?}: {usage}"))?;
            let (service, port) = match service.split_once(':') {
                Some((svc, port)) => (svc, Some(port.parse::<PortSelector>()?)),
                None => (service, None),
            };
            for (what, name) in [("namespace", namespace), ("service", service)] {
                if !is_dns_label(name) {
                    return Err(format!(
                        "bad {what} {name:?} in {s:?}: a DNS label (lowercase letters, digits and '-', at most 63); {usage}"
                    ));
                }
            }
            return Ok(SourceSpec::Kubernetes {
                namespace: namespace.to_owned(),
                service: service.to_owned(),
                port,
            });
        }
        Err(format!(
            "unknown endpoints source {s:?}: use file:PATH or kubernetes:NAMESPACE/SERVICE[:PORT]"
        ))
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::File(p) => write!(f, "file:{}", p.display()),
            SourceSpec::Kubernetes {
                namespace,
                service,
                port: Some(port),
            } => write!(f, "kubernetes:{namespace}/{service}:{port}"),
            SourceSpec::Kubernetes {
                namespace, service, ..
            } => write!(f, "kubernetes:{namespace}/{service}"),
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_bad_ones_say_what_to_give() {
        assert_eq!(
            "file:/tmp/e.yaml".parse::<SourceSpec>(),
            Ok(SourceSpec::File("/tmp/e.yaml".into()))
        );
        assert_eq!(
            "kubernetes:shop/web:http".parse::<SourceSpec>(),
            Ok(SourceSpec::Kubernetes {
                namespace: "shop".into(),
                service: "web".into(),
                port: Some(PortSelector::Name("http".into())),
            })
        );
        assert_eq!(
            "kubernetes:shop/web"
                .parse::<SourceSpec>()
                .map(|s| s.to_string()),
            Ok("kubernetes:shop/web".into())
        );
        for bad in [
            "",
            "web",
            "kubernetes:web",
            "kubernetes:Shop/web",
            "kubernetes:a/b:0",
            "file:",
        ] {
            let err = bad.parse::<SourceSpec>().expect_err(bad);
            assert!(!err.is_empty());
        }
        assert_eq!("8080".parse(), Ok(PortSelector::Number(8080)));
        assert!("99999".parse::<PortSelector>().is_err());
        assert!("HTTP".parse::<PortSelector>().is_err());
    }
}
