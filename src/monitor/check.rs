//! The check engine: one check of one server, returned as a [`Report`] (steps, result,
//! tools). It never sleeps between checks, schedules or stores: the daemon's monitor and
//! `mcp-scout check` call it.
//!
//! The built-in check `mcp` depends on what the scan found ([`Target::kind`]):
//! - `mcp` over Streamable HTTP: a strict `Exchange` ([`super::exchange`]) (handshake, `tools/list`, DELETE);
//! - `mcp` over legacy SSE: the fingerprint's own legacy probe (GET, `endpoint` event, POST
//!   over it, results on the stream), which ends the session by dropping the stream;
//! - `mcp-auth-required` without a token: the fingerprint's path probe again, and the
//!   challenge it meets must name the same resource and metadata as at scan time; with a
//!   token ([`super::plan::HealthPlan::bearer_for`]) the strict exchange runs authenticated;
//! - `mcp-likely`: the fingerprint's path probe, whose signal must still be there.
//!
//! Reusing the fingerprint's probes keeps one definition of each signal. Custom checks are in
//! [`super::custom`]. Every check is bounded by its timeout as a whole (a hung server costs
//! one timeout) and every body by the plan's body cap. `tools/call` is only ever sent by a
//! custom `mcp_call` check. There is no scope wall here: the callers only pass servers their
//! scans found (the tests only loopback peers).

use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use super::cel::ServerVars;
use super::exchange::Exchange;
use super::plan::{CustomCheck, HealthPlan, BUILTIN_CHECK};
use super::state::CheckResult;
use crate::finding::Record;
use crate::fingerprint::http::{HttpLimits, HttpProber};
use crate::fingerprint::{
    self, AuthInfo, Ctx, PathOutcome, Tool, Transport, Verdict, MODERN_VERSION,
};

/// A server as the monitor checks it: what the scan learned that the checks need.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The MCP endpoint.
    pub url: Url,
    /// The scan's verdict: `mcp`, `mcp-auth-required` or `mcp-likely`.
    pub kind: Verdict,
    /// The transport, when known.
    pub transport: Option<Transport>,
    /// `serverInfo.name`.
    pub server_name: Option<String>,
    /// The jobs that found it (for `match.job`).
    pub jobs: Vec<String>,
    /// Its tool names (for `match.tool`).
    pub tools: Vec<String>,
    /// The negotiated protocol version (`2026-07-28` for a modern-only server).
    pub protocol_version: Option<String>,
    /// The authorization challenge seen at scan time.
    pub auth: Option<AuthInfo>,
}

impl Target {
    /// The target for a scan record: `None` unless it is (probably) MCP with a URL.
    pub fn from_record(r: &Record, jobs: &[String]) -> Option<Self> {
        let kind = r.kind.filter(|k| k.is_mcp())?;
        let url = Url::parse(r.url.as_deref()?).ok()?;
        Some(Self {
            url,
            kind,
            transport: r.transport,
            server_name: r.server_name.clone(),
            jobs: jobs.to_vec(),
            tools: r.tools.iter().map(|t| t.name.clone()).collect(),
            protocol_version: r.protocol_version.clone(),
            auth: r.auth.clone(),
        })
    }

    /// `scheme://host:port/`: where `http` checks send their path.
    pub fn origin(&self) -> Url {
        let mut u = self.url.clone();
        u.set_path("/");
        u.set_query(None);
        u.set_fragment(None);
        u
    }
}

/// One request (or phase) of a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// `initialize`, `tools/list`, `DELETE session`, `GET /health`…
    pub name: String,
    /// Whether it did what the check needed.
    pub ok: bool,
    /// How long it took.
    #[serde(serialize_with = "millis")]
    pub latency: Duration,
    /// What came back, in a few words.
    pub message: String,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The result the state machine takes.
    pub result: CheckResult,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The tools listed (hashed as in the scan record), when `tools/list` ran.
    pub tools: Option<Vec<Tool>>,
    /// The server as the handshake showed it.
    pub server: ServerVars,
    /// The whole check, the closing DELETE included.
    pub total: Duration,
}

/// Runs checks with one bounded HTTP client. Cloning shares the client's pool.
#[derive(Debug, Clone)]
pub struct Checker {
    pub(crate) http: HttpProber,
    pub(crate) body_cap: usize,
}

impl Checker {
    /// A checker with the plan's timeout and body cap.
    ///
    /// # Panics
    /// Only when the TLS backend cannot start (see [`Checker::try_new`]).
    pub fn new(plan: &HealthPlan) -> Self {
        Self::try_new(plan).expect("the HTTP client builds with the bundled TLS backend")
    }

