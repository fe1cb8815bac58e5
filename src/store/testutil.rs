//! Test helpers: unique store files under the system temp dir, and scan records.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::writer::Tuning;
use super::{RunEnd, RunOutcome, RunSummary, Store, StoreOptions};
use crate::finding::{rfc3339, Origin, PortState, Record};
use crate::fingerprint::{Tool, Transport, Verdict};

/// A directory removed (with everything in it) on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "mcp-scout-store-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("inventory.db")
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Timings short enough that tests do not wait on defaults.
pub(crate) fn fast() -> Tuning {
    Tuning {
        retry_every: Duration::from_millis(100),
        heartbeat_every: Duration::from_millis(200),
        retention_every: Duration::from_secs(3600),
        drain_deadline: Duration::from_secs(3),
        busy_timeout: Duration::from_millis(50),
    }
}

pub(crate) fn open(path: &std::path::Path, gone_after: u32) -> (Store, super::WriterHandle) {
    let opts = StoreOptions {
        gone_after,
        ..StoreOptions::new(path)
    };
    Store::open_tuned(opts, fast()).unwrap()
}

pub(crate) fn tool(name: &str, hash: &str) -> Tool {
    Tool {
        name: name.into(),
        description: Some(format!("{name} things")),
        input_schema_hash: Some(hash.into()),
    }
}

fn url_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

/// A confirmed MCP server at `http://ip:port/mcp` offering `tools`.
pub(crate) fn mcp(ip: &str, port: u16, tools: Vec<Tool>) -> Record {
    Record {
        ip: ip.parse().unwrap(),
        port,
        state: PortState::Open,
        rtt_ms: Some(0.4),
        kind: Some(Verdict::Mcp),
        origins: vec![Origin::Sweep],
        announced_as: vec![],
        seen_at: rfc3339(SystemTime::now()),
        url: Some(format!("http://{}:{port}/mcp", url_host(ip))),
        transport: Some(Transport::StreamableHttp),
        protocol_version: Some("2025-06-18".into()),
        protocol_versions: vec!["2025-06-18".into()],
        server_name: Some("demo-server".into()),
        server_version: Some("1.0.0".into()),
        instructions: None,
        capabilities: Some(serde_json::json!({"tools": {}})),
        tools,
        resources: None,
        prompts: None,
        auth: None,
        http: None,
        health_endpoints: vec![],
        server_card: None,
        health: None,
        evidence: vec!["initialize result".into()],
        confidence: Some(1.0),
        node: None,
        k8s: None,
    }
}

/// An open port answering as `kind` (not MCP), as the sweep and classifier report it.
pub(crate) fn other(ip: &str, port: u16, kind: Verdict) -> Record {
    Record {
        kind: Some(kind),
        url: None,
        transport: None,
        protocol_version: None,
        protocol_versions: vec![],
        server_name: None,
        server_version: None,
        capabilities: None,
        tools: vec![],
        ..mcp(ip, port, vec![])
    }
}

/// Begin and finish one run of `job` with `records`.
pub(crate) async fn run(store: &Store, job: &str, records: Vec<Record>, end: RunEnd) -> RunSummary {
    let id = store.begin_run(job).await.unwrap();
    store
        .finish_run(
            id,
            RunOutcome {
                job: job.into(),
                status: end,
                probes: records.len() as u64 * 2,
                open: records.len() as u64,
                records,
            },
        )
        .await
        .unwrap()
}

/// A stored, active server at `http://ip:port/mcp` of `kind`, offering `get_forecast` and
/// `add` (for the sinks' tests).
pub(crate) fn stored(ip: &str, port: u16, kind: Verdict) -> super::StoredServer {
    let mut r = mcp(
        ip,
        port,
        vec![tool("get_forecast", "h1"), tool("add", "h2")],
    );
    r.kind = Some(kind);
    super::StoredServer::from_scan(r).unwrap()
}
