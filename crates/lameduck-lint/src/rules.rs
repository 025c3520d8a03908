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

/// An entrypoint script that starts the app without `exec`.
pub const LD103: Rule = Rule {
    id: "LD103",
    severity: Severity::Error,
    title: "the entrypoint script starts the app without `exec`: end it with `exec app`",
    page: include_str!("../../../docs/rules/LD103.md"),
};

/// A server whose graceful stop needs another signal.
pub const LD104: Rule = Rule {
    id: "LD104",
    severity: Severity::Warning,
    title: "the server stops gracefully on another signal than SIGTERM, and no STOPSIGNAL says so",
    page: include_str!("../../../docs/rules/LD104.md"),
};

/// Several processes started with no init as PID 1.
pub const LD105: Rule = Rule {
    id: "LD105",
    severity: Severity::Warning,
    title: "the command starts several processes with no init: put `lameduck run --` or tini in ENTRYPOINT",
    page: include_str!("../../../docs/rules/LD105.md"),
};

/// A serving container with no protection against the endpoint race.
pub const LD201: Rule = Rule {
    id: "LD201",
    severity: Severity::Warning,
    title: "a serving container stops at once while its endpoint is still being removed",
    page: include_str!("../../../docs/rules/LD201.md"),
};

/// preStop and drain delay do not fit in the grace period.
pub const LD202: Rule = Rule {
    id: "LD202",
    severity: Severity::Error,
    title: "preStop sleep and drain delay use up terminationGracePeriodSeconds",
    page: include_str!("../../../docs/rules/LD202.md"),
};

/// A preStop `sleep` exec in an image without a shell.
pub const LD203: Rule = Rule {
    id: "LD203",
    severity: Severity::Error,
    title: "preStop runs `sleep` in an image that has none",
    page: include_str!("../../../docs/rules/LD203.md"),
};

/// `sh -c` without `exec` in a container's command.
pub const LD204: Rule = Rule {
    id: "LD204",
    severity: Severity::Warning,
    title: "the container's command wraps the app in `sh -c` without `exec`",
    page: include_str!("../../../docs/rules/LD204.md"),
};

/// `lameduck run --grace-period` beyond the pod's.
pub const LD205: Rule = Rule {
    id: "LD205",
    severity: Severity::Error,
    title: "`lameduck run --grace-period` is longer than what the pod's grace period leaves",
    page: include_str!("../../../docs/rules/LD205.md"),
};

/// A Deployment behind a Service with `strategy: Recreate`.
pub const LD206: Rule = Rule {
    id: "LD206",
    severity: Severity::Warning,
    title: "a Deployment behind a Service is rolled out with `strategy: Recreate`",
    page: include_str!("../../../docs/rules/LD206.md"),
};

/// A rolling update that may take every pod down.
pub const LD207: Rule = Rule {
    id: "LD207",
    severity: Severity::Warning,
    title:
        "a rolling update may take every pod behind a Service down at once: set maxUnavailable: 0",
    page: include_str!("../../../docs/rules/LD207.md"),
};

/// Several replicas behind a Service with no PodDisruptionBudget.
pub const LD208: Rule = Rule {
    id: "LD208",
    severity: Severity::Info,
    title: "replicas behind a Service have no PodDisruptionBudget: add one with maxUnavailable: 1",
    page: include_str!("../../../docs/rules/LD208.md"),
};

/// A PodDisruptionBudget that allows no eviction.
pub const LD209: Rule = Rule {
    id: "LD209",
    severity: Severity::Warning,
    title: "a PodDisruptionBudget allows no eviction and blocks node drains: use maxUnavailable: 1",
    page: include_str!("../../../docs/rules/LD209.md"),
};

/// A grace period that a node shutdown cuts short.
pub const LD210: Rule = Rule {
    id: "LD210",
    severity: Severity::Info,
    title: "terminationGracePeriodSeconds is longer than a node shutdown allows: make the app stop within 30s too",
    page: include_str!("../../../docs/rules/LD210.md"),
};

/// Direct-to-pod load balancing without graceful shutdown.
pub const LD301: Rule = Rule {
    id: "LD301",
    severity: Severity::Warning,
    title: "a direct-to-pod load balancer cuts established connections of ending pods",
    page: include_str!("../../../docs/rules/LD301.md"),
};

/// A deregistration delay longer than the pods live.
pub const LD302: Rule = Rule {
    id: "LD302",
    severity: Severity::Error,
    title: "the load balancer's deregistration delay outlasts the pods' grace period",
    page: include_str!("../../../docs/rules/LD302.md"),
};

/// Pods that stop serving before the deregistration delay is over.
pub const LD303: Rule = Rule {
    id: "LD303",
    severity: Severity::Warning,
    title: "pods stop serving before the load balancer's deregistration delay ends: sleep that long in preStop",
    page: include_str!("../../../docs/rules/LD303.md"),
};

/// All rules, in ID order.
pub const ALL: &[&Rule] = &[
    &LD101, &LD102, &LD103, &LD104, &LD105, &LD201, &LD202, &LD203, &LD204, &LD205, &LD206, &LD207,
    &LD208, &LD209, &LD210, &LD301, &LD302, &LD303,
];

/// The rules that run only when enabled (`--enable ID`, `enable:` in
/// `.lameduck.yaml`), as clippy's pedantic lints: checks too noisy or too
/// particular for every project. None yet: every rule above is on by
/// default.
pub const OFF_BY_DEFAULT: &[&str] = &[];

/// The IDs of all rules, in ID order.
pub fn ids() -> Vec<&'static str> {
    ALL.iter().map(|r| r.id).collect()
}

/// The rule with `id` (any case).
pub fn find(id: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|r| r.id.eq_ignore_ascii_case(id))
}
