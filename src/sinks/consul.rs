//! The `consul` sink: each server is a service of the local Consul agent, with a TTL check
//! that our health verdict feeds (Consul's agent HTTP API).
//!
//! - **Register:** `PUT /v1/agent/service/register?replace-existing-checks=true` with the
//!   ServerId as `ID`, the server's `serverInfo.name` (DNS-safe) as `Name` (so instances of
//!   one MCP server software group under one service), `Address`/`Port`, tags `mcp`,
//!   `mcp-scout` and `transport:<streamable-http|sse>`, `Meta` with `mcp_path`, `server_id`,
//!   `source: mcp-scout` and what else we know (Consul's Meta rules: string values, at most
//!   [`META_VALUE_MAX`] characters), and a TTL check `mcp-scout:<id>` (TTL `ttl`,
//!   `DeregisterCriticalServiceAfter` [`DEREGISTER_AFTER`], so a service whose scanner died
//!   leaves the catalog by itself). Registering is an idempotent replace.
//! - **Health:** right after registering, and then on a tick every `ttl / 3` for every
//!   listed server (so the TTL never lapses while we run), `PUT
//!   /v1/agent/check/pass|warn|fail/<check_id>?note=…`: healthy → pass, degraded → warn,
//!   unhealthy → fail, and **unknown → pass**: unknown means not health-checked (yet, or
//!   the monitor is off), while discovery just confirmed the server answers MCP; warn would
//!   hide every server from Consul's `?passing` queries whenever the monitor is off. The
//!   note says which. A check the agent no longer knows (404: the agent restarted) makes
//!   the tick ask for a reconciliation, which registers everything again.
//! - **Deregister:** `PUT /v1/agent/service/deregister/<id>` when the server is gone; 404
//!   (already unknown) is a success.
//! - **Ours:** `GET /v1/agent/services`, the services whose `Meta.source` is `mcp-scout`.
//! - The ACL token, when set, goes in `X-Consul-Token` and never in a message. A refused
//!   token (403) is a transient error of the whole sink, not a dead letter per change.

use std::time::Duration;

use futures_util::{stream, StreamExt as _};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::http::{Answer, Client};
use super::plan::Secret;
use super::runner::Listed;
use super::{Sink, SinkError, Tick, OURS};
use crate::fingerprint::Transport;
use crate::monitor::state::Status;
use crate::store::StoredServer;

/// How long a service whose check is critical stays before the agent removes it.
pub const DEREGISTER_AFTER: &str = "10m";
/// Longest `Meta` value Consul accepts.
pub const META_VALUE_MAX: usize = 512;
/// Longest check note sent.
const NOTE_MAX: usize = 400;
/// Service name of a server that reported no `serverInfo.name`.
const DEFAULT_NAME: &str = "mcp-server";
/// Longest service name (a DNS label).
const NAME_MAX: usize = 63;

/// What the sink is built from.
#[derive(Debug, Clone)]
pub struct Options {
    /// The agent's base URL.
    pub url: url::Url,
    /// ACL token.
    pub token: Option<Secret>,
    /// TTL of the check.
    pub ttl: Duration,
    /// Deadline of one request.
    pub timeout: Duration,
    /// Check updates in flight at once on a tick.
    pub concurrency: usize,
}

/// The sink.
#[derive(Debug)]
pub struct Consul {
    base: String,
    token: Option<Secret>,
    ttl: Duration,
    concurrency: usize,
    client: Client,
}

/// A TTL check verb (`pass`, `warn`, `fail`) for our health, and the note that says why.
pub fn check_update(s: &StoredServer) -> (&'static str, String) {
    let h = s.record.health.as_ref();
    let status = h.map_or(Status::Unknown, |h| h.status);
    let verb = match status {
        Status::Healthy | Status::Unknown => "pass",
        Status::Degraded => "warn",
        Status::Unhealthy | Status::Gone => "fail",
    };
    let mut note = match status {
        Status::Unknown => {
            "mcp-scout: unknown (not health-checked; discovery found it answering MCP)".to_string()
        }
        _ => format!("mcp-scout: {}", status.as_str()),
    };
    if let Some(reason) = h.and_then(|h| h.reason.as_deref()) {
        note.push_str(": ");
        note.push_str(reason);
    }
    (verb, cut(&note, NOTE_MAX))
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The check id of server `id`.
pub fn check_id(id: &str) -> String {
    format!("{OURS}:{id}")
}

/// A DNS-safe service name from `serverInfo.name`.
fn service_name(s: &StoredServer) -> String {
    let raw = s.record.server_name.as_deref().unwrap_or_default();
    let mut out = String::new();
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut name = out.trim_end_matches('-').to_string();
    name.truncate(NAME_MAX);
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        DEFAULT_NAME.into()
    } else {
        name
    }
}

