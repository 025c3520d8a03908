//! The proxy's Prometheus metrics, all prefixed `lameduck_`.

use std::sync::atomic::AtomicU64;

use lameduck_core::Phase;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters and gauges of one proxy.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    phase: Family<PhaseLabels, Gauge>,
    connections: Family<ProtocolLabels, Gauge>,
    in_flight: Family<ProtocolLabels, Gauge>,
    requests: Family<OutcomeLabels, Counter>,
    cut: Family<ProtocolLabels, Counter>,
    drain_seconds: Gauge<f64, AtomicU64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// How a request through the proxy ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered 1xx to 3xx.
    Success,
    /// The upstream answered 4xx.
    ClientError,
    /// The upstream answered 5xx.
    ServerError,
    /// The upstream could not be reached or failed mid-request: 502.
    UpstreamError,
    /// The request was refused before reaching the upstream (400, 501).
    Rejected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Rejected => "rejected",
        }
    }
}

/// Keeps a gauge raised while it lives.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

// === impl Metrics ===

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lameduck");
        let phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "phase",
            "Current drain phase (1 for the current one)",
            phase.clone(),
        );
        let connections = Family::<ProtocolLabels, Gauge>::default();
        registry.register(
            "open_connections",
            "Client connections open, by protocol",
            connections.clone(),
        );
        let in_flight = Family::<ProtocolLabels, Gauge>::default();
        registry.register(
            "in_flight_requests",
            "Requests in flight, by protocol",
            in_flight.clone(),
        );
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register("requests", "Requests handled, by outcome", requests.clone());
        let cut = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "connections_closed_by_force",
            "Connections still open at the drain deadline and closed by lameduck",
            cut.clone(),
        );
        let drain_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "drain_duration_seconds",
            "How long the last drain took, from the trigger to idle or the deadline",
            drain_seconds.clone(),
        );
        Metrics {
            registry,
            phase,
            connections,
            in_flight,
            requests,
            cut,
            drain_seconds,
        }
    }

    /// Counts an open connection of `protocol` until the guard drops.
    pub fn connection(&self, protocol: &'static str) -> GaugeGuard {
        let g = self
            .connections
            .get_or_create(&ProtocolLabels { protocol })
            .clone();
        g.inc();
        GaugeGuard(g)
    }

    /// Counts a request in flight until the guard drops.
    pub fn request(&self, protocol: &'static str) -> GaugeGuard {
        let g = self
            .in_flight
            .get_or_create(&ProtocolLabels { protocol })
            .clone();
        g.inc();
        GaugeGuard(g)
    }

    /// Counts a finished request.
    pub fn outcome(&self, outcome: Outcome) {
        self.requests
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Counts a connection cut at the deadline.
    pub fn cut(&self, protocol: &'static str) {
        self.cut.get_or_create(&ProtocolLabels { protocol }).inc();
    }

    /// Records the length of the drain.
    pub fn drained(&self, seconds: f64) {
        self.drain_seconds.set(seconds);
    }

    /// The metrics in Prometheus' text format (OpenMetrics flavour).
    pub fn render(&self, current: Phase) -> String {
        for phase in Phase::ALL {
            self.phase
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str(),
                })
                .set(i64::from(phase == current));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
