//! The `mcp_scout_sink_*` metrics, registered into the daemon's registry and updated by
//! each sink's runner. Only the sink's name (and a small fixed set of results and skip
//! reasons) label them, so their cardinality is the number of configured sinks.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels `{sink}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabel {
    /// The sink's name.
    pub sink: String,
}

/// Labels `{sink,result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkResult {
    /// The sink's name.
    pub sink: String,
    /// `ok` (delivered), `retry` (a transient failure, tried again) or `dead_letter`
    /// (refused for good).
    pub result: String,
}

/// Labels `{sink,reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkReason {
    /// The sink's name.
    pub sink: String,
    /// Why a server is not listed (`no_tools`…).
    pub reason: String,
}

/// Labels `{sink,request}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkRequest {
    /// The sink's name.
    pub sink: String,
    /// What the request does, from a small fixed set per type (MCP Mesh: `heartbeat`,
    /// `register`, `deregister`, `list`).
    pub request: String,
}

/// The sink metrics (cheap to clone: the families are shared).
#[derive(Clone, Debug, Default)]
pub struct SinkMetrics {
    /// Changes committed and not yet delivered, per sink.
    pub queue_depth: Family<SinkLabel, Gauge>,
    /// Deliveries by result.
    pub deliveries: Family<SinkResult, Counter>,
    /// Unix time of the last success.
    pub last_success: Family<SinkLabel, Gauge<f64, AtomicU64>>,
    /// Reconciliations completed.
    pub resyncs: Family<SinkLabel, Counter>,
    /// Servers matching `only:` that the sink cannot list, by reason, at its last
    /// reconciliation or delivery.
    pub skipped: Family<SinkReason, Gauge>,
    /// Requests sent to the registry, by what they do (heartbeats included, which are
    /// not deliveries).
    pub requests: Family<SinkRequest, Counter>,
}

impl SinkMetrics {
    /// New families, registered in `r`.
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register(
            "mcp_scout_sink_queue_depth",
            "Committed changes the sink has not delivered yet",
            m.queue_depth.clone(),
        );
        r.register(
            "mcp_scout_sink_deliveries",
            "Sink deliveries by result (ok, retry, dead_letter)",
            m.deliveries.clone(),
        );
        r.register(
            "mcp_scout_sink_last_success_timestamp_seconds",
            "Unix time of the sink's last successful delivery, reconciliation or heartbeat",
            m.last_success.clone(),
        );
        r.register(
            "mcp_scout_sink_resyncs",
            "Reconciliations of the registry with the inventory",
            m.resyncs.clone(),
        );
        r.register(
            "mcp_scout_sink_skipped_servers",
            "Servers the sink's filter selects but its registry cannot list, by reason",
            m.skipped.clone(),
        );
        r.register(
            "mcp_scout_sink_requests",
            "Requests a sink sent to its registry, by what they do (heartbeat, register...)",
            m.requests.clone(),
        );
        m
    }

    /// Count one request of `sink`.
    pub fn request(&self, sink: &str, request: &str) {
        self.requests
            .get_or_create(&SinkRequest {
                sink: sink.into(),
                request: request.into(),
            })
            .inc();
    }

    /// Count one delivery of `sink` with `result`.
    pub fn delivered(&self, sink: &str, result: &str) {
        self.deliveries
            .get_or_create(&SinkResult {
                sink: sink.into(),
                result: result.into(),
            })
            .inc();
    }

    /// The `{sink}` label.
    pub fn label(sink: &str) -> SinkLabel {
        SinkLabel { sink: sink.into() }
    }
}
