//! The webhook's Prometheus metrics, all prefixed `lameduck_webhook_`.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::review::Outcome;

/// Reviews by outcome and their latency, certificate reloads, failed TLS
/// handshakes.
///
/// Per-label series are looked up once here: a review only touches atomics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: [Counter; Outcome::ALL.len()],
    latency: Histogram,
    reloads: [Counter; 2],
    handshake_errors: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

// === impl Metrics ===

impl Metrics {
    /// Registers every series, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lameduck_webhook");
        let reviews = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reviews",
            "Admission reviews answered, by outcome: injected, skipped (not opted in, opted out, injected already), not_understood (admitted unchanged with a warning), bad_request (HTTP 4xx)",
            reviews.clone(),
        );
        // From 100µs to about 1.6s: a review takes well under a millisecond,
        // and the API server gives up at the webhook's timeoutSeconds.
        let latency = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5,
        ]);
        registry.register_with_unit(
            "review_duration",
            "Time from a review's request head to its answer, body read included",
            Unit::Seconds,
            latency.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads after its files changed, by result: ok, or error (the previous certificate stayed in use)",
            reloads.clone(),
        );
        let handshake_errors = Counter::default();
        registry.register(
            "tls_handshake_errors",
            "Connections that failed the TLS handshake (or spoke plain HTTP)",
            handshake_errors.clone(),
        );
        Metrics {
            reviews: Outcome::ALL.map(|o| {
                reviews
                    .get_or_create(&OutcomeLabels {
                        outcome: o.as_str(),
                    })
                    .clone()
            }),
            latency,
            reloads: ["ok", "error"]
                .map(|result| reloads.get_or_create(&ResultLabels { result }).clone()),
            handshake_errors,
            registry,
        }
    }

    /// Counts a review and its time.
    pub fn reviewed(&self, outcome: Outcome, took: Duration) {
        let index = Outcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or_default();
        self.reviews[index].inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// Counts a certificate reload.
    pub fn reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].inc();
    }

    /// Counts a failed handshake.
    pub fn handshake_failed(&self) {
        self.handshake_errors.inc();
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
