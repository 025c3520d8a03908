//! The shell table the rules rest on (`src/images.rs`), checked against the
//! shells themselves: dash, bash and BusyBox ash as Debian packages them
//! (`scripts/test.sh` installs them). Each case runs `SHELL -c SCRIPT`
//! whose last command is `cat /proc/self/stat`: the PID cat reports is the
//! shell's own when the shell exec'd it, another when it forked it. The
//! verdict of `lameduck_lint::forks::verdict` for the shell's family must
//! be what the shell did.

use std::process::{Command, Stdio};

use lameduck_lint::forks::{verdict, ShellOf, Verdict};
use lameduck_lint::images::Shell;

/// The last command: prints its own PID first.
const PROBE: &str = "cat /proc/self/stat";

/// Scripts whose last command is the probe, in the forms the rules meet.
fn scripts() -> Vec<String> {
    [
        "{p}",
        "{p} 2>&1",
        "./migrate-stand-in; {p}",
        "true && {p}",
        "false || {p}",
        "export A=1; {p}",
        "A=1 {p}",
        "trap '' TERM; {p}",
        "trap 'echo bye' TERM; {p}",
        "{p} | cat",
        "{p} & wait",
        "{p}; true",
        "run() {{ {p}; }}; run",
    ]
    .iter()
    .map(|s| {
        s.replace("{p}", PROBE)
            .replace("{{", "{")
            .replace("}}", "}")
    })
    .collect()
}

/// The program of `shell` and the family the rules give it.
fn shells() -> Vec<(Vec<&'static str>, Shell)> {
    vec![
        (vec!["dash"], Shell::Dash),
        (vec!["bash"], Shell::Bash),
        (vec!["busybox", "sh"], Shell::BusyBox),
    ]
}

/// Runs `argv`, waits for it (its exit is the event), and says whether the
/// probe ran as the process started (exec) or as a child (fork).
fn execs(argv: &[&str], dir: &std::path::Path) -> bool {
    let child = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; scripts/test.sh installs dash, bash and busybox",
                argv[0]
            )
        });
    let pid = child.id();
    let out = child.wait_with_output().expect("output");
    let stat = String::from_utf8_lossy(&out.stdout);
    let probe_pid: u32 = stat
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{argv:?} printed no /proc/self/stat: {stat:?}"));
    probe_pid == pid
}

#[test]
fn each_shell_forks_or_execs_as_the_table_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `./migrate-stand-in` exits 0, as a migration that has nothing to do.
    let migrate = dir.path().join("migrate-stand-in");
    std::fs::write(&migrate, "#!/bin/sh\nexit 0\n").expect("write");
    let mut perms = std::fs::metadata(&migrate).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&migrate, perms).expect("chmod");

    let mut mismatches = Vec::new();
    let mut seen = (0, 0);
    for (program, family) in shells() {
        let shell = ShellOf {
            shell: family,
            source: program.join(" "),
        };
        for script in scripts() {
            let mut argv = program.clone();
            argv.extend(["-c", &script]);
            let measured = execs(&argv, dir.path());
            let predicted = verdict(&shell, &script) == Verdict::Execs;
            if measured {
                seen.0 += 1;
            } else {
                seen.1 += 1;
            }
            if measured != predicted {
                mismatches.push(format!(
                    "{} -c {script:?}: the shell {}, the rules say it {}",
                    program.join(" "),
                    if measured { "execs" } else { "forks" },
                    if predicted { "execs" } else { "forks" },
                ));
            }
        }
        // The last line of a script file: every shell forks it.
        let file = dir.path().join("entrypoint.sh");
        std::fs::write(
            &file,
            format!("#!/bin/sh\nset -e\n./migrate-stand-in\n{PROBE}\n"),
        )
        .expect("write");
        let mut argv = program.clone();
        argv.push(file.to_str().expect("utf-8"));
        if execs(&argv, dir.path()) {
            mismatches.push(format!(
                "{}: execs a script file's last line",
                program.join(" ")
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Both behaviours were met: the probe can tell them apart.
    assert!(seen.0 > 0 && seen.1 > 0, "{seen:?}");
}
