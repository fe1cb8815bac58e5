//! Fingerprinting: tell MCP servers from everything else behind an open port.
//!
//! ```text
//!  open port ─▶ scheme (http, else https, else banner) ─▶ for each path:
//!                 streamable.rs  POST initialize (and server/discover for the 2026 era)
//!                 auth.rs        401 + RFC 9728 challenge → metadata document
//!                 legacy_sse.rs  GET → event: endpoint → POST → result on the stream
//!               ─▶ one Fingerprint: verdict, confidence, evidence, what was learned, steps
//! ```
//!
//! Verdicts, strongest first: `mcp` (a handshake result, or a legacy SSE endpoint confirmed
//! by a handshake), `mcp-auth-required` (a 401 whose RFC 9728 metadata corroborates it),
//! `mcp-likely` (only SDK-specific transport signals, such as a Host-restricted server),
//! `http` (some other HTTP service, including one behind a host-wide authentication wall:
//! a challenge that a random path gets too says nothing about MCP), `open` (not HTTP).
//! Signals and their strength follow MCP-WIRE.md; weak signals (a bare event stream, a 405, a
//! JSON-RPC error, `uvicorn`) are recorded as evidence but never make a server MCP.
//!
//! A fingerprint claims only what was seen: `transport` comes from a handshake or a legacy
//! SSE `endpoint` event, never from a 401. Credentials (`--bearer`, `--header`) live in a
//! second HTTP client used only for targets marked [`ProbeTarget::credentials`].
//!
//! Everything is bounded: each request by [`http::HttpLimits`], the whole endpoint by
//! [`FingerprintOptions::budget`]. Failures of the peer are evidence, not errors.

pub mod auth;
pub mod carry;
pub mod credentials;
pub mod http;
pub mod jsonrpc;
pub mod legacy_sse;
pub mod server_card;
pub mod sse;
pub mod streamable;
pub mod tls;
pub mod www_auth;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use url::Url;

use self::http::{HttpError, HttpLimits, HttpProber, Request, Response};
use self::tls::CertSummary;

/// Default paths tried on every HTTP port, most common first (MCP-WIRE.md).
pub const DEFAULT_PATHS: &[&str] = &["/mcp", "/", "/sse", "/api/mcp", "/mcp/v1", "/v1/mcp"];
/// Default total time spent on one endpoint.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(10);
/// Default number of endpoints fingerprinted at once.
pub const DEFAULT_CONCURRENCY: usize = 32;
/// The protocol version asked for in `initialize`.
pub const ASK_VERSION: &str = "2025-11-25";
/// The modern-era protocol version (no initialize, `server/discover`).
pub const MODERN_VERSION: &str = "2026-07-28";
/// Same-host redirects followed per path.
const MAX_REDIRECTS: u8 = 3;
/// Longest description or instructions text kept.
pub const MAX_TEXT: usize = 500;
/// The evidence of a host-wide authentication wall.
pub(crate) const HOST_WIDE: &str = "authentication required on every path (not MCP-specific)";
/// Paths of MCP Mesh agent health endpoints, checked next to a confirmed server.
const HEALTH_PATHS: &[&str] = &["/livez", "/ready", "/health"];

/// Fingerprinting settings.
#[derive(Debug, Clone)]
pub struct FingerprintOptions {
    /// Paths tried in order.
    pub paths: Vec<String>,
    /// Total time for one endpoint.
    pub budget: Duration,
    /// Per-request limits.
    pub http: HttpLimits,
    /// Headers sent to targets marked [`ProbeTarget::credentials`] (empty: none).
    pub credentials: credentials::Credentials,
}

impl Default for FingerprintOptions {
    fn default() -> Self {
        Self {
            paths: DEFAULT_PATHS.iter().map(|p| (*p).to_string()).collect(),
            budget: DEFAULT_BUDGET,
            http: HttpLimits::default(),
            credentials: credentials::Credentials::default(),
        }
    }
}

