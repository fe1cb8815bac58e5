//! The `contextforge` sink: each server is a gateway of an IBM ContextForge MCP gateway
//! (PyPI `mcp-contextforge-gateway`), deactivated while unhealthy and deleted when gone.
//!
//! What the real gateway does (1.0.7, see scripts/peers/README.md) shapes this file:
//! - **Register:** `POST /gateways {name, url, transport: STREAMABLEHTTP|SSE, description,
//!   tags}`. The gateway *connects to the MCP server during the POST* (initialize, list
//!   tools) and answers 502 `Failed to initialize gateway at URL: …` when it cannot: that
//!   is about this one server (unreachable from the gateway, auth required…), not the
//!   gateway, so it is a rejection (a dead letter; the next resync tries again), not a
//!   reason to hold the whole sink. A server that is unhealthy and not registered yet is
//!   not registered (the POST would fail the same way; there is nothing to deactivate).
//!   The request's deadline is the sink's `timeout`, because the gateway holds the POST
//!   open for 300 s when the server accepts and never answers.
//! - **Ours and the id map:** ContextForge assigns its own gateway ids, so we name each
//!   gateway `mcp-scout-<ServerId>` and tag it `mcp-scout` and `mcp-scout-id:<ServerId>`,
//!   list them with `GET /gateways?include_inactive=true&limit=0` (without `limit=0` it
//!   returns 50; without `include_inactive` no deactivated one; it has no tag filter, so we
//!   select by tag here) and keep a cache ServerId → gateway id and state, refreshed by
//!   each listing and when the gateway says an id is unknown.
//! - **409** on register (the name, or the URL under another name, exists): the cache was
//!   stale; we list again and adopt ours. If the clash is a gateway that is not ours, it is
//!   a rejection that says so: we never touch someone else's gateway.
//! - **Health:** unhealthy → `POST /gateways/{id}/state?activate=false` (it hides the
//!   gateway and its tools), healthy, degraded or unknown again → `activate=true`.
//! - **Tools:** the gateway fetches a server's tools once, at registration; when the tools
//!   we know differ from what this process last had it fetch (after an `updated` change,
//!   and once per gateway after a start), `POST /gateways/{id}/tools/refresh`. A failed
//!   refresh is logged and tried again later; it never holds the sink.
//! - **Gone:** `DELETE /gateways/{id}`; 404 (already gone) is a success.
//! - The JWT goes in `Authorization: Bearer …` and never in a message. A refused token
//!   (401, 403) is a transient error of the whole sink, not a dead letter per change, so an
//!   expired token loses nothing: the sink retries until it is replaced.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::http::{Answer, Client};
use super::plan::Secret;
use super::{Sink, SinkError, OURS};
use crate::fingerprint::Transport;
use crate::monitor::state::Status;
use crate::store::StoredServer;

/// The tag prefix that carries the ServerId.
pub const ID_TAG: &str = "mcp-scout-id:";
/// What the gateway's 502 says when it could not reach or initialise the MCP server.
const INIT_FAILED: &str = "Failed to initialize gateway";
/// Longest description sent.
const DESCRIPTION_MAX: usize = 200;

/// A gateway of ours, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// ContextForge's id.
    pub id: String,
    /// Whether it is active.
    pub enabled: bool,
}

/// The sink.
#[derive(Debug)]
pub struct ContextForge {
    base: String,
    token: Secret,
    client: Client,
    /// ServerId → our gateway.
    cache: HashMap<String, Gateway>,
    /// Whether `cache` was filled by a listing (else a miss lists first).
    listed: bool,
    /// ServerId → the tool list ([`tools_of`]) the gateway was last made to fetch by this
    /// process; a server whose tools differ gets its gateway's tools refreshed.
    tools: HashMap<String, String>,
}

