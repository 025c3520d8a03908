//! What can keep the supervisor from doing its job.

use std::{fmt, io};

/// A failure of the supervisor itself (not of the app it runs).
#[derive(Debug)]
pub enum Error {
    /// No command was given after `--`.
    NoCommand,
    /// The configuration cannot work (status 2), said in the user's terms.
    Usage(String),
    /// The command does not exist (exit status 127, as in a shell).
    NotFound {
        /// The command as given.
        program: String,
    },
    /// The command exists but cannot be executed (exit status 126).
    NotExecutable {
        /// The command as given.
        program: String,
        /// What exec said.
        source: io::Error,
    },
    /// The command is a directory (exit status 126, as in a shell).
    IsDirectory {
        /// The command as given.
        program: String,
    },
    /// Setting up signals, the subreaper or the terminal failed (status 1).
    Setup(io::Error),
}

// === impl Error ===

impl Error {
    /// The exit status lameduck ends with: 127 and 126 as a shell does, 2
    /// for usage, 1 for the rest.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NoCommand | Error::Usage(_) => 2,
            Error::NotFound { .. } => 127,
            Error::NotExecutable { .. } | Error::IsDirectory { .. } => 126,
            Error::Setup(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoCommand => f.write_str(
                "no command to run: give it after `--`, e.g. `lameduck run -- myapp --port 8080`",
            ),
            Error::Usage(message) => f.write_str(message),
            Error::NotFound { program } => write!(
                f,
                "{program}: command not found; check the name and that it is in PATH or the image"
            ),
            Error::NotExecutable { program, source } => write!(
                f,
                "{program}: cannot execute: {}; check its permissions (chmod +x) and that it is built for this platform",
                strip_os_code(source)
            ),
            Error::IsDirectory { program } => write!(
                f,
                "{program}: is a directory, not a program; give the program to run after `--`, e.g. `lameduck run -- {}/myapp`",
                program.trim_end_matches('/')
            ),
            Error::Setup(source) => write!(f, "cannot set up the supervisor: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotExecutable { source, .. } | Error::Setup(source) => Some(source),
            _ => None,
        }
    }
}

/// "Permission denied (os error 13)" reads better without the number.
fn strip_os_code(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