/// The verdict on one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Verdict {
    /// A confirmed MCP server.
    #[serde(rename = "mcp")]
    Mcp,
    /// An MCP server that demands authorization (corroborated RFC 9728 challenge).
    #[serde(rename = "mcp-auth-required")]
    McpAuthRequired,
    /// SDK-specific transport signals only.
    #[serde(rename = "mcp-likely")]
    McpLikely,
    /// Some other HTTP service.
    #[serde(rename = "http")]
    Http,
    /// Not HTTP.
    #[serde(rename = "open")]
    Open,
}

impl Verdict {
    /// The name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mcp => "mcp",
            Self::McpAuthRequired => "mcp-auth-required",
            Self::McpLikely => "mcp-likely",
            Self::Http => "http",
            Self::Open => "open",
        }
    }

    /// Whether this is (probably) an MCP server.
    pub fn is_mcp(self) -> bool {
        matches!(self, Self::Mcp | Self::McpAuthRequired | Self::McpLikely)
    }
}

/// MCP HTTP transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// One endpoint, POST (and GET) (2025-03-26 and later).
    #[serde(rename = "streamable-http")]
    StreamableHttp,
    /// Legacy HTTP+SSE (2024-11-05): GET an event stream, POST to its `endpoint`.
    #[serde(rename = "sse")]
    Sse,
}

impl Transport {
    /// The name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StreamableHttp => "streamable-http",
            Self::Sse => "sse",
        }
    }
}

/// A tool a server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// Description, trimmed.
    pub description: Option<String>,
    /// Stable hash of the input schema (FNV-1a 64 over canonical JSON), hex.
    pub input_schema_hash: Option<String>,
}

/// A health endpoint seen next to a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEndpoint {
    /// Path, such as `/livez`.
    pub path: String,
    /// Status code.
    pub status: u16,
}

/// What a confirmed handshake taught.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct McpInfo {
    /// The version negotiated (or the newest supported, modern era).
    pub protocol_version: Option<String>,
    /// Every version the server was seen to speak.
    pub protocol_versions: Vec<String>,
    /// `serverInfo.name`.
    pub server_name: Option<String>,
    /// `serverInfo.version`.
    pub server_version: Option<String>,
    /// `capabilities` as sent.
    pub capabilities: Option<serde_json::Value>,
    /// `instructions`, trimmed.
    pub instructions: Option<String>,
    /// Tools from `tools/list`.
    pub tools: Vec<Tool>,
    /// Resources listed (when advertised).
    pub resources: Option<usize>,
    /// Prompts listed (when advertised).
    pub prompts: Option<usize>,
    /// Whether the server keeps sessions (sent `Mcp-Session-Id`).
    pub stateful: bool,
    /// MCP Mesh style health endpoints that answered.
    pub health_endpoints: Vec<HealthEndpoint>,
}

impl McpInfo {
    /// What an `initialize` result says (tools and the rest are filled in afterwards).
    pub(crate) fn from_initialize(info: &jsonrpc::InitializeInfo, stateful: bool) -> Self {
        Self {
            protocol_version: Some(info.protocol_version.clone()),
            protocol_versions: vec![info.protocol_version.clone()],
            server_name: streamable::non_empty(&info.server_name),
            server_version: streamable::non_empty(&info.server_version),
            capabilities: Some(info.capabilities.clone()),
            instructions: info.instructions.as_deref().map(trim_text),
            stateful,
            ..Self::default()
        }
    }
}

/// What an authorization challenge taught.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// Whether requests without a token are refused.
    pub required: bool,
    /// The `resource_metadata` URL from the challenge (or the well-known default).
    pub resource_metadata: Option<String>,
    /// The metadata's `resource`.
    pub resource: Option<String>,
    /// The metadata's `authorization_servers`.
    pub authorization_servers: Vec<String>,
    /// The metadata's `scopes_supported` (or the challenge's `scope`).
    pub scopes: Vec<String>,
}

/// What a non-MCP HTTP service showed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpInfo {
    /// `http` or `https`.
    pub scheme: String,
    /// Status of `GET /`.
    pub status: Option<u16>,
    /// `Server` header.
    pub server: Option<String>,
    /// HTML `<title>`.
    pub title: Option<String>,
    /// Certificate, on HTTPS.
    pub tls: Option<CertSummary>,
}

/// One request made while probing, for the `probe` report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `POST /mcp initialize`, `GET /sse`...
    pub request: String,
    /// What came back, in a few words.
    pub outcome: String,
}

