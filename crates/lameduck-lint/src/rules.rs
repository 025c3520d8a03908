//! Every rule the linter knows, with its page (`--explain ID`,
//! `docs/rules/ID.md`).

use crate::finding::{Rule, Severity};

/// Shell-form ENTRYPOINT or CMD.
pub const LD101: Rule = Rule {
    id: "LD101",
    severity: Severity::Error,
    title: "shell-form ENTRYPOINT or CMD: /bin/sh is PID 1 and does not pass SIGTERM on",
    page: include_str!("../../../docs/rules/LD101.md"),
};

/// `sh -c` in exec form without `exec`.
pub const LD102: Rule = Rule {
    id: "LD102",
    severity: Severity::Warning,
    title:
        "exec form wraps the app in `sh -c` without `exec`: the shell keeps SIGTERM from the app",
    page: include_str!("../../../docs/rules/LD102.md"),
};

/// A server whose graceful stop needs another signal.
pub const LD104: Rule = Rule {
    id: "LD104",
    severity: Severity::Warning,
    title: "the server stops gracefully on another signal than SIGTERM, and no STOPSIGNAL says so",
    page: include_str!("../../../docs/rules/LD104.md"),
};

/// All rules, in ID order.
pub const ALL: &[&Rule] = &[&LD101, &LD102, &LD104];

/// The rule with `id` (any case).
pub fn find(id: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.id.eq_ignore_ascii_case(id))
}
