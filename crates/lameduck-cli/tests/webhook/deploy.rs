//! The manifests in `deploy/webhook/` render with `kubectl kustomize`,
//! pass `kubernetes-validate` and `lameduck lint`, and say what the issue
//! asks of them (checked by `tests/webhook/manifests.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::golden::lint_clean;
use crate::harness::make_certs;
use crate::support::{python, tempdir};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn the_manifests_render_validate_and_lint_clean() {
    let dir = tempdir();
    // cert-manager, as `kubectl apply -k deploy/webhook` installs it.
    let root = kustomize(&repo().join("deploy/webhook"));
    // Self-signed, with certificates from `lameduck webhook certs`, in a
    // copy of deploy/webhook (the certificates stay out of the tree).
    let copy = dir.path().join("webhook");
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo().join("deploy/webhook"))
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    let bundle = make_certs(&copy.join("self-signed/certs"), false);
    let self_signed = kustomize(&copy.join("self-signed"));
    for (name, yaml, ca) in [
        ("cert-manager", &root, ""),
        ("self-signed", &self_signed, bundle.as_str()),
    ] {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).expect("write");
        let out = Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook/manifests.py"))
            .arg(&file)
            .arg(name)
            .arg(ca)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lint_clean(&file);
    }
}