/// Everything learned about one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fingerprint {
    /// The verdict.
    pub verdict: Verdict,
    /// Confidence in the verdict, 0 to 1.
    pub confidence: f32,
    /// The MCP endpoint URL (or the base URL for HTTP services).
    pub url: Option<String>,
    /// MCP transport, when known.
    pub transport: Option<Transport>,
    /// Handshake facts.
    pub mcp: Option<McpInfo>,
    /// Authorization facts.
    pub auth: Option<AuthInfo>,
    /// HTTP facts.
    pub http: Option<HttpInfo>,
    /// What the server's Server Card and its origin's MCP Catalog say (advisory).
    pub server_card: Option<server_card::ServerCard>,
    /// The signals behind the verdict, strongest first.
    pub evidence: Vec<String>,
    /// Every request made.
    pub steps: Vec<Step>,
}

/// What one path taught (internal ranking before the verdict).
#[derive(Debug, Clone)]
pub(crate) enum PathOutcome {
    Confirmed {
        url: Url,
        transport: Transport,
        info: McpInfo,
    },
    AuthRequired {
        url: Url,
        auth: AuthInfo,
        corroborated: bool,
    },
    Likely {
        url: Url,
        reason: String,
        /// Set only when the transport itself was seen (a legacy SSE `endpoint` event).
        transport: Option<Transport>,
    },
    /// The same Bearer challenge on a path that cannot be MCP: a host-wide wall.
    AuthWall {
        auth: AuthInfo,
    },
    Nothing,
}

/// Shared state of one endpoint's probe: the client, the deadline and the log.
pub(crate) struct Ctx<'a> {
    pub(crate) http: &'a HttpProber,
    pub(crate) base: Url,
    deadline: Instant,
    pub(crate) steps: Vec<Step>,
    pub(crate) evidence: Vec<String>,
    pub(crate) cert: Option<CertSummary>,
    /// Sessions the server minted and we have not closed yet: Python servers keep them
    /// forever and mint one even on error replies, so every one is closed with DELETE.
    pub(crate) sessions: Vec<(Url, String)>,
    /// Whether a path that cannot be MCP got the same challenge (asked once per endpoint).
    pub(crate) wall: Option<bool>,
    /// Requests that got no response (failed, timed out, or skipped for the budget): facts
    /// read meanwhile are incomplete and never carried to the next run.
    pub(crate) misses: u32,
    /// Facts kept from earlier runs of a daemon job ([`carry`]); `None` reads everything.
    pub(crate) carry: Option<&'a carry::Carry>,
    /// The versions `server/discover` showed this time (fetched or carried), kept with the
    /// other carried facts.
    pub(crate) modern: Option<Vec<String>>,
    next_id: u64,
}

impl<'a> Ctx<'a> {
    /// A fresh context on `base` (the health checks re-run one path's probe with it).
    pub(crate) fn new(http: &'a HttpProber, base: Url, deadline: Instant) -> Self {
        Self {
            http,
            base,
            deadline,
            steps: Vec::new(),
            evidence: Vec::new(),
            cert: None,
            sessions: Vec::new(),
            wall: None,
            misses: 0,
            carry: None,
            modern: None,
            next_id: 0,
        }
    }

