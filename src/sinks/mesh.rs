//! The `mcp-mesh` sink: keep an MCP Mesh registry's agents equal to the servers that are
//! up, by the registry's real API (3.7.1; see `shared/guide/REGISTRIES.md`): `POST
//! /heartbeat` registers or updates, `HEAD /heartbeat/{id}` keeps alive, `DELETE
//! /agents/{id}` deregisters, `GET /agents` lists. The seeds' `POST /api/v1/agents` does
//! not exist.
//!
//! - **Who is listed.** A server that is up: `healthy`, `degraded`, or `unknown` (not
//!   checked yet, or the health monitor is off: with `health.enabled: false` nothing would
//!   ever be listed otherwise). `unhealthy` (and gone) is [`Wanted::No`]: deregistered. A
//!   server without tools is [`Wanted::Skip`]`("no_tools")`: Mesh routes by capability, and
//!   an agent without one is noise (3.7.1 accepts `tools: []`, so the sink must refuse).
//! - **The body.** `agent_id` and `name` are the ServerId (already `[a-z0-9-]`, at most 63,
//!   which fits both Mesh rules); one tool entry per MCP tool, `function_name` =
//!   `capability` = the tool name, tagged [`OURS`]. `runtime` is [`RUNTIME`]: Mesh only
//!   knows `python`, `typescript` and `java`, and a discovered server's language is not
//!   known, so the value says nothing and ownership is never judged by it.
//! - **Ours** is an agent in our namespace whose capabilities carry the [`OURS`] tag.
//!   [`Sink::list_ours`] asks for `status=healthy` only: in 3.7.1 a DELETE leaves the entry
//!   listed as `unhealthy` until eviction, and counting those would DELETE them again at
//!   every reconciliation; it also means "registry equals inventory" is judged on healthy
//!   entries, which is what Mesh clients route to.
//! - **Answers.** A validation failure is HTTP 200 with `"status":"error"` in the body, so
//!   the body is read, not only the code: a refused body is [`SinkError::Rejected`] (a dead
//!   letter), any other `error` a transient failure.
//! - **Heartbeats** ([`Sink::tick`], every `heartbeat`): one HEAD per listed server,
//!   `concurrency` in flight. 200: fine. 202 (the registry's topology changed, which it
//!   says to every agent after any registration, until that agent POSTs again) and 410
//!   (unknown or unhealthy: the registry restarted empty, or missed heartbeats): POST again.
//!   503 or no answer: a transient error, so the runner backs off and reconciles when the
//!   registry answers again. The first error stops the round (a down registry costs a few
//!   requests, not one per server).
//! - **Paths.** Mesh clients call `endpoint + "/mcp"`, and the registry stores no path; a
//!   server whose path is not `/mcp` is listed all the same, with a warning logged once
//!   per server.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{self, Answer, Client};
use super::metrics::SinkMetrics;
use super::plan::{SinkKind, SinkPlan, DEFAULT_MESH_HEARTBEAT, DEFAULT_MESH_NAMESPACE};
use super::runner::Listed;
use super::{is_active, Sink, SinkError, Tick, Wanted, OURS};
use crate::monitor::state::Status;
use crate::store::StoredServer;

/// The `agent_type` of every agent we register (Mesh's type for MCP servers).
pub const AGENT_TYPE: &str = "mcp_agent";
/// The `runtime` we send: Mesh accepts only `python`, `typescript` or `java`, and refuses
/// the whole registration otherwise; what a discovered server runs on is not known.
pub const RUNTIME: &str = "python";
/// The version sent when the server did not say its own.
pub const DEFAULT_VERSION: &str = "1.0.0";
/// The path Mesh clients append to an agent's endpoint.
pub const MESH_PATH: &str = "/mcp";
/// Longest tool description sent (a registry entry is a pointer, not documentation; it
/// keeps 1,000 servers' list within [`LIST_CAP`]).
pub const DESCRIPTION_MAX: usize = 256;
/// Longest version string sent.
const VERSION_MAX: usize = 64;
/// Mesh's limits: `agent_id` at most 64, `name` at most 63, both `[a-z0-9-]`.
const AGENT_ID_MAX: usize = 64;
const NAME_MAX: usize = 63;
/// Most bytes of `GET /agents` read: about 800 bytes per agent, so room for some 20,000
/// agents, and still a bound for a registry that streams without end.
pub const LIST_CAP: usize = 16 * 1024 * 1024;
/// How long after its last heartbeat Mesh marks an agent unhealthy (about 20 s, checked
/// every 10 s): what `scan --push mcp-mesh=URL` warns about, since no daemon keeps its
/// entries alive.
pub const EXPIRES_AFTER: Duration = Duration::from_secs(20);

