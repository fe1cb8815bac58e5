//! The `etcd` sink: one JSON record per server at `prefix + id` in etcd v3, every record
//! attached to one lease this sink keeps alive, so the records vanish by themselves when
//! every scanner feeding them dies.
//!
//! - **The wire.** etcd's v3 JSON gateway (`/v3/kv/put|range|deleterange|txn`,
//!   `/v3/lease/grant|keepalive`, `/v3/auth/authenticate`) over the shared bounded
//!   [`http::Client`]: keys and values travel base64-encoded, int64 values as JSON strings.
//!   Not the `etcd-client` crate: it needs `protoc` at build time, and the gateway is the
//!   same API with nothing to generate.
//! - **The record** is the server as `GET /api/v1/servers/{id}` shows it, plus
//!   `source: mcp-scout` and `scanner` (this daemon: `hostname:pid`).
//! - **The lease.** Granted with `lease_ttl` on the first put and refreshed by
//!   [`Sink::tick`] every third of it. A keep-alive that answers no TTL, or a put that says
//!   "lease not found", means the lease expired (etcd was down longer than the TTL, or the
//!   daemon stalled): a new lease is granted and the tick asks for a resync, which re-puts
//!   everything on it. A put also refreshes the lease when a tick is overdue, so a long
//!   reconciliation (the runner's one task is busy) cannot outlive it. A `lease_ttl` of
//!   zero (only `scan --push etcd=…` makes one; the config requires 5 s or more) puts
//!   without a lease: a one-shot push has no daemon to keep one alive.
//! - **Health.** An unhealthy server stays listed, its verdict in the record's `health`
//!   (readers filter on `health.status`); a gone one is deleted.
//! - **Endpoints** are tried in order when one cannot be reached; the one that answered is
//!   kept for the next calls.
//! - **Auth.** With `user` and `password`, `/v3/auth/authenticate` gives a token sent in the
//!   `Authorization` header; an "invalid auth token" answer (expired) authenticates again
//!   once. The password and the token are never logged or put in an error.
//!
//! ## Several daemons on one prefix
//!
//! Each daemon has its own lease. A put by another daemon moves the key to that daemon's
//! lease and `scanner`: the key then lives as long as the last writer keeps its lease alive,
//! which is what "entries vanish if every scanner dies" needs. **Ours** is the keys whose
//! record's `scanner` is this daemon: [`Sink::list_ours`] lists only those, and
//! [`Sink::remove`] deletes a key only while its record still names this daemon (a
//! transaction on the key's `mod_revision`, so a put by another daemon in between wins). A
//! key that another daemon wrote last is left to it: if that daemon still wants it, it
//! stays; if that daemon died, it expires with its lease. The same holds after a restart of
//! this daemon (a new pid): what its predecessor wrote and no one re-puts expires within
//! `lease_ttl`.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::http::{self, Answer};
use super::plan::Secret;
use super::runner::Listed;
use super::{Sink, SinkError, Tick, OURS};
use crate::store::StoredServer;

/// Keys (with their records) read per range request when listing ours: a page stays far
/// below the client's body cap even with large records.
pub const LIST_PAGE: u64 = 50;
/// Most pages read by one listing (bounds the loop: 500,000 keys).
pub const MAX_LIST_PAGES: usize = 10_000;
/// etcd's gRPC code for "unauthenticated" (an expired or unknown auth token).
const CODE_UNAUTHENTICATED: i64 = 16;
/// etcd's gRPC code for "permission denied" (the user may not touch the key).
const CODE_PERMISSION_DENIED: i64 = 7;
/// etcd's gRPC code for "not found" (a put naming a lease that expired).
const CODE_NOT_FOUND: i64 = 5;

/// What one gateway call can end in, beyond a sink error.
#[derive(Debug)]
enum Fail {
    /// The lease named in the request does not exist (any more).
    LeaseGone,
    /// Anything else.
    Sink(SinkError),
}

impl From<SinkError> for Fail {
    fn from(e: SinkError) -> Self {
        Self::Sink(e)
    }
}

impl From<Fail> for SinkError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::LeaseGone => Self::transient("etcd: the lease expired"),
            Fail::Sink(e) => e,
        }
    }
}

