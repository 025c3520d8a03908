//! Which files to lint: the paths given, directories walked for files
//! named like Dockerfiles.

use std::path::{Path, PathBuf};

/// Whether a file name is a Dockerfile's: `Dockerfile`, `*.Dockerfile`,
/// `Dockerfile.*`, `Containerfile`.
pub fn is_dockerfile(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "Dockerfile"
        || name == "Containerfile"
        || name.ends_with(".Dockerfile")
        || name.ends_with(".dockerfile")
        || name.starts_with("Dockerfile.")
}

/// What a file is to the linter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// A Dockerfile or Containerfile.
    Dockerfile,
    /// Kubernetes YAML or JSON.
    Manifest,
}

/// Whether a file name is a manifest's: `*.yaml`, `*.yml`, `*.json`.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// What `text` read from `path` is: by its name, else by its content
/// (standard input, odd names).
pub fn input_kind(path: &Path, text: &str) -> Input {
    if is_dockerfile(path) {
        return Input::Dockerfile;
    }
    if is_manifest(path) {
        return Input::Manifest;
    }
    let manifest_like = text.trim_start().starts_with('{')
        || text
            .lines()
            .any(|l| l.starts_with("apiVersion:") || l.starts_with("kind:"));
    if manifest_like {
        Input::Manifest
    } else {
        Input::Dockerfile
    }
}

/// The files under `root` to lint, sorted; hidden directories and `target`
/// are skipped. A file given directly is taken whatever its name.
pub fn files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') || n == "target" || n == "node_modules");
            if path.is_dir() {
                if !hidden {
                    dirs.push(path);
                }
            } else if is_dockerfile(&path) || is_manifest(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