/// The registration body of `s` (`None` without an endpoint URL).
pub fn registration(s: &StoredServer, ttl: Duration) -> Option<Value> {
    let r = &s.record;
    let url = url::Url::parse(r.url.as_deref()?).ok()?;
    let transport = r.transport.unwrap_or(Transport::StreamableHttp);
    let mut meta = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            meta.insert(k.into(), cut(v, META_VALUE_MAX).into());
        }
    };
    put("mcp_path", Some(url.path()));
    put("server_id", Some(s.id.as_str()));
    put("source", Some(OURS));
    put("url", Some(url.as_str()));
    put("transport", Some(transport.as_str()));
    put("kind", r.kind.map(|k| k.as_str()));
    put("server_name", r.server_name.as_deref());
    put("server_version", r.server_version.as_deref());
    put("protocol_version", r.protocol_version.as_deref());
    let tools = r
        .tools
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(",");
    put("tools", Some(&tools));
    Some(json!({
        "ID": s.id.as_str(),
        "Name": service_name(s),
        "Address": r.ip.to_string(),
        "Port": r.port,
        "Tags": ["mcp", OURS, format!("transport:{}", transport.as_str())],
        "Meta": meta,
        "Check": {
            "CheckID": check_id(s.id.as_str()),
            "Name": "mcp-scout health",
            "TTL": format!("{}s", ttl.as_secs().max(1)),
            "DeregisterCriticalServiceAfter": DEREGISTER_AFTER,
        },
    }))
}

/// A refused ACL token (403) is transient, never a dead letter: it concerns every delivery,
/// and the sink retries until the token is fixed.
fn refused(a: Answer, what: &str) -> Result<Answer, SinkError> {
    if a.status == StatusCode::FORBIDDEN || a.status == StatusCode::UNAUTHORIZED {
        return Err(SinkError::transient(format!(
            "{what}: HTTP {} {}: the agent refused the ACL token; set `token` to one with service:write",
            a.status,
            a.quote()
        )));
    }
    Ok(a)
}

impl Consul {
    /// A sink for the agent at `o.url`.
    pub fn new(o: Options) -> Result<Self, SinkError> {
        Ok(Self {
            base: o.url.as_str().trim_end_matches('/').to_string(),
            token: o.token,
            ttl: o.ttl,
            concurrency: o.concurrency.max(1),
            client: Client::new(o.timeout)?,
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, &format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.header("X-Consul-Token", t.expose()),
            None => req,
        }
    }

    /// Send `req` (see [`refused`]).
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Answer, SinkError> {
        refused(self.client.send(req, what).await?, what)
    }

    /// Send a check update; `Ok(false)` when the agent does not know the check.
    async fn update(&self, id: &str, verb: &str, note: &str) -> Result<bool, SinkError> {
        let what = format!("PUT /v1/agent/check/{verb}");
        let req = self
            .request(
                Method::PUT,
                &format!("/v1/agent/check/{verb}/{}", check_id(id)),
            )
            .query(&[("note", note)]);
        let a = self.send(req, &what).await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        a.ok(&what)?;
        Ok(true)
    }
}

impl Sink for Consul {
    fn tick_every(&self) -> Option<Duration> {
        Some((self.ttl / 3).max(Duration::from_secs(1)))
    }

    async fn put(&mut self, server: &StoredServer) -> Result<(), SinkError> {
        let Some(body) = registration(server, self.ttl) else {
            return Ok(());
        };
        let what = "PUT /v1/agent/service/register";
        let req = self
            .request(Method::PUT, "/v1/agent/service/register")
            .query(&[("replace-existing-checks", "true")])
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.send(req, what).await?.ok(what)?;
        let (verb, note) = check_update(server);
        if !self.update(server.id.as_str(), verb, &note).await? {
            return Err(SinkError::transient(format!(
                "PUT /v1/agent/check/{verb}: the agent does not know the check it just registered"
            )));
        }
        Ok(())
    }

