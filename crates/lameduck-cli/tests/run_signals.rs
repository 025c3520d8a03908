//! Signals reach the app: every catchable one, to its group or to it alone,
//! with the stop rewritten when asked, and the app starts clean.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use support::{lines, tempdir, wait_file, Lameduck, SigApp};

/// Every catchable signal with Python's name for it, except SIGCHLD which
/// the kernel also raises for lameduck's own children and is tested apart.
fn catchable_signals() -> Vec<(i32, String)> {
    let script = "import signal\n\
        for s in sorted(signal.valid_signals()):\n\
        \x20   print(int(s), signal.Signals(s).name[3:] if s in signal.Signals._value2member_map_ else int(s))";
    let out = Command::new(support::python())
        .args(["-c", script])
        .output()
        .expect("python");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, name)| (n.parse().expect("a number"), name.to_owned()))
        .filter(|(n, _)| !matches!(*n, libc::SIGKILL | libc::SIGSTOP | libc::SIGCHLD))
        .filter(|(n, _)| *n < 32 || *n >= libc::SIGRTMIN())
        .collect()
}

#[test]
fn every_catchable_signal_reaches_the_app() {
    let dir = tempdir();
    let signals = catchable_signals();
    assert!(signals.len() >= 28 + 31, "{signals:?}");
    let count = (signals.len() + 1).to_string();
    let app = SigApp::new(dir.path(), &["--exit-after", &count]);
    let lameduck = Lameduck::start(&app.command(&["run"]));
    app.wait_ready();
    for (number, name) in &signals {
        lameduck.signal(*number);
        app.wait_signal(&format!("app {name}"));
    }
    // A SIGCHLD sent by a user is passed on too; the kernel's are not.
    lameduck.signal(libc::SIGCHLD);
    app.wait_signal("app CHLD");
    assert_eq!(lameduck.exit_code(), 0);
    assert_eq!(
        app.received().len(),
        signals.len() + 1,
        "{:?}",
        app.received()
    );
}

#[test]
fn every_catchable_signal_reaches_the_app_when_lameduck_is_pid1() {
    let dir = tempdir();
    let signals = catchable_signals();
    let app = SigApp::new(dir.path(), &["--exit-after", &signals.len().to_string()]);
    let lameduck = Lameduck::start_as_pid1(&app.command(&["run"]));
    app.wait_ready();
    for (number, name) in &signals {
        lameduck.signal(*number);
        app.wait_signal(&format!("app {name}"));
    }
    assert_eq!(lameduck.exit_code(), 0);
}

#[test]
fn a_trapping_app_returns_its_own_code() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM", "--exit-code", "42"]);
    let lameduck = Lameduck::start(&app.command(&["run"]));
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 42);
    assert_eq!(app.received(), ["app TERM"]);
}

#[test]
fn signals_go_to_the_whole_group_by_default() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--fork-child", "--exit-on", "TERM"]);
    let lameduck = Lameduck::start(&app.command(&["run"]));
    app.wait_ready();
    wait_file(&dir.path().join("ready.child"));
    lameduck.signal(libc::SIGUSR1);
    app.wait_signal("app USR1");
    app.wait_signal("app-child USR1");
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0);
}

#[test]
fn signal_target_child_spares_the_rest_of_the_group() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--fork-child", "--exit-on", "TERM"]);
    let lameduck = Lameduck::start(&app.command(&["run", "--signal-target", "child"]));
    app.wait_ready();
    wait_file(&dir.path().join("ready.child"));
    lameduck.signal(libc::SIGUSR1);
    app.wait_signal("app USR1");
    lameduck.signal(libc::SIGTERM);
    app.wait_signal("app TERM");
    // The forked child is left over when the app exits; lameduck then stops
    // it with the stop signal, so it hears TERM but never USR1.
    assert_eq!(lameduck.exit_code(), 0);
    lameduck.wait_log("its process group is not");
    let received = app.received();
    assert!(received.contains(&"app USR1".to_owned()), "{received:?}");
    assert!(
        !received.contains(&"app-child USR1".to_owned()),
        "{received:?}"
    );
    assert!(
        received.contains(&"app-child TERM".to_owned()),
        "{received:?}"
    );
}

#[test]
fn an_app_wrapped_in_sh_c_hears_the_stop() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "TERM", "--exit-code", "9"]);
    // Not the last command, so sh cannot exec it away and stays as the parent
    // that, alone, would never pass SIGTERM on.
    let inner = format!("{}; echo after", app.command(&[])[1..].join(" "));
    let lameduck = Lameduck::start_as_pid1(&["run", "--", "sh", "-c", &inner]);
    app.wait_ready();
    lameduck.signal(libc::SIGTERM);
    app.wait_signal("app TERM");
    // sh itself heard the stop too and died of it: 128 + SIGTERM.
    assert_eq!(lameduck.exit_code(), 143);
}

