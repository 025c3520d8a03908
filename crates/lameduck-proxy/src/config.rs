//! What the proxy is told to do.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use http::uri::Authority;
use lameduck::http::HttpServer;
use lameduck::Timing;

/// How a listener treats its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 and HTTP/2 (cleartext), with upgrades (WebSocket).
    #[default]
    Http,
    /// Any protocol, as a byte stream.
    Tcp,
}

/// The HTTP the proxy speaks to the upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with a keep-alive pool; carries upgrades.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (h2c), as gRPC servers want.
    Http2,
}

/// The proxy's whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// How the listener treats connections.
    pub mode: Mode,
    /// The app: `host:port`, resolved at each new connection.
    pub upstream: Upstream,
    /// The HTTP spoken to the app.
    pub upstream_protocol: UpstreamProtocol,
    /// Where `/ready`, `/live`, `/metrics` and `POST /drain` are served.
    pub admin: Option<SocketAddr>,
    /// Whether `POST /drain` is allowed from other than loopback.
    pub admin_allow_remote: bool,
    /// The drain's delay, deadline and close grace.
    pub timing: Timing,
    /// Limits and timeouts towards clients.
    pub http: HttpServer,
    /// How long to wait for the upstream to accept a connection, and for
    /// one to come free when all of them are busy (HAProxy's `timeout
    /// queue` defaults to its `timeout connect` the same way).
    pub connect_timeout: Duration,
    /// The most connections open to the upstream at once.
    pub max_upstream_connections: usize,
    /// How long the upstream may take to begin its answer once it has the
    /// whole request; `None` waits as long as the client does.
    pub upstream_timeout: Option<Duration>,
    /// How many threads serve the listener, each with its own runtime.
    pub workers: Workers,
}

/// The app's address, `host:port`: checked once, where it is parsed, and
/// resolved again at each new connection (a name may move).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream(Authority);

// === impl Upstream ===

impl Upstream {
    /// `host:port` as given.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The address as a request's authority, for requests that bring none.
    pub fn authority(&self) -> &Authority {
        &self.0
    }
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("bad upstream {s:?}: give host:port, e.g. 127.0.0.1:8081");
        let authority = Authority::try_from(s).map_err(|_| bad())?;
        let host_ok = !authority.host().is_empty() && !s.contains('@');
        match authority.port_u16() {
            Some(port) if port > 0 && host_ok => Ok(Upstream(authority)),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Mode ===

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http" => Ok(Mode::Http),
            "tcp" => Ok(Mode::Tcp),
            _ => Err(format!("unknown mode {s:?}: use http or tcp")),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
        })
    }
}

// === impl UpstreamProtocol ===

impl FromStr for UpstreamProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "h1" | "http1" => Ok(UpstreamProtocol::Http1),
            "h2" | "http2" | "h2c" => Ok(UpstreamProtocol::Http2),
            _ => Err(format!("unknown upstream protocol {s:?}: use h1 or h2")),
        }
    }
}

impl fmt::Display for UpstreamProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamProtocol::Http1 => "h1",
            UpstreamProtocol::Http2 => "h2",
        })
    }
}

/// How many worker threads serve the listener, and where that number came
/// from: `--workers N`, or `auto` (the container's CPU limit, see
/// [`lameduck_core::cpus`]). Each worker is a single-threaded runtime on its
/// own thread with its own `SO_REUSEPORT` listener and its own idle
/// upstream connections; the drain, the admin port, the metrics and the
/// upstream connection limit are one for all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workers {
    count: usize,
    source: String,
}

// === impl Workers ===

impl Workers {
    /// The most workers taken. Far above the cores any pod is given
    /// (a worker past the cores only takes turns on them), low enough that a
    /// typo such as `--workers 40000` is refused instead of starting forty
    /// thousand threads, runtimes and listeners.
    pub const MAX: usize = 1024;

    /// `count` workers, with where the number came from for the start-up
    /// log line; `None` outside `1..=MAX`.
    pub fn new(count: usize, source: impl Into<String>) -> Option<Self> {
        (1..=Self::MAX).contains(&count).then(|| Workers {
            count,
            source: source.into(),
        })
    }

    /// As many as the container's CPU limit allows (`auto`).
    pub fn auto() -> Self {
        let cpus = lameduck_core::Cpus::detect();
        Workers {
            count: cpus.count.clamp(1, Self::MAX),
            source: format!("auto: {cpus}"),
        }
    }

    /// How many.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where the number came from.
    pub fn source(&self) -> &str {
        &self.source
    }
}

impl Default for Workers {
    /// One worker: the proxy on one thread, as before `--workers`.
    fn default() -> Self {
        Workers {
            count: 1,
            source: "default".into(),
        }
    }
}

impl FromStr for Workers {
    type Err = String;

    /// `auto`, or a whole number from 1 to [`Workers::MAX`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Workers::auto());
        }
        let max = Self::MAX;
        let count = s.parse::<usize>().map_err(|_| {
            format!("bad worker count {s:?}: give a number from 1 to {max}, or auto")
        })?;
        Workers::new(count, "--workers").ok_or_else(|| match count {
            0 => "at least one worker must serve the listener".to_owned(),
            _ => format!("at most {max} workers (each is a thread, a runtime and a listener)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_is_host_and_a_nonzero_port() {
        for good in ["127.0.0.1:8081", "app:80", "[::1]:9000", "localhost:65535"] {
            assert_eq!(
                good.parse::<Upstream>().map(|u| u.to_string()),
                Ok(good.into())
            );
        }
        for bad in [
            "",
            "app",
            "app:",
            ":80",
            "app:0",
            "app:65536",
            "u@app:80",
            "app:80/x",
            "http://app:80",
        ] {
            assert!(bad.parse::<Upstream>().is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn workers_are_a_count_from_one_to_the_cap_or_auto() {
        assert_eq!("2".parse::<Workers>().map(|w| w.count()), Ok(2));
        assert_eq!("1024".parse::<Workers>().map(|w| w.count()), Ok(1024));
        for bad in [
            "0",
            "1025",
            "-1",
            "abc",
            "",
            "2.5",
            " 2",
            "99999999999999999999999",
        ] {
            assert!(bad.parse::<Workers>().is_err(), "{bad:?} was taken");
        }
        let auto = "auto".parse::<Workers>().expect("auto");
        assert!(auto.count() >= 1 && auto.source().starts_with("auto: "));
        assert_eq!(Workers::default().count(), 1);
    }
}