/// The settings of one etcd sink.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Client URLs, tried in order.
    pub endpoints: Vec<url::Url>,
    /// Key prefix.
    pub prefix: String,
    /// TTL of the lease.
    pub lease_ttl: Duration,
    /// User and password, when etcd's auth is on.
    pub user: Option<(String, Secret)>,
    /// This daemon's name in the records' `scanner` field.
    pub scanner: String,
}

/// The sink.
#[derive(Debug)]
pub struct Etcd {
    client: http::Client,
    settings: Settings,
    /// The endpoint that answered last (tried first).
    current: usize,
    /// The auth token, when authenticated (a [`Secret`]: `Debug` never shows it).
    token: Option<Secret>,
    /// The lease every record is attached to, once granted.
    lease: Option<String>,
    /// The lease was found gone (and is or will be granted anew): the next tick resyncs.
    renewed: bool,
    /// When the lease was last granted or kept alive.
    refreshed: Instant,
}

/// `hostname:pid`, this process's name in the records.
pub fn scanner_name() -> String {
    format!("{}:{}", super::hostname(), std::process::id())
}

/// The record stored for `s`.
#[derive(Serialize)]
struct Document<'a> {
    #[serde(flatten)]
    server: &'a StoredServer,
    source: &'static str,
    scanner: &'a str,
}

/// The JSON record of `server`, written by `scanner`.
pub fn record(server: &StoredServer, scanner: &str) -> Result<Vec<u8>, SinkError> {
    serde_json::to_vec(&Document {
        server,
        source: OURS,
        scanner,
    })
    .map_err(|e| SinkError::transient(format!("encoding the etcd record: {e}")))
}

/// The key after every key that starts with `prefix` (etcd's `range_end` for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): every key from the start ("\0" means "to the end").
    vec![0]
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(v: &Value, what: &str) -> Result<Vec<u8>, SinkError> {
    let s = v.as_str().unwrap_or_default();
    B64.decode(s)
        .map_err(|e| SinkError::transient(format!("{what}: not base64 ({e})")))
}

/// The body of `/v3/kv/put` for `key` = `value` on `lease`.
/// (`None`: no lease, the key stays until deleted).
pub fn put_body(key: &str, value: &[u8], lease: Option<&str>) -> Value {
    let mut body = json!({"key": b64(key.as_bytes()), "value": b64(value)});
    if let Some(l) = lease {
        body["lease"] = json!(l);
    }
    body
}

/// The body of `/v3/auth/authenticate`.
pub fn auth_body(user: &str, password: &Secret) -> Value {
    json!({"name": user, "password": password.expose()})
}

/// Whether a range's `kvs[i].value` is a record of ours written by `scanner`.
pub fn written_by(value: &[u8], scanner: &str) -> bool {
    serde_json::from_slice::<Value>(value)
        .is_ok_and(|v| v["source"] == OURS && v["scanner"] == scanner)
}

