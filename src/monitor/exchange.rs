//! One strict MCP exchange over Streamable HTTP, step by step, for the health checks: the
//! handshake (`initialize` → `notifications/initialized`, or `server/discover` for a server
//! that speaks only the 2026-07-28 era), `tools/list` with its pages, `tools/call` when a
//! custom check names a tool, and the DELETE of the session it opened.
//!
//! The fingerprint's exploration ([`crate::fingerprint::streamable`]) shrugs off failures (it
//! gathers evidence); a check must name the first one. So this file keeps its own loop but
//! reuses the fingerprint's pieces: the request bodies and headers, the reply reader (JSON
//! or event stream) and the JSON-RPC classifier, so both speak MCP the same way.
//!
//! Every step is recorded in `Exchange::steps` as it ends, and the request in flight in
//! `in_flight`: the caller bounds the whole exchange with one timeout, and when it fires the
//! future is dropped but the exchange (owned by the caller) still says which step hung.
//! The session id is kept here too, so the DELETE runs after a timeout as well; a DELETE
//! that fails or is refused is recorded and the id dropped: nothing stays open on our side.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use url::Url;

use super::cel::ServerVars;
use super::check::{Checker, Step};
use crate::fingerprint::http::{HttpProber, Request, StreamCaps};
use crate::fingerprint::jsonrpc::{Expect, Reply};
use crate::fingerprint::sse::SseLimits;
use crate::fingerprint::streamable::{
    self, headers, initialize, modern_params, rpc, tool_of, ACCEPT, MAX_TOOL_PAGES,
};
use crate::fingerprint::tls::CertSummary;
use crate::fingerprint::{trim_text, Tool, MODERN_VERSION};

/// Deadline of the closing DELETE, on top of the check's timeout: closing a session on
/// someone's server is worth a short wait, never a long one.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of one exchange with one endpoint.
pub(crate) struct Exchange<'a> {
    http: &'a HttpProber,
    url: Url,
    bearer: Option<&'a str>,
    body_cap: usize,
    timeout: Duration,
    deadline: Instant,
    /// Steps done, in order.
    pub(crate) steps: Vec<Step>,
    /// The session the server opened (closed by [`Exchange::close`]).
    session: Option<String>,
    /// The negotiated version (2025 era).
    version: Option<String>,
    /// Speaking the 2026-07-28 era (no session, `_meta` on every request).
    modern: bool,
    next_id: u64,
    /// The peer's certificate, on HTTPS.
    pub(crate) cert: Option<CertSummary>,
    /// What the handshake said about the server.
    pub(crate) server: ServerVars,
    /// The HTTP status of the last reply.
    pub(crate) status: Option<u16>,
    /// The step in flight and when it started.
    in_flight: Option<(String, Instant)>,
}