#[test]
fn the_stop_signal_is_rewritten_and_other_signals_are_not() {
    let dir = tempdir();
    let app = SigApp::new(dir.path(), &["--exit-on", "QUIT", "--exit-code", "3"]);
    let lameduck = Lameduck::start(&app.command(&["run", "--stop-signal", "SIGQUIT"]));
    app.wait_ready();
    lameduck.signal(libc::SIGHUP);
    app.wait_signal("app HUP");
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 3);
    assert_eq!(app.received(), ["app HUP", "app QUIT"]);
    let line = lameduck.wait_log("stop passed on");
    assert!(line.contains("signal=SIGQUIT"), "{line}");
}

#[test]
fn sigint_and_sigquit_ask_for_the_stop_and_are_passed_on_as_they_came() {
    for (signal, name) in [(libc::SIGINT, "INT"), (libc::SIGQUIT, "QUIT")] {
        let dir = tempdir();
        let app = SigApp::new(dir.path(), &["--exit-on", name]);
        let lameduck = Lameduck::start(&app.command(&["run"]));
        app.wait_ready();
        lameduck.signal(signal);
        assert_eq!(lameduck.exit_code(), 0);
        assert!(lameduck
            .wait_log("stop requested")
            .contains(&format!("SIG{name}")));
        assert_eq!(app.received(), [format!("app {name}")]);
    }
}

/// `SigBlk` and `SigIgn` of /proc/PID/status, as the app sees its own.
fn mask_and_ignored(command: &mut Command) -> String {
    // The parent blocks SIGUSR1 and ignores SIGHUP, as nohup and some
    // runtimes do; neither may reach the app.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let out = command.stderr(Stdio::null()).output().expect("run");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("SigBlk") || l.starts_with("SigIgn"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_app_starts_with_an_empty_mask_and_default_dispositions() {
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000";
    let direct = mask_and_ignored(Command::new("grep").args(["^Sig", "/proc/self/status"]));
    assert_ne!(
        direct, clean,
        "the parent's mask must be dirty for this test to mean anything"
    );
    let through = mask_and_ignored(Command::new(support::lameduck_bin()).args([
        "run",
        "--",
        "grep",
        "^Sig",
        "/proc/self/status",
    ]));
    assert_eq!(through, clean);
}

#[test]
fn no_descriptor_of_lameduck_reaches_the_app_and_inherited_ones_do() {
    // Each process starts with exactly 0, 1, 2 and a descriptor 7 it was
    // given, as a container runtime may pass one. The app must see those and
    // the one `ls` opens on the directory (3), nothing of lameduck's own.
    let list = |command: &mut Command| {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                for fd in 3..1024 {
                    libc::close(fd);
                }
                libc::dup2(0, 7);
                Ok(())
            });
        }
        let out = command
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("run");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let direct = list(Command::new("ls").arg("/proc/self/fd"));
    assert_eq!(direct, ["0", "1", "2", "3", "7"]);
    let through =
        list(Command::new(support::lameduck_bin()).args(["run", "--", "ls", "/proc/self/fd"]));
    assert_eq!(through, direct);
    let hooked = list(Command::new(support::lameduck_bin()).args([
        "run",
        "--pre-start",
        "echo from-the-hook",
        "--",
        "echo",
        "from-the-app",
    ]));
    assert_eq!(
        hooked,
        ["from-the-app"],
        "a hook's output goes to stderr, never into the app's"
    );
}

#[test]
fn the_app_gets_the_terminal_and_ctrl_c_goes_to_it_alone() {
    let dir = tempdir();
    let ready = dir.path().join("ready");
    let log_file = dir.path().join("lameduck.log");
    let app = format!(
        "tty > {ready}.tty; touch {ready}; exec sleep 60",
        ready = ready.display()
    );
    // `script` gives lameduck a real terminal; the byte 0x03 written to it is
    // Ctrl-C, which the terminal turns into SIGINT for its foreground group.
    let mut command = Command::new("script");
    command
        .args(["-qefc"])
        .arg(format!(
            "{} run -- sh -c '{app}' 2>{}",
            support::lameduck_bin(),
            log_file.display()
        ))
        .arg("/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Keep the pipe to script's stdin open to type into it.
    let (reader, mut typing) = std::io::pipe().expect("pipe");
    command.stdin(reader);
    let lameduck = Lameduck::spawn(command, false);
    wait_file(&ready);
    let tty = lines(&dir.path().join("ready.tty")).join("\n");
    assert!(
        tty.starts_with("/dev/pts/"),
        "the app's stdin is a terminal: {tty}"
    );
    use std::io::Write;
    typing.write_all(&[0x03]).expect("type Ctrl-C");
    typing.flush().expect("flush");
    let status = lameduck.wait();
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(log.contains("app killed by SIGINT"), "{log}");
    assert!(
        !log.contains("stop requested"),
        "lameduck itself must not get the SIGINT: {log}"
    );
}
