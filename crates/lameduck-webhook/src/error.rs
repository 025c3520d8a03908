//! What can stop the webhook from starting or keep running.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A failure of `lameduck webhook`: each says what went wrong and what to do.
#[derive(Debug)]
pub enum Error {
    /// An address could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The certificate or key could not be used.
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing or reading a file failed.
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A name or a number given cannot be used.
    Usage(String),
    /// The runtime or the signal handlers could not be set up.
    Runtime(io::Error),
    /// Certificates could not be made.
    Certs(String),
}

impl Error {
    /// The exit status: 2 for what the user gave, 1 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Bind { addr, source } => write!(
                f,
                "cannot listen on {addr}: {source} (is another process on that port?)"
            ),
            Error::Tls { cert, key, reason } => write!(
                f,
                "cannot use the certificate {} with the key {}: {reason}",
                cert.display(),
                key.display()
            ),
            Error::File { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Usage(message) => f.write_str(message),
            Error::Runtime(e) => write!(f, "cannot start: {e}"),
            Error::Certs(reason) => write!(f, "cannot make the certificates: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
