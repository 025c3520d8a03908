//! What the linter reports: a rule broken at a place in a file.

use std::fmt;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing is lost by it alone.
    Info,
    /// Loses requests in some rollouts.
    Warning,
    /// Loses requests in every rollout.
    Error,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(Severity::Error),
            "warning" => Ok(Severity::Warning),
            "info" => Ok(Severity::Info),
            _ => Err(format!(
                "unknown severity {s:?}: use error, warning or info"
            )),
        }
    }
}

/// A rule: a stable ID, a severity and the page that explains it.
#[derive(Debug)]
pub struct Rule {
    /// The stable ID, `LD101`.
    pub id: &'static str,
    /// How bad breaking it is.
    pub severity: Severity,
    /// One line: what is wrong.
    pub title: &'static str,
    /// The page: why, a bad and a good example, the fact behind it.
    pub page: &'static str,
}

// === impl Rule ===

impl Rule {
    /// Whether the rule runs unless disabled; the others run only when
    /// enabled ([`crate::rules::OFF_BY_DEFAULT`]).
    pub fn enabled_by_default(&self) -> bool {
        !crate::rules::OFF_BY_DEFAULT.contains(&self.id)
    }
}

/// One rule broken at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule's ID.
    pub rule: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// The file, as given or found.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong here and the fix, in one line.
    pub message: String,
}
