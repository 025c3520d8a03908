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
    kind_by_name(path).unwrap_or_else(|| kind_by_content(text))
}

/// What a file is by its name, if its name tells.
pub fn kind_by_name(path: &Path) -> Option<Input> {
    if is_dockerfile(path) {
        Some(Input::Dockerfile)
    } else if is_manifest(path) {
        Some(Input::Manifest)
    } else {
        None
    }
}

/// What an input is by its text (or the start of it): manifests start
/// with `{` or have a top-level `apiVersion:` or `kind:`.
pub fn kind_by_content(text: &str) -> Input {
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

/// What walking the paths of a run found.
#[derive(Debug, Default)]
pub struct Walked {
    /// The files to lint, sorted per root.
    pub files: Vec<PathBuf>,
    /// What could not be read on the way (a directory without permission,
    /// a path that does not exist), one line each.
    pub errors: Vec<String>,
    /// Helm charts met (directories with a `Chart.yaml`): their
    /// `templates/` are not YAML until rendered, so they were left out.
    pub charts: Vec<PathBuf>,
}

/// The files under `root` to lint, sorted, as ripgrep would search them:
/// what `.gitignore`, `.ignore` and `.git/info/exclude` files (in `root`,
/// below it and above it) exclude is skipped, also outside a git
/// repository; so are hidden files and directories (`.git`), `target` and
/// `node_modules`. A file given directly is taken whatever its name and
/// whatever ignores it.
pub fn files(root: &Path) -> Walked {
    let mut walked = Walked::default();
    if !root.is_dir() {
        walked.files.push(root.to_path_buf());
        return walked;
    }
    let walker = ignore::WalkBuilder::new(root)
        // A checkout without .git (a tarball, a CI cache) is ignored alike.
        .require_git(false)
        .filter_entry(|entry| {
            let is_dir = entry.depth() > 0 && entry.file_type().is_some_and(|t| t.is_dir());
            let skipped = is_dir
                && match entry.file_name().to_str() {
                    Some("target" | "node_modules") => true,
                    // A Helm chart's templates: `helm template` renders them.
                    Some("templates") => entry
                        .path()
                        .parent()
                        .is_some_and(|chart| chart.join("Chart.yaml").is_file()),
                    _ => false,
                };
            !skipped
        })
        .build();
    for entry in walker {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let is_file = entry.file_type().is_some_and(|t| t.is_file());
                if is_file && path.file_name().is_some_and(|n| n == "Chart.yaml") {
                    if let Some(chart) = path.parent() {
                        walked.charts.push(chart.to_path_buf());
                    }
                }
                if is_file && (is_dockerfile(path) || is_manifest(path)) {
                    walked.files.push(entry.into_path());
                }
            }
            Err(e) => walked.errors.push(e.to_string()),
        }
    }
    walked.files.sort();
    walked.charts.sort();
    walked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_dockerfiles_and_manifests() {
        for name in [
            "Dockerfile",
            "api.Dockerfile",
            "Dockerfile.prod",
            "Containerfile",
        ] {
            assert!(is_dockerfile(Path::new(name)), "{name}");
        }
        for name in ["Dockerfile-notes.md", "dockerfile.txt", "README"] {
            assert!(!is_dockerfile(Path::new(name)), "{name}");
        }
        assert!(is_manifest(Path::new("k8s/deploy.yml")));
        assert!(!is_manifest(Path::new("k8s/deploy.yaml.bak")));
    }

    #[test]
    fn content_decides_for_standard_input() {
        assert_eq!(
            input_kind(Path::new("-"), "{\"kind\": \"Pod\"}"),
            Input::Manifest
        );
        assert_eq!(input_kind(Path::new("-"), "kind: Pod\n"), Input::Manifest);
        assert_eq!(
            input_kind(Path::new("-"), "FROM alpine\n"),
            Input::Dockerfile
        );
    }
}
