//! The `kailash-file` sink: a Kailash `FileBasedDiscovery` registry file (PyPI
//! `kailash-mcp`), `{"servers": {"<id>": {ServerInfo}}, "last_updated": <unix float>,
//! "version": "1.0"}`; also the document `mcp-scout export kailash` and `scan --push
//! kailash-file=PATH` write ([`document`]).
//!
//! - **Exactly the 16 `ServerInfo` keys** per entry ([`KEYS`]): the reader builds
//!   `ServerInfo(**entry)` and drops the *whole file* on any other key, so everything else
//!   we know goes under `metadata`, which carries `source: mcp-scout`: that is what marks an
//!   entry as ours.
//! - **Health.** `health_status` is `healthy`, `unhealthy` or `unknown`. Our `degraded`
//!   (every critical check passes, a warning check fails or it is slow) is written as
//!   `healthy`, because the server does serve requests and the reader's `is_healthy()` knows
//!   only `healthy`; the exact status is kept in `metadata.health`. `health` is null, since
//!   the reader lets a `health` dict override `health_status`.
//! - **`last_seen`** of a server that is up (not unhealthy) is the time of the write, and the
//!   file is rewritten every `refresh` (default 30 s, at most 60 s) by [`Sink::tick`], because
//!   readers treat entries older than 300 s as unhealthy. An unhealthy server keeps the time
//!   its health last changed.
//! - **`name` is unique in the file** (the reader keys some lookups by name): the server's
//!   `serverInfo.name` plus its ServerId, which is unique; a clash with a foreign entry's
//!   name adds a counter.
//! - **Writes** happen at [`Sink::flush`] when something changed, and at each refresh, always
//!   by re-reading the file and merging: entries that are not ours (and any other top-level
//!   key) are kept as they are, our entries are replaced, and ours that were removed are
//!   dropped; then the whole file is written atomically ([`files::write_atomic`]).
//! - **A file that is not a registry** (not JSON, or without an object `servers`) is never
//!   overwritten: that would destroy someone's file. The write fails with a transient error
//!   naming the file, so the sink shows `retrying`/`failing` and writes as soon as the file is
//!   fixed or removed. An empty (zero-byte or blank) file counts as an empty registry.
//! - There is no lock: a process writing the file between our read and our rename loses its
//!   write (the reader takes no lock either); the next refresh is ours again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::runner::Listed;
use super::{files, Sink, SinkError, Tick, OURS};
use crate::fingerprint::{Transport, Verdict};
use crate::monitor::state::Status;
use crate::store::StoredServer;

/// The keys of a Kailash `ServerInfo`, in the reader's order: an entry has exactly these.
pub const KEYS: [&str; 16] = [
    "name",
    "transport",
    "capabilities",
    "metadata",
    "id",
    "endpoint",
    "command",
    "args",
    "url",
    "health_endpoint",
    "health_status",
    "health",
    "last_seen",
    "response_time",
    "version",
    "auth_required",
];
/// The registry format version the reader writes.
pub const FORMAT_VERSION: &str = "1.0";
/// `version` of a server that reported none (the reader's default).
const DEFAULT_VERSION: &str = "1.0.0";
/// Most counters tried to make a clashing name unique.
const NAME_TRIES: usize = 1000;

/// The sink.
#[derive(Debug)]
pub struct KailashFile {
    path: PathBuf,
    refresh: Duration,
    /// What we list, by id: written at each flush.
    ours: BTreeMap<String, StoredServer>,
    /// Ours to drop from the file at the next write.
    removed: BTreeSet<String>,
    /// Whether the file differs from what we hold.
    dirty: bool,
}

impl KailashFile {
    /// A sink writing `path`, refreshing `last_seen` every `refresh`.
    pub fn new(path: PathBuf, refresh: Duration) -> Self {
        Self {
            path,
            refresh,
            ours: BTreeMap::new(),
            removed: BTreeSet::new(),
            dirty: false,
        }
    }

