//! Label selectors and int-or-percent values, read as Kubernetes reads them.

use std::collections::BTreeMap;

use crate::yaml::Node;

/// Labels by key.
pub type Labels = BTreeMap<String, String>;

/// The string entries of a mapping.
pub fn labels(node: Option<&Node>) -> Labels {
    node.map(Node::entries)
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
        .collect()
}

/// A `metav1.LabelSelector`: `matchLabels` and `matchExpressions`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    match_labels: Labels,
    expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    /// The selector at `node`; `None` when there is none (which selects
    /// nothing), or it has an operator Kubernetes does not know.
    pub fn of(node: Option<&Node>) -> Option<Selector> {
        let node = node?;
        let mut expressions = Vec::new();
        for e in node
            .get("matchExpressions")
            .map(Node::items)
            .unwrap_or_default()
        {
            let key = e.get("key").and_then(Node::as_str)?.to_owned();
            let operator = e.get("operator").and_then(Node::as_str)?.to_owned();
            if !matches!(
                operator.as_str(),
                "In" | "NotIn" | "Exists" | "DoesNotExist"
            ) {
                return None;
            }
            let values = e
                .get("values")
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            expressions.push((key, operator, values));
        }
        Some(Selector {
            match_labels: labels(node.get("matchLabels")),
            expressions,
        })
    }

    /// Whether it selects a pod with `labels` (an empty selector selects
    /// every pod).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(key, op, values)| {
                let value = labels.get(key);
                match op.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    _ => value.is_none(),
                }
            })
    }
}

/// An `IntOrString` count: `2` or `"25%"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Count {
    /// A number of pods.
    Int(u64),
    /// A percentage of the replicas.
    Percent(f64),
}

impl Count {
    /// The count at `node`, if it is a valid one.
    pub fn of(node: &Node) -> Option<Count> {
        let s = node.as_str()?.trim();
        match s.strip_suffix('%') {
            Some(p) => p
                .parse::<f64>()
                .ok()
                .filter(|p| p.is_finite() && *p >= 0.0)
                .map(Count::Percent),
            None => s.parse::<u64>().ok().map(Count::Int),
        }
    }

    /// Pods out of `replicas`, a percentage rounded up or down.
    pub fn scaled(self, replicas: u64, round_up: bool) -> u64 {
        match self {
            Count::Int(n) => n,
            Count::Percent(p) => {
                let exact = replicas as f64 * p / 100.0;
                // A hair of slack so that 30% of 10 is 3, not 3.0000000004.
                if round_up {
                    (exact - 1e-9).ceil().max(0.0) as u64
                } else {
                    (exact + 1e-9).floor() as u64
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_stream;

    fn node(text: &str) -> Node {
        parse_stream(text).expect("yaml").remove(0)
    }

    #[test]
    fn labels_and_expressions() {
        let s = Selector::of(Some(&node(
            "matchLabels: {app: web}\nmatchExpressions:\n  - {key: tier, operator: In, values: [front]}\n  - {key: canary, operator: DoesNotExist}\n",
        )))
        .expect("selector");
        let pod = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(s.matches(&pod(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&pod(&[("app", "web"), ("tier", "back")])));
        assert!(!s.matches(&pod(&[("app", "web"), ("tier", "front"), ("canary", "1")])));
        assert!(Selector::of(Some(&node("{}")))
            .expect("empty")
            .matches(&pod(&[])));
        assert_eq!(Selector::of(None), None);
    }

    #[test]
    fn counts_round_as_kubernetes_does() {
        let c = |s: &str| Count::of(&node(s)).expect("count");
        assert_eq!(c("25%").scaled(3, false), 0);
        assert_eq!(c("25%").scaled(3, true), 1);
        assert_eq!(c("30%").scaled(10, true), 3);
        assert_eq!(c("100%").scaled(4, false), 4);
        assert_eq!(c("2").scaled(10, true), 2);
        assert_eq!(Count::of(&node("x%")), None);
        assert_eq!(Count::of(&node("-1")), None);
    }
}