impl<'a> Exchange<'a> {
    /// An exchange with `url`, all of it due within `timeout`.
    pub(crate) fn new(
        checker: &'a Checker,
        url: Url,
        bearer: Option<&'a str>,
        timeout: Duration,
    ) -> Self {
        Self {
            http: &checker.http,
            url,
            bearer,
            body_cap: checker.body_cap,
            timeout,
            deadline: Instant::now() + timeout,
            steps: Vec::new(),
            session: None,
            version: None,
            modern: false,
            next_id: 0,
            cert: None,
            server: ServerVars::default(),
            status: None,
            in_flight: None,
        }
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn step(&mut self, ok: bool, message: String) {
        if let Some((name, started)) = self.in_flight.take() {
            self.steps.push(Step {
                name,
                ok,
                latency: started.elapsed(),
                message,
            });
        }
    }

    /// The request for `body`, with the era's headers, the session and the token.
    fn request(&self, method: &str, body: &Value) -> Request {
        let req = Request::new(reqwest::Method::POST, self.url.clone()).json(body);
        let mut req = if self.modern {
            req.header("accept", ACCEPT)
                .header("mcp-protocol-version", MODERN_VERSION)
                .header("mcp-method", method.to_string())
        } else {
            headers(req, self.version.as_deref(), self.session.as_deref())
        };
        if let Some(b) = self.bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        req
    }

    /// A request's body: `params` (an object) gets the modern era's `_meta` when speaking it.
    fn body(&mut self, method: &str, mut params: Value) -> Value {
        self.next_id += 1;
        if self.modern {
            if let (Some(p), Some(meta)) = (params.as_object_mut(), modern_params().get("_meta")) {
                p.insert("_meta".into(), meta.clone());
            }
        }
        rpc(self.next_id, method, params)
    }

    /// Send one request and read its reply; an error reply is returned as a reply.
    async fn send(&mut self, req: &Request, expect: Expect) -> Result<Reply, String> {
        let caps = StreamCaps {
            max_bytes: self.body_cap,
            max_time: self.left(),
        };
        let mut stream = self
            .http
            .open_stream(req, caps)
            .await
            .map_err(|e| e.to_string())?;
        if self.cert.is_none() {
            self.cert.clone_from(&stream.cert);
        }
        if self.session.is_none() && !self.modern {
            self.session = stream.header("mcp-session-id").map(str::to_string);
        }
        self.status = Some(stream.status);
        let limits = SseLimits {
            max_event_bytes: self.body_cap,
            max_total_bytes: self.body_cap,
        };
        let (reply, snippet) = streamable::read_reply_within(&mut stream, expect, limits).await;
        let capped = stream.capped();
        let status = stream.status;
        drop(stream);
        if status == 401 {
            return Err(if self.bearer.is_some() {
                "HTTP 401: credentials rejected".into()
            } else {
                "HTTP 401: authorization required (configure health.credentials)".into()
            });
        }
        if capped {
            return Err(format!(
                "the response was cut at the {}-byte body cap (health.body_cap)",
                self.body_cap
            ));
        }
        let http_error = !(200..300).contains(&status);
        match reply {
            Some(Reply::Error(e)) if !http_error => Ok(Reply::Error(e)),
            Some(Reply::Error(e)) => Err(format!(
                "HTTP {status}: JSON-RPC error {}: {}",
                e.code,
                trim_text(&e.message)
            )),
            _ if http_error => Err(format!("HTTP {status}{}", quote(&snippet))),
            Some(Reply::Malformed(why)) => Err(format!("unparseable reply: {why}")),
            Some(Reply::NotJsonRpc) => Err(format!("not a JSON-RPC reply{}", quote(&snippet))),
            // The stream's read cap is the check's deadline: reaching it is the timeout.
            None if self.left() < Duration::from_millis(20) => Err(format!(
                "no answer within the check's timeout ({})",
                crate::units::format_duration(self.timeout)
            )),
            None => Err(format!(
                "no JSON-RPC reply before the response ended{}",
                quote(&snippet)
            )),
            Some(r) => Ok(r),
        }
    }

    /// One JSON-RPC request as a recorded step; an error reply is a failure.
    async fn call(
        &mut self,
        step: &str,
        method: &str,
        params: Value,
        expect: Expect,
    ) -> Result<Reply, String> {
        let body = self.body(method, params);
        self.raw(step, method, &body, expect)
            .await
            .and_then(|r| match r {
                Reply::Error(e) => Err(format!(
                    "JSON-RPC error {}: {}",
                    e.code,
                    trim_text(&e.message)
                )),
                r => Ok(r),
            })
    }

    /// One request as a recorded step, an error reply returned as such.
    async fn raw(
        &mut self,
        step: &str,
        method: &str,
        body: &Value,
        expect: Expect,
    ) -> Result<Reply, String> {
        self.in_flight = Some((step.to_string(), Instant::now()));
        let req = self.request(method, body);
        let out = self.send(&req, expect).await;
        match &out {
            Ok(Reply::Error(e)) => self.step(
                false,
                format!("JSON-RPC error {}: {}", e.code, trim_text(&e.message)),
            ),
            Ok(r) => {
                let failed = matches!(r, Reply::CallResult(v) if v.get("isError").and_then(Value::as_bool) == Some(true));
                let m = describe(r);
                self.step(!failed, m);
            }
            Err(e) => self.step(false, e.clone()),
        }
        out
    }

    /// The handshake; `modern_only` goes straight to `server/discover`. A 2025-era
    /// `initialize` refused with a modern-era hint falls back to it too.
    pub(crate) async fn handshake(&mut self, modern_only: bool) -> Result<(), String> {
        if !modern_only {
            self.next_id += 1;
            let body = initialize(self.next_id);
            match self
                .raw("initialize", "initialize", &body, Expect::Initialize)
                .await
            {
                Ok(Reply::Initialize(i)) => {
                    self.version = Some(i.protocol_version.clone());
                    self.server = ServerVars {
                        name: streamable::non_empty(&i.server_name),
                        version: streamable::non_empty(&i.server_version),
                        protocol_version: Some(i.protocol_version),
                    };
                    return self.initialized().await;
                }
                Ok(Reply::Error(e)) if e.is_modern_era_hint() => {}
                Ok(Reply::Error(e)) => {
                    return Err(format!(
                        "initialize: JSON-RPC error {}: {}",
                        e.code,
                        trim_text(&e.message)
                    ))
                }
                Ok(_) => {
                    return Err("initialize: the result is not an MCP initialize result".into())
                }
                Err(e) => return Err(format!("initialize: {e}")),
            }
        }
        self.modern = true;
        self.session = None;
        match self
            .call(
                "server/discover",
                "server/discover",
                json!({}),
                Expect::Discover,
            )
            .await
        {
            Ok(Reply::Discover(d)) => {
                self.server = ServerVars {
                    name: d.server_name,
                    version: d.server_version,
                    protocol_version: Some(MODERN_VERSION.to_string()),
                };
                Ok(())
            }
            Ok(_) => Err("server/discover: the result is not a server/discover result".into()),
            Err(e) => Err(format!("server/discover: {e}")),
        }
    }

    async fn initialized(&mut self) -> Result<(), String> {
        self.in_flight = Some(("notifications/initialized".into(), Instant::now()));
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let req = self.request("notifications/initialized", &note);
        match self.http.send(&req).await {
            Ok(r) if (200..300).contains(&r.status) => {
                self.step(true, r.status.to_string());
                Ok(())
            }
            Ok(r) => {
                let m = format!("HTTP {}", r.status);
                self.step(false, m.clone());
                Err(format!("notifications/initialized: {m}"))
            }
            Err(e) => {
                self.step(false, e.to_string());
                Err(format!("notifications/initialized: {e}"))
            }
        }
    }

    /// Every page of `tools/list` (at most [`MAX_TOOL_PAGES`]); the note says when pages
    /// were left.
    pub(crate) async fn list_tools(&mut self) -> Result<(Vec<Tool>, String), String> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 1..=MAX_TOOL_PAGES {
            let params = cursor
                .as_ref()
                .map_or_else(|| json!({}), |c| json!({"cursor": c}));
            let step = if page == 1 {
                "tools/list".to_string()
            } else {
                format!("tools/list (page {page})")
            };
            match self.call(&step, "tools/list", params, Expect::Tools).await {
                Ok(Reply::Tools(p)) => {
                    tools.extend(p.tools.iter().map(tool_of));
                    cursor = p.next_cursor;
                }
                Ok(_) => return Err(format!("{step}: the result has no tools list")),
                Err(e) => return Err(format!("{step}: {e}")),
            }
            if cursor.is_none() {
                return Ok((tools, String::new()));
            }
        }
        Ok((
            tools,
            format!("; stopped after {MAX_TOOL_PAGES} pages (more were offered)"),
        ))
    }