/// Why a server is skipped (the `reason` label of `mcp_scout_sink_skipped_servers`).
pub const SKIP_NO_TOOLS: &str = "no_tools";
/// A record without an endpoint URL cannot be registered.
pub const SKIP_NO_URL: &str = "no_url";

/// The `request` labels of `mcp_scout_sink_requests_total` this sink counts.
const REQ_HEARTBEAT: &str = "heartbeat";
const REQ_REGISTER: &str = "register";
const REQ_DEREGISTER: &str = "deregister";
const REQ_LIST: &str = "list";

/// The sink.
#[derive(Debug)]
pub struct Mesh {
    name: String,
    client: Client,
    base: url::Url,
    namespace: String,
    heartbeat: Duration,
    concurrency: usize,
    metrics: Option<SinkMetrics>,
    /// Servers whose non-`/mcp` path was already warned about.
    warned: HashSet<String>,
}

impl Mesh {
    /// The sink `plan` describes (a [`SinkKind::Mesh`]); `metrics` counts its requests.
    pub fn new(plan: &SinkPlan, metrics: Option<SinkMetrics>) -> Result<Self, SinkError> {
        let SinkKind::Mesh {
            url,
            namespace,
            heartbeat,
        } = &plan.kind
        else {
            return Err(SinkError::transient(format!(
                "the mcp-mesh sink was given a {} plan",
                plan.kind.type_name()
            )));
        };
        Ok(Self {
            name: plan.name.clone(),
            client: Client::new(plan.timeout)?,
            base: url.clone(),
            namespace: namespace.clone(),
            heartbeat: *heartbeat,
            concurrency: plan.concurrency.max(1),
            metrics,
            warned: HashSet::new(),
        })
    }

    /// A sink for `scan --push mcp-mesh=URL`: every setting at its default (namespace
    /// `default`, the default timeout and concurrency). Nothing heartbeats its entries
    /// afterwards, so they turn unhealthy about [`EXPIRES_AFTER`] later.
    pub fn for_push(url: url::Url) -> Result<Self, SinkError> {
        let plan = SinkPlan::with_defaults(
            "push-mcp-mesh",
            SinkKind::Mesh {
                url,
                namespace: DEFAULT_MESH_NAMESPACE.into(),
                heartbeat: DEFAULT_MESH_HEARTBEAT,
            },
        );
        Self::new(&plan, None)
    }

    /// `base` + `path` (the base URL's own path kept, so a registry behind a prefix works).
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    fn count(&self, request: &str) {
        if let Some(m) = &self.metrics {
            m.request(&self.name, request);
        }
    }

