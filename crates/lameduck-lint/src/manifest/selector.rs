//! Labels and int-or-percent values, read as Kubernetes reads them.

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
