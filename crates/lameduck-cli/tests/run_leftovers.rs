//! Nothing lameduck started outlives it, also when it is not PID 1 (where
//! the kernel would not take the rest down with it): a hook's background
//! job, or a daemon the app left in a group of its own, is stopped before
//! lameduck exits.

mod support;

use std::path::Path;

use support::{tempdir, wait_file, Lameduck, SigApp};

/// Whether `pid` is still a running process (not gone, not a zombie).
fn running(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X"))
}

fn pid_in(path: &Path) -> i32 {
    wait_file(path).trim().parse().expect("a pid")
}

/// Kills what a failed test would leave behind.
struct Reaper(Vec<i32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if running(pid) {
                // SAFETY: kill has no memory arguments.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn background_jobs_of_every_hook_are_gone_when_lameduck_exits() {
    let dir = tempdir();
    let d = dir.path().display();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM"]);
    let pre = format!("sleep 300 & echo $! > {d}/pre-start.pid");
    let drain = format!("sleep 301 & echo $! > {d}/on-drain.pid");
    let post = format!("sleep 302 & echo $! > {d}/post-stop.pid");
    let lameduck = Lameduck::start(&app.command(&[
        "run",
        "--pre-start",
        &pre,
        "--on-drain",
        &drain,
        "--post-stop",
        &post,
    ]));
    assert!(lameduck.wait_log("app started").contains("pid1=false"));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0, "{}", lameduck.log());
    let pids: Vec<i32> = ["pre-start", "on-drain", "post-stop"]
        .iter()
        .map(|hook| pid_in(&dir.path().join(format!("{hook}.pid"))))
        .collect();
    let _reaper = Reaper(pids.clone());
    for (hook, pid) in ["pre-start", "on-drain", "post-stop"].iter().zip(&pids) {
        assert!(
            !running(*pid),
            "the {hook} hook's `sleep &` ({pid}) outlived lameduck:\n{}",
            lameduck.log()
        );
    }
    lameduck.wait_log("still running: sending them SIGTERM");
}

#[test]
fn a_daemon_the_app_left_in_a_session_of_its_own_is_stopped_too() {
    // The app starts a daemon in a new session (so not in the app's process
    // group, which lameduck already stops) and exits at once.
    let dir = tempdir();
    let pidfile = dir.path().join("daemon.pid");
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 303' & while [ ! -s {} ]; do :; done; exit 7",
        pidfile.display(),
        pidfile.display()
    );
    let lameduck = Lameduck::start(&["run", "--", "sh", "-c", &script]);
    assert_eq!(lameduck.exit_code(), 7, "{}", lameduck.log());
    let daemon = pid_in(&pidfile);
    let _reaper = Reaper(vec![daemon]);
    assert!(!running(daemon), "the daemon {daemon} outlived lameduck");
}