    /// [`Checker::new`], with the client's failure as an error.
    pub fn try_new(plan: &HealthPlan) -> Result<Self, fingerprint::http::ClientError> {
        let limits = HttpLimits {
            request_timeout: plan.timeout,
            max_body: plan.body_cap,
            sse_max_bytes: plan.body_cap,
            sse_max_time: plan.timeout,
        };
        Ok(Self {
            http: HttpProber::new(limits)?,
            body_cap: plan.body_cap,
        })
    }

    /// The built-in `mcp` check of `t`, within `timeout` (each request also within the
    /// plan's `timeout`, which the client was built with).
    pub async fn builtin(&self, t: &Target, bearer: Option<&str>, timeout: Duration) -> Report {
        let start = Instant::now();
        let mut report = match (t.kind, t.transport) {
            (Verdict::McpAuthRequired, _) if bearer.is_none() => self.challenge(t, timeout).await,
            (Verdict::McpLikely, _) => self.signal(t, timeout).await,
            (_, Some(Transport::Sse)) => self.legacy(t, timeout).await,
            _ => self.exchange(t, bearer, timeout).await,
        };
        report.total = start.elapsed();
        report
    }

    /// A custom check of `t`, within `timeout`.
    pub async fn custom(
        &self,
        t: &Target,
        c: &CustomCheck,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Report {
        let start = Instant::now();
        let run = super::custom::Run {
            checker: self,
            t,
            bearer,
            timeout,
        };
        let mut report = super::custom::run(&run, c).await;
        report.total = start.elapsed();
        report
    }

    /// The strict Streamable HTTP exchange.
    async fn exchange(&self, t: &Target, bearer: Option<&str>, timeout: Duration) -> Report {
        let start = Instant::now();
        let mut ex = Exchange::new(self, t.url.clone(), bearer, timeout);
        let modern_only = t.protocol_version.as_deref() == Some(MODERN_VERSION);
        let out = tokio::time::timeout(timeout, async {
            ex.handshake(modern_only).await?;
            ex.list_tools().await
        })
        .await;
        let latency = start.elapsed();
        let (result, tools) = match out {
            Ok(Ok((tools, note))) => {
                let mut m = tools_note(&tools);
                m.push_str(&note);
                if bearer.is_some() {
                    m = format!("authenticated; {m}");
                }
                (
                    CheckResult::pass(BUILTIN_CHECK).with_message(m),
                    Some(tools),
                )
            }
            Ok(Err(e)) => (CheckResult::fail(BUILTIN_CHECK, e), None),
            Err(_) => (
                CheckResult::fail(BUILTIN_CHECK, ex.timed_out(timeout)),
                None,
            ),
        };
        ex.close().await;
        Report {
            result: result.with_latency(latency),
            steps: ex.steps,
            tools,
            server: ex.server,
            total: Duration::ZERO,
        }
    }

    /// Re-run the fingerprint's probe of the endpoint's path, within `timeout`.
    async fn path_probe(&self, t: &Target, timeout: Duration) -> (Option<PathOutcome>, Probed) {
        let mut ctx = Ctx::new(&self.http, t.origin(), std::time::Instant::now() + timeout);
        let mut path = t.url.path().to_string();
        if let Some(q) = t.url.query() {
            path = format!("{path}?{q}");
        }
        let start = Instant::now();
        let out = tokio::time::timeout(timeout, fingerprint::probe_path(&mut ctx, &path))
            .await
            .ok();
        let latency = start.elapsed();
        let _ = tokio::time::timeout(
            super::exchange::DELETE_TIMEOUT,
            fingerprint::close_sessions(&mut ctx),
        )
        .await;
        (out, Probed::of(ctx, latency))
    }

    /// `mcp-auth-required` without a token: the same challenge for the same resource.
    async fn challenge(&self, t: &Target, timeout: Duration) -> Report {
        let (out, probed) = self.path_probe(t, timeout).await;
        let result = match out {
            None => CheckResult::fail(BUILTIN_CHECK, timed_out(timeout)),
            Some(PathOutcome::AuthRequired { auth, .. }) => {
                match auth_change(t.auth.as_ref(), &auth) {
                    None => CheckResult::pass(BUILTIN_CHECK).with_message("auth: required"),
                    Some(change) => CheckResult::fail(BUILTIN_CHECK, change),
                }
            }
            Some(PathOutcome::Confirmed { .. }) => CheckResult::fail(
                BUILTIN_CHECK,
                "no 401 any more: the server answers the handshake without a token",
            ),
            Some(PathOutcome::Likely { reason, .. }) => CheckResult::fail(
                BUILTIN_CHECK,
                format!("no RFC 9728 challenge any more: {reason}"),
            ),
            Some(PathOutcome::AuthWall { .. }) => CheckResult::fail(
                BUILTIN_CHECK,
                format!(
                    "the challenge covers every path now: {}",
                    fingerprint::HOST_WIDE
                ),
            ),
            Some(PathOutcome::Nothing) => CheckResult::fail(
                BUILTIN_CHECK,
                format!("no 401 challenge any more: {}", probed.evidence()),
            ),
        };
        probed.report(result)
    }

    /// `mcp-likely`: the same transport signal is still served.
    async fn signal(&self, t: &Target, timeout: Duration) -> Report {
        let (out, probed) = self.path_probe(t, timeout).await;
        let result = match out {
            None => CheckResult::fail(BUILTIN_CHECK, timed_out(timeout)),
            Some(PathOutcome::Likely { reason, .. }) => CheckResult::pass(BUILTIN_CHECK)
                .with_message(format!("signal still served: {reason}")),
            Some(PathOutcome::AuthRequired { .. }) => CheckResult::pass(BUILTIN_CHECK)
                .with_message("signal still served: a 401 challenge"),
            Some(PathOutcome::AuthWall { .. }) => CheckResult::fail(
                BUILTIN_CHECK,
                format!(
                    "the MCP transport signal is gone: {}",
                    fingerprint::HOST_WIDE
                ),
            ),
            Some(PathOutcome::Confirmed { .. }) => {
                CheckResult::pass(BUILTIN_CHECK).with_message("now answers a full MCP handshake")
            }
            Some(PathOutcome::Nothing) => CheckResult::fail(
                BUILTIN_CHECK,
                format!("the MCP transport signal is gone: {}", probed.evidence()),
            ),
        };
        probed.report(result)
    }

    /// Legacy HTTP+SSE: the fingerprint's legacy exchange.
    async fn legacy(&self, t: &Target, timeout: Duration) -> Report {
        let mut ctx = Ctx::new(&self.http, t.origin(), std::time::Instant::now() + timeout);
        let start = Instant::now();
        let out = tokio::time::timeout(timeout, fingerprint::legacy_sse::probe(&mut ctx, &t.url))
            .await
            .ok();
        let probed = Probed::of(ctx, start.elapsed());
        match out {
            None => probed.report(CheckResult::fail(BUILTIN_CHECK, timed_out(timeout))),
            Some(PathOutcome::Confirmed { info, .. }) => {
                let mut r = probed.report(
                    CheckResult::pass(BUILTIN_CHECK)
                        .with_message(format!("{} over legacy SSE", tools_note(&info.tools))),
                );
                r.server = ServerVars {
                    name: info.server_name,
                    version: info.server_version,
                    protocol_version: info.protocol_version,
                };
                r.tools = Some(info.tools);
                r
            }
            Some(PathOutcome::Likely { reason, .. }) => probed.report(CheckResult::fail(
                BUILTIN_CHECK,
                format!("legacy SSE exchange failed: {reason}"),
            )),
            Some(_) => {
                let why = format!("no legacy SSE endpoint any more: {}", probed.evidence());
                probed.report(CheckResult::fail(BUILTIN_CHECK, why))
            }
        }
    }
}

/// What a fingerprint-probe-based check saw.
struct Probed {
    steps: Vec<Step>,
    evidence: Vec<String>,
    latency: Duration,
}

impl Probed {
    fn of(ctx: Ctx<'_>, latency: Duration) -> Self {
        Self {
            // The fingerprint's log has no per-request latency: the phase's is on the result.
            steps: ctx
                .steps
                .into_iter()
                .map(|s| Step {
                    name: s.request,
                    ok: true,
                    latency: Duration::ZERO,
                    message: s.outcome,
                })
                .collect(),
            evidence: ctx.evidence,
            latency,
        }
    }

