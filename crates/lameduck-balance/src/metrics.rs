//! The balancer's Prometheus metrics, all prefixed `lameduck_balance_`:
//! counters of the whole balancer, and per endpoint its state, open
//! connections, connects and ejections, read off the set at each scrape.

use lameduck_core::Phase;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::set::EndpointSet;
use crate::state::State;

/// Counters of one balancer. The connection path only touches atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Client connections accepted.
    pub connections: Counter,
    /// Client connections open now.
    pub open: Gauge,
    /// Connects to an endpoint that failed and were tried again on another.
    pub retries: Counter,
    /// Client connections closed because every connect failed.
    pub connect_failures: Counter,
    /// Client connections closed because no endpoint was usable.
    pub no_endpoint: Counter,
    /// Endpoints passed over after a failed connect.
    pub ejections: Counter,
    /// Connections closed by `--drain-timeout` after their endpoint left.
    pub closed_at_drain_timeout: Counter,
    /// Connections reset because their endpoint left (reset policy).
    pub reset_at_leave: Counter,
    /// Connections cut at the deadline of the balancer's own drain.
    pub cut_at_deadline: Counter,
    /// Sets the source delivered and the balancer took.
    pub source_reloads: Counter,
    /// Source reads that failed (the last good set stayed).
    pub source_errors: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    endpoint: String,
    name: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

// === impl Metrics ===

impl Metrics {
    /// The Prometheus text of these counters and of `set` now.
    pub fn render(&self, set: &EndpointSet, phase: Phase) -> String {
        let mut registry = Registry::with_prefix("lameduck_balance");
        let counters: [(&str, &str, &Counter); 10] = [
            ("connections", "Client connections accepted.", &self.connections),
            ("connect_retries", "Connects that failed before any client byte went upstream and were tried again on another endpoint.", &self.retries),
            ("connect_failures", "Client connections closed because every connect failed.", &self.connect_failures),
            ("no_endpoint", "Client connections closed because no endpoint was ready or serving.", &self.no_endpoint),
            ("ejections", "Endpoints passed over for a while after a failed connect.", &self.ejections),
            ("closed_at_drain_timeout", "Connections closed by --drain-timeout after their endpoint left.", &self.closed_at_drain_timeout),
            ("reset_at_leave", "Connections reset because their endpoint left (reset policy).", &self.reset_at_leave),
            ("cut_at_deadline", "Connections cut at the deadline of the balancer's own drain.", &self.cut_at_deadline),
            ("source_reloads", "Endpoint sets read from the source and taken.", &self.source_reloads),
            ("source_errors", "Source reads that failed; the last good set stayed in use.", &self.source_errors),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "open_connections",
            "Client connections open now.",
            self.open.clone(),
        );
        let phase_family = Family::<PhaseLabels, Gauge>::default();
        for p in Phase::ALL {
            phase_family
                .get_or_create(&PhaseLabels { phase: p.as_str() })
                .set(i64::from(p == phase));
        }
        registry.register(
            "phase",
            "The balancer's own drain phase (1 for the current one).",
            phase_family,
        );
        let fallback = Gauge::<i64>::default();
        fallback.set(i64::from(set.is_in_fallback()));
        registry.register(
            "fallback",
            "1 while no endpoint is ready and new connections go to serving terminating ones.",
            fallback,
        );
        let synced = Gauge::<i64>::default();
        synced.set(i64::from(set.is_synced()));
        registry.register(
            "source_synced",
            "1 once the source delivered its first endpoint set.",
            synced,
        );

        let state = Family::<StateLabels, Gauge>::default();
        let open = Family::<EndpointLabels, Gauge>::default();
        let ejected = Family::<EndpointLabels, Gauge>::default();
        let given = Family::<EndpointLabels, Counter>::default();
        let failures = Family::<EndpointLabels, Counter>::default();
        let ejections = Family::<EndpointLabels, Counter>::default();
        let timed_out = Family::<EndpointLabels, Counter>::default();
        let in_flight = Family::<EndpointLabels, Gauge>::default();
        let requests = Family::<EndpointLabels, Counter>::default();
        for v in set.views() {
            let labels = EndpointLabels {
                endpoint: v.address.to_string(),
                name: v.name.clone().unwrap_or_default(),
            };
            for s in State::ALL {
                state
                    .get_or_create(&StateLabels {
                        endpoint: labels.endpoint.clone(),
                        name: labels.name.clone(),
                        state: s.as_str(),
                    })
                    .set(i64::from(s == v.state));
            }
            open.get_or_create(&labels)
                .set(i64::try_from(v.open_connections).unwrap_or(i64::MAX));
            ejected.get_or_create(&labels).set(i64::from(v.ejected));
            given.get_or_create(&labels).inc_by(v.connections);
            failures.get_or_create(&labels).inc_by(v.connect_failures);
            ejections.get_or_create(&labels).inc_by(v.ejections);
            timed_out
                .get_or_create(&labels)
                .inc_by(v.closed_at_drain_timeout);
            in_flight
                .get_or_create(&labels)
                .set(i64::try_from(v.in_flight_requests).unwrap_or(i64::MAX));
            requests.get_or_create(&labels).inc_by(v.requests);
        }
        registry.register(
            "endpoint_state",
            "Each endpoint's state (1 for the current one): ready, terminating, not_serving, gone.",
            state,
        );
        registry.register(
            "endpoint_open_connections",
            "Connections open to each endpoint.",
            open,
        );
        registry.register(
            "endpoint_ejected",
            "1 while an endpoint is passed over after a failed connect.",
            ejected,
        );
        registry.register(
            "endpoint_connections",
            "New connections each endpoint was given.",
            given,
        );
        registry.register(
            "endpoint_connect_failures",
            "Connects to each endpoint that failed.",
            failures,
        );
        registry.register(
            "endpoint_ejections",
            "Times each endpoint was passed over after a failed connect.",
            ejections,
        );
        registry.register(
            "endpoint_closed_at_drain_timeout",
            "Connections to each endpoint closed by --drain-timeout.",
            timed_out,
        );
        registry.register(
            "endpoint_in_flight_requests",
            "HTTP mode: requests in flight to each endpoint.",
            in_flight,
        );
        registry.register(
            "endpoint_requests",
            "HTTP mode: requests each endpoint was given.",
            requests,
        );
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
