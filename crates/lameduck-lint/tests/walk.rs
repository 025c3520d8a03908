//! Directory walking over a real tree, as ripgrep walks it: `.gitignore`
//! and `.ignore` honoured in a directory that is not a git repository,
//! hidden directories, `target` and `node_modules` skipped.

use std::path::Path;

use lameduck_lint::walk;

fn write(root: &Path, name: &str, text: &str) {
    let path = root.join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("dir");
    }
    std::fs::write(path, text).expect("write");
}

fn walked(root: &Path) -> Vec<String> {
    let walked = walk::files(root);
    assert_eq!(walked.errors, Vec::<String>::new());
    walked
        .files
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .expect("under root")
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn ignore_files_hidden_and_build_directories_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    assert!(!root.join(".git").exists(), "not a git repository");
    write(
        root,
        ".gitignore",
        "/rendered/\n*.generated.yaml\n!keep.generated.yaml\n",
    );
    write(root, "deploy/.ignore", "scratch.yaml\n");
    for name in [
        "Dockerfile",
        "api/Containerfile",
        "deploy/web.yaml",
        "deploy/scratch.yaml",
        "deploy/app.generated.yaml",
        "deploy/keep.generated.yaml",
        "deploy/nested/rendered/ok.yml",
        "rendered/all.yaml",
        ".github/workflows/ci.yml",
        ".git/config.json",
        "target/debug/x.json",
        "web/node_modules/pkg/Dockerfile",
        "README.md",
    ] {
        write(root, name, "kind: ConfigMap\n");
    }
    assert_eq!(
        walked(root),
        [
            "Dockerfile",
            "api/Containerfile",
            "deploy/keep.generated.yaml",
            "deploy/nested/rendered/ok.yml",
            "deploy/web.yaml",
        ]
    );
}

#[test]
fn a_gitignore_above_the_walked_directory_counts_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // A repository: its .gitignore applies to a walk of a subdirectory.
    std::fs::create_dir_all(root.join(".git")).expect("dir");
    write(root, ".gitignore", "secret-*.yaml\n");
    write(root, "k8s/secret-prod.yaml", "kind: Secret\n");
    write(root, "k8s/web.yaml", "kind: Service\n");
    assert_eq!(walked(&root.join("k8s")), ["web.yaml"]);
    // A file named directly is taken although ignored.
    let named = root.join("k8s/secret-prod.yaml");
    assert_eq!(walk::files(&named).files, [named]);
}
