//! Which rules a run applies: those on by default, less what is disabled,
//! plus what is enabled; the command line over `.lameduck.yaml`, as
//! clippy's `-A`/`-W` over `[lints]` and hadolint's flags over its file.
//!
//! ```
//! use lameduck_lint::select::RuleSet;
//!
//! let mut rules = RuleSet::defaults();
//! rules.apply(&[], &["LD101".to_owned()]); // .lameduck.yaml: disable: [LD101]
//! assert!(!rules.is_on("LD101"));
//! rules.apply(&["ld101".to_owned()], &[]); // --enable LD101
//! assert!(rules.is_on("LD101"));
//! ```

use crate::rules;

/// The set of rules on in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSet {
    on: Vec<&'static str>,
    known: Vec<&'static str>,
}

// === impl RuleSet ===

impl RuleSet {
    /// Every rule that is [enabled by default](crate::Rule::enabled_by_default).
    pub fn defaults() -> RuleSet {
        RuleSet::from_catalog(rules::ALL.iter().map(|r| (r.id, r.enabled_by_default())))
    }

    /// The rules of `catalog`, each with whether it is on by default.
    pub fn from_catalog(catalog: impl IntoIterator<Item = (&'static str, bool)>) -> RuleSet {
        let mut set = RuleSet {
            on: Vec::new(),
            known: Vec::new(),
        };
        for (id, on) in catalog {
            set.known.push(id);
            if on {
                set.on.push(id);
            }
        }
        set
    }

    /// Turns off the rules of `disable`, then on those of `enable` (IDs in
    /// any case; unknown ones are left to [`check_ids`]). One level of
    /// settings, applied after the levels below it.
    pub fn apply(&mut self, enable: &[String], disable: &[String]) {
        self.on
            .retain(|id| !disable.iter().any(|d| d.eq_ignore_ascii_case(id)));
        for id in enable {
            if let Some(known) = self.known.iter().find(|k| k.eq_ignore_ascii_case(id)) {
                if !self.on.contains(known) {
                    self.on.push(known);
                }
            }
        }
    }

    /// Whether the rule `id` runs.
    pub fn is_on(&self, id: &str) -> bool {
        self.on.iter().any(|on| on.eq_ignore_ascii_case(id))
    }
}

/// Checks the rule IDs given to `--enable` and `--disable`: each must name
/// a rule, and none may be in both. The error is one line for a usage
/// error.
pub fn check_ids(enable: &[String], disable: &[String]) -> Result<(), String> {
    for (flag, ids) in [("--enable", enable), ("--disable", disable)] {
        if let Some(id) = ids.iter().find(|id| rules::find(id).is_none()) {
            return Err(format!(
                "{flag} {id}: no such rule; the rules are {}",
                rules::ids().join(", ")
            ));
        }
    }
    if let Some(id) = enable
        .iter()
        .find(|id| disable.iter().any(|d| d.eq_ignore_ascii_case(id)))
    {
        return Err(format!(
            "--enable {id} and --disable {id} contradict each other: give one"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_rule_off_by_default_runs_only_when_enabled() {
        let mut set = RuleSet::from_catalog([("LD001", true), ("LD002", false)]);
        assert!(set.is_on("LD001") && !set.is_on("LD002"));
        set.apply(&ids(&["ld002"]), &[]);
        assert!(set.is_on("LD002"));
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let mut set = RuleSet::from_catalog([("LD001", true), ("LD002", false)]);
        // .lameduck.yaml: disable LD001, enable LD002.
        set.apply(&ids(&["LD002"]), &ids(&["LD001"]));
        assert!(!set.is_on("LD001") && set.is_on("LD002"));
        // --enable LD001 --disable LD002.
        set.apply(&ids(&["LD001"]), &ids(&["LD002"]));
        assert!(set.is_on("LD001") && !set.is_on("LD002"));
    }

    #[test]
    fn every_rule_is_on_by_default_today() {
        let set = RuleSet::defaults();
        for rule in rules::ALL {
            assert!(set.is_on(rule.id), "{}", rule.id);
        }
    }

    #[test]
    fn unknown_and_contradicting_ids_are_usage_errors() {
        let e = check_ids(&ids(&["LD999"]), &[]).expect_err("unknown");
        assert!(
            e.starts_with("--enable LD999: no such rule; the rules are LD101"),
            "{e}"
        );
        let e = check_ids(&[], &ids(&["nope"])).expect_err("unknown");
        assert!(e.starts_with("--disable nope: no such rule"), "{e}");
        let e = check_ids(&ids(&["LD101"]), &ids(&["ld101"])).expect_err("both");
        assert!(e.contains("contradict"), "{e}");
        assert_eq!(check_ids(&ids(&["ld101"]), &ids(&["LD102"])), Ok(()));
    }
}