    /// Read, merge and write the file (blocking work off the async workers).
    async fn write(&mut self) -> Result<(), SinkError> {
        let path = self.path.clone();
        let servers: Vec<StoredServer> = self.ours.values().cloned().collect();
        let removed = self.removed.clone();
        tokio::task::spawn_blocking(move || {
            let existing = read(&path)?;
            let mut doc = existing.unwrap_or_else(|| json!({}));
            if let Some(entries) = doc.get_mut("servers").and_then(Value::as_object_mut) {
                entries.retain(|id, e| !(is_ours(e) && removed.contains(id)));
            }
            let doc = merge(doc, &servers, SystemTime::now());
            let bytes = serde_json::to_vec_pretty(&doc)
                .map_err(|e| SinkError::transient(format!("encoding the Kailash file: {e}")))?;
            files::write_atomic(&path, &bytes)
        })
        .await
        .map_err(|e| SinkError::transient(format!("writing the Kailash file: {e}")))??;
        self.removed.clear();
        self.dirty = false;
        Ok(())
    }
}

/// Whether a file entry is ours (`metadata.source` is `mcp-scout`).
pub fn is_ours(entry: &Value) -> bool {
    entry["metadata"]["source"] == OURS
}

/// The registry file at `path` as JSON: `None` when missing or blank; a transient error,
/// naming the file, when it is not a registry (never to be overwritten).
fn read(path: &Path) -> Result<Option<Value>, SinkError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SinkError::transient(format!(
                "cannot read the Kailash file {}: {e}",
                path.display()
            )))
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let not_registry = |why: String| {
        SinkError::transient(format!(
            "the Kailash file {} is not a registry file ({why}); it is left as it is: fix or \
             remove it and the sink writes it again",
            path.display()
        ))
    };
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| not_registry(format!("not JSON: {e}")))?;
    match doc.get("servers") {
        _ if !doc.is_object() => Err(not_registry("not a JSON object".into())),
        None | Some(Value::Object(_)) => Ok(Some(doc)),
        Some(_) => Err(not_registry("`servers` is not an object".into())),
    }
}

/// Unix seconds as the reader's float.
fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `health_status` for our health status (see the module doc for `degraded`).
pub fn health_status(s: Status) -> &'static str {
    match s {
        Status::Healthy | Status::Degraded => "healthy",
        Status::Unhealthy | Status::Gone => "unhealthy",
        Status::Unknown => "unknown",
    }
}

/// One `ServerInfo` entry (exactly [`KEYS`]) for `s` named `name`, written at `now`; `None`
/// without an endpoint URL.
pub fn entry(s: &StoredServer, name: &str, now: SystemTime) -> Option<Value> {
    let r = &s.record;
    let url = r.url.as_deref()?;
    let status = r.health.as_ref().map_or(Status::Unknown, |h| h.status);
    let last_seen = match &r.health {
        Some(h) if status == Status::Unhealthy => unix(h.since),
        _ => unix(now),
    };
    let response_time = r
        .health
        .as_ref()
        .and_then(|h| h.latency_ms)
        .or(r.rtt_ms)
        .map(|ms| ms / 1000.0);
    let health_endpoint = r.health_endpoints.first().and_then(|h| {
        let mut u = url::Url::parse(url).ok()?;
        u.set_path(&h.path);
        u.set_query(None);
        Some(u.to_string())
    });
    let auth_required =
        r.kind == Some(Verdict::McpAuthRequired) || r.auth.as_ref().is_some_and(|a| a.required);
    let mut metadata = Map::new();
    metadata.insert("source".into(), OURS.into());
    metadata.insert("server_id".into(), s.id.as_str().into());
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            metadata.insert(k.into(), v);
        }
    };
    put("server_name", r.server_name.clone().map(Value::from));
    put("server_version", r.server_version.clone().map(Value::from));
    put(
        "protocol_version",
        r.protocol_version.clone().map(Value::from),
    );
    put("kind", r.kind.map(|k| k.as_str().into()));
    put("health", Some(status.as_str().into()));
    put(
        "health_reason",
        r.health
            .as_ref()
            .and_then(|h| h.reason.clone())
            .map(Value::from),
    );
    put("first_seen", Some(s.first_seen.clone().into()));
    put("jobs", (!s.jobs.is_empty()).then(|| json!(s.jobs)));
    // Where a pod-sourced server runs (issue 10): the record's object as it is.
    put("node", r.node.clone().map(Value::from));
    put("k8s", r.k8s.as_ref().map(|k| json!(k)));
    put(
        "tools",
        Some(json!(r
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description}))
            .collect::<Vec<_>>())),
    );
    Some(json!({
        "name": name,
        "transport": match r.transport {
            Some(Transport::Sse) => "sse",
            _ => "http",
        },
        "capabilities": r.tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "metadata": metadata,
        "id": s.id.as_str(),
        "endpoint": url,
        "command": null,
        "args": null,
        "url": url,
        "health_endpoint": health_endpoint,
        "health_status": health_status(status),
        "health": null,
        "last_seen": last_seen,
        "response_time": response_time,
        "version": r.server_version.as_deref().filter(|v| !v.is_empty()).unwrap_or(DEFAULT_VERSION),
        "auth_required": auth_required,
    }))
}