    /// Whether there is time left for another request.
    pub(crate) fn has_time(&self) -> bool {
        Instant::now() + Duration::from_millis(50) < self.deadline
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// Whether `u` is on the probed host and port (the scope wall for redirects, SSE
    /// endpoints and metadata documents).
    pub(crate) fn same_origin(&self, u: &Url) -> bool {
        u.scheme() == self.base.scheme()
            && u.host_str() == self.base.host_str()
            && u.port_or_known_default() == self.base.port_or_known_default()
    }

    pub(crate) fn log(&mut self, request: impl Into<String>, outcome: impl Into<String>) {
        self.steps.push(Step {
            request: request.into(),
            outcome: outcome.into(),
        });
    }

    /// Send and log; a peer failure becomes a logged step and `None`.
    pub(crate) async fn send(&mut self, label: &str, req: &Request) -> Option<Response> {
        if !self.has_time() {
            self.log(label, "skipped: endpoint budget spent");
            self.misses += 1;
            return None;
        }
        match self.http.send(req).await {
            Ok(r) => {
                if self.cert.is_none() {
                    self.cert.clone_from(&r.cert);
                }
                let mut outcome = format!("{} {}", r.status, r.media_type());
                if r.truncated {
                    outcome.push_str(" (body cut at cap or deadline)");
                }
                self.log(label, outcome);
                Some(r)
            }
            Err(e) => {
                self.log(label, e.to_string());
                self.misses += 1;
                None
            }
        }
    }
}

/// Trim text to [`MAX_TEXT`] characters.
pub(crate) fn trim_text(s: &str) -> String {
    let t = s.trim();
    match t.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// Fingerprints endpoints with one shared, bounded HTTP client.
#[derive(Debug, Clone)]
pub struct Fingerprinter {
    http: HttpProber,
    /// The same client with the user's credentials, when there are any: a separate client
    /// so that a target not cleared for them can never get them by mistake.
    authed: Option<HttpProber>,
    opts: FingerprintOptions,
    /// Facts kept from earlier runs of the same daemon job (`None` for `scan`, `probe`,
    /// `watch`: they read everything).
    carry: Option<Arc<carry::Carry>>,
}

/// Where to probe: an address, and optionally the scheme and path the user named.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// Address and port.
    pub addr: SocketAddr,
    /// `https` when named or on a TLS port; otherwise detected.
    pub https: Option<bool>,
    /// Only this path (from a URL), instead of the path list.
    pub path: Option<String>,
    /// A path announced in a TXT record: tried first, before the path list.
    pub hint_path: Option<String>,
    /// Whether the configured credentials may go to this target: true only for targets the
    /// user named or that passed the scope wall.
    pub credentials: bool,
}

impl Fingerprinter {
    /// A fingerprinter with `opts`.
    pub fn new(opts: FingerprintOptions) -> Result<Self, http::ClientError> {
        let authed = if opts.credentials.is_empty() {
            None
        } else {
            Some(HttpProber::with_headers(
                opts.http.clone(),
                opts.credentials.header_map(),
            )?)
        };
        Ok(Self {
            http: HttpProber::new(opts.http.clone())?,
            authed,
            opts,
            carry: None,
        })
    }

    /// The same fingerprinter, carrying advisory facts between runs through `carry` (see
    /// [`carry`]): what a daemon job does.
    #[must_use]
    pub fn with_carry(mut self, carry: Arc<carry::Carry>) -> Self {
        self.carry = Some(carry);
        self
    }