/// An int64 of a gateway answer (a JSON string, or absent for 0).
fn int64(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

impl Etcd {
    /// A sink with `settings`, each request bounded by `timeout`.
    pub fn new(settings: Settings, timeout: Duration) -> Result<Self, SinkError> {
        Ok(Self {
            client: http::Client::new(timeout)?,
            settings,
            current: 0,
            token: None,
            lease: None,
            renewed: false,
            refreshed: Instant::now(),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}{id}", self.settings.prefix)
    }

    /// POST `body` to `path` on the first endpoint that can be reached, starting with the
    /// one that answered last.
    async fn post(&mut self, path: &str, body: &Value, auth: bool) -> Result<Answer, SinkError> {
        let n = self.settings.endpoints.len();
        let what = format!("POST {path}");
        let mut last = SinkError::transient(format!("{what}: no endpoint"));
        for i in 0..n {
            let at = (self.current + i) % n;
            let base = self.settings.endpoints[at].as_str().trim_end_matches('/');
            let mut req = self
                .client
                .request(Method::POST, &format!("{base}{path}"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            if auth {
                if let Some(t) = &self.token {
                    req = req.header(reqwest::header::AUTHORIZATION, t.expose());
                }
            }
            match self.client.send(req, &what).await {
                Ok(a) => {
                    self.current = at;
                    return Ok(a);
                }
                Err(e) => {
                    if n > 1 {
                        tracing::debug!(
                            endpoint = at,
                            "etcd endpoint unreachable, trying the next: {e}"
                        );
                    }
                    last = e;
                }
            }
        }
        if n > 1 {
            last = SinkError::transient(format!("no endpoint of {n} answered; the last: {last}"));
        }
        Err(last)
    }

    /// Authenticate when a user is configured and no token is held.
    async fn authenticate(&mut self) -> Result<(), SinkError> {
        let Some((user, password)) = self.settings.user.clone() else {
            return Ok(());
        };
        if self.token.is_some() {
            return Ok(());
        }
        let a = self
            .post("/v3/auth/authenticate", &auth_body(&user, &password), false)
            .await?;
        if !a.status.is_success() {
            // A wrong password is the config's fault, but every call needs it: retried
            // (the sink shows failing) rather than dead-lettering each change.
            return Err(SinkError::transient(format!(
                "etcd refused to authenticate user {user:?} (HTTP {}): {}; check user and password",
                a.status,
                error_of(&a)
            )));
        }
        let v: Value = a.json("POST /v3/auth/authenticate")?;
        let token = v["token"].as_str().unwrap_or_default();
        if token.is_empty() {
            return Err(SinkError::transient(
                "POST /v3/auth/authenticate: the answer has no token",
            ));
        }
        self.token = Some(Secret::new(token));
        Ok(())
    }

    /// One authenticated gateway call: its JSON answer, re-authenticating once when the
    /// token expired.
    async fn call(&mut self, path: &str, body: &Value) -> Result<Value, Fail> {
        let what = format!("POST {path}");
        for attempt in 0..2 {
            self.authenticate().await?;
            let a = self.post(path, body, true).await?;
            if a.status.is_success() {
                return Ok(a.json(&what)?);
            }
            match judge(&a, &what, self.settings.user.is_some(), attempt == 0) {
                Some(f) => return Err(f),
                None => self.token = None,
            }
        }
        Err(Fail::Sink(SinkError::transient(format!(
            "{what}: etcd keeps refusing the auth token"
        ))))
    }

    /// The lease, granted when there is none.
    async fn lease(&mut self) -> Result<String, SinkError> {
        if let Some(l) = &self.lease {
            return Ok(l.clone());
        }
        let ttl = self.settings.lease_ttl.as_secs().max(1);
        let v = self
            .call("/v3/lease/grant", &json!({"TTL": ttl.to_string()}))
            .await?;
        let id = int64(&v["ID"]);
        if id == 0 {
            return Err(SinkError::transient(format!(
                "POST /v3/lease/grant: no lease ID in the answer ({})",
                v["error"].as_str().unwrap_or("no error given")
            )));
        }
        tracing::debug!(lease = id, ttl, "etcd lease granted");
        let id = id.to_string();
        self.lease = Some(id.clone());
        self.refreshed = Instant::now();
        Ok(id)
    }

    /// Refresh the lease held (if any); one found expired is dropped and `renewed` set.
    async fn keep_alive(&mut self) -> Result<(), SinkError> {
        let Some(lease) = self.lease.clone() else {
            return Ok(());
        };
        let v = self
            .call("/v3/lease/keepalive", &json!({"ID": lease}))
            .await?;
        if int64(&v["result"]["TTL"]) > 0 {
            self.refreshed = Instant::now();
            return Ok(());
        }
        tracing::info!(
            "the etcd lease expired (keep-alive answered no TTL); granting a new one and re-putting every record"
        );
        self.lease = None;
        self.renewed = true;
        Ok(())
    }

    /// Put one record, granting a new lease (once) if the one held expired.
    async fn put_record(&mut self, id: &str, value: &[u8]) -> Result<(), SinkError> {
        let key = self.key(id);
        if self.settings.lease_ttl.is_zero() {
            self.call("/v3/kv/put", &put_body(&key, value, None))
                .await?;
            return Ok(());
        }
        if self.refreshed.elapsed() >= self.settings.lease_ttl / 3 {
            // A long reconciliation holds the task past the tick: keep the lease alive
            // here too, or the records put first would expire before it ends.
            self.keep_alive().await?;
        }
        for _ in 0..2 {
            let lease = self.lease().await?;
            match self
                .call("/v3/kv/put", &put_body(&key, value, Some(&lease)))
                .await
            {
                Ok(_) => return Ok(()),
                Err(Fail::LeaseGone) => {
                    tracing::info!(
                        "the etcd lease expired; granting a new one and re-putting every record"
                    );
                    self.lease = None;
                    self.renewed = true;
                }
                Err(Fail::Sink(e)) => return Err(e),
            }
        }
        Err(SinkError::transient(
            "POST /v3/kv/put: etcd says the lease it just granted is not found",
        ))
    }

    /// The keys (and values) from `start` up to the end of the prefix, one page.
    async fn range_page(
        &mut self,
        start: &[u8],
    ) -> Result<(Vec<(Vec<u8>, Vec<u8>)>, bool), SinkError> {
        let end = prefix_end(self.settings.prefix.as_bytes());
        let v = self
            .call(
                "/v3/kv/range",
                &json!({"key": b64(start), "range_end": b64(&end), "limit": LIST_PAGE.to_string()}),
            )
            .await?;
        let mut out = Vec::new();
        for kv in v["kvs"].as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push((
                unb64(&kv["key"], "POST /v3/kv/range: a key")?,
                unb64(&kv["value"], "POST /v3/kv/range: a value")?,
            ));
        }
        Ok((out, v["more"].as_bool().unwrap_or(false)))
    }
}

/// The gRPC `code` and `error` of a gateway error answer (0 and "" when it has none).
fn grpc_error(a: &Answer) -> (i64, String) {
    serde_json::from_slice::<Value>(&a.body).map_or((0, String::new()), |v| {
        (
            v["code"].as_i64().unwrap_or(0),
            v["error"].as_str().unwrap_or_default().to_string(),
        )
    })
}

/// What a gateway error answer means: `None` to authenticate again and retry (an expired
/// token, the first time), else the failure.
fn judge(a: &Answer, what: &str, has_user: bool, first: bool) -> Option<Fail> {
    let (code, message) = grpc_error(a);
    if code == CODE_UNAUTHENTICATED && has_user && first {
        return None;
    }
    if code == CODE_NOT_FOUND && message.contains("lease not found") {
        return Some(Fail::LeaseGone);
    }
    if code == CODE_UNAUTHENTICATED
        || code == CODE_PERMISSION_DENIED
        || message.contains("user name is empty")
    {
        // Every call fails the same way until the config is fixed: retried (the sink
        // shows failing) rather than a dead letter per change.
        let fix = if has_user {
            "check that the user may write the prefix"
        } else {
            "etcd's auth is on: set user and password"
        };
        return Some(Fail::Sink(SinkError::transient(format!(
            "{what}: etcd refused the call ({message:?}); {fix}"
        ))));
    }
    let quote = if message.is_empty() {
        a.quote()
    } else {
        format!("{message:?}")
    };
    Some(Fail::Sink(http::classify(a.status, what, &quote)))
}

/// What a gateway error answer says, for messages.
fn error_of(a: &Answer) -> String {
    let (_, message) = grpc_error(a);
    if message.is_empty() {
        a.quote()
    } else {
        format!("{message:?}")
    }
}

impl Sink for Etcd {
    async fn put(&mut self, server: &StoredServer) -> Result<(), SinkError> {
        let value = record(server, &self.settings.scanner)?;
        self.put_record(server.id.as_str(), &value).await
    }

    async fn remove(&mut self, id: &str) -> Result<(), SinkError> {
        let key = self.key(id);
        let v = self
            .call("/v3/kv/range", &json!({"key": b64(key.as_bytes())}))
            .await?;
        let Some(kv) = v["kvs"].as_array().and_then(|k| k.first()) else {
            return Ok(());
        };
        let value = unb64(&kv["value"], "POST /v3/kv/range: a value")?;
        if !written_by(&value, &self.settings.scanner) {
            // Another daemon wrote it last: its lease decides (see the module doc).
            tracing::debug!(key = %key, "etcd key left to the daemon that wrote it last");
            return Ok(());
        }
        let revision = kv["mod_revision"].clone();
        let body = json!({
            "compare": [{"key": b64(key.as_bytes()), "target": "MOD", "mod_revision": revision, "result": "EQUAL"}],
            "success": [{"request_delete_range": {"key": b64(key.as_bytes())}}],
        });
        self.call("/v3/kv/txn", &body).await?;
        Ok(())
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        let prefix = self.settings.prefix.clone();
        let mut start = prefix.as_bytes().to_vec();
        let mut ours = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let (page, more) = self.range_page(&start).await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            let mut next = last.clone();
            next.push(0);
            for (key, value) in &page {
                if !written_by(value, &self.settings.scanner) {
                    continue;
                }
                if let Some(id) = key.strip_prefix(prefix.as_bytes()) {
                    ours.push(String::from_utf8_lossy(id).into_owned());
                }
            }
            if !more {
                break;
            }
            start = next;
        }
        Ok(ours)
    }

    fn tick_every(&self) -> Option<Duration> {
        (!self.settings.lease_ttl.is_zero()).then(|| self.settings.lease_ttl / 3)
    }

    async fn tick(&mut self, listed: &Listed) -> Result<Tick, SinkError> {
        self.keep_alive().await?;
        // A lease found gone, or none while servers should be listed: a new lease and
        // everything re-put on it.
        if std::mem::take(&mut self.renewed) || (self.lease.is_none() && !listed.is_empty()) {
            self.lease().await?;
            return Ok(Tick::Resync);
        }
        Ok(Tick::Fine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Verdict;
    use crate::store::testutil;

    #[test]
    fn the_record_is_the_api_view_plus_source_and_scanner() {
        let s = testutil::stored("127.0.0.1", 8000, Verdict::Mcp);
        let bytes = record(&s, "host-a:42").unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let api = serde_json::to_value(&s).unwrap();
        for (k, want) in api.as_object().unwrap() {
            assert_eq!(&v[k], want, "{k}");
        }
        assert_eq!(v["source"], "mcp-scout");
        assert_eq!(v["scanner"], "host-a:42");
        assert_eq!(v["url"], "http://127.0.0.1:8000/mcp");
        assert!(written_by(&bytes, "host-a:42"));
        assert!(!written_by(&bytes, "host-b:42"));
        assert!(!written_by(b"{\"scanner\":\"host-a:42\"}", "host-a:42"));
        assert!(!written_by(b"not json", "host-a:42"));
    }

    #[test]
    fn bodies_are_base64_with_int64_strings() {
        let b = put_body("/mcp-scout/servers/x", b"{}", Some("694"));
        assert_eq!(b["key"], B64.encode("/mcp-scout/servers/x"));
        assert_eq!(b["value"], "e30=");
        assert_eq!(b["lease"], "694");
        let b = put_body("/mcp-scout/servers/x", b"{}", None);
        assert!(b.get("lease").is_none(), "{b}");
        let a = auth_body("root", &Secret::new("pw"));
        assert_eq!(a, json!({"name": "root", "password": "pw"}));
        assert_eq!(int64(&json!("7")), 7);
        assert_eq!(int64(&Value::Null), 0);
    }

    #[test]
    fn the_prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/mcp-scout/servers/"), b"/mcp-scout/servers0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn gateway_errors_sort_into_reauth_lease_gone_retry_and_rejection() {
        let answer = |status: u16, body: &str| Answer {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
            cut: false,
            cap: crate::sinks::http::BODY_CAP,
        };
        let expired = answer(
            401,
            r#"{"error":"etcdserver: invalid auth token","code":16}"#,
        );
        assert!(judge(&expired, "x", true, true).is_none());
        assert!(matches!(
            judge(&expired, "x", true, false),
            Some(Fail::Sink(SinkError::Transient(_)))
        ));
        let lease = answer(
            404,
            r#"{"error":"etcdserver: requested lease not found","code":5}"#,
        );
        assert!(matches!(
            judge(&lease, "x", false, true),
            Some(Fail::LeaseGone)
        ));
        let no_user = answer(
            400,
            r#"{"error":"etcdserver: user name is empty","code":3}"#,
        );
        match judge(&no_user, "POST /v3/kv/put", false, true) {
            Some(Fail::Sink(SinkError::Transient(m))) => {
                assert!(m.contains("set user and password"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        let bad = answer(
            400,
            r#"{"error":"etcdserver: key is not provided","code":3}"#,
        );
        match judge(&bad, "POST /v3/kv/put", false, true) {
            Some(Fail::Sink(SinkError::Rejected {
                status: Some(400),
                message,
            })) => {
                assert!(message.contains("key is not provided"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let down = answer(503, "<html>busy</html>");
        assert!(matches!(
            judge(&down, "x", false, true),
            Some(Fail::Sink(SinkError::Transient(_)))
        ));
    }

    #[test]
    fn the_scanner_is_host_and_pid() {
        let s = scanner_name();
        assert!(s.ends_with(&format!(":{}", std::process::id())), "{s}");
        assert!(s.len() > 2);
    }
}
