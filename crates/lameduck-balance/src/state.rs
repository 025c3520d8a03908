//! What an endpoint's EndpointSlice conditions mean for the balancer.
//!
//! discovery/v1 leaves each condition optional and says how to read a nil
//! one: `ready` nil is true, `serving` nil defers to `ready` (servers older
//! than 1.22 never set it), `terminating` nil is false. kube-proxy reads
//! them the same way (KEP-1669).

use serde::Serialize;

/// The three conditions of one endpoint, as the source gave them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Conditions {
    /// `conditions.ready`.
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
}

/// What the balancer does with an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Gets new connections.
    Ready,
    /// Serving and terminating: weight 0. No new connections unless no
    /// endpoint is ready (the fallback); established ones carry on.
    Terminating,
    /// Neither ready nor serving-and-terminating (or failing its health
    /// check): no new connections; established ones run on, bounded by the
    /// drain timeout.
    NotServing,
    /// No longer in the source: as `NotServing`, and forgotten once its last
    /// connection closed.
    Gone,
}

impl State {
    /// Every state, in the order of the metrics.
    pub const ALL: [State; 4] = [
        State::Ready,
        State::Terminating,
        State::NotServing,
        State::Gone,
    ];

    /// The name in logs, metrics and `/endpoints`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Terminating => "terminating",
            State::NotServing => "not_serving",
            State::Gone => "gone",
        }
    }

    /// Whether established connections are bounded by the drain timeout.
    pub fn is_leaving(self) -> bool {
        matches!(self, State::NotServing | State::Gone)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Conditions ===

impl Conditions {
    /// All three conditions given.
    pub fn new(ready: bool, serving: bool, terminating: bool) -> Self {
        Conditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }
    }

    /// `ready`, nil read as true.
    pub fn ready(&self) -> bool {
        self.ready.unwrap_or(true)
    }

    /// `serving`, nil read as the value of `ready`.
    pub fn serving(&self) -> bool {
        self.serving.unwrap_or_else(|| self.ready())
    }

    /// `terminating`, nil read as false.
    pub fn terminating(&self) -> bool {
        self.terminating.unwrap_or(false)
    }

    /// The state these conditions put an endpoint in. A ready endpoint gets
    /// new connections even when terminating (only a Service with
    /// `publishNotReadyAddresses` publishes such), as kube-proxy does.
    pub fn state(&self) -> State {
        if self.ready() {
            State::Ready
        } else if self.serving() && self.terminating() {
            State::Terminating
        } else {
            State::NotServing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nil_conditions_read_as_discovery_v1_says() {
        assert_eq!(Conditions::default().state(), State::Ready);
        // An older server: terminating, ready false, serving unset.
        let old = Conditions {
            ready: Some(false),
            serving: None,
            terminating: Some(true),
        };
        assert!(!old.serving(), "nil serving defers to ready");
        assert_eq!(old.state(), State::NotServing);
        let draining = Conditions {
            ready: Some(false),
            serving: Some(true),
            terminating: None,
        };
        assert!(!draining.terminating(), "nil terminating is false");
        assert_eq!(draining.state(), State::NotServing);
    }

    #[test]
    fn each_combination_has_its_state() {
        assert_eq!(Conditions::new(true, true, false).state(), State::Ready);
        assert_eq!(
            Conditions::new(false, true, true).state(),
            State::Terminating
        );
        assert_eq!(
            Conditions::new(false, false, true).state(),
            State::NotServing
        );
        assert_eq!(
            Conditions::new(false, false, false).state(),
            State::NotServing
        );
        // publishNotReadyAddresses: ready wins.
        assert_eq!(Conditions::new(true, true, true).state(), State::Ready);
    }
}