    fn evidence(&self) -> String {
        if self.evidence.is_empty() {
            "nothing MCP-like answered".into()
        } else {
            self.evidence.join("; ")
        }
    }

    fn report(self, result: CheckResult) -> Report {
        Report {
            result: result.with_latency(self.latency),
            steps: self.steps,
            tools: None,
            server: ServerVars::default(),
            total: Duration::ZERO,
        }
    }
}

pub(crate) fn timed_out(timeout: Duration) -> String {
    format!(
        "timeout: no answer within {}",
        crate::units::format_duration(timeout)
    )
}

/// What changed in the challenge since the scan, if anything.
fn auth_change(before: Option<&AuthInfo>, now: &AuthInfo) -> Option<String> {
    let before = before?;
    let show = |v: &Option<String>| v.as_deref().unwrap_or("none").to_string();
    if before.resource != now.resource {
        return Some(format!(
            "the challenge names another resource: {} at scan time, {} now",
            show(&before.resource),
            show(&now.resource)
        ));
    }
    if before.resource_metadata != now.resource_metadata {
        return Some(format!(
            "the challenge points to other metadata: {} at scan time, {} now",
            show(&before.resource_metadata),
            show(&now.resource_metadata)
        ));
    }
    None
}

/// The tool count and a hash of the tool list, as the built-in check reports them: the hash
/// (FNV-1a 64 over each tool's name, description and input schema hash, sorted by name)
/// changes when any tool is added, removed or changed, so two results can be compared at a
/// glance.
pub fn tools_note(tools: &[Tool]) -> String {
    if tools.is_empty() {
        return "0 tools (tools/list is empty)".to_owned();
    }
    let mut sorted: Vec<&Tool> = tools.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hash = crate::hash::Fnv1a::new();
    for t in sorted {
        for part in [
            t.name.as_str(),
            t.description.as_deref().unwrap_or(""),
            t.input_schema_hash.as_deref().unwrap_or(""),
        ] {
            hash.write(part.as_bytes());
            hash.write(&[0]);
        }
    }
    let h = hash.finish();
    let n = tools.len();
    format!(
        "{n} tool{}, tools hash {h:016x}",
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_hash_follows_any_change_of_the_list_but_not_its_order() {
        let tool = |n: &str, h: &str| Tool {
            name: n.into(),
            description: None,
            input_schema_hash: Some(h.into()),
        };
        let a = tools_note(&[tool("add", "1"), tool("echo", "2")]);
        assert!(a.starts_with("2 tools, tools hash "), "{a}");
        assert_eq!(a, tools_note(&[tool("echo", "2"), tool("add", "1")]));
        assert_ne!(a, tools_note(&[tool("add", "1"), tool("echo", "3")]));
        assert_ne!(a, tools_note(&[tool("add", "1")]));
        assert!(tools_note(&[tool("add", "1")]).starts_with("1 tool, "));
        assert_eq!(tools_note(&[]), "0 tools (tools/list is empty)");
    }

    #[test]
    fn only_mcp_records_with_a_url_are_targets() {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "ip": "127.0.0.1", "port": 8000, "state": "open", "kind": "mcp",
            "url": "http://127.0.0.1:8000/mcp", "server_name": "weather-demo",
            "tools": [{"name": "add", "description": null, "input_schema_hash": null}],
            "seen_at": "2026-12-02T00:00:00Z", "origins": [], "announced_as": [],
            "protocol_versions": [], "health_endpoints": [], "health": null, "evidence": [], "rtt_ms": null,
            "transport": null, "protocol_version": null, "server_version": null,
            "instructions": null, "capabilities": null, "resources": null, "prompts": null,
            "auth": null, "http": null, "confidence": null
        }))
        .unwrap();
        let t = Target::from_record(&r, &["lan".into()]).unwrap();
        assert_eq!(t.tools, ["add"]);
        assert_eq!(t.origin().as_str(), "http://127.0.0.1:8000/");
        r.kind = Some(Verdict::Http);
        assert!(Target::from_record(&r, &[]).is_none());
        r.kind = Some(Verdict::McpLikely);
        r.url = None;
        assert!(Target::from_record(&r, &[]).is_none());
    }

    #[test]
    fn a_changed_challenge_is_named() {
        let a = AuthInfo {
            required: true,
            resource: Some("http://h/mcp".into()),
            resource_metadata: Some("http://h/.well-known/x".into()),
            ..AuthInfo::default()
        };
        assert_eq!(auth_change(Some(&a), &a), None);
        let b = AuthInfo {
            resource: Some("http://h/other".into()),
            ..a.clone()
        };
        assert_eq!(
            auth_change(Some(&a), &b).unwrap(),
            "the challenge names another resource: http://h/mcp at scan time, http://h/other now"
        );
        assert_eq!(auth_change(None, &b), None);
    }
}
