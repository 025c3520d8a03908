//! The binary over the lint crate's corpus: bad inputs exit 2 with their
//! file and line on standard error, and the other files are still linted.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::lameduck_bin;

#[test]
fn bad_inputs_exit_2_with_their_place_and_the_rest_is_linted() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lameduck-lint");
    let out = Command::new(lameduck_bin())
        .args(["lint", "--format", "github", "tests/corpus"])
        .current_dir(&crate_dir)
        .env_remove("LAMEDUCK_LINT_FORMAT")
        .stdin(Stdio::null())
        .output()
        .expect("lameduck lint");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for place in [
        "tests/corpus/broken/tabs.yaml:6:",
        "tests/corpus/broken/compressed.json:1:4: a NUL byte",
        "tests/corpus/broken/latin1.Dockerfile:2:6: byte 0xe9 is not UTF-8",
        "tests/corpus/broken/unclosed.json:6:1: cannot parse",
        "note: tests/corpus/chart: a Helm chart; its templates are not YAML until rendered",
    ] {
        assert!(stderr.contains(place), "{place} missing from {stderr}");
    }
    assert_eq!(stderr.lines().count(), 5, "{stderr}");
    assert!(!stderr.contains("templates/deployment.yaml"), "{stderr}");
    assert!(
        stdout.contains(
            "::error file=tests/corpus/docker/python/Dockerfile,line=12,col=5,title=LD101::"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("file=tests/corpus/k8s/json/deployment.json,line=26,col=59,title=LD203"),
        "{stdout}"
    );
    assert!(stdout.lines().count() >= 15, "{stdout}");
}