/// The tool names and schema hashes of `s`, as one comparable string.
fn tools_of(s: &StoredServer) -> String {
    s.record
        .tools
        .iter()
        .map(|t| {
            format!(
                "{}#{}",
                t.name,
                t.input_schema_hash.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The error of an answer that refused the token (401, 403).
fn token_refused(a: &Answer, what: &str) -> Option<SinkError> {
    (a.status == StatusCode::UNAUTHORIZED || a.status == StatusCode::FORBIDDEN).then(|| {
        SinkError::transient(format!(
            "{what}: HTTP {} {}: ContextForge refused the token; give a valid, unexpired JWT in `token`",
            a.status,
            a.quote()
        ))
    })
}

/// The gateway name of server `id`.
pub fn gateway_name(id: &str) -> String {
    format!("{OURS}-{id}")
}

/// The `POST /gateways` body of `s` (`None` without an endpoint URL).
pub fn registration(s: &StoredServer) -> Option<Value> {
    let r = &s.record;
    let url = r.url.as_deref()?;
    let transport = match r.transport {
        Some(Transport::Sse) => "SSE",
        _ => "STREAMABLEHTTP",
    };
    let label = r.server_name.as_deref().unwrap_or("MCP server");
    let description: String = format!("{label} at {url}, found by mcp-scout")
        .chars()
        .take(DESCRIPTION_MAX)
        .collect();
    Some(json!({
        "name": gateway_name(s.id.as_str()),
        "url": url,
        "transport": transport,
        "description": description,
        "tags": [OURS, format!("{ID_TAG}{}", s.id.as_str())],
    }))
}

/// Our gateways in a `GET /gateways` answer (a list, or `{gateways: [...]}` when paginated):
/// (ServerId, gateway), selected by our tag.
pub fn ours_in(answer: &Value) -> Vec<(String, Gateway)> {
    let items = answer
        .as_array()
        .or_else(|| answer["gateways"].as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::new();
    for g in items {
        let tags: Vec<&str> = g["tags"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_str().or_else(|| t["id"].as_str()))
            .collect();
        if !tags.contains(&OURS) {
            continue;
        }
        let server = tags
            .iter()
            .find_map(|t| t.strip_prefix(ID_TAG))
            .map(str::to_string)
            .or_else(|| {
                g["name"]
                    .as_str()
                    .and_then(|n| n.strip_prefix(&format!("{OURS}-")))
                    .map(str::to_string)
            });
        let (Some(server), Some(id)) = (server, g["id"].as_str()) else {
            continue;
        };
        out.push((
            server,
            Gateway {
                id: id.to_string(),
                enabled: g["enabled"].as_bool().unwrap_or(true),
            },
        ));
    }
    out
}

/// Whether ContextForge should show `s` as active.
fn active(s: &StoredServer) -> bool {
    s.record.health.as_ref().map(|h| h.status) != Some(Status::Unhealthy)
}

impl ContextForge {
    /// A sink for the gateway at `url`, authenticating with `token`.
    pub fn new(url: url::Url, token: Secret, timeout: Duration) -> Result<Self, SinkError> {
        Ok(Self {
            base: url.as_str().trim_end_matches('/').to_string(),
            token,
            client: Client::new(timeout)?,
            cache: HashMap::new(),
            listed: false,
            tools: HashMap::new(),
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, &format!("{}{path}", self.base))
            .bearer_auth(self.token.expose())
    }

    /// Send `req`; a refused token (401, 403) is transient, never a dead letter: it concerns
    /// every delivery, and the sink retries until the token is fixed.
    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Answer, SinkError> {
        let a = self.client.send(req, what).await?;
        match token_refused(&a, what) {
            Some(e) => Err(e),
            None => Ok(a),
        }
    }

    /// List our gateways and refresh the cache.
    async fn refresh(&mut self) -> Result<(), SinkError> {
        let what = "GET /gateways";
        let req = self
            .request(Method::GET, "/gateways")
            .query(&[("include_inactive", "true"), ("limit", "0")]);
        let answer: Value = self.send(req, what).await?.ok(what)?.json(what)?;
        self.cache = ours_in(&answer).into_iter().collect();
        self.listed = true;
        Ok(())
    }

    /// Our gateway of server `id`, listing first when the cache was never filled.
    async fn find(&mut self, id: &str) -> Result<Option<Gateway>, SinkError> {
        if !self.listed {
            self.refresh().await?;
        }
        Ok(self.cache.get(id).cloned())
    }

    /// `POST /gateways`; the gateway registered (adopted on a 409 when it is ours).
    async fn register(&mut self, s: &StoredServer, body: &Value) -> Result<Gateway, SinkError> {
        let what = "POST /gateways";
        let a = self
            .send(
                self.request(Method::POST, "/gateways")
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.to_string()),
                what,
            )
            .await?;
        let id = s.id.as_str();
        if a.status == StatusCode::CONFLICT {
            self.refresh().await?;
            return self.cache.get(id).cloned().ok_or_else(|| SinkError::Rejected {
                status: Some(409),
                message: format!(
                    "{what}: HTTP 409 {}: a gateway that mcp-scout did not create has this name or URL; it is left alone",
                    a.quote()
                ),
            });
        }
        if a.status == StatusCode::BAD_GATEWAY
            && String::from_utf8_lossy(&a.body).contains(INIT_FAILED)
        {
            return Err(SinkError::Rejected {
                status: Some(502),
                message: format!(
                    "{what}: the gateway could not reach or initialise the MCP server (HTTP 502 {}); retried at the next resync",
                    a.quote()
                ),
            });
        }
        let g: Value = a.ok(what)?.json(what)?;
        let gid = g["id"].as_str().ok_or_else(|| {
            SinkError::transient(format!("{what}: the answer has no gateway `id`"))
        })?;
        let gw = Gateway {
            id: gid.to_string(),
            enabled: g["enabled"].as_bool().unwrap_or(true),
        };
        self.cache.insert(id.to_string(), gw.clone());
        Ok(gw)
    }

    /// `POST /gateways/{id}/state?activate=…`; `Ok(false)` when the gateway is unknown.
    async fn set_state(&mut self, server: &str, gw: &Gateway, on: bool) -> Result<bool, SinkError> {
        let what = "POST /gateways/{id}/state";
        let req = self
            .request(Method::POST, &format!("/gateways/{}/state", gw.id))
            .query(&[("activate", if on { "true" } else { "false" })]);
        let a = self.send(req, what).await?;
        if a.status == StatusCode::NOT_FOUND
            || (a.status == StatusCode::BAD_REQUEST
                && String::from_utf8_lossy(&a.body).contains("not found"))
        {
            self.cache.remove(server);
            return Ok(false);
        }
        a.ok(what)?;
        self.cache.insert(
            server.to_string(),
            Gateway {
                id: gw.id.clone(),
                enabled: on,
            },
        );
        Ok(true)
    }
}

/// What a tools refresh did.
enum Refreshed {
    /// The gateway fetched the server's tools again.
    Done,
    /// It could not now (logged); tried again at the server's next delivery or resync.
    Later,
    /// The gateway no longer knows this gateway id.
    Unknown,
}

impl ContextForge {
    /// `POST /gateways/{id}/tools/refresh`: make the gateway fetch the server's tools again
    /// (it fetched them once, at registration). Only a refused token is an error: a failed
    /// refresh must not hold the sink, the registration itself is in place.
    async fn refresh_tools(&mut self, server: &str, gw: &Gateway) -> Result<Refreshed, SinkError> {
        let what = "POST /gateways/{id}/tools/refresh";
        let req = self.request(Method::POST, &format!("/gateways/{}/tools/refresh", gw.id));
        let a = match self.client.send(req, what).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(server = %server, "the gateway's tools were not refreshed: {e}");
                return Ok(Refreshed::Later);
            }
        };
        if let Some(e) = token_refused(&a, what) {
            return Err(e);
        }
        if a.status == StatusCode::NOT_FOUND {
            self.cache.remove(server);
            return Ok(Refreshed::Unknown);
        }
        if let Err(e) = a.ok(what) {
            tracing::warn!(server = %server, "the gateway's tools were not refreshed: {e}");
            return Ok(Refreshed::Later);
        }
        Ok(Refreshed::Done)
    }
}

impl Sink for ContextForge {
    async fn put(&mut self, server: &StoredServer) -> Result<(), SinkError> {
        let Some(body) = registration(server) else {
            return Ok(());
        };
        let id = server.id.as_str();
        let want = active(server);
        let tools = tools_of(server);
        // Twice at most: a cached gateway that the gateway no longer knows is registered anew.
        for _ in 0..2 {
            let gw = match self.find(id).await? {
                Some(gw) => gw,
                None if !want => return Ok(()),
                None => {
                    let gw = self.register(server, &body).await?;
                    self.tools.insert(id.to_string(), tools);
                    return if gw.enabled || self.set_state(id, &gw, true).await? {
                        Ok(())
                    } else {
                        Err(SinkError::transient(format!(
                            "the gateway of {id} vanished right after it was registered"
                        )))
                    };
                }
            };
            if gw.enabled != want && !self.set_state(id, &gw, want).await? {
                continue;
            }
            if want && self.tools.get(id) != Some(&tools) {
                match self.refresh_tools(id, &gw).await? {
                    Refreshed::Done => {
                        self.tools.insert(id.to_string(), tools);
                    }
                    Refreshed::Later => {}
                    Refreshed::Unknown => continue,
                }
            }
            return Ok(());
        }
        Err(SinkError::transient(format!(
            "the gateway of {id} vanished twice while it was being updated"
        )))
    }

    async fn put_all(&mut self, servers: &[StoredServer]) -> Result<(), SinkError> {
        // One server the gateway cannot reach must not hold the others.
        for s in servers {
            match self.put(s).await {
                Ok(()) => {}
                Err(SinkError::Rejected { message, .. }) => {
                    tracing::warn!(server = %s.id.as_str(), "not registered in ContextForge: {message}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn remove(&mut self, id: &str) -> Result<(), SinkError> {
        let Some(gw) = self.find(id).await? else {
            return Ok(());
        };
        let what = "DELETE /gateways/{id}";
        let a = self
            .send(
                self.request(Method::DELETE, &format!("/gateways/{}", gw.id)),
                what,
            )
            .await?;
        if a.status != StatusCode::NOT_FOUND {
            a.ok(what)?;
        }
        self.cache.remove(id);
        Ok(())
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        self.refresh().await?;
        let mut ids: Vec<String> = self.cache.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Verdict;
    use crate::store::testutil;

    #[test]
    fn the_registration_names_tags_and_transport() {
        let mut s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        let id = s.id.as_str().to_string();
        let b = registration(&s).unwrap();
        assert_eq!(b["name"], format!("mcp-scout-{id}"));
        assert_eq!(b["url"], "http://127.0.0.1:8000/mcp");
        assert_eq!(b["transport"], "STREAMABLEHTTP");
        assert_eq!(
            b["tags"],
            json!(["mcp-scout", format!("mcp-scout-id:{id}")])
        );
        assert!(b["description"].as_str().unwrap().contains("demo-server"));
        s.record.transport = Some(Transport::Sse);
        assert_eq!(registration(&s).unwrap()["transport"], "SSE");
    }

    #[test]
    fn only_gateways_with_our_tag_are_ours_whatever_the_answer_shape() {
        let list = json!([
            {"id": "a1", "name": "mcp-scout-srv-1", "enabled": false,
             "tags": [{"id": "mcp-scout", "label": "mcp-scout"}, {"id": "mcp-scout-id:srv-1", "label": "mcp-scout-id:srv-1"}]},
            {"id": "b2", "name": "mcp-scout-srv-2", "tags": ["mcp-scout"]},
            {"id": "c3", "name": "mcp-scout-theirs", "tags": [{"id": "prod"}]},
            {"id": "d4", "name": "x", "tags": []},
        ]);
        let want = vec![
            (
                "srv-1".to_string(),
                Gateway {
                    id: "a1".into(),
                    enabled: false,
                },
            ),
            (
                "srv-2".to_string(),
                Gateway {
                    id: "b2".into(),
                    enabled: true,
                },
            ),
        ];
        assert_eq!(ours_in(&list), want);
        assert_eq!(
            ours_in(&json!({"gateways": list, "nextCursor": null})),
            want
        );
        assert!(ours_in(&json!({"detail": "x"})).is_empty());
    }
}
