use std::fmt;

/// Where a server is in the drain sequence.
///
/// The sequence only moves forward:
/// `Serving → Draining → Closing → Stopping → Exited`. A phase may be skipped
/// (an app that exits on its own goes from `Serving` straight to `Stopping`),
/// never revisited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Normal work: ready, accepting.
    Serving,
    /// The stop was asked for. Readiness fails, but listeners still accept,
    /// because balancers keep sending until they notice (the drain delay).
    Draining,
    /// The delay is over: listeners are closed, in-flight work finishes.
    Closing,
    /// Everything is idle or the deadline came: the app is being stopped.
    Stopping,
    /// Gone.
    Exited,
}

// === impl Phase ===

impl Phase {
    /// All phases, in the order they are passed through.
    pub const ALL: [Phase; 5] = [
        Phase::Serving,
        Phase::Draining,
        Phase::Closing,
        Phase::Stopping,
        Phase::Exited,
    ];

    /// The lower-case name used in logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Serving => "serving",
            Phase::Draining => "draining",
            Phase::Closing => "closing",
            Phase::Stopping => "stopping",
            Phase::Exited => "exited",
        }
    }

    /// Whether a readiness probe should pass in this phase.
    ///
    /// Only `Serving` is ready: from the moment the stop is asked for, the
    /// balancers must be told to move traffic elsewhere.
    pub fn is_ready(self) -> bool {
        self == Phase::Serving
    }

    /// Whether listeners still accept new connections in this phase.
    pub fn accepts(self) -> bool {
        matches!(self, Phase::Serving | Phase::Draining)
    }

    /// Whether the stop has been asked for.
    pub fn is_stopping(self) -> bool {
        self != Phase::Serving
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_ordered_as_the_sequence() {
        let mut sorted = Phase::ALL;
        sorted.sort();
        assert_eq!(sorted, Phase::ALL);
    }

    #[test]
    fn only_serving_is_ready_and_only_the_first_two_accept() {
        let ready: Vec<_> = Phase::ALL.iter().filter(|p| p.is_ready()).collect();
        assert_eq!(ready, [&Phase::Serving]);
        let accepting: Vec<_> = Phase::ALL.iter().filter(|p| p.accepts()).collect();
        assert_eq!(accepting, [&Phase::Serving, &Phase::Draining]);
    }
}
