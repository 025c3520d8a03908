//! Starting the app and the hooks, each in a process group of its own.

use std::ffi::OsString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::error::Error;
use crate::sys::{self, Pid};

/// How to start a process.
#[derive(Debug, Default)]
pub struct SpawnOptions {
    /// Give it the terminal's foreground (the app, when lameduck had it).
    pub foreground: bool,
    /// Send its standard output to lameduck's standard error (hooks: their
    /// output is part of lameduck's log, never of the app's output).
    pub stdout_to_stderr: bool,
    /// Variables added to the inherited environment.
    pub env: Vec<(&'static str, String)>,
}

/// Starts `argv` as is (no shell added) in a new process group led by the
/// new process, with lameduck's stdio, environment and working directory, an
/// empty signal mask and default signal dispositions. Returns its pid, which
/// is also its process group id.
///
/// Every descriptor lameduck opens itself is close-on-exec, so only those
/// lameduck was given reach the app.
pub fn spawn(argv: &[OsString], options: SpawnOptions) -> Result<Pid, Error> {
    let (program, args) = argv.split_first().ok_or(Error::NoCommand)?;
    let mut command = Command::new(program);
    command.args(args).process_group(0);
    command.envs(options.env.iter().map(|(k, v)| (k, v)));
    if options.stdout_to_stderr {
        let stderr = io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(Error::Setup)?;
        command.stdout(Stdio::from(stderr));
    }
    let foreground = options.foreground;
    // SAFETY: the closure only makes async-signal-safe calls (sigaction, tcsetpgrp).
    unsafe {
        command.pre_exec(move || sys::prepare_child(foreground));
    }
    let child = command.spawn().map_err(|source| {
        let program = program.to_string_lossy().into_owned();
        match source.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { program },
            _ => Error::NotExecutable { program, source },
        }
    })?;
    // We reap with waitpid(-1) ourselves; the std handle is not needed.
    Ok(child.id() as Pid)
}
