//! What the end-to-end tests of `lameduck` share: starting the real binary
//! (also as PID 1 of a new PID namespace), reading its log lines as they
//! come, sending it signals, and waiting on events with a bound, never on
//! sleeps.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub mod net;

/// How long any single expected event may take before the test fails.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// The binary under test.
pub fn lameduck_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lameduck")
}

/// The test app that records signals (see `apps/sigapp.py`).
pub fn sigapp() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/sigapp.py")
}

/// The real Python interpreter (not a pyenv shim, which would add a shell).
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is needed by the tests");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
}

/// A temporary directory for markers and logs.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Polls `condition` until it holds; fails the test after [`EVENT_TIMEOUT`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < EVENT_TIMEOUT,
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `path` exists and returns its contents.
pub fn wait_file(path: &Path) -> String {
    wait_until(&format!("{}", path.display()), || path.exists());
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The lines of a file, or none if it does not exist yet.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A running `lameduck` whose stderr is collected line by line.
pub struct Lameduck {
    /// The pid of `lameduck` itself (inside a namespace, its pid as seen here).
    pub pid: i32,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
    exit: Arc<(Mutex<Option<ExitStatus>>, Condvar)>,
    started: Instant,
}

/// How to start `lameduck`.
#[derive(Default)]
pub struct Options {
    /// Run it as PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`).
    pub pid_namespace: bool,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl Lameduck {
    /// Starts `lameduck ARGS...` outside any namespace.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(args, Options::default())
    }

    /// Starts `lameduck ARGS...` as PID 1 of a new PID namespace.
    pub fn start_as_pid1(args: &[&str]) -> Self {
        Self::start_with(
            args,
            Options {
                pid_namespace: true,
                ..Options::default()
            },
        )
    }

    /// Starts `lameduck ARGS...` as `options` say.
    pub fn start_with(args: &[&str], options: Options) -> Self {
        let mut command = if options.pid_namespace {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc", lameduck_bin()]);
            c
        } else {
            Command::new(lameduck_bin())
        };
        command
            .args(args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        Self::spawn(command, options.pid_namespace)
    }

    /// Starts a prepared command whose process (or, with `in_namespace`,
    /// whose only child) is `lameduck`.
    pub fn spawn(mut command: Command, in_namespace: bool) -> Self {
        let mut child: Child = command.spawn().expect("start lameduck");
        let outer = child.id() as i32;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("  | {line}");
                let (lines, changed) = &*sink;
                lines.lock().expect("log lock").push(line);
                changed.notify_all();
            }
        });
        let exit = Arc::new((Mutex::new(None), Condvar::new()));
        let exit_sink = Arc::clone(&exit);
        thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let (slot, changed) = &*exit_sink;
                *slot.lock().expect("exit lock") = Some(status);
                changed.notify_all();
            }
        });
        let pid = if in_namespace {
            let mut pid = 0;
            wait_until("unshare to start lameduck", || {
                let children =
                    std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children"))
                        .unwrap_or_default();
                pid = children
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                // A short-lived lameduck may be gone before we look.
                pid != 0 || exit.0.lock().expect("exit lock").is_some()
            });
            pid
        } else {
            outer
        };
        Lameduck {
            pid,
            log,
            exit,
            started: Instant::now(),
        }
    }

    /// Sends `signal` to lameduck.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory arguments.
        let ret = unsafe { libc::kill(self.pid, signal) };
        assert_eq!(ret, 0, "kill({}, {signal})", self.pid);
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_log(&self, needle: &str) -> String {
        let (lines, changed) = &*self.log;
        let mut guard = lines.lock().expect("log lock");
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            if let Some(line) = guard.iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no log line with {needle:?}; got:\n{}",
                guard.join("\n")
            );
            guard = changed.wait_timeout(guard, left).expect("log lock").0;
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.0.lock().expect("log lock").join("\n")
    }

    /// Waits for lameduck to exit and returns its status.
    pub fn wait(&self) -> ExitStatus {
        self.wait_for(EVENT_TIMEOUT)
    }

    /// Waits at most `limit` for lameduck to exit.
    pub fn wait_for(&self, limit: Duration) -> ExitStatus {
        let (slot, changed) = &*self.exit;
        let guard = slot.lock().expect("exit lock");
        let (guard, _) = changed
            .wait_timeout_while(guard, limit, |status| status.is_none())
            .expect("exit lock");
        match *guard {
            Some(status) => status,
            None => {
                // SAFETY: kill has no memory arguments.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                panic!("lameduck did not exit in {limit:?}; log:\n{}", self.log());
            }
        }
    }

    /// Waits for the exit and returns its code, failing if a signal ended it.
    pub fn exit_code(&self) -> i32 {
        let status = self.wait();
        status
            .code()
            .unwrap_or_else(|| panic!("lameduck was killed: {status:?}\n{}", self.log()))
    }

    /// Time since lameduck was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Lameduck {
    /// A failed test must not leave processes behind: kill the app's group,
    /// then lameduck (as PID 1 of a namespace, that takes everything in it).
    fn drop(&mut self) {
        if self.exit.0.lock().map(|s| s.is_some()).unwrap_or(true) {
            return;
        }
        let app = self
            .log()
            .lines()
            .find(|l| l.contains("app started"))
            .and_then(|l| l.split("pid=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|pid| pid.parse::<i32>().ok());
        // SAFETY: kill has no memory arguments.
        unsafe {
            if let Some(app) = app {
                libc::kill(-app, libc::SIGKILL);
            }
            libc::kill(self.pid, libc::SIGKILL);
        }
    }
}

/// Runs `lameduck ARGS...` to its end; returns the exit code and stderr.
pub fn run_to_end(args: &[&str]) -> (i32, String) {
    let out = Command::new(lameduck_bin())
        .args(args)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(Stdio::null())
        .output()
        .expect("run lameduck");
    let code = out.status.code().expect("lameduck exited by itself");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The signal-recording app's arguments for `dir`, ready to follow `--`.
pub struct SigApp {
    /// Its log: one "<tag> <SIGNAME>" line per signal.
    pub log: PathBuf,
    /// Written once its handlers are installed.
    pub ready: PathBuf,
    args: Vec<String>,
}

impl SigApp {
    /// The app with extra flags (`--exit-on TERM`, `--fork-child`, ...).
    pub fn new(dir: &Path, extra: &[&str]) -> Self {
        let log = dir.join("signals.log");
        let ready = dir.join("ready");
        let mut args = vec![
            python().to_owned(),
            sigapp().display().to_string(),
            "--log".into(),
            log.display().to_string(),
            "--ready".into(),
            ready.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        SigApp { log, ready, args }
    }

    /// `lameduck` flags, then `--`, then the app.
    pub fn command<'a>(&'a self, flags: &[&'a str]) -> Vec<&'a str> {
        let mut all: Vec<&str> = flags.to_vec();
        all.push("--");
        all.extend(self.args.iter().map(String::as_str));
        all
    }

    /// Waits until its handlers are installed; returns its pid.
    pub fn wait_ready(&self) -> i32 {
        wait_file(&self.ready).trim().parse().expect("app pid")
    }

    /// Waits until the log has a line equal to `line`.
    pub fn wait_signal(&self, line: &str) {
        wait_until(&format!("{line:?} in the app's signal log"), || {
            lines(&self.log).iter().any(|l| l == line)
        });
    }

    /// The signals recorded so far.
    pub fn received(&self) -> Vec<String> {
        lines(&self.log)
    }
}
