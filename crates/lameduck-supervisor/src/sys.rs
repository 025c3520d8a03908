//! Thin safe wrappers over the few system calls the supervisor needs.
//!
//! The supervisor is single-threaded and synchronous on purpose: as PID 1 it
//! must stay small, start fast and never depend on a runtime to hear signals.
//! Every `unsafe` block of the crate is in this file.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use lameduck_core::Signal;

/// A process id; process groups are named by their leader's id.
pub type Pid = libc::pid_t;

/// How a reaped process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(Signal),
}

// === impl WaitStatus ===

impl WaitStatus {
    /// The status a shell would report: the code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            WaitStatus::Exited(code) => code,
            WaitStatus::Signaled(signal) => 128 + signal.number(),
        }
    }

    /// Whether it ended with code 0.
    pub fn success(self) -> bool {
        self == WaitStatus::Exited(0)
    }
}

impl std::fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitStatus::Exited(code) => write!(f, "exited with code {code}"),
            WaitStatus::Signaled(signal) => write!(f, "killed by {signal}"),
        }
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Builds the set [`block_signals`] blocks and [`wait_signal`] waits on.
pub fn signal_set(signals: impl IntoIterator<Item = Signal>) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only writes into it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for signal in signals {
            libc::sigaddset(set.as_mut_ptr(), signal.number());
        }
        set.assume_init()
    }
}

/// Blocks `signals` for the calling thread, so they wait to be taken with
/// [`wait_signal`] instead of running a handler.
pub fn block_signals(set: &libc::sigset_t) -> io::Result<()> {
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, set, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

/// A signal taken from the pending set, and who sent it.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// The signal.
    pub signal: Signal,
    /// The sender's pid (0 for the kernel or another PID namespace).
    pub sender: Pid,
    /// Whether a process sent it with kill(2) or sigqueue(3), rather than
    /// the kernel raising it (a child's death, a terminal hang-up).
    pub from_user: bool,
}

/// Waits up to `timeout` (forever if `None`) for one of the blocked
/// `signals`. Returns `None` when the time ran out.
pub fn wait_signal(
    signals: &libc::sigset_t,
    timeout: Option<Duration>,
) -> io::Result<Option<Received>> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    loop {
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: both pointers are valid for the call; a null timeout waits forever.
        let ret = unsafe { libc::sigtimedwait(signals, info.as_mut_ptr(), ts_ptr) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
        // SAFETY: sigtimedwait filled `info` for the signal it returned.
        let info = unsafe { info.assume_init() };
        // SAFETY: si_pid is valid for signals sent by kill and for SIGCHLD,
        // and zero-initialised otherwise.
        let sender = unsafe { info.si_pid() };
        let from_user = matches!(
            info.si_code,
            libc::SI_USER | libc::SI_QUEUE | libc::SI_TKILL
        );
        return Ok(Signal::from_number(ret).map(|signal| Received {
            signal,
            sender,
            from_user,
        }));
    }
}

/// Sends `signal` to one process.
pub fn kill(pid: Pid, signal: Signal) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    check(unsafe { libc::kill(pid, signal.number()) }).map(drop)
}

/// Sends `signal` to every process of the group `pgid`.
pub fn kill_group(pgid: Pid, signal: Signal) -> io::Result<()> {
    kill(-pgid, signal)
}

/// Whether any process (zombies included) is left in the group `pgid`.
pub fn group_alive(pgid: Pid) -> bool {
    // SAFETY: signal 0 checks for existence and permission only.
    let ret = unsafe { libc::kill(-pgid, 0) };
    ret == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Reaps one child that has exited, without blocking. `Ok(None)` when no
/// child has exited yet or there are no children at all.
pub fn reap_one() -> io::Result<Option<(Pid, WaitStatus)>> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid == 0 {
            return Ok(None);
        }
        if pid == -1 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ECHILD) => Ok(None),
                Some(libc::EINTR) => continue,
                _ => Err(err),
            };
        }
        let how = if libc::WIFEXITED(status) {
            WaitStatus::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            match Signal::from_number(libc::WTERMSIG(status)) {
                Some(signal) => WaitStatus::Signaled(signal),
                None => WaitStatus::Exited(128 + libc::WTERMSIG(status)),
            }
        } else {
            // Stopped or continued: waitpid without WUNTRACED does not report these.
            continue;
        };
        return Ok(Some((pid, how)));
    }
}

/// This process's id.
pub fn getpid() -> Pid {
    // SAFETY: no arguments.
    unsafe { libc::getpid() }
}

/// Makes this process adopt the orphans of its descendants, as PID 1 does.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })
        .map(drop)
}

