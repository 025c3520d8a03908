//! Hostile files against the built binary: nesting and expansion bombs,
//! devices and FIFOs. Each gets a clear error for that input and exit 2,
//! the other inputs are still linted, and nothing hangs or runs out of
//! memory.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{lameduck_bin, tempdir};

/// Far beyond what any of these takes once fixed (milliseconds); before,
/// they aborted, ran out of memory or never ended.
const BOUND: Duration = Duration::from_secs(60);

/// Runs `lameduck lint ARGS` with `stdin`, waiting for its exit (an event)
/// at most [`BOUND`].
fn lint_with(args: &[&str], stdin: Stdio) -> (i32, String, String) {
    let child = Command::new(lameduck_bin())
        .arg("lint")
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lameduck lint");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out: Output = match rx.recv_timeout(BOUND) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            // SAFETY: kill(2) on the child we started; it has not been reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("lameduck lint {args:?} did not end within {BOUND:?}");
        }
    };
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn lint(args: &[&str]) -> (i32, String, String) {
    lint_with(args, Stdio::null())
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn nesting_50000_deep_is_an_error_for_that_file_and_the_others_are_linted() {
    let dir = tempdir();
    let deep = dir.path().join("deep.yaml");
    std::fs::write(&deep, "- ".repeat(50_000) + "x\n").expect("write");
    let docker = dir.path().join("Dockerfile");
    std::fs::write(&docker, "FROM debian:12\nCMD app --port 8080\n").expect("write");
    let (code, out, err) = lint(&[utf8(dir.path())]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{}:1:2001: cannot parse: collections nested over 1000 deep",
            deep.display()
        )),
        "{err}"
    );
    assert!(
        out.contains("error[LD101]"),
        "the Dockerfile is linted: {out}"
    );
    // The summary says the run failed; not "0 error(s)".
    assert!(
        err.contains("lameduck lint: failed: 1 input(s) could not be linted (see above); 1 finding(s) (1 of severity error)"),
        "{err}"
    );
}

#[test]
fn a_summary_after_an_unparseable_input_never_says_0_errors() {
    let dir = tempdir();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: Pod\nspec: [1,\n").expect("write");
    let (code, _, err) = lint(&[utf8(&bad)]);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("0 error(s)"), "{err}");
    assert!(
        err.contains(
            "failed: 1 input(s) could not be linted (see above); 0 finding(s) in what was read"
        ),
        "{err}"
    );
}

#[test]
fn env_doubling_59_times_is_refused_at_the_line_that_passes_the_bound() {
    let dir = tempdir();
    let docker = dir.path().join("Dockerfile");
    let mut text = String::from("FROM alpine\nENV A1=xxxxxxxxxxxxxxxx\n");
    for i in 2..=60 {
        text += &format!("ENV A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1);
    }
    text += "CMD [\"app\"]\n";
    std::fs::write(&docker, &text).expect("write");
    let (code, _, err) = lint(&[utf8(&docker)]);
    assert_eq!(code, 2, "{err}");
    // 16 bytes doubled 13 times is 128 KiB: A15, on line 16, passes it.
    assert!(
        err.contains(&format!(
            "{}:16:1: a variable expands to more than 131072 bytes",
            docker.display()
        )),
        "{err}"
    );
    // ARG the same.
    std::fs::write(&docker, text.replace("ENV", "ARG")).expect("write");
    let (code, _, err) = lint(&[utf8(&docker)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("more than 131072 bytes"), "{err}");
}

#[test]
fn nested_defaults_600_kb_are_refused_or_skipped_in_one_pass() {
    let dir = tempdir();
    let docker = dir.path().join("Dockerfile");
    let nested = "${A:-".repeat(85_000) + &"}".repeat(85_000);
    std::fs::write(
        &docker,
        format!("FROM alpine\nENV B={nested}\nCMD [\"app\"]\n"),
    )
    .expect("write");
    let (code, _, err) = lint(&[utf8(&docker)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(":2:1: `${...}` nested over 64 deep"), "{err}");
    // Set, the default is never read: linted.
    std::fs::write(
        &docker,
        format!("FROM alpine\nENV A=x\nENV B={nested}\nCMD [\"app\"]\n"),
    )
    .expect("write");
    let (code, out, err) = lint(&[utf8(&docker)]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[test]
fn devices_and_fifos_are_not_read() {
    let (code, _, err) = lint(&["/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("/dev/zero: not a regular file (a FIFO, socket or device): not linted"),
        "{err}"
    );
    let dir = tempdir();
    let fifo = dir.path().join("app.Dockerfile");
    let c_path = std::ffi::CString::new(utf8(&fifo)).expect("path");
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
    let good = dir.path().join("Dockerfile");
    std::fs::write(&good, "FROM debian:12\nCMD app\n").expect("write");
    let (code, out, err) = lint(&[utf8(&fifo), utf8(&good)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}: not a regular file", fifo.display())),
        "{err}"
    );
    assert!(out.contains("LD101"), "{out}");
}

#[test]
fn endless_zeros_on_standard_input_stop_at_the_first_byte() {
    let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
    let (code, _, err) = lint_with(&["-"], Stdio::from(zero));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("-:1:1: a NUL byte: binary, not text; not linted"),
        "{err}"
    );
}
