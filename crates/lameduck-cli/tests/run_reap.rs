//! Zombies never pile up: orphans re-parented to lameduck are reaped, as
//! PID 1 and as a child subreaper.

mod support;

use std::path::Path;

use support::{tempdir, wait_file, wait_until, Lameduck};

/// Zombie processes whose parent is `parent`.
fn zombies_of(parent: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (
            fields.next(),
            fields.next().and_then(|p| p.parse::<i32>().ok()),
        );
        if state == Some("Z") && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// An app that makes 100 orphans (each a background job of a subshell that
/// exits at once), waits until all of them have exited, then waits for the stop
/// (its TERM trap set before it says it is ready, so the stop cannot come first).
fn orphan_maker(dir: &Path) -> String {
    format!(
        "for i in $(seq 100); do (sleep 0.01 & echo $! >> {d}/orphans); done; \
         while [ $(wc -l < {d}/orphans) -lt 100 ]; do :; done; \
         for p in $(cat {d}/orphans); do while [ -e /proc/$p/cmdline ] && [ -s /proc/$p/cmdline ]; do :; done; done; \
         trap 'exit 0' TERM; touch {d}/made; while :; do sleep 0.05; done",
        d = dir.display()
    )
}

fn reaps_100_orphans(lameduck: Lameduck, dir: &Path) {
    wait_file(&dir.join("made"));
    // Every orphan has exited; none may stay a zombie of lameduck.
    wait_until("lameduck to reap every orphan", || {
        zombies_of(lameduck.pid).is_empty()
    });
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0);
    let line = lameduck.wait_log("exiting");
    let reaped: u64 = line
        .split("orphans_reaped=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"));
    assert!(reaped >= 100, "{line}");
}

#[test]
fn as_pid1_every_orphan_is_reaped() {
    let dir = tempdir();
    let script = orphan_maker(dir.path());
    let lameduck = Lameduck::start_as_pid1(&["run", "--", "sh", "-c", &script]);
    assert!(lameduck.wait_log("app started").contains("pid1=true"));
    reaps_100_orphans(lameduck, dir.path());
}

#[test]
fn as_subreaper_every_orphan_is_reaped() {
    let dir = tempdir();
    let script = orphan_maker(dir.path());
    let lameduck = Lameduck::start(&["run", "--", "sh", "-c", &script]);
    assert!(lameduck.wait_log("app started").contains("pid1=false"));
    reaps_100_orphans(lameduck, dir.path());
}
