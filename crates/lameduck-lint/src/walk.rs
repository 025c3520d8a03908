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
            } else if is_dockerfile(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
