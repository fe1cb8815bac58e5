//! The daemon's Prometheus metrics (prometheus-client, OpenMetrics text on `/metrics`).
//!
//! Names follow the Prometheus conventions: base units (`_seconds`, `_bytes`) and `_total`
//! counters (prometheus-client appends `_total` itself, so counters are registered without
//! it). Gauges that describe the inventory, `mcp_scout_servers{kind,transport,status}`, are
//! computed from the store at scrape time rather than incremented by hand, so they cannot
//! drift from what the API shows. Process metrics are read from `/proc/self` at scrape time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::monitor::state::Status;
use crate::store::Reader;

/// Labels `{job}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabel {
    /// Job name.
    pub job: String,
}

/// Labels `{job,result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobResult {
    /// Job name.
    pub job: String,
    /// `completed`, `interrupted`, `failed` or `overrun`.
    pub result: String,
}

/// Labels `{job,state}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobState {
    /// Job name.
    pub job: String,
    /// Port state.
    pub state: String,
}

/// Labels `{kind}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Change kind.
    pub kind: String,
}

/// Labels `{result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `error`.
    pub result: String,
}

/// Labels `{route,code}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteCode {
    /// The matched route template, such as `/api/v1/servers/{id}`.
    pub route: String,
    /// HTTP status code.
    pub code: u16,
}

/// Labels `{route}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The matched route template.
    pub route: String,
}

/// Every metric the daemon updates; cheap to clone (the families are shared).
#[derive(Clone)]
pub struct Metrics {
    /// 1 while this pod holds the Lease (`owner: leader` jobs run here), else 0.
    pub leader: Gauge,
    /// Runs by job and result.
    pub job_runs: Family<JobResult, Counter>,
    /// Run wall time by job.
    pub job_run_duration: Family<JobLabel, Histogram>,
    /// Unix time of each job's last completed run.
    pub job_last_success: Family<JobLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Probes by job and port state.
    pub probes: Family<JobState, Counter>,
    /// Changes recorded, by kind.
    pub changes: Family<KindLabel, Counter>,
    /// Config reloads by result.
    pub config_reloads: Family<ResultLabel, Counter>,
    /// API requests by route and status.
    pub api_requests: Family<RouteCode, Counter>,
    /// API latency by route.
    pub api_duration: Family<RouteLabel, Histogram>,
    /// Health checks run, by check and result (`pass`, `fail`).
    pub check_runs: Family<CheckResultLabel, Counter>,
    /// Health check latency by check.
    pub check_duration: Family<CheckLabel, Histogram>,
    /// The monitor's view of each server, for the per-server gauges.
    pub health: HealthBoard,
    /// The `mcp_scout_sink_*` families.
    pub sinks: crate::sinks::metrics::SinkMetrics,
    registry: Arc<Registry>,
}

/// Labels `{check,result}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckResultLabel {
    /// The check's name (`mcp` for the built-in one).
    pub check: String,
    /// `pass` or `fail`.
    pub result: String,
}

/// Labels `{check}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabel {
    /// The check's name.
    pub check: String,
}

/// The monitor's latest status of each watched server and its batches in flight, read at
/// scrape time by `mcp_scout_server_up`, `mcp_scout_server_health` and
/// `mcp_scout_checks_in_flight`. Only `server_id` and `server_name` label a server, which
/// bounds the cardinality to the inventory's size.
#[derive(Clone, Debug, Default)]
pub struct HealthBoard {
    servers: Arc<std::sync::Mutex<BTreeMap<String, (String, Status)>>>,
    /// Batches of checks running now.
    pub in_flight: Arc<AtomicUsize>,
}

impl HealthBoard {
    /// Record a server's status after a check.
    pub fn set(&self, id: &str, name: Option<&str>, status: Status) {
        self.lock()
            .insert(id.to_owned(), (name.unwrap_or("").to_owned(), status));
    }