    /// `tools/call` of `tool`: its result object.
    pub(crate) async fn call_tool(
        &mut self,
        tool: &str,
        arguments: &Value,
    ) -> Result<Value, String> {
        let step = format!("tools/call {tool}");
        match self
            .call(
                &step,
                "tools/call",
                json!({"name": tool, "arguments": arguments}),
                Expect::Call,
            )
            .await
        {
            Ok(Reply::CallResult(v)) => Ok(v),
            Ok(_) => Err(format!("{step}: the result is not an object")),
            Err(e) => Err(format!("{step}: {e}")),
        }
    }

    /// The check timed out: record the step in flight as hung; the message says which.
    pub(crate) fn timed_out(&mut self, timeout: Duration) -> String {
        let what = self
            .in_flight
            .as_ref()
            .map_or_else(|| "the exchange".to_string(), |(n, _)| n.clone());
        let m = format!(
            "timeout: {what} got no answer within {}",
            crate::units::format_duration(timeout)
        );
        self.step(false, "no answer before the check's timeout".into());
        m
    }

    /// DELETE the session, if one was opened. Its failure is recorded, never a check
    /// failure, and the id is dropped either way.
    pub(crate) async fn close(&mut self) {
        let Some(sid) = self.session.take() else {
            return;
        };
        self.in_flight = Some(("DELETE session".into(), Instant::now()));
        let mut req = headers(
            Request::new(reqwest::Method::DELETE, self.url.clone()),
            self.version.as_deref(),
            Some(&sid),
        );
        if let Some(b) = self.bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        match tokio::time::timeout(DELETE_TIMEOUT, self.http.send(&req)).await {
            Ok(Ok(r)) if (200..300).contains(&r.status) => self.step(true, r.status.to_string()),
            Ok(Ok(r)) => self.step(
                false,
                format!(
                    "{} refused (not counted; the session is dropped on our side)",
                    r.status
                ),
            ),
            Ok(Err(e)) => self.step(false, format!("{e} (not counted)")),
            Err(_) => self.step(false, "no answer (not counted)".into()),
        }
    }
}

fn quote(snippet: &str) -> String {
    let t: String = snippet.trim().chars().take(120).collect();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {:?}", t.replace(['\r', '\n'], " "))
    }
}

fn describe(r: &Reply) -> String {
    match r {
        Reply::Initialize(i) => format!(
            "protocolVersion {}, server {} {}",
            i.protocol_version, i.server_name, i.server_version
        ),
        Reply::Discover(d) => format!("supportedVersions {:?}", d.supported_versions),
        Reply::Tools(t) if t.tools.len() == 1 => "1 tool".into(),
        Reply::Tools(t) => format!("{} tools", t.tools.len()),
        Reply::CallResult(v) => {
            if v.get("isError").and_then(Value::as_bool) == Some(true) {
                "isError: true".into()
            } else {
                "result".into()
            }
        }
        _ => "a reply".into(),
    }
}