    async fn remove(&mut self, id: &str) -> Result<(), SinkError> {
        let what = "PUT /v1/agent/service/deregister";
        let req = self.request(Method::PUT, &format!("/v1/agent/service/deregister/{id}"));
        let a = self.send(req, what).await?;
        if a.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        a.ok(what).map(|_| ())
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        let what = "GET /v1/agent/services";
        let a: Answer = self
            .send(self.request(Method::GET, "/v1/agent/services"), what)
            .await?
            .ok(what)?;
        let services: Map<String, Value> = a.json(what)?;
        let mut ids: Vec<String> = services
            .into_iter()
            .filter(|(_, s)| s["Meta"]["source"] == OURS)
            .map(|(id, s)| s["ID"].as_str().map_or(id, str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn tick(&mut self, listed: &Listed) -> Result<Tick, SinkError> {
        // Owned requests, so the stream's futures borrow nothing from `listed`.
        let updates: Vec<(reqwest::RequestBuilder, String)> = listed
            .iter()
            .map(|(id, s)| {
                let (verb, note) = check_update(s);
                let req = self
                    .request(
                        Method::PUT,
                        &format!("/v1/agent/check/{verb}/{}", check_id(id)),
                    )
                    .query(&[("note", note)]);
                (req, format!("PUT /v1/agent/check/{verb}"))
            })
            .collect();
        let client = self.client.clone();
        let results: Vec<Result<Answer, SinkError>> = stream::iter(updates)
            .map(|(req, what)| {
                let client = client.clone();
                async move {
                    let a = refused(client.send(req, &what).await?, &what)?;
                    if a.status == StatusCode::NOT_FOUND {
                        return Ok(a);
                    }
                    a.ok(&what)
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut lost = false;
        for r in results {
            lost |= r?.status == StatusCode::NOT_FOUND;
        }
        Ok(if lost { Tick::Resync } else { Tick::Fine })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Verdict;
    use crate::monitor::state::Health;
    use crate::store::testutil;
    use std::time::SystemTime;

    fn with(status: Option<Status>) -> StoredServer {
        let mut s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        s.record.health = status.map(|status| Health {
            status,
            since: SystemTime::now(),
            reason: (status == Status::Unhealthy).then(|| "mcp: connection refused".into()),
            flapping: false,
            last_check_at: None,
            latency_ms: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            checks: vec![],
        });
        s
    }

    #[test]
    fn the_registration_has_our_tags_meta_and_a_ttl_check() {
        let s = with(None);
        let b = registration(&s, Duration::from_secs(90)).unwrap();
        let id = s.id.as_str();
        assert_eq!(b["ID"], id);
        assert_eq!(b["Name"], "demo-server");
        assert_eq!(b["Address"], "127.0.0.1");
        assert_eq!(b["Port"], 8000);
        assert_eq!(
            b["Tags"],
            json!(["mcp", "mcp-scout", "transport:streamable-http"])
        );
        assert_eq!(b["Meta"]["mcp_path"], "/mcp");
        assert_eq!(b["Meta"]["server_id"], id);
        assert_eq!(b["Meta"]["source"], "mcp-scout");
        assert_eq!(b["Meta"]["tools"], "get_forecast,add");
        assert!(b["Meta"]
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_string));
        assert_eq!(
            b["Check"],
            json!({"CheckID": format!("mcp-scout:{id}"), "Name": "mcp-scout health",
                   "TTL": "90s", "DeregisterCriticalServiceAfter": "10m"})
        );
        let mut odd = s.clone();
        odd.record.server_name = Some("  Weather_Server!! ".into());
        assert_eq!(service_name(&odd), "weather-server");
        odd.record.server_name = None;
        assert_eq!(service_name(&odd), "mcp-server");
    }

    #[test]
    fn health_maps_to_pass_warn_fail_and_unknown_passes_with_a_note() {
        let cases = [
            (Some(Status::Healthy), "pass", "mcp-scout: healthy"),
            (Some(Status::Degraded), "warn", "mcp-scout: degraded"),
            (
                Some(Status::Unhealthy),
                "fail",
                "mcp-scout: unhealthy: mcp: connection refused",
            ),
            (
                None,
                "pass",
                "mcp-scout: unknown (not health-checked; discovery found it answering MCP)",
            ),
        ];
        for (status, verb, note) in cases {
            assert_eq!(
                check_update(&with(status)),
                (verb, note.to_string()),
                "{status:?}"
            );
        }
    }
}
