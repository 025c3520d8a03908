//! `--workers auto` follows a cgroup CPU limit: a real cgroup the test makes
//! (cgroup v2 where its cpu controller can be enabled, else v1) where the
//! machine lets root make one, and a fake root given by the test-only
//! variable everywhere; bad worker counts are usage errors, and a port
//! another proxy holds is not joined.

mod support;

use std::process::{Command, Stdio};

use support::net::{free_port, ProxiedApp};
use support::{lameduck_bin, run_to_end, tempdir, Lameduck, Options};

/// `lameduck proxy --workers auto` in front of nothing: its start-up line.
fn auto_line(options: Options, wrap: Option<&str>) -> String {
    let (listen, upstream) = (free_port(), free_port());
    let args = [
        "proxy",
        "--listen",
        &format!("127.0.0.1:{listen}"),
        "--upstream",
        &format!("127.0.0.1:{upstream}"),
        "--workers",
        "auto",
    ];
    let lameduck = match wrap {
        None => Lameduck::start_with(&args, options),
        // `sh` moves itself into the cgroup, then becomes lameduck.
        Some(cgroup_procs) => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg(format!("echo $$ > {cgroup_procs} && exec \"$0\" \"$@\""))
                .arg(lameduck_bin())
                .args(args)
                .env_remove("KUBERNETES_SERVICE_HOST")
                .envs(options.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stderr(Stdio::piped());
            Lameduck::spawn(command, false)
        }
    };
    let line = lameduck.wait_log("proxy listening");
    lameduck.signal(libc::SIGTERM);
    assert_eq!(lameduck.exit_code(), 0, "{}", lameduck.log());
    line
}

/// The cores this test may run on.
fn cores() -> usize {
    let out = Command::new("nproc").output().expect("nproc");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number of cores")
}

#[test]
fn auto_follows_a_fake_cgroup_root_given_for_tests() {
    let root = tempdir();
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, text).expect("fixture");
    };
    write("proc/self/cgroup", "0::/\n");
    write(
        "proc/self/mountinfo",
        "30 23 0:26 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n",
    );
    let with_limit = |cpu_max: &str| {
        write("sys/fs/cgroup/cpu.max", cpu_max);
        let env = vec![(
            "LAMEDUCK_TEST_CGROUP_ROOT".to_owned(),
            root.path().display().to_string(),
        )];
        auto_line(
            Options {
                env,
                ..Options::default()
            },
            None,
        )
    };
    let line = with_limit("100000 100000\n");
    assert!(
        line.contains("workers=1 source=\"auto: cgroup v2 cpu.max 100000 100000 in "),
        "{line}"
    );
    // 1.5 CPUs round up to 2, never beyond the cores.
    let line = with_limit("150000 100000\n");
    let expected = format!("workers={} ", cores().min(2));
    assert!(line.contains(&expected), "{line}");
    let line = with_limit("max 100000\n");
    let expected = format!(
        "workers={} source=\"auto: {} cores, no cgroup CPU limit\"",
        cores(),
        cores()
    );
    assert!(line.contains(&expected), "{line}");
}

/// A cgroup this test made, removed when dropped.
struct RealCgroup {
    dir: std::path::PathBuf,
    procs: std::path::PathBuf,
    /// How lameduck names its limit.
    expected: &'static str,
}

/// Where `/proc/self/mountinfo` mounts a file system of `fstype` whose
/// super options satisfy `options`.
fn mount_point(fstype: &str, options: impl Fn(&str) -> bool) -> Option<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts
        .lines()
        .filter_map(|l| l.split_once(" - "))
        .find(|(_, right)| {
            let mut f = right.split(' ');
            f.next() == Some(fstype) && options(f.nth(1).unwrap_or(""))
        })
        .and_then(|(left, _)| left.split(' ').nth(4))
        .map(std::path::PathBuf::from)
}

impl RealCgroup {
    /// A cgroup of one CPU (cgroup v2 where its cpu controller can be
    /// enabled, else v1), if the machine lets root make one; else why not.
    fn one_cpu() -> Result<Self, String> {
        Self::v2().or_else(|v2| Self::v1().map_err(|v1| format!("{v2}; {v1}")))
    }

