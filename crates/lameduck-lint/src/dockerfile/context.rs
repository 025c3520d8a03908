//! The build context: the files a Dockerfile can COPY, and which of them
//! ends up at a path of the image.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::stage::Stage;

/// The files of a build context, by paths relative to its root (`/`
/// separated).
pub trait Context {
    /// The text of the file at `path`; `None` when there is none, or it is
    /// not text.
    fn read(&self, path: &str) -> Option<String>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &str) -> bool;
}

/// No context: a Dockerfile read from standard input.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoContext;

impl Context for NoContext {
    fn read(&self, _: &str) -> Option<String> {
        None
    }
    fn is_dir(&self, _: &str) -> bool {
        false
    }
}

/// Files in memory, by relative path: for tests and for tools that hold the
/// context themselves.
impl Context for BTreeMap<String, String> {
    fn read(&self, path: &str) -> Option<String> {
        self.get(path).cloned()
    }
    fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || self.keys().any(|k| k.starts_with(&format!("{path}/")))
    }
}

/// A directory on disk; nothing outside it is read.
#[derive(Clone, Debug)]
pub struct Dir(PathBuf);

/// Files larger than this are not scripts worth reading.
const MAX_SCRIPT: u64 = 1 << 20;

impl Dir {
    /// The context rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Dir {
        Dir(root.into())
    }

    /// The file at `rel`, if it is inside the context once symbolic links
    /// are followed (as the builder, which does not follow them out).
    fn path(&self, rel: &str) -> Option<PathBuf> {
        let rel = Path::new(rel);
        let plain = rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        let path = std::fs::canonicalize(self.0.join(rel)).ok()?;
        let root = std::fs::canonicalize(&self.0).ok()?;
        (plain && path.starts_with(root)).then_some(path)
    }
}

impl Context for Dir {
    fn read(&self, path: &str) -> Option<String> {
        let path = self.path(path)?;
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_SCRIPT {
            return None;
        }
        String::from_utf8(std::fs::read(path).ok()?).ok()
    }
    fn is_dir(&self, path: &str) -> bool {
        self.path(path).is_some_and(|p| p.is_dir())
    }
}

