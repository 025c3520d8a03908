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
///
/// The per-label series are looked up once here; the request path only
/// touches atomics, never the families' locks.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    phase: Family<PhaseLabels, Gauge>,
    connections: [Gauge; Protocol::ALL.len()],
    accepted: [Counter; Protocol::ALL.len()],
    in_flight: [Gauge; Protocol::ALL.len()],
    requests: [Counter; Outcome::ALL.len()],
    cut: [Counter; Protocol::ALL.len()],
    upstream_connections: Gauge,
    drain_seconds: Gauge<f64, AtomicU64>,
    /// Connections each worker accepted, by worker index.
    worker_accepted: Vec<Counter>,
}

/// What a connection or request is, for metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0 or HTTP/1.1.
    Http1,
    /// HTTP/2 (not gRPC).
    Http2,
    /// gRPC over HTTP/2.
    Grpc,
    /// A WebSocket tunnel.
    WebSocket,
    /// Another upgraded connection.
    Upgrade,
    /// A TCP session of `--mode tcp`.
    Tcp,
}

impl Protocol {
    const ALL: [Protocol; 6] = [
        Protocol::Http1,
        Protocol::Http2,
        Protocol::Grpc,
        Protocol::WebSocket,
        Protocol::Upgrade,
        Protocol::Tcp,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "http1",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
            Protocol::WebSocket => "websocket",
            Protocol::Upgrade => "upgrade",
            Protocol::Tcp => "tcp",
        }
    }
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
struct WorkerLabels {
    worker: String,
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
    /// The upstream did not answer within `--upstream-timeout`: 504.
    UpstreamTimeout,
    /// Every upstream connection stayed busy through the connect timeout
    /// (`--max-upstream-connections`): 503.
    Overloaded,
    /// The request was refused before reaching the upstream: malformed
    /// (400), a head too large (431), CONNECT (501).
    Rejected,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::UpstreamError,
        Outcome::UpstreamTimeout,
        Outcome::Overloaded,
        Outcome::Rejected,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamTimeout => "upstream_timeout",
            Outcome::Overloaded => "overloaded",
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
    /// Registers every metric, for one worker.
    pub fn new() -> Self {
        Metrics::with_workers(1)
    }

    /// Registers every metric, for `workers` workers.
    pub fn with_workers(workers: usize) -> Self {
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
        // Envoy's downstream_cx_total, HAProxy's conn_tot: with
        // --max-connection-age it shows how often clients renew.
        let accepted = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "connections_accepted",
            "Client connections accepted, by the protocol they began with",
            accepted.clone(),
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
        let upstream_connections = Gauge::default();
        registry.register(
            "upstream_connections",
            "Connections open to the upstream (at most --max-upstream-connections)",
            upstream_connections.clone(),
        );
        let drain_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "drain_duration_seconds",
            "How long the last drain took, from the trigger to idle or the deadline",
            drain_seconds.clone(),
        );
        let worker_count = Gauge::<i64>::default();
        worker_count.set(i64::try_from(workers).unwrap_or(i64::MAX));
        registry.register(
            "workers",
            "Worker threads serving the listener (--workers)",
            worker_count,
        );
        let by_worker = Family::<WorkerLabels, Counter>::default();
        registry.register(
            "worker_accepted_connections",
            "Client connections accepted, by worker",
            by_worker.clone(),
        );
        let worker_accepted = (0..workers.max(1))
            .map(|w| {
                by_worker
                    .get_or_create(&WorkerLabels {
                        worker: w.to_string(),
                    })
                    .clone()
            })
            .collect();
        let by_protocol = |family: &Family<ProtocolLabels, Gauge>| {
            Protocol::ALL.map(|p| {
                family
                    .get_or_create(&ProtocolLabels {
                        protocol: p.as_str(),
                    })
                    .clone()
            })
        };
        Metrics {
            connections: by_protocol(&connections),
            in_flight: by_protocol(&in_flight),
            requests: Outcome::ALL.map(|o| {
                requests
                    .get_or_create(&OutcomeLabels {
                        outcome: o.as_str(),
                    })
                    .clone()
            }),
            accepted: Protocol::ALL.map(|p| {
                accepted
                    .get_or_create(&ProtocolLabels {
                        protocol: p.as_str(),
                    })
                    .clone()
            }),
            cut: Protocol::ALL.map(|p| {
                cut.get_or_create(&ProtocolLabels {
                    protocol: p.as_str(),
                })
                .clone()
            }),
            upstream_connections,
            registry,
            phase,
            drain_seconds,
            worker_accepted,
        }
    }

    /// Counts a connection accepted by worker `worker`.
    pub fn worker_accepted(&self, worker: usize) {
        if let Some(counter) = self.worker_accepted.get(worker) {
            counter.inc();
        }
    }

    /// Counts an open connection of `protocol` until the guard drops.
    pub fn connection(&self, protocol: Protocol) -> GaugeGuard {
        let g = self.connections[protocol as usize].clone();
        g.inc();
        GaugeGuard(g)
    }

    /// Counts a client connection accepted, once it is known to speak
    /// `protocol`.
    pub fn accepted(&self, protocol: Protocol) {
        self.accepted[protocol as usize].inc();
    }

    /// Counts a request in flight until the guard drops.
    pub fn request(&self, protocol: Protocol) -> GaugeGuard {
        let g = self.in_flight[protocol as usize].clone();
        g.inc();
        GaugeGuard(g)
    }

    /// Counts an open upstream connection until the guard drops.
    pub fn upstream_connection(&self) -> GaugeGuard {
        let g = self.upstream_connections.clone();
        g.inc();
        GaugeGuard(g)
    }

    /// Counts a finished request.
    pub fn outcome(&self, outcome: Outcome) {
        self.requests[outcome as usize].inc();
    }

    /// Counts a connection cut at the deadline.
    pub fn cut(&self, protocol: Protocol) {
        self.cut[protocol as usize].inc();
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