    /// Keep only these servers (the others left the inventory).
    pub fn retain(&self, keep: &std::collections::HashSet<String>) {
        self.lock().retain(|id, _| keep.contains(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (String, Status)>> {
        self.servers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpLabels {
    server_id: String,
    server_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    server_id: String,
    status: String,
}

/// The statuses `mcp_scout_server_health` has a series for (a gone server is dropped).
const LIVE_STATUSES: [Status; 4] = [
    Status::Unknown,
    Status::Healthy,
    Status::Degraded,
    Status::Unhealthy,
];

impl Collector for HealthBoard {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let up = Family::<UpLabels, Gauge>::default();
        let health = Family::<HealthLabels, Gauge>::default();
        for (id, (name, status)) in self.lock().iter() {
            let is_up = matches!(status, Status::Healthy | Status::Degraded);
            up.get_or_create(&UpLabels {
                server_id: id.clone(),
                server_name: name.clone(),
            })
            .set(i64::from(is_up));
            for s in LIVE_STATUSES {
                health
                    .get_or_create(&HealthLabels {
                        server_id: id.clone(),
                        status: s.as_str().to_owned(),
                    })
                    .set(i64::from(s == *status));
            }
        }
        let m = encoder.encode_descriptor(
            "mcp_scout_server_up",
            "1 when the server's last published health is healthy or degraded, else 0",
            None,
            up.metric_type(),
        )?;
        up.encode(m)?;
        let m = encoder.encode_descriptor(
            "mcp_scout_server_health",
            "1 for the server's published health status, 0 for the others",
            None,
            health.metric_type(),
        )?;
        health.encode(m)?;
        let g = ConstGauge::new(
            i64::try_from(self.in_flight.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        );
        let m = encoder.encode_descriptor(
            "mcp_scout_checks_in_flight",
            "Batches of health checks running now",
            None,
            g.metric_type(),
        )?;
        g.encode(m)
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Register every metric; `reader` feeds the inventory gauges.
    pub fn new(reader: Reader) -> Self {
        let mut r = Registry::default();
        r.register(
            "mcp_scout_build",
            "mcp-scout build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let leader = Gauge::default();
        r.register(
            "mcp_scout_leader",
            "1 while this pod holds the kubernetes.lease Lease (owner: leader jobs run here), else 0",
            leader.clone(),
        );
        let job_runs = Family::<JobResult, Counter>::default();
        r.register(
            "mcp_scout_job_runs",
            "Job runs by result (completed, interrupted, failed; overrun counts runs that outlasted their interval)",
            job_runs.clone(),
        );
        let job_run_duration = Family::<JobLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 14))
        });
        r.register(
            "mcp_scout_job_run_duration_seconds",
            "Wall time of one job run",
            job_run_duration.clone(),
        );
        let job_last_success = Family::default();
        r.register(
            "mcp_scout_job_last_success_timestamp_seconds",
            "Unix time at which the job last completed a run",
            job_last_success.clone(),
        );
        let probes = Family::<JobState, Counter>::default();
        r.register(
            "mcp_scout_probes",
            "Address x port probes concluded, by port state",
            probes.clone(),
        );
        let changes = Family::<KindLabel, Counter>::default();
        r.register(
            "mcp_scout_changes",
            "Inventory changes recorded, by kind",
            changes.clone(),
        );
        let config_reloads = Family::<ResultLabel, Counter>::default();
        r.register(
            "mcp_scout_config_reloads",
            "Config reloads on SIGHUP, by result",
            config_reloads.clone(),
        );
        let api_requests = Family::<RouteCode, Counter>::default();
        r.register(
            "mcp_scout_api_requests",
            "API requests by route and status code",
            api_requests.clone(),
        );
        let api_duration = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        r.register(
            "mcp_scout_api_request_duration_seconds",
            "API request latency",
            api_duration.clone(),
        );
        let check_runs = Family::<CheckResultLabel, Counter>::default();
        r.register(
            "mcp_scout_check_runs",
            "Health checks run, by check and result (pass, fail)",
            check_runs.clone(),
        );
        let check_duration = Family::<CheckLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        r.register(
            "mcp_scout_check_duration_seconds",
            "Health check latency",
            check_duration.clone(),
        );
        let health = HealthBoard::default();
        r.register_collector(Box::new(health.clone()));
        r.register_collector(Box::new(Inventory { reader }));
        r.register_collector(Box::new(Process));
        let sinks = crate::sinks::metrics::SinkMetrics::register(&mut r);
        Self {
            leader,
            job_runs,
            job_run_duration,
            job_last_success,
            probes,
            changes,
            config_reloads,
            api_requests,
            api_duration,
            check_runs,
            check_duration,
            health,
            sinks,
            registry: Arc::new(r),
        }
    }

    /// The OpenMetrics text exposition. Blocking (it reads the store): call it from
    /// `spawn_blocking`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if prometheus_client::encoding::text::encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }
}

/// `mcp_scout_servers{kind,transport,status}`, counted by the store at scrape time.
#[derive(Debug)]
struct Inventory {
    reader: Reader,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    kind: String,
    transport: String,
    status: String,
}

impl Collector for Inventory {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counts = match self.reader.server_counts() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("metrics: cannot count servers: {e}");
                return Ok(());
            }
        };
        let family = Family::<ServerLabels, Gauge>::default();
        for c in counts {
            family
                .get_or_create(&ServerLabels {
                    kind: c.kind.as_str().to_string(),
                    transport: c.transport.map_or("", |t| t.as_str()).to_string(),
                    status: c.status.as_str().to_string(),
                })
                .set(i64::try_from(c.count).unwrap_or(i64::MAX));
        }
        let m = encoder.encode_descriptor(
            "mcp_scout_servers",
            "Servers in the inventory by kind, transport and status",
            None,
            family.metric_type(),
        )?;
        family.encode(m)
    }
}

