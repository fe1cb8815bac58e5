//! The `server-json` sink: one `server.json` per server in a directory, in the official MCP
//! Registry's format (schema 2025-12-11), each written atomically; also what `mcp-scout
//! export server-json` writes.
//!
//! - The file is `<dir>/<id>.server.json`; only files with that suffix and our
//!   `_meta` publisher key are ours, so the directory may hold other files.
//! - `name` is `local.mcp-scout/<id>`: the registry's `<reverse-dns>/<name>` form needs a
//!   namespace, and discovered servers have none of their own; `local.` says it proves
//!   no ownership, and a private registry that publishes them can rename them.
//! - `remotes[0]` is the endpoint (`streamable-http` or `sse`); what we know beyond the
//!   format (tools, health, kind, when seen) goes under `_meta`'s
//!   `io.modelcontextprotocol.registry/publisher-provided` key, with `source: mcp-scout`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{files, Sink, SinkError, OURS};
use crate::fingerprint::Transport;
use crate::store::StoredServer;

/// The schema every document names.
pub const SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
/// The `_meta` key our facts go under.
pub const META_KEY: &str = "io.modelcontextprotocol.registry/publisher-provided";
/// Each file's name ends with this.
pub const SUFFIX: &str = ".server.json";
/// The format's limit on `description`.
const DESCRIPTION_MAX: usize = 100;

/// The sink.
#[derive(Debug)]
pub struct ServerJson {
    dir: PathBuf,
}

impl ServerJson {
    /// A sink writing into `dir` (created when missing).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{SUFFIX}"))
    }
}

/// The `server.json` document of `s` (`None` without an endpoint URL).
pub fn document(s: &StoredServer) -> Option<Value> {
    let r = &s.record;
    let url = r.url.as_deref()?;
    let kind = match r.transport {
        Some(Transport::Sse) => "sse",
        _ => "streamable-http",
    };
    let label = r.server_name.as_deref().unwrap_or("MCP server");
    let mut description = format!("{label} at {url}, found by mcp-scout");
    if description.chars().count() > DESCRIPTION_MAX {
        description = description.chars().take(DESCRIPTION_MAX - 1).collect();
        description.push('…');
    }
    let health = r.health.as_ref().map_or("unknown", |h| h.status.as_str());
    Some(json!({
        "$schema": SCHEMA,
        "name": format!("local.{OURS}/{}", s.id.as_str()),
        "title": r.server_name,
        "description": description,
        "version": r.server_version.as_deref().filter(|v| !v.is_empty() && *v != "latest").unwrap_or("0.0.0"),
        "remotes": [{"type": kind, "url": url}],
        "_meta": {
            META_KEY: {
                "source": OURS,
                "server_id": s.id.as_str(),
                "kind": r.kind.map(|k| k.as_str()),
                "protocol_version": r.protocol_version,
                "health_status": health,
                "first_seen": s.first_seen,
                "last_seen": s.last_seen,
                "tools": r.tools.iter().map(|t| json!({"name": t.name, "description": t.description})).collect::<Vec<_>>(),
            }
        }
    }))
}

/// Whether the document at `path` is one we wrote.
fn is_ours(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| v["_meta"][META_KEY]["source"] == OURS)
}

impl Sink for ServerJson {
    async fn put(&mut self, server: &StoredServer) -> Result<(), SinkError> {
        let Some(doc) = document(server) else {
            return Ok(());
        };
        let bytes = serde_json::to_vec_pretty(&doc)
            .map_err(|e| SinkError::transient(format!("encoding server.json: {e}")))?;
        let path = self.file(server.id.as_str());
        tokio::task::spawn_blocking(move || files::write_atomic(&path, &bytes))
            .await
            .map_err(|e| SinkError::transient(format!("writing server.json: {e}")))?
    }

    async fn remove(&mut self, id: &str) -> Result<(), SinkError> {
        let path = self.file(id);
        tokio::task::spawn_blocking(move || {
            if !path.exists() || !is_ours(&path) {
                return Ok(());
            }
            std::fs::remove_file(&path)
                .map_err(|e| SinkError::transient(format!("cannot remove {}: {e}", path.display())))
        })
        .await
        .map_err(|e| SinkError::transient(format!("removing server.json: {e}")))?
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => {
                    return Err(SinkError::transient(format!(
                        "cannot list {}: {e}",
                        dir.display()
                    )))
                }
            };
            let mut out = Vec::new();
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(id) = name.strip_suffix(SUFFIX) {
                    if is_ours(&entry.path()) {
                        out.push(id.to_string());
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
        .map_err(|e| SinkError::transient(format!("listing server.json files: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Verdict;
    use crate::store::testutil::{self, TempDir};

    #[test]
    fn the_document_has_the_registry_fields_and_ours_under_meta() {
        let s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        let d = document(&s).unwrap();
        assert_eq!(d["$schema"], SCHEMA);
        assert_eq!(d["name"], format!("local.mcp-scout/{}", s.id.as_str()));
        assert_eq!(d["version"], "1.0.0");
        assert_eq!(
            d["remotes"],
            json!([{"type": "streamable-http", "url": "http://127.0.0.1:8000/mcp"}])
        );
        assert!(d["description"].as_str().unwrap().chars().count() <= 100);
        let meta = &d["_meta"][META_KEY];
        assert_eq!(meta["source"], "mcp-scout");
        assert_eq!(meta["tools"][0]["name"], "get_forecast");
        assert_eq!(meta["health_status"], "unknown");
    }

    #[tokio::test]
    async fn files_are_written_listed_and_removed_and_others_are_kept() {
        let dir = TempDir::new("server-json");
        let mut sink = ServerJson::new(dir.join("out"));
        assert!(sink.list_ours().await.unwrap().is_empty(), "no dir yet");
        let s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        sink.put(&s).await.unwrap();
        std::fs::write(dir.join("out/theirs.server.json"), b"{\"name\":\"x\"}").unwrap();
        assert_eq!(
            sink.list_ours().await.unwrap(),
            vec![s.id.as_str().to_string()]
        );
        sink.remove("theirs").await.unwrap();
        assert!(dir.join("out/theirs.server.json").exists());
        sink.remove(s.id.as_str()).await.unwrap();
        sink.remove(s.id.as_str()).await.unwrap();
        assert!(sink.list_ours().await.unwrap().is_empty());
    }
}
