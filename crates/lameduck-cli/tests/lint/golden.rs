//! Golden outputs: `lameduck lint` over a fixed input set in every format,
//! byte for byte. `LAMEDUCK_BLESS=1` rewrites the files (tests/golden/).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::lameduck_bin;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name`, or rewrites it when
/// LAMEDUCK_BLESS is set.
pub fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("LAMEDUCK_BLESS").is_some_and(|v| v != "0" && !v.is_empty()) {
        std::fs::write(&path, actual).expect("bless the golden file");
        return;
    }
    let bless = "rewrite with LAMEDUCK_BLESS=1 cargo test -p lameduck-cli --test lint, then review the diff";
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; {bless}", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n  want: {:?}\n  got:  {:?}\n{bless}",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line),
        );
    }
}

fn lint_inputs(format: &str) -> (i32, String) {
    let out = Command::new(lameduck_bin())
        .args(["lint", "--format", format, "Dockerfile", "k8s"])
        .current_dir(golden_dir().join("input"))
        .env_remove("LAMEDUCK_LINT_FORMAT")
        .env_remove("LAMEDUCK_LINT_FAIL_ON")
        .stdin(Stdio::null())
        .output()
        .expect("lameduck lint");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("UTF-8 output"),
    )
}

#[test]
fn golden_human() {
    let (code, out) = lint_inputs("human");
    assert_eq!(code, 1, "{out}");
    check_golden("lint.human.txt", &out);
}

#[test]
fn golden_json() {
    let (code, out) = lint_inputs("json");
    assert_eq!(code, 1, "{out}");
    check_golden("lint.json", &out);
}

#[test]
fn golden_sarif() {
    let (code, out) = lint_inputs("sarif");
    assert_eq!(code, 1, "{out}");
    check_golden("lint.sarif", &out);
}

#[test]
fn golden_github() {
    let (code, out) = lint_inputs("github");
    assert_eq!(code, 1, "{out}");
    check_golden("lint.github.txt", &out);
}