    /// `POST /heartbeat` with `body` (made by [`heartbeat_body`]).
    async fn post(&self, id: &str, body: &Value) -> Result<(), SinkError> {
        self.count(REQ_REGISTER);
        let bytes = serde_json::to_vec(body)
            .map_err(|e| SinkError::transient(format!("encoding the heartbeat of {id}: {e}")))?;
        let req = self
            .client
            .request(Method::POST, &self.endpoint("/heartbeat"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        let answer = self.client.send(req, "POST /heartbeat").await?;
        registered(id, answer)
    }

    /// Register `server` (its body is built here; no warning bookkeeping).
    async fn post_server(&self, server: &StoredServer) -> Result<(), SinkError> {
        let id = server.id.as_str();
        let body = heartbeat_body(server, &self.namespace)?;
        self.post(id, &body).await
    }

    /// `HEAD /heartbeat/{id}`; POST `server` again when the registry asks for it.
    async fn keep_alive(&self, server: &StoredServer) -> Result<(), SinkError> {
        let id = server.id.as_str();
        self.count(REQ_HEARTBEAT);
        let req = self
            .client
            .request(Method::HEAD, &self.endpoint(&format!("/heartbeat/{id}")));
        let answer = self.client.send(req, "HEAD /heartbeat").await?;
        match answer.status {
            StatusCode::OK => Ok(()),
            StatusCode::ACCEPTED | StatusCode::GONE => self.post_server(server).await,
            StatusCode::SERVICE_UNAVAILABLE => Err(SinkError::transient(
                "HEAD /heartbeat: HTTP 503, the registry asks to back off",
            )),
            s => Err(SinkError::transient(format!(
                "HEAD /heartbeat: unexpected HTTP {s}; is this an MCP Mesh registry?"
            ))),
        }
    }

    /// Warn once per server whose path Mesh clients will not call.
    fn warn_path(&mut self, server: &StoredServer) {
        let id = server.id.as_str();
        if self.warned.contains(id) {
            return;
        }
        if let Some(path) = mcp_path(server).filter(|p| p != MESH_PATH) {
            tracing::warn!(
                sink = %self.name,
                server = %id,
                path = %path,
                "registered in MCP Mesh, but Mesh clients call the endpoint + {MESH_PATH}, not {path}; they cannot reach this server"
            );
            self.warned.insert(id.to_string());
        }
    }
}

/// What Mesh's `POST /heartbeat` says in its body.
#[derive(Debug, Deserialize)]
struct Registered {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Sort a `POST /heartbeat` answer: 2xx with `"status":"success"` is a success; a refused
/// body (HTTP 400, or 200 with `"status":"error"` and a validation message) is rejected
/// for good; anything else is transient.
fn registered(id: &str, answer: Answer) -> Result<(), SinkError> {
    if !answer.status.is_success() {
        let quote = answer.quote();
        return Err(http::classify(
            answer.status,
            &format!("POST /heartbeat for {id}"),
            &quote,
        ));
    }
    let r: Registered = answer.json("POST /heartbeat")?;
    match r.status.as_deref() {
        Some("success") => Ok(()),
        _ => {
            let said = r
                .message
                .or(r.error)
                .unwrap_or_else(|| "no status in the answer".into());
            let said: String = said.chars().take(300).collect();
            let message = format!("POST /heartbeat: the registry refused {id}: {said}");
            if said.contains("valid") {
                Err(SinkError::Rejected {
                    status: Some(answer.status.as_u16()),
                    message,
                })
            } else {
                Err(SinkError::transient(message))
            }
        }
    }
}

/// The health status that decides whether a server is listed (`unknown` without one).
fn health_of(server: &StoredServer) -> Status {
    server
        .record
        .health
        .as_ref()
        .map_or(Status::Unknown, |h| h.status)
}

/// The server's MCP path, from its URL.
fn mcp_path(server: &StoredServer) -> Option<String> {
    let url = url::Url::parse(server.record.url.as_deref()?).ok()?;
    Some(url.path().to_string())
}

/// The host and port Mesh stores as the agent's endpoint (`http://host:port`).
fn host_port(server: &StoredServer) -> Option<(String, u16)> {
    let url = url::Url::parse(server.record.url.as_deref()?).ok()?;
    let port = url.port_or_known_default()?;
    let host = match url.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some((host, port))
}

/// Whether `s` fits a Mesh identifier: `[a-z0-9-]`, 1 to `max` characters.
fn mesh_ident(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The `POST /heartbeat` body of `server` in `namespace`.
pub fn heartbeat_body(server: &StoredServer, namespace: &str) -> Result<Value, SinkError> {
    let id = server.id.as_str();
    // A ServerId always fits; say so plainly if one read from an old store does not.
    if !mesh_ident(id, AGENT_ID_MAX) || !mesh_ident(id, NAME_MAX) {
        return Err(SinkError::Rejected {
            status: None,
            message: format!(
                "server id {id:?} does not fit Mesh's agent_id/name rule (1 to 63 of a-z, 0-9, -)"
            ),
        });
    }
    let Some((host, port)) = host_port(server) else {
        return Err(SinkError::Rejected {
            status: None,
            message: format!("server {id} has no endpoint URL with a host and port"),
        });
    };
    let r = &server.record;
    let version = r
        .server_version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map_or_else(|| DEFAULT_VERSION.to_string(), |v| cut(v, VERSION_MAX));
    // Mesh has no free-form metadata: a pod-sourced server's namespace and pod travel as
    // tags beside ours (`k8s-namespace:NS`, `k8s-pod:NAME`), which Mesh clients can filter on.
    let mut tags = vec![Value::from(OURS)];
    if let Some(k) = &r.k8s {
        tags.push(format!("k8s-namespace:{}", k.namespace).into());
        tags.push(format!("k8s-pod:{}", k.pod).into());
    }
    let mut seen = HashSet::new();
    let tools: Vec<Value> = r
        .tools
        .iter()
        .filter(|t| seen.insert(t.name.as_str()))
        .map(|t| {
            json!({
                "function_name": t.name,
                "capability": t.name,
                "description": cut(t.description.as_deref().unwrap_or(""), DESCRIPTION_MAX),
                "version": version,
                "tags": tags,
            })
        })
        .collect();
    Ok(json!({
        "agent_id": id,
        "name": id,
        "agent_type": AGENT_TYPE,
        "runtime": RUNTIME,
        "version": version,
        "http_host": host,
        "http_port": port,
        "namespace": namespace,
        "tools": tools,
    }))
}

/// One agent of `GET /agents`, as far as ownership needs.
#[derive(Debug, Deserialize)]
struct Agent {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    capabilities: Option<Vec<Capability>>,
}

#[derive(Debug, Deserialize)]
struct Capability {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct Agents {
    agents: Option<Vec<Agent>>,
}

/// The ids of the healthy agents tagged as ours in a `GET /agents` answer.
fn ours_in(list: Agents) -> Vec<String> {
    let mut ids: Vec<String> = list
        .agents
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.status.as_deref().is_none_or(|s| s == "healthy"))
        .filter(|a| {
            a.capabilities.as_deref().is_some_and(|caps| {
                caps.iter().any(|c| {
                    c.tags
                        .as_deref()
                        .is_some_and(|t| t.iter().any(|t| t == OURS))
                })
            })
        })
        .map(|a| a.id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

impl Sink for Mesh {
    fn wants(&self, server: &StoredServer) -> Wanted {
        if !is_active(server) {
            return Wanted::No;
        }
        match health_of(server) {
            Status::Unhealthy | Status::Gone => return Wanted::No,
            Status::Healthy | Status::Degraded | Status::Unknown => {}
        }
        if host_port(server).is_none() {
            return Wanted::Skip(SKIP_NO_URL);
        }
        if server.record.tools.is_empty() {
            return Wanted::Skip(SKIP_NO_TOOLS);
        }
        Wanted::Yes
    }

    async fn put(&mut self, server: &StoredServer) -> Result<(), SinkError> {
        self.warn_path(server);
        self.post_server(server).await
    }

    async fn remove(&mut self, id: &str) -> Result<(), SinkError> {
        self.count(REQ_DEREGISTER);
        let req = self
            .client
            .request(Method::DELETE, &self.endpoint(&format!("/agents/{id}")));
        let answer = self.client.send(req, "DELETE /agents").await?;
        if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let quote = answer.quote();
        Err(http::classify(
            answer.status,
            &format!("DELETE /agents/{id}"),
            &quote,
        ))
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        self.count(REQ_LIST);
        let req = self
            .client
            .request(Method::GET, &self.endpoint("/agents"))
            .query(&[
                ("status", "healthy"),
                ("namespace", self.namespace.as_str()),
            ]);
        let answer = self
            .client
            .send_capped(req, "GET /agents", LIST_CAP)
            .await?
            .ok("GET /agents")?;
        Ok(ours_in(answer.json("GET /agents")?))
    }

    async fn put_all(&mut self, servers: &[StoredServer]) -> Result<(), SinkError> {
        for s in servers {
            self.warn_path(s);
        }
        let this = &*self;
        // Collected first: a closure inside the stream's type trips the Send check of the
        // trait's future (a higher-ranked lifetime rustc cannot prove).
        let posts: Vec<_> = servers.iter().map(|s| this.post_server(s)).collect();
        let mut posts = stream::iter(posts).buffer_unordered(this.concurrency);
        while let Some(r) = posts.next().await {
            r?;
        }
        Ok(())
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(self.heartbeat)
    }

    async fn tick(&mut self, listed: &Listed) -> Result<Tick, SinkError> {
        let this = &*self;
        let rounds: Vec<_> = listed.values().map(|s| this.keep_alive(s)).collect();
        let mut rounds = stream::iter(rounds).buffer_unordered(this.concurrency);
        while let Some(r) = rounds.next().await {
            r?;
        }
        Ok(Tick::Fine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Verdict;
    use crate::monitor::state::Health;
    use crate::store::testutil;
    use crate::store::ServerStatus;

    fn with_health(mut s: StoredServer, status: Status) -> StoredServer {
        s.record.health = Some(Health {
            status,
            since: std::time::SystemTime::UNIX_EPOCH,
            reason: None,
            flapping: false,
            last_check_at: None,
            latency_ms: None,
            consecutive_failures: 0,
            consecutive_successes: 0,
            checks: Vec::new(),
        });
        s
    }

    #[test]
    fn a_pod_sourced_server_is_tagged_with_its_namespace_and_pod() {
        let mut s = testutil::stored("127.0.0.171", 8000, Verdict::Mcp);
        s.record.k8s = Some(crate::finding::K8sInfo {
            namespace: "team-a".into(),
            pod: "tools-0".into(),
            node: "n1".into(),
            labels: std::collections::BTreeMap::new(),
        });
        let b = heartbeat_body(&s, "lab").unwrap();
        assert_eq!(
            b["tools"][0]["tags"],
            json!(["mcp-scout", "k8s-namespace:team-a", "k8s-pod:tools-0"])
        );
    }

    #[test]
    fn the_body_is_what_mesh_takes_one_tool_entry_per_mcp_tool_tagged_ours() {
        let s = testutil::stored("127.0.0.171", 8000, Verdict::Mcp);
        let b = heartbeat_body(&s, "lab").unwrap();
        let id = s.id.as_str();
        assert!(id.len() <= 63);
        assert_eq!(b["agent_id"], id);
        assert_eq!(b["name"], id);
        assert_eq!(b["agent_type"], "mcp_agent");
        assert_eq!(b["runtime"], "python");
        assert_eq!(b["version"], "1.0.0");
        assert_eq!(b["http_host"], "127.0.0.171");
        assert_eq!(b["http_port"], 8000);
        assert_eq!(b["namespace"], "lab");
        let tools = b["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0]["function_name"], "get_forecast");
        assert_eq!(tools[0]["capability"], "get_forecast");
        assert_eq!(tools[0]["tags"], json!(["mcp-scout"]));
        assert_eq!(tools[0]["version"], "1.0.0");
        assert!(tools[0]["description"].is_string());
        assert_eq!(tools[1]["capability"], "add");
        let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "agent_id",
                "agent_type",
                "http_host",
                "http_port",
                "name",
                "namespace",
                "runtime",
                "tools",
                "version"
            ]
        );
    }

    #[test]
    fn version_falls_back_descriptions_are_cut_duplicate_tools_dropped_ipv6_host_bare() {
        let mut s = testutil::stored("::1", 9000, Verdict::Mcp);
        s.record.server_version = Some("  ".into());
        s.record.tools[0].description = Some("d".repeat(1000));
        let dup = s.record.tools[0].clone();
        s.record.tools.push(dup);
        let b = heartbeat_body(&s, "default").unwrap();
        assert_eq!(b["version"], "1.0.0");
        assert_eq!(b["http_host"], "::1");
        assert_eq!(b["http_port"], 9000);
        let tools = b["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 2, "{tools:?}");
        let d = tools[0]["description"].as_str().unwrap();
        assert_eq!(d.chars().count(), DESCRIPTION_MAX);
        s.record.server_version = Some("2.3.4".into());
        assert_eq!(heartbeat_body(&s, "default").unwrap()["version"], "2.3.4");
    }

    #[test]
    fn up_servers_are_wanted_unhealthy_is_not_no_tools_is_skipped() {
        let plan = SinkPlan::with_defaults(
            "m",
            SinkKind::Mesh {
                url: "http://127.0.0.171:18000".parse().unwrap(),
                namespace: "default".into(),
                heartbeat: Duration::from_secs(5),
            },
        );
        let m = Mesh::new(&plan, None).unwrap();
        let s = testutil::stored("127.0.0.171", 8000, Verdict::Mcp);
        assert_eq!(m.wants(&s), Wanted::Yes, "unknown: not checked yet");
        for (status, want) in [
            (Status::Healthy, Wanted::Yes),
            (Status::Degraded, Wanted::Yes),
            (Status::Unknown, Wanted::Yes),
            (Status::Unhealthy, Wanted::No),
            (Status::Gone, Wanted::No),
        ] {
            assert_eq!(m.wants(&with_health(s.clone(), status)), want, "{status:?}");
        }
        let mut none = s.clone();
        none.record.tools.clear();
        assert_eq!(m.wants(&none), Wanted::Skip("no_tools"));
        let mut unhealthy_none = with_health(none, Status::Unhealthy);
        assert_eq!(m.wants(&unhealthy_none), Wanted::No);
        unhealthy_none.record.health = None;
        unhealthy_none.status = ServerStatus::Gone;
        assert_eq!(m.wants(&unhealthy_none), Wanted::No);
    }

    #[test]
    fn a_path_other_than_mcp_is_registered_and_warned_about_once() {
        let plan = SinkPlan::with_defaults(
            "m",
            SinkKind::Mesh {
                url: "http://127.0.0.171:18000/".parse().unwrap(),
                namespace: "default".into(),
                heartbeat: Duration::from_secs(5),
            },
        );
        let mut m = Mesh::new(&plan, None).unwrap();
        assert_eq!(
            m.endpoint("/heartbeat"),
            "http://127.0.0.171:18000/heartbeat"
        );
        let mut s = testutil::stored("127.0.0.171", 8000, Verdict::Mcp);
        m.warn_path(&s);
        assert!(m.warned.is_empty(), "/mcp needs no warning");
        s.record.url = Some("http://127.0.0.171:8000/sse".into());
        assert_eq!(m.wants(&s), Wanted::Yes);
        m.warn_path(&s);
        m.warn_path(&s);
        assert_eq!(m.warned.len(), 1);
    }

    #[test]
    fn ours_are_the_healthy_agents_with_our_tag() {
        let list: Agents = serde_json::from_value(json!({"agents": [
            {"id": "a", "status": "healthy", "capabilities": [{"tags": ["mcp-scout"]}]},
            {"id": "b", "status": "unhealthy", "capabilities": [{"tags": ["mcp-scout"]}]},
            {"id": "c", "status": "healthy", "capabilities": [{"tags": ["weather"]}]},
            {"id": "d", "status": "healthy", "capabilities": null},
            {"id": "e", "capabilities": [{"tags": null}, {"tags": ["x", "mcp-scout"]}]},
        ], "count": 5}))
        .unwrap();
        assert_eq!(ours_in(list), vec!["a".to_string(), "e".to_string()]);
        let empty: Agents = serde_json::from_value(json!({"agents": null, "count": 0})).unwrap();
        assert!(ours_in(empty).is_empty());
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
            cut: false,
            cap: http::BODY_CAP,
        }
    }

    #[test]
    fn answers_are_read_by_their_body_status_not_only_the_code() {
        assert!(registered("x", answer(200, r#"{"status":"success","agent_id":"x"}"#)).is_ok());
        let e = registered(
            "x",
            answer(
                200,
                r#"{"status":"error","message":"validation failed: agent_id: agent_id must contain only lowercase alphanumeric characters and hyphens"}"#,
            ),
        )
        .unwrap_err();
        assert!(matches!(e, SinkError::Rejected { .. }), "{e:?}");
        assert!(
            e.to_string().contains("refused x: validation failed"),
            "{e}"
        );
        let e = registered(
            "x",
            answer(200, r#"{"status":"error","message":"database is locked"}"#),
        )
        .unwrap_err();
        assert!(matches!(e, SinkError::Transient(_)), "{e:?}");
        let e = registered("x", answer(400, r#"{"error":"agent_id is required"}"#)).unwrap_err();
        assert!(
            matches!(
                e,
                SinkError::Rejected {
                    status: Some(400),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = registered("x", answer(503, "busy")).unwrap_err();
        assert!(matches!(e, SinkError::Transient(_)), "{e:?}");
        let mut html = answer(200, "<html>down for maintenance</html>");
        html.content_type = Some("text/html".into());
        let e = registered("x", html).unwrap_err();
        assert!(matches!(e, SinkError::Transient(_)), "{e:?}");
        assert!(e.to_string().contains("not the expected JSON"), "{e}");
    }

    #[test]
    fn the_push_sink_has_the_defaults() {
        let m = Mesh::for_push("http://127.0.0.171:18000".parse().unwrap()).unwrap();
        assert_eq!(m.namespace, "default");
        assert_eq!(m.heartbeat, Duration::from_secs(5));
        assert_eq!(m.concurrency, crate::sinks::plan::DEFAULT_CONCURRENCY);
    }
}