/// `process_resident_memory_bytes` and `process_cpu_seconds_total` from `/proc/self`.
#[derive(Debug)]
struct Process;

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some((cpu, rss)) = process_stats() else {
            return Ok(());
        };
        let g = ConstGauge::new(rss as i64);
        g.encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            g.metric_type(),
        )?)?;
        let c = ConstCounter::new(cpu);
        c.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            c.metric_type(),
        )?)
    }
}

/// (CPU seconds, resident bytes) of this process.
pub fn process_stats() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    Some(((utime + stime) / tick, rss_pages * page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_board_has_one_up_series_and_a_status_set_per_server() {
        let board = HealthBoard::default();
        board.set("a-1", Some("weather"), Status::Healthy);
        board.set("b-2", None, Status::Unhealthy);
        board.set("c-3", Some("gone soon"), Status::Degraded);
        board.retain(&["a-1".to_owned(), "b-2".to_owned()].into_iter().collect());
        board.in_flight.store(3, Ordering::Relaxed);
        let mut r = Registry::default();
        r.register_collector(Box::new(board));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(
            text.contains(r#"mcp_scout_server_up{server_id="a-1",server_name="weather"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_scout_server_up{server_id="b-2",server_name=""} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_scout_server_health{server_id="b-2",status="unhealthy"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcp_scout_server_health{server_id="b-2",status="healthy"} 0"#),
            "{text}"
        );
        assert!(!text.contains("c-3"), "{text}");
        assert_eq!(
            text.matches("mcp_scout_server_health{").count(),
            8,
            "{text}"
        );
        assert!(text.contains("mcp_scout_checks_in_flight 3"), "{text}");
    }

    #[test]
    fn process_stats_are_plausible() {
        let (cpu, rss) = super::process_stats().unwrap();
        assert!(cpu >= 0.0 && rss > 1024 * 1024, "{cpu} {rss}");
    }
}