/// Whether stdin is a terminal whose foreground process group is ours, the
/// case in which the app should get the foreground (and Ctrl-C) instead.
pub fn owns_terminal_foreground() -> bool {
    // SAFETY: plain queries on fd 0.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Makes `pgid` the terminal's foreground process group.
///
/// Works from a background process only while SIGTTOU is blocked or ignored,
/// which it is in the supervisor.
pub fn set_terminal_foreground(pgid: Pid) -> io::Result<()> {
    // SAFETY: plain call on fd 0.
    check(unsafe { libc::tcsetpgrp(0, pgid) }).map(drop)
}

/// Our own process group.
pub fn getpgrp() -> Pid {
    // SAFETY: no arguments.
    unsafe { libc::getpgrp() }
}

/// In a freshly forked child, before exec: gives the terminal to the
/// child's own (new) process group, restores every signal disposition to its
/// default and empties the signal mask (the fork inherited the supervisor's,
/// which blocks everything), so the app starts as if from a clean shell.
/// Only async-signal-safe calls.
pub fn prepare_child(take_terminal: bool) -> io::Result<()> {
    // SAFETY: sigaction and tcsetpgrp are async-signal-safe; the sigaction
    // structs are zeroed, which with SIG_DFL/SIG_IGN handlers is valid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        if take_terminal {
            // We are in a background group now: without ignoring SIGTTOU the
            // kernel would stop us instead of letting us take the terminal.
            action.sa_sigaction = libc::SIG_IGN;
            libc::sigaction(libc::SIGTTOU, &action, std::ptr::null_mut());
            check(libc::tcsetpgrp(0, libc::getpid()))?;
        }
        // The raw system call, because the C library refuses to touch the
        // two signals it keeps for itself, which a parent may still have
        // left ignored. All zeroes is SIG_DFL with no flags and no mask.
        let default_action = [0u64; 4];
        for number in 1..=libc::SIGRTMAX() {
            // Fails harmlessly for SIGKILL and SIGSTOP.
            libc::syscall(
                libc::SYS_rt_sigaction,
                number,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(empty.as_mut_ptr());
        let ret = libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut());
        if ret != 0 {
            return Err(io::Error::from_raw_os_error(ret));
        }
    }
    Ok(())
}

/// Starts `args[0]` (looked up in `PATH`) with `args` and `env` in a new
/// process group, an empty signal mask and every signal at its default
/// disposition; with `stdout_to_stderr`, its stdout is our stderr.
pub fn posix_spawnp(
    args: &[std::ffi::CString],
    env: &[std::ffi::CString],
    stdout_to_stderr: bool,
) -> io::Result<Pid> {
    let program = args.first().ok_or(io::ErrorKind::InvalidInput)?;
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> = env.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp.push(std::ptr::null_mut());

    // SAFETY: the attribute and file-action objects are initialised before
    // use and destroyed after; the argument and environment arrays are
    // null-terminated and outlive the call.
    unsafe {
        let mut attr = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        nonzero(libc::posix_spawnattr_init(attr.as_mut_ptr()))?;
        let mut attr = attr.assume_init();
        let mut actions = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        nonzero(libc::posix_spawn_file_actions_init(actions.as_mut_ptr()))?;
        let mut actions = actions.assume_init();

        // Every bit set, the C library's two own signals included: sigfillset
        // would leave those out, and a parent may have left them ignored.
        let mut every: libc::sigset_t = std::mem::zeroed();
        std::ptr::write_bytes(
            &mut every as *mut libc::sigset_t as *mut u8,
            0xff,
            std::mem::size_of::<libc::sigset_t>(),
        );
        let mut none = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(none.as_mut_ptr());
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        let mut result = nonzero(libc::posix_spawnattr_setflags(
            &mut attr,
            flags as libc::c_short,
        ))
        .and_then(|_| nonzero(libc::posix_spawnattr_setpgroup(&mut attr, 0)))
        .and_then(|_| nonzero(libc::posix_spawnattr_setsigmask(&mut attr, none.as_ptr())))
        .and_then(|_| nonzero(libc::posix_spawnattr_setsigdefault(&mut attr, &every)));
        if stdout_to_stderr {
            result = result
                .and_then(|_| nonzero(libc::posix_spawn_file_actions_adddup2(&mut actions, 2, 1)));
        }
        let mut pid: Pid = 0;
        let result = result.and_then(|_| {
            nonzero(libc::posix_spawnp(
                &mut pid,
                program.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr(),
                envp.as_ptr(),
            ))
        });
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attr);
        result.map(|_| pid)
    }
}

/// posix_spawn's functions return the error number instead of setting errno.
fn nonzero(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// The live (not yet exited) children of `parent`, read from `/proc`: with a
/// subreaper, these include every orphan re-parented to it.
pub fn live_children(parent: Pid) -> Vec<Pid> {
    // No child at all, live or not yet reaped: nothing to look for. This is
    // how most runs end, and reading every process's stat (hundreds on a
    // host) would be most of the time `lameduck run` takes to exit.
    if !has_children() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<Pid>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses,
        // so the fields are read after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<Pid>().ok());
        if ppid == Some(parent) && state != Some("Z") && state != Some("X") {
            found.push(pid);
        }
    }
    found
}

/// Whether this process has any child, running or exited and not yet
/// reaped (`waitid` with `WNOWAIT` reaps nothing; it fails with `ECHILD`
/// only when there is none).
fn has_children() -> bool {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    loop {
        // SAFETY: `info` is a valid out-pointer for a siginfo_t.
        let ret = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                info.as_mut_ptr(),
                libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if ret == 0 {
            return true;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ECHILD) => return false,
            // Unsure: look in /proc as before.
            _ => return true,
        }
    }
}