/// `a/./b/` as `a/b`; `None` for a path that leaves the context.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// `*` and `?` in a file name.
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The context file the stage copies to `target` (an absolute path of
/// the image), if the last copy there comes from the context.
pub fn source_of(target: &str, stage: &Stage, context: &dyn Context) -> Option<String> {
    let target = format!("/{}", normalize(target)?);
    for copy in stage.copies.iter().rev() {
        let as_dir = copy.dest.ends_with('/') || copy.sources.len() > 1;
        let dest = format!("/{}", normalize(&copy.dest)?);
        let dest = if dest == "/" { String::new() } else { dest };
        let inside = target.strip_prefix(&format!("{dest}/"));
        if !copy.from_context {
            // Another stage's file there, or maybe there: not ours to read.
            if target == dest || inside.is_some() {
                return None;
            }
            continue;
        }
        for source in copy.sources.iter().rev() {
            if let Some(found) = one_source(source, &target, &dest, inside, as_dir, context) {
                return Some(found);
            }
        }
    }
    None
}

fn one_source(
    source: &str,
    target: &str,
    dest: &str,
    inside: Option<&str>,
    as_dir: bool,
    context: &dyn Context,
) -> Option<String> {
    let source = normalize(source)?;
    let (parent, name) = match source.rsplit_once('/') {
        Some((p, n)) => (p.to_owned(), n.to_owned()),
        None => (String::new(), source.clone()),
    };
    if name.contains(['*', '?']) {
        // Files matching the pattern land in the destination directory.
        let file = inside.filter(|rest| !rest.contains('/'))?;
        let candidate = if parent.is_empty() {
            file.to_owned()
        } else {
            format!("{parent}/{file}")
        };
        return (glob_match(&name, file) && context.read(&candidate).is_some())
            .then_some(candidate);
    }
    if source.is_empty() || context.is_dir(&source) {
        // A directory's contents land in the destination.
        let rest = inside?;
        let candidate = if source.is_empty() {
            rest.to_owned()
        } else {
            format!("{source}/{rest}")
        };
        return context.read(&candidate).is_some().then_some(candidate);
    }
    context.read(&source)?;
    // A file lands at the destination, or in it when it is a directory
    // (named so, or already one in the image: `COPY app.sh /usr/local/bin`).
    let lands_at_dest = !as_dir && target == dest;
    let lands_inside = inside == Some(name.as_str());
    (lands_at_dest || lands_inside).then_some(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::{parse, stage::final_stage};

    fn files() -> BTreeMap<String, String> {
        [
            ("entrypoint.sh", "#!/bin/sh\n"),
            ("docker-entrypoint.sh", "#!/bin/sh\n"),
            ("scripts/start.sh", "#!/bin/sh\n"),
            ("bin/run-web.sh", "#!/bin/sh\n"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn source(dockerfile: &str, target: &str) -> Option<String> {
        let stage = final_stage(&parse(dockerfile))
            .expect("valid")
            .expect("a stage");
        source_of(target, &stage, &files())
    }

    #[test]
    fn files_directories_globs_and_workdir() {
        let d = "FROM alpine\nCOPY docker-entrypoint.sh /usr/local/bin/\n";
        assert_eq!(
            source(d, "/usr/local/bin/docker-entrypoint.sh").as_deref(),
            Some("docker-entrypoint.sh")
        );
        let d = "FROM alpine\nCOPY entrypoint.sh /entrypoint.sh\n";
        assert_eq!(
            source(d, "/entrypoint.sh").as_deref(),
            Some("entrypoint.sh")
        );
        let d = "FROM alpine\nCOPY entrypoint.sh /usr/local/bin\n";
        assert_eq!(
            source(d, "/usr/local/bin/entrypoint.sh").as_deref(),
            Some("entrypoint.sh")
        );
        let d = "FROM alpine\nWORKDIR /app\nCOPY . .\n";
        assert_eq!(
            source(d, "/app/scripts/start.sh").as_deref(),
            Some("scripts/start.sh")
        );
        let d = "FROM alpine\nCOPY scripts /opt/\n";
        assert_eq!(
            source(d, "/opt/start.sh").as_deref(),
            Some("scripts/start.sh")
        );
        let d = "FROM alpine\nCOPY bin/*.sh /usr/bin/\n";
        assert_eq!(
            source(d, "/usr/bin/run-web.sh").as_deref(),
            Some("bin/run-web.sh")
        );
    }

    #[test]
    fn another_stage_or_no_copy_is_not_the_context() {
        let d = "FROM alpine\nCOPY entrypoint.sh /entrypoint.sh\nCOPY --from=build /out/entrypoint.sh /\n";
        assert_eq!(source(d, "/entrypoint.sh"), None);
        assert_eq!(source("FROM alpine\n", "/entrypoint.sh"), None);
        let d = "FROM alpine\nCOPY ../entrypoint.sh /\n";
        assert_eq!(source(d, "/entrypoint.sh"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_context_is_not_left_through_links_or_dots() {
        let base = std::env::temp_dir().join(format!("lameduck-context-{}", std::process::id()));
        let root = base.join("ctx");
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::write(base.join("outside.sh"), "#!/bin/sh\nsecret\n").expect("write");
        std::fs::write(root.join("inside.sh"), "#!/bin/sh\nexec app\n").expect("write");
        let _ = std::os::unix::fs::symlink("../outside.sh", root.join("link.sh"));
        let dir = Dir::new(&root);
        assert!(dir.read("inside.sh").is_some());
        assert_eq!(dir.read("link.sh"), None);
        assert_eq!(dir.read("../outside.sh"), None);
        assert!(dir.is_dir("") || dir.is_dir("."));
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn patterns() {
        assert!(glob_match("*.sh", "run.sh"));
        assert!(glob_match("r?n*", "run.sh"));
        assert!(!glob_match("*.sh", "run.py"));
    }
}
