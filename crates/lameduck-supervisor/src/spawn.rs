//! Starting the app and the hooks, each in a process group of its own.
//!
//! The common case goes through `posix_spawnp`, which glibc implements with
//! `clone(CLONE_VFORK)`: no copy of the supervisor's address space, no
//! copy-on-write faults afterwards, the signal mask and dispositions reset by
//! the C library between clone and exec. Only when the app must also take
//! the terminal's foreground (which needs `tcsetpgrp` in the child) do we
//! fork through std's `Command` with a `pre_exec` step.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

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
    let (program, _) = argv.split_first().ok_or(Error::NoCommand)?;
    let exec_error = |source: io::Error| {
        let program = program.to_string_lossy().into_owned();
        match source.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { program },
            // exec says EACCES for a directory, as for a file without +x:
            // tell the two apart, as a shell does.
            Some(libc::EACCES) if is_directory(&program) => Error::IsDirectory { program },
            _ => Error::NotExecutable { program, source },
        }
    };
    if options.foreground {
        spawn_forked(argv, &options).map_err(exec_error)
    } else {
        spawn_posix(argv, &options).map_err(exec_error)
    }
}

/// Whether `program`, a path (with a `/`) as exec would take it, is a
/// directory. A bare name is looked up in `PATH`, where a directory is not
/// what anyone meant.
fn is_directory(program: &str) -> bool {
    program.contains('/') && std::path::Path::new(program).is_dir()
}

fn spawn_forked(argv: &[OsString], options: &SpawnOptions) -> io::Result<Pid> {
    let (program, args) = argv.split_first().ok_or(io::ErrorKind::InvalidInput)?;
    let mut command = Command::new(program);
    command.args(args).process_group(0);
    command.envs(options.env.iter().map(|(k, v)| (k, v)));
    if options.stdout_to_stderr {
        let stderr = io::stderr().as_fd().try_clone_to_owned()?;
        command.stdout(std::process::Stdio::from(stderr));
    }
    let foreground = options.foreground;
    // SAFETY: the closure only makes async-signal-safe calls (sigaction, tcsetpgrp).
    unsafe {
        command.pre_exec(move || sys::prepare_child(foreground));
    }
    // We reap with waitpid(-1) ourselves; the std handle is not needed.
    Ok(command.spawn()?.id() as Pid)
}

fn spawn_posix(argv: &[OsString], options: &SpawnOptions) -> io::Result<Pid> {
    let args = argv
        .iter()
        .map(|a| c_string(a.as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if options.env.iter().any(|(k, _)| OsStr::new(k) == key) {
            continue;
        }
        env.push(c_string(
            &[key.as_bytes(), b"=", value.as_bytes()].concat(),
        )?);
    }
    for (key, value) in &options.env {
        env.push(c_string(format!("{key}={value}").as_bytes())?);
    }
    sys::posix_spawnp(&args, &env, options.stdout_to_stderr)
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "an argument or variable holds a NUL byte",
        )
    })
}
