//! `.lameduck.yaml`: a project's linter settings, found upward from the
//! linted path as `.hadolint.yaml` and `.kube-linter.yaml` are.
//!
//! ```yaml
//! lint:
//!   disable: [LD201, LD104]
//!   enable: [LD999]         # a rule that is off by default
//!   fail-on: error
//! ```

use std::path::{Path, PathBuf};

use crate::finding::Severity;
use crate::rules;
use crate::yaml::{parse_stream, Node};

/// The settings of a `.lameduck.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it was found.
    pub path: Option<PathBuf>,
    /// Rules turned off.
    pub disable: Vec<String>,
    /// Rules turned on: off by default, or off in a file above.
    pub enable: Vec<String>,
    /// The severity that fails the run.
    pub fail_on: Option<Severity>,
}

impl Config {
    /// The nearest `.lameduck.yaml` in `start` or a directory above it;
    /// the default settings when there is none. An unreadable or invalid
    /// file is an error that names it.
    pub fn find(start: &Path) -> Result<Config, String> {
        // `Dockerfile` has the parent "" and no grandparent: climb from
        // the absolute path, or the directories above the current one are
        // never looked at.
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        let mut dir = if start.is_dir() {
            Some(start.as_path())
        } else {
            start.parent()
        };
        while let Some(d) = dir {
            let candidate = d.join(".lameduck.yaml");
            if candidate.is_file() {
                return Config::read(&candidate);
            }
            dir = d.parent();
        }
        Ok(Config::default())
    }

    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<Config, String> {
        let name = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        let docs = parse_stream(&text).map_err(|e| format!("{name}:{e}"))?;
        let mut config = Config {
            path: Some(path.to_path_buf()),
            ..Config::default()
        };
        let Some(lint) = docs.first().and_then(|d| d.get("lint")) else {
            return Ok(config);
        };
        let disable = rule_ids(&name, lint.get("disable"))?;
        let enable = rule_ids(&name, lint.get("enable"))?;
        if let Some((id, line, column)) = enable
            .iter()
            .find(|(id, ..)| disable.iter().any(|(d, ..)| d == id))
        {
            return Err(format!(
                "{name}:{line}:{column}: {id} is both disabled and enabled: keep one"
            ));
        }
        config.disable = disable.into_iter().map(|(id, ..)| id).collect();
        config.enable = enable.into_iter().map(|(id, ..)| id).collect();
        if let Some(fail_on) = lint.get("fail-on") {
            let value = fail_on.as_str().unwrap_or_default();
            config.fail_on = Some(
                value
                    .parse()
                    .map_err(|e| format!("{name}:{}:{}: {e}", fail_on.line, fail_on.column))?,
            );
        }
        Ok(config)
    }
}

/// The rule IDs of a `disable:` or `enable:` list, upper-cased, with
/// their places; each checked: an unknown ID is an error that names the
/// file, line and column.
fn rule_ids(
    name: &impl std::fmt::Display,
    list: Option<&Node>,
) -> Result<Vec<(String, usize, usize)>, String> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    // `disable: LD101` is a list of one; `disable:` (null) is empty.
    let items = match list.as_str() {
        Some("" | "~" | "null") => &[],
        Some(_) => std::slice::from_ref(list),
        None if !list.entries().is_empty() => {
            return Err(format!(
                "{name}:{}:{}: expected a list of rule IDs, like [LD101, LD201]",
                list.line, list.column
            ))
        }
        None => list.items(),
    };
    let mut ids = Vec::new();
    for item in items {
        let Some(id) = item.as_str().filter(|id| rules::find(id).is_some()) else {
            let what = item.as_str().unwrap_or("(not a rule ID)");
            return Err(format!(
                "{name}:{}:{}: no rule {what:?}; the rules are {}",
                item.line,
                item.column,
                rules::ids().join(", ")
            ));
        };
        ids.push((id.to_ascii_uppercase(), item.line, item.column));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join(".lameduck.yaml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Config::read(&path).map_err(|e| e.replace(&dir.path().display().to_string(), "DIR"))
    }

    #[test]
    fn enable_and_disable_as_lists_or_single_ids() {
        let config = read("lint:\n  disable: [ld101, LD102]\n  enable: LD104\n").expect("valid");
        assert_eq!(config.disable, ["LD101", "LD102"]);
        assert_eq!(config.enable, ["LD104"]);
        let config = read("lint:\n  disable:\n  fail-on: error\n").expect("valid");
        assert!(config.disable.is_empty() && config.fail_on == Some(Severity::Error));
    }

    #[test]
    fn bad_lists_name_the_file_line_and_column() {
        let e = read("lint:\n  enable: [LD101, LD9]\n").expect_err("unknown");
        assert!(
            e.starts_with("DIR/.lameduck.yaml:2:19: no rule \"LD9\""),
            "{e}"
        );
        let e = read("lint:\n  disable: LD101\n  enable: ld101\n").expect_err("both");
        assert_eq!(
            e,
            "DIR/.lameduck.yaml:3:11: LD101 is both disabled and enabled: keep one"
        );
        let e = read("lint:\n  enable: {LD101: true}\n").expect_err("a map");
        assert!(e.contains(":2:11: expected a list of rule IDs"), "{e}");
    }
}