    /// Fingerprint one endpoint within the budget.
    pub async fn fingerprint(&self, target: &ProbeTarget) -> Fingerprint {
        let deadline = Instant::now() + self.opts.budget;
        let paths: Vec<String> = match (&target.path, &target.hint_path) {
            (Some(p), _) => vec![p.clone()],
            (None, Some(h)) => std::iter::once(h.clone())
                .chain(self.opts.paths.iter().filter(|p| *p != h).cloned())
                .collect(),
            (None, None) => self.opts.paths.clone(),
        };
        let first = paths.first().cloned().unwrap_or_else(|| "/".into());

        // Scheme: plain HTTP first (most MCP servers), HTTPS on TLS ports or when asked.
        let tls_port = matches!(target.addr.port(), 443 | 8443);
        let order: Vec<bool> = match target.https {
            Some(h) => vec![h],
            None if tls_port => vec![true, false],
            None => vec![false, true],
        };
        let (http, with_credentials) = match (&self.authed, target.credentials) {
            (Some(a), true) => (a, true),
            _ => (&self.http, false),
        };
        let mut steps = Vec::new();
        let mut evidence = Vec::new();
        if with_credentials {
            // Names only: the values never reach a record.
            evidence.push(format!(
                "sent the given credentials ({})",
                self.opts.credentials.names().join(", ")
            ));
        }
        let mut chosen = None;
        for https in order {
            let base = base_url(target.addr, https);
            let mut ctx = Ctx {
                http,
                base: base.clone(),
                deadline,
                steps: std::mem::take(&mut steps),
                evidence: std::mem::take(&mut evidence),
                cert: None,
                sessions: Vec::new(),
                wall: None,
                misses: 0,
                carry: self.carry.as_deref(),
                modern: None,
                next_id: 0,
            };
            let req = Request::new(reqwest::Method::GET, ctx.url(&first));
            let label = format!("GET {first} over {} (speaks HTTP?)", base.scheme());
            if !ctx.has_time() {
                steps = ctx.steps;
                evidence = ctx.evidence;
                break;
            }
            // Only the response head matters here: an endless body must not eat the budget.
            match http.open_stream(&req, http.sse_caps()).await {
                Ok(r) => {
                    ctx.log(&label, format!("{} {}", r.status, r.media_type()));
                    ctx.cert.clone_from(&r.cert);
                    chosen = Some(ctx);
                    break;
                }
                Err(e) => {
                    ctx.log(&label, e.to_string());
                    if matches!(e, HttpError::Timeout(_)) {
                        ctx.evidence.push(format!("{}: {e}", base.scheme()));
                    }
                    steps = ctx.steps;
                    evidence = ctx.evidence;
                }
            }
        }
        let Some(mut ctx) = chosen else {
            let banner = banner(
                target.addr,
                self.opts
                    .http
                    .request_timeout
                    .min(Duration::from_millis(800)),
            )
            .await;
            let mut verdict = Verdict::Open;
            if let Some(b) = &banner {
                steps.push(Step {
                    request: "read banner".into(),
                    outcome: format!("{b:?}"),
                });
                if b.starts_with("HTTP/1.") {
                    // An HTTP status line whose headers never completed (a trickling or
                    // broken server): HTTP, but nothing more can be learned.
                    verdict = Verdict::Http;
                    evidence.push(format!(
                        "HTTP response that never completed; first bytes {b:?}"
                    ));
                } else {
                    evidence.push(format!("not HTTP; banner {b:?}"));
                }
            } else {
                evidence.push("not HTTP or HTTPS".into());
            }
            return Fingerprint {
                verdict,
                confidence: 0.9,
                url: None,
                transport: None,
                mcp: None,
                auth: None,
                http: None,
                server_card: None,
                evidence,
                steps,
            };
        };

        let mut best: PathOutcome = PathOutcome::Nothing;
        for path in &paths {
            if !ctx.has_time() {
                ctx.evidence
                    .push("endpoint budget spent before every path was tried".into());
                break;
            }
            let outcome = probe_path(&mut ctx, path).await;
            let done = matches!(outcome, PathOutcome::Confirmed { .. });
            best = better(best, outcome);
            if done {
                break;
            }
        }
        finish(&mut ctx, best).await
    }
}

/// Try one path: streamable first (also yields auth challenges and SDK errors), then the
/// legacy SSE transport where the path serves an event stream.
pub(crate) async fn probe_path(ctx: &mut Ctx<'_>, path: &str) -> PathOutcome {
    let mut url = ctx.url(path);
    for _ in 0..=MAX_REDIRECTS {
        let (outcome, redirect) = streamable::probe(ctx, &url).await;
        match redirect {
            Some(next) if ctx.same_origin(&next) && in_scope(&url, &next) => {
                ctx.evidence
                    .push(format!("{} redirects to {}", url.path(), next.path()));
                url = next;
                continue;
            }
            Some(next) => {
                ctx.evidence.push(format!(
                    "redirect to {next} not followed: outside the probed host or path"
                ));
            }
            None => {}
        }
        if matches!(
            outcome,
            PathOutcome::Confirmed { .. }
                | PathOutcome::AuthRequired { .. }
                | PathOutcome::AuthWall { .. }
        ) {
            return outcome;
        }
        let legacy = legacy_sse::probe(ctx, &url).await;
        return better(outcome, legacy);
    }
    ctx.evidence
        .push(format!("{path}: more than {MAX_REDIRECTS} redirects"));
    PathOutcome::Nothing
}

/// A redirect stays in scope when it keeps the path's first segment (`/mcp` → `/mcp/`).
fn in_scope(from: &Url, to: &Url) -> bool {
    let seg = |u: &Url| {
        u.path()
            .trim_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    seg(from) == seg(to)
}

fn rank(o: &PathOutcome) -> u8 {
    match o {
        PathOutcome::Confirmed { .. } => 4,
        PathOutcome::AuthRequired {
            corroborated: true, ..
        } => 3,
        PathOutcome::AuthRequired { .. } | PathOutcome::Likely { .. } => 2,
        PathOutcome::AuthWall { .. } => 1,
        PathOutcome::Nothing => 0,
    }
}

fn better(a: PathOutcome, b: PathOutcome) -> PathOutcome {
    if rank(&b) > rank(&a) {
        b
    } else {
        a
    }
}

async fn finish(ctx: &mut Ctx<'_>, best: PathOutcome) -> Fingerprint {
    let mut fp = Fingerprint {
        verdict: Verdict::Http,
        confidence: 0.9,
        url: None,
        transport: None,
        mcp: None,
        auth: None,
        http: None,
        server_card: None,
        evidence: Vec::new(),
        steps: Vec::new(),
    };
    let mut lead = Vec::new();
    match best {
        PathOutcome::Confirmed {
            url,
            transport,
            mut info,
        } => {
            let facts = advisory(ctx, &url, &info, transport).await;
            info.health_endpoints = facts.health;
            fp.server_card = facts.server_card;
            fp.verdict = Verdict::Mcp;
            fp.confidence = if transport == Transport::Sse {
                0.95
            } else {
                1.0
            };
            fp.url = Some(url.to_string());
            fp.transport = Some(transport);
            fp.mcp = Some(info);
        }
        PathOutcome::AuthRequired {
            url,
            auth,
            corroborated,
        } => {
            fp.verdict = if corroborated {
                Verdict::McpAuthRequired
            } else {
                Verdict::McpLikely
            };
            fp.confidence = if corroborated { 0.9 } else { 0.5 };
            fp.url = Some(url.to_string());
            // A 401 shows no transport: the handshake never happened.
            fp.auth = Some(auth);
        }
        PathOutcome::Likely {
            url,
            reason,
            transport,
        } => {
            fp.verdict = Verdict::McpLikely;
            fp.confidence = 0.7;
            fp.url = Some(url.to_string());
            fp.transport = transport;
            lead.push(reason);
        }
        PathOutcome::AuthWall { auth } => {
            // Any API behind OAuth looks like this; an MCP server behind a key proxy does
            // too, which is why the summary counts these records apart.
            fp.verdict = Verdict::Http;
            fp.confidence = 0.8;
            fp.url = Some(ctx.base.to_string());
            fp.auth = Some(auth);
            lead.push(HOST_WIDE.to_string());
            fp.http = Some(http_info(ctx).await);
        }
        PathOutcome::Nothing => {
            fp.url = Some(ctx.base.to_string());
            fp.http = Some(http_info(ctx).await);
        }
    }
    if fp.http.is_none() {
        fp.http = Some(HttpInfo {
            scheme: ctx.base.scheme().to_string(),
            tls: ctx.cert.clone(),
            ..HttpInfo::default()
        });
    }
    close_sessions(ctx).await;
    lead.append(&mut ctx.evidence);
    fp.evidence = lead;
    fp.steps = std::mem::take(&mut ctx.steps);
    fp
}

/// The health endpoints and the Server Card of a confirmed server: carried from an earlier
/// run when the fingerprint's carry holds them for the same identity, else read (and kept,
/// with the `server/discover` answer, when no request of this fingerprint went unanswered).
async fn advisory(
    ctx: &mut Ctx<'_>,
    url: &Url,
    info: &McpInfo,
    transport: Transport,
) -> carry::Facts {
    let identity = carry::Identity::of(info, transport);
    if let Some(facts) = ctx.carry.and_then(|c| c.recall(url.as_str(), &identity)) {
        ctx.evidence.extend(facts.evidence.iter().cloned());
        ctx.log(
            "GET health endpoints, Server Card and catalog",
            carry::CARRIED,
        );
        return facts;
    }
    let evidence_from = ctx.evidence.len();
    let health = health(ctx).await;
    let server_card = server_card::read(ctx, url, info, transport).await;
    let facts = carry::Facts {
        health,
        server_card,
        evidence: ctx.evidence[evidence_from..].to_vec(),
        modern: ctx.modern.clone(),
    };
    if let Some(c) = ctx.carry.filter(|_| ctx.misses == 0) {
        c.remember(url.as_str(), identity, facts.clone());
    }
    facts
}

/// DELETE every session still open (within a short grace beyond the budget: leaving
/// sessions behind on someone's server is worse than a late finish).
pub(crate) async fn close_sessions(ctx: &mut Ctx<'_>) {
    for (url, sid) in std::mem::take(&mut ctx.sessions) {
        let req = Request::new(reqwest::Method::DELETE, url.clone())
            .header("mcp-session-id", sid.clone());
        let outcome = match ctx.http.send(&req).await {
            Ok(r) => r.status.to_string(),
            Err(e) => e.to_string(),
        };
        ctx.log(
            format!(
                "DELETE {} (close session {sid} minted by an earlier reply)",
                url.path()
            ),
            outcome,
        );
    }
}

/// Status, server and title of `GET /`, for services that are not MCP.
async fn http_info(ctx: &mut Ctx<'_>) -> HttpInfo {
    let mut info = HttpInfo {
        scheme: ctx.base.scheme().to_string(),
        ..HttpInfo::default()
    };
    let req = Request::new(reqwest::Method::GET, ctx.url("/")).header("accept", "text/html, */*");
    if let Some(r) = ctx.send("GET / (what is it?)", &req).await {
        info.status = Some(r.status);
        info.server = r.header("server").map(trim_text);
        info.title = html_title(&r.body);
    }
    info.tls = ctx.cert.clone();
    info
}

/// MCP Mesh agents expose health endpoints next to `/mcp`; record the ones that answer.
async fn health(ctx: &mut Ctx<'_>) -> Vec<HealthEndpoint> {
    let mut out = Vec::new();
    for p in HEALTH_PATHS {
        let req = Request::new(reqwest::Method::GET, ctx.url(p));
        if let Some(r) = ctx.send(&format!("GET {p} (health?)"), &req).await {
            if r.status < 300 || r.status == 503 {
                out.push(HealthEndpoint {
                    path: (*p).to_string(),
                    status: r.status,
                });
            }
        }
    }
    out
}

fn html_title(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let end = lower[open_end..].find("</title")? + open_end;
    let t = trim_text(text.get(open_end..end)?);
    (!t.is_empty()).then_some(t)
}

fn base_url(addr: SocketAddr, https: bool) -> Url {
    let scheme = if https { "https" } else { "http" };
    let host = match addr.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    Url::parse(&format!("{scheme}://{host}:{}/", addr.port()))
        .expect("an IP and port form a valid URL")
}

/// Read what a non-HTTP service says first (SSH, SMTP, FTP banners), bounded in bytes and
/// time.
async fn banner(addr: SocketAddr, wait: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut s = tokio::time::timeout(wait, tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let mut buf = [0u8; 128];
    let n = tokio::time::timeout(wait, s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| {
        String::from_utf8_lossy(&buf[..n])
            .trim_end()
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_html_titles() {
        assert_eq!(
            html_title(b"<html><head><TITLE> Grafana </TITLE>").as_deref(),
            Some("Grafana")
        );
        assert_eq!(html_title(b"<title></title>"), None);
        assert_eq!(html_title(b"no html"), None);
    }

    #[test]
    fn redirects_stay_in_scope() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(in_scope(&u("http://h:1/mcp"), &u("http://h:1/mcp/")));
        assert!(!in_scope(&u("http://h:1/mcp"), &u("http://h:1/admin")));
    }

    #[test]
    fn trims_long_text_on_char_boundaries() {
        let s = "é".repeat(MAX_TEXT + 10);
        let t = trim_text(&s);
        assert_eq!(t.chars().count(), MAX_TEXT + 1);
    }

    #[test]
    fn base_urls_bracket_ipv6() {
        assert_eq!(
            base_url("[::1]:8000".parse().unwrap(), false).as_str(),
            "http://[::1]:8000/"
        );
        assert_eq!(
            base_url("10.0.0.1:443".parse().unwrap(), true).as_str(),
            "https://10.0.0.1/"
        );
    }
}