    fn v2() -> Result<Self, String> {
        let root = mount_point("cgroup2", |_| true).ok_or("no cgroup v2 hierarchy is mounted")?;
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "cpu") {
            return Err(format!(
                "the cgroup v2 hierarchy at {} has no cpu controller",
                root.display()
            ));
        }
        std::fs::write(root.join("cgroup.subtree_control"), "+cpu")
            .map_err(|e| format!("cannot enable cpu under {}: {e}", root.display()))?;
        Self::make(
            &root,
            "cgroup v2 cpu.max 100000 100000 in ",
            &[("cpu.max", "100000 100000")],
        )
    }

    fn v1() -> Result<Self, String> {
        let point = mount_point("cgroup", |o| o.split(',').any(|o| o == "cpu"))
            .ok_or("no cgroup v1 cpu hierarchy is mounted")?;
        Self::make(
            &point,
            "cgroup v1 cpu.cfs_quota_us 100000 cpu.cfs_period_us 100000 in ",
            &[
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "100000"),
            ],
        )
    }

    /// A child of `parent` with `files` written.
    fn make(
        parent: &std::path::Path,
        expected: &'static str,
        files: &[(&str, &str)],
    ) -> Result<Self, String> {
        let dir = parent.join(format!("lameduck-test-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cgroup = RealCgroup {
            procs: dir.join("cgroup.procs"),
            dir,
            expected,
        };
        for (name, value) in files {
            std::fs::write(cgroup.dir.join(name), value)
                .map_err(|e| format!("cannot write {name} in {}: {e}", cgroup.dir.display()))?;
        }
        Ok(cgroup)
    }
}

impl Drop for RealCgroup {
    fn drop(&mut self) {
        // Empty once lameduck exited.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn auto_follows_a_real_cgroup_cpu_quota() {
    let cgroup = match RealCgroup::one_cpu() {
        Ok(cgroup) => cgroup,
        Err(why) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED auto_follows_a_real_cgroup_cpu_quota: {why}.\n\
                 !!!!!!!! Only the fake cgroup root covers --workers auto on this machine.\n"
            );
            return;
        }
    };
    let line = auto_line(
        Options::default(),
        Some(&cgroup.procs.display().to_string()),
    );
    let expected = format!("workers=1 source=\"auto: {}", cgroup.expected);
    assert!(line.contains(&expected), "{line}");
    assert!(line.contains(&cgroup.dir.display().to_string()), "{line}");
}

#[test]
fn bad_worker_counts_are_usage_errors() {
    let (listen, upstream) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    for (value, says) in [
        ("0", "at least one worker"),
        ("1025", "at most 1024 workers"),
        (
            "99999999999999999999999",
            "give a number from 1 to 1024, or auto",
        ),
        ("abc", "give a number from 1 to 1024, or auto"),
        ("2.5", "give a number from 1 to 1024, or auto"),
        ("", "give a number from 1 to 1024, or auto"),
    ] {
        let flag = format!("--workers={value}");
        for args in [
            vec!["proxy", "--listen", &listen, "--upstream", &upstream, &flag],
            vec![
                "run",
                "--listen",
                &listen,
                "--upstream",
                &upstream,
                &flag,
                "--",
                "true",
            ],
        ] {
            let (code, err) = run_to_end(&args);
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(err.contains(says), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    // From the variable too.
    let out = Command::new(lameduck_bin())
        .args(["proxy", "--listen", &listen, "--upstream", &upstream])
        .env("LAMEDUCK_WORKERS", "many")
        .output()
        .expect("lameduck");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bad worker count \"many\""), "{err}");
    // A port another proxy of the same user holds is not joined.
    let first = ProxiedApp::start("http_upstream.py", &[], &["--workers", "2"]);
    let taken = first.listen.to_string();
    let second = Lameduck::start(&[
        "proxy",
        "--listen",
        &taken,
        "--upstream",
        &upstream,
        "--workers",
        "2",
    ]);
    assert_eq!(second.exit_code(), 1, "{}", second.log());
    second.wait_log(&format!("cannot listen on {taken}"));
    // Without the proxy there is nothing to serve.
    let (code, err) = run_to_end(&["run", "--workers", "2", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--workers need --listen"), "{err}");
}
