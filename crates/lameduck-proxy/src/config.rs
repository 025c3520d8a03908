//! What the proxy is told to do.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

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
    pub upstream: String,
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
    /// How long to wait for the upstream to accept a connection.
    pub connect_timeout: Duration,
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