/// The name of `s`: `serverInfo.name` plus the ServerId (unique among ours), made unique
/// against `taken` (the names of the entries that are not ours).
fn name_of(s: &StoredServer, taken: &BTreeSet<String>) -> String {
    let base = match s.record.server_name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => format!("{n}-{}", s.id.as_str()),
        _ => s.id.as_str().to_string(),
    };
    if !taken.contains(&base) {
        return base;
    }
    (2..NAME_TRIES)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or_else(|| format!("{base}-{OURS}"))
}

/// `existing` (a registry document, or `{}`) with our entries replaced by `servers`, at
/// `now`: foreign entries and other top-level keys are kept, ours not in `servers` too (the
/// sink drops the removed ones before). A foreign entry under one of our ids wins: that
/// server is left out, with a warning.
pub fn merge(existing: Value, servers: &[StoredServer], now: SystemTime) -> Value {
    let mut doc = match existing {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut entries = match doc.remove("servers") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let taken: BTreeSet<String> = entries
        .values()
        .filter(|e| !is_ours(e))
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect();
    for s in servers {
        let id = s.id.as_str();
        if entries.get(id).is_some_and(|e| !is_ours(e)) {
            tracing::warn!(server = %id, "the Kailash file holds an entry that is not ours under this server's id; it is kept and the server is not listed");
            continue;
        }
        if let Some(e) = entry(s, &name_of(s, &taken), now) {
            entries.insert(id.to_string(), e);
        }
    }
    doc.insert("servers".into(), Value::Object(entries));
    doc.insert("last_updated".into(), unix(now).into());
    doc.insert("version".into(), FORMAT_VERSION.into());
    Value::Object(doc)
}

/// The registry document of `servers` alone, at `now` (`mcp-scout export kailash`, `scan
/// --push kailash-file=PATH` with a fresh file).
pub fn document(servers: &[StoredServer], now: SystemTime) -> Value {
    merge(json!({}), servers, now)
}

/// `document`, merged into the file at `path` and written atomically, keeping entries
/// that are not ours (`scan --push kailash-file=PATH`). Blocking.
pub fn write_file(path: &Path, servers: &[StoredServer]) -> Result<(), SinkError> {
    let doc = merge(
        read(path)?.unwrap_or_else(|| json!({})),
        servers,
        SystemTime::now(),
    );
    let bytes = serde_json::to_vec_pretty(&doc)
        .map_err(|e| SinkError::transient(format!("encoding the Kailash file: {e}")))?;
    files::write_atomic(path, &bytes)
}

impl Sink for KailashFile {
    async fn put(&mut self, server: &StoredServer) -> Result<(), SinkError> {
        let id = server.id.as_str().to_string();
        self.removed.remove(&id);
        self.ours.insert(id, server.clone());
        self.dirty = true;
        Ok(())
    }

    async fn remove(&mut self, id: &str) -> Result<(), SinkError> {
        self.ours.remove(id);
        self.removed.insert(id.to_string());
        self.dirty = true;
        Ok(())
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        let path = self.path.clone();
        let doc = tokio::task::spawn_blocking(move || read(&path))
            .await
            .map_err(|e| SinkError::transient(format!("reading the Kailash file: {e}")))??;
        let mut ids: Vec<String> = doc
            .as_ref()
            .and_then(|d| d["servers"].as_object())
            .map(|m| {
                m.iter()
                    .filter(|(_, e)| is_ours(e))
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        Ok(ids)
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        if !self.dirty {
            return Ok(());
        }
        self.write().await
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(self.refresh)
    }

    async fn tick(&mut self, listed: &Listed) -> Result<Tick, SinkError> {
        // What the runner lists is what was flushed; it is also ours after a restart of the
        // sink whose state lives only in the runner.
        for (id, s) in listed {
            if !self.ours.contains_key(id) && !self.removed.contains(id) {
                self.ours.insert(id.clone(), s.clone());
            }
        }
        if !self.ours.is_empty() || self.dirty {
            self.write().await?;
        }
        Ok(Tick::Fine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::state::Health;
    use crate::store::testutil::{self, TempDir};

    fn health(status: Status, since: SystemTime) -> Health {
        Health {
            status,
            since,
            reason: Some("why".into()),
            flapping: false,
            last_check_at: Some(since),
            latency_ms: Some(4.0),
            consecutive_failures: 0,
            consecutive_successes: 1,
            checks: vec![],
        }
    }

    #[test]
    fn a_pod_sourced_server_carries_node_and_k8s_in_metadata() {
        let mut s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        s.record.node = Some("n1".into());
        s.record.k8s = Some(crate::finding::K8sInfo {
            namespace: "team-a".into(),
            pod: "tools-0".into(),
            node: "n1".into(),
            labels: [("team".to_string(), "x".to_string())].into(),
        });
        let d = document(std::slice::from_ref(&s), SystemTime::now());
        let e = &d["servers"][s.id.as_str()];
        assert_eq!(e["metadata"]["node"], "n1");
        assert_eq!(
            e["metadata"]["k8s"],
            json!({"namespace": "team-a", "pod": "tools-0", "node": "n1", "labels": {"team": "x"}})
        );
        let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, KEYS.iter().copied().collect::<BTreeSet<_>>());
    }

    #[test]
    fn an_entry_has_exactly_the_16_keys_and_extras_in_metadata() {
        let s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        let now = SystemTime::now();
        let d = document(std::slice::from_ref(&s), now);
        let e = &d["servers"][s.id.as_str()];
        let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, KEYS.iter().copied().collect::<BTreeSet<_>>());
        assert_eq!(e["transport"], "http");
        assert_eq!(e["url"], "http://127.0.0.1:8000/mcp");
        assert_eq!(e["endpoint"], e["url"]);
        assert_eq!(e["capabilities"], json!(["get_forecast", "add"]));
        assert_eq!(e["health_status"], "unknown");
        assert_eq!(e["health"], Value::Null);
        assert_eq!(e["version"], "1.0.0");
        assert_eq!(e["auth_required"], false);
        assert_eq!(e["metadata"]["source"], "mcp-scout");
        assert_eq!(e["metadata"]["server_name"], "demo-server");
        assert_eq!(e["name"], format!("demo-server-{}", s.id.as_str()));
        assert_eq!(d["version"], "1.0");
        assert!((d["last_updated"].as_f64().unwrap() - unix(now)).abs() < 1e-3);
        assert!((e["last_seen"].as_f64().unwrap() - unix(now)).abs() < 1e-3);
    }

    #[test]
    fn health_maps_to_the_readers_three_values_and_unhealthy_keeps_its_time() {
        let now = SystemTime::now();
        let then = now - Duration::from_secs(500);
        for (status, want) in [
            (Status::Healthy, "healthy"),
            (Status::Degraded, "healthy"),
            (Status::Unhealthy, "unhealthy"),
            (Status::Unknown, "unknown"),
        ] {
            let mut s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
            s.record.health = Some(health(status, then));
            s.record.transport = Some(Transport::Sse);
            let e = entry(&s, "n", now).unwrap();
            assert_eq!(e["health_status"], want, "{status:?}");
            assert_eq!(e["metadata"]["health"], status.as_str());
            assert_eq!(e["transport"], "sse");
            assert_eq!(e["response_time"], 0.004);
            let seen = e["last_seen"].as_f64().unwrap();
            let want_seen = if status == Status::Unhealthy {
                then
            } else {
                now
            };
            assert!((seen - unix(want_seen)).abs() < 1e-3, "{status:?}");
        }
        let s = testutil::stored("127.0.0.1", 8000, Verdict::McpAuthRequired);
        assert_eq!(entry(&s, "n", now).unwrap()["auth_required"], true);
    }

    #[test]
    fn a_merge_keeps_foreign_entries_and_keys_and_names_stay_unique() {
        let s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        let mine = format!("demo-server-{}", s.id.as_str());
        let existing = json!({
            "servers": {
                "theirs": {"name": mine, "transport": "stdio", "metadata": {"owner": "ops"}},
                s.id.as_str(): {"name": "old", "transport": "http", "metadata": {"source": "mcp-scout"}},
            },
            "comment": "kept",
        });
        let d = merge(existing, std::slice::from_ref(&s), SystemTime::now());
        assert_eq!(d["comment"], "kept");
        assert_eq!(d["servers"]["theirs"]["transport"], "stdio");
        assert_eq!(d["servers"][s.id.as_str()]["name"], format!("{mine}-2"));
        // A foreign entry under our id is not replaced.
        let clash = json!({"servers": {s.id.as_str(): {"name": "x", "transport": "http"}}});
        let d = merge(clash, std::slice::from_ref(&s), SystemTime::now());
        assert_eq!(d["servers"][s.id.as_str()]["name"], "x");
    }

    #[tokio::test]
    async fn the_sink_writes_merges_removes_and_never_overwrites_a_broken_file() {
        let dir = TempDir::new("kailash");
        let path = dir.join("reg/servers.json");
        let mut sink = KailashFile::new(path.clone(), Duration::from_secs(30));
        assert!(sink.list_ours().await.unwrap().is_empty(), "no file yet");
        let a = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        let b = testutil::stored("127.0.0.2", 8000, Verdict::Mcp);
        sink.put(&a).await.unwrap();
        sink.put(&b).await.unwrap();
        sink.flush().await.unwrap();
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        doc["servers"]["theirs"] = json!({"name": "theirs", "transport": "stdio"});
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        let mut want = vec![a.id.as_str().to_string(), b.id.as_str().to_string()];
        want.sort();
        assert_eq!(sink.list_ours().await.unwrap(), want);
        sink.remove(a.id.as_str()).await.unwrap();
        sink.remove("theirs").await.unwrap();
        sink.flush().await.unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let ids: BTreeSet<&str> = doc["servers"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ids, BTreeSet::from(["theirs", b.id.as_str()]));

        std::fs::write(&path, b"not json {").unwrap();
        sink.put(&a).await.unwrap();
        let e = sink.flush().await.unwrap_err().to_string();
        assert!(
            e.contains("servers.json is not a registry file (not JSON"),
            "{e}"
        );
        assert!(sink.list_ours().await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"not json {");
        std::fs::write(&path, b"").unwrap();
        sink.flush().await.unwrap();
        assert_eq!(sink.list_ours().await.unwrap(), want);
    }

    #[test]
    fn a_one_shot_push_merges_into_the_file_and_refuses_a_broken_one() {
        let dir = TempDir::new("kailash-push");
        let path = dir.join("servers.json");
        std::fs::write(
            &path,
            br#"{"servers": {"x": {"name": "x", "transport": "stdio"}}}"#,
        )
        .unwrap();
        let s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        write_file(&path, std::slice::from_ref(&s)).unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let ids: BTreeSet<&str> = doc["servers"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ids, BTreeSet::from(["x", s.id.as_str()]));
        std::fs::write(&path, b"[1, 2]").unwrap();
        let e = write_file(&path, &[s]).unwrap_err().to_string();
        assert!(
            e.contains("is not a registry file (not a JSON object)"),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"[1, 2]");
    }
}
