//! `.lameduck.yaml`: a project's linter settings, found upward from the
//! linted path as `.hadolint.yaml` and `.kube-linter.yaml` are.
//!
//! ```yaml
//! lint:
//!   disable: [LD201, LD104]
//!   fail-on: error
//! ```

use std::path::{Path, PathBuf};

use crate::finding::Severity;
use crate::rules;
use crate::yaml::parse_stream;

/// The settings of a `.lameduck.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it was found.
    pub path: Option<PathBuf>,
    /// Rules turned off.
    pub disable: Vec<String>,
    /// The severity that fails the run.
    pub fail_on: Option<Severity>,
}

impl Config {
    /// The nearest `.lameduck.yaml` in `start` or a directory above it;
    /// the default settings when there is none. An unreadable or invalid
    /// file is an error that names it.
    pub fn find(start: &Path) -> Result<Config, String> {
        let mut dir = if start.is_dir() {
            Some(start)
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
        if let Some(disable) = lint.get("disable") {
            for id in disable.items() {
                let id = id.as_str().unwrap_or_default();
                if rules::find(id).is_none() {
                    return Err(format!(
                        "{name}:{}:{}: no rule {id:?}",
                        disable.line, disable.column
                    ));
                }
                config.disable.push(id.to_owned());
            }
        }
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
