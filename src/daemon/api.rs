//! The daemon's HTTP API (axum): probes, metrics, and `/api/v1` over the inventory.
//!
//! Handlers read the store through read-only connections on the blocking pool and never
//! wait on a running job. The server list and lookups by id are answered from the store's
//! in-memory read model first (`cached.rs`), and come here only when it cannot answer. Writes (`POST /api/v1/jobs/{name}/run`, `DELETE
//! /api/v1/servers/{id}`) need `Authorization: Bearer <api.token>`, compared in constant
//! time; without a configured token they answer 403. Reads are open unless
//! `api.read_token` is set; `/livez`, `/readyz` and `/metrics` always are.
//!
//! Query strings are parsed strictly: an unknown parameter or a bad value is a 400 that
//! names it and lists what is accepted, so a typo never silently widens a filter.
//!
//! `GET /api/v1/servers?health_status=` filters on the monitor's stored status, and `GET
//! /api/v1/servers/{id}/checks` lists a server's stored check results, newest first; both
//! read what [`crate::store::Store::record_health`] wrote.
//!
//! `GET /api/v1/changes/stream` is Server-Sent Events: it replays from the store after
//! `Last-Event-ID` (or `?since=`), then follows the writer's broadcast of committed
//! changes; a subscriber that lags reloads from the store instead of losing events.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::jobs::{Jobs, TriggerError};
use super::metrics::{Metrics, RouteCode, RouteLabel};
use crate::finding::Origin;
use crate::fingerprint::{Transport, Verdict};
use crate::monitor::state::Status;
use crate::store::{Change, Reader, ServerFilter, StatusFilter, Store, StoreError};

/// Changes returned by one `GET /api/v1/changes` when no `limit` is given.
pub const DEFAULT_CHANGES_LIMIT: usize = 100;
/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 10_000;
/// Check results returned by `GET /api/v1/servers/{id}/checks` when no `limit` is given.
pub const DEFAULT_CHECKS_LIMIT: usize = 100;
/// Runs returned by `GET /api/v1/runs` by default.
pub const DEFAULT_RUNS_LIMIT: usize = 20;
/// Changes read from the store per batch when an event stream catches up.
const STREAM_BATCH: usize = 500;
/// Interval of SSE keep-alive comments.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Bearer tokens; replaced on reload.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Write token.
    pub token: Option<String>,
    /// Read token.
    pub read_token: Option<String>,
}

/// Whether the daemon is ready (for `/readyz`).
#[derive(Debug, Default)]
pub struct Readiness {
    /// The scheduler runs (set once jobs start, cleared on shutdown).
    pub scheduler: std::sync::atomic::AtomicBool,
    /// Continuous sources that cannot work now (a name such as `kubernetes pods (job
    /// pods)` → why and the fix), set and cleared by the sources themselves. Any entry makes
    /// `/readyz` answer 503 naming it: the daemon runs, but does not see what it should.
    failing: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Readiness {
    /// `source` fails, because of `why`.
    pub fn fail(&self, source: &str, why: &str) {
        self.lock().insert(source.to_string(), why.to_string());
    }

    /// `source` works again (or stopped).
    pub fn recover(&self, source: &str) {
        self.lock().remove(source);
    }

    /// The failing sources, by name.
    pub fn failing(&self) -> std::collections::BTreeMap<String, String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, String>> {
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    /// Read-only store access.
    pub reader: Reader,
    /// The writer (for forgets and its status).
    pub store: Store,
    /// Jobs (status and triggers).
    pub jobs: Arc<Jobs>,
    /// Metrics.
    pub metrics: Metrics,
    /// Tokens.
    pub auth: Arc<RwLock<Auth>>,
    /// Readiness.
    pub ready: Arc<Readiness>,
    /// Ends event streams on shutdown.
    pub shutdown: CancellationToken,
    /// Server lists built at once (see [`MAX_CONCURRENT_LISTS`]).
    pub lists: Arc<tokio::sync::Semaphore>,
    /// The sinks' statuses.
    pub sinks: crate::sinks::SinkBoard,
    /// The resolved config as `config check --print` shows it (secrets redacted), and the
    /// file it came from; replaced on reload.
    pub config: Arc<RwLock<ResolvedConfig>>,
}

/// What `GET /api/v1/config` answers.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ResolvedConfig {
    /// Where it was read from.
    pub source: String,
    /// The resolved config as YAML, every secret replaced by `<redacted>`.
    pub yaml: String,
}

impl ResolvedConfig {
    /// The document for `cfg`.
    pub fn of(cfg: &crate::config::Config) -> Self {
        Self {
            source: cfg.source.to_string(),
            yaml: cfg.to_yaml(),
        }
    }
}

/// Server lists built at once; each holds its whole result in memory while it is serialized.
pub const MAX_CONCURRENT_LISTS: usize = 4;

/// The router, with metrics, body limit and request timeout.
pub fn router(state: AppState, body_limit: usize, timeout: Duration) -> Router {
    // The middlewares get only what they use, each one `Arc`: axum clones a layer's state for
    // every request, and cloning the whole `AppState` (some thirty reference counts and a
    // mutex, twice per request on top of the handler's own) was a tenth of the daemon's CPU
    // under 50 clients.
    let observed = Arc::new(state.metrics.clone());
    let reads = Router::new()
        .route("/api/v1/servers", get(list_servers))
        .route("/api/v1/servers/{id}", get(get_server))
        .route("/api/v1/servers/{id}/checks", get(list_checks))
        .route("/api/v1/changes", get(list_changes))
        .route("/api/v1/changes/stream", get(stream_changes))
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/sinks", get(list_sinks))
        .route("/api/v1/config", get(show_config))
        .route("/api/v1/dashboard/servers", get(page_servers))
        .route("/api/v1/servers/{id}/series", get(server_series))
        .route_layer(middleware::from_fn_with_state(
            state.auth.clone(),
            require_read,
        ));
    let writes = Router::new()
        .route("/api/v1/jobs/{name}/run", post(run_job))
        .route("/api/v1/servers/{id}", delete(forget_server))
        .route_layer(middleware::from_fn_with_state(
            state.auth.clone(),
            require_write,
        ));
    let page = super::web::routes().route_layer(middleware::from_fn_with_state(
        state.auth.clone(),
        require_read_page,
    ));
    Router::new()
        .merge(page)
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(reads)
        .merge(writes)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint; see / (the dashboard), /api/v1/servers, /api/v1/changes, /api/v1/runs, /api/v1/jobs, /api/v1/sinks, /api/v1/config, /livez, /readyz, /metrics") })
        .layer(middleware::from_fn_with_state(observed, observe))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        .with_state(state)
}

pub(super) fn error(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// A refused request, before it becomes a response (small, so `Result`s stay cheap).
struct Refused(StatusCode, String);

impl Refused {
    fn bad(msg: String) -> Self {
        Self(StatusCode::BAD_REQUEST, msg)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// Count and time every request by its route template.
async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let start = Instant::now();
    let res = next.run(req).await;
    metrics
        .api_requests
        .get_or_create(&RouteCode {
            route: route.clone(),
            code: res.status().as_u16(),
        })
        .inc();
    metrics
        .api_duration
        .get_or_create(&RouteLabel { route })
        .observe(start.elapsed().as_secs_f64());
    res
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn token_matches(given: Option<&str>, want: &str) -> bool {
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(want.as_bytes())))
}

fn unauthorized(msg: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, msg);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"mcp-scout\""),
    );
    r
}

/// The password of `Authorization: Basic base64(user:password)` (any user name): how a
/// browser sends the read token, since a page load cannot carry a bearer token.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let b64 = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?
        .trim();
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

/// Whether the request may read: no read token is set, or it carries the read (or write)
/// token as a bearer token or as the password of Basic auth.
fn may_read(auth: &RwLock<Auth>, headers: &HeaderMap) -> bool {
    let want = auth
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let Some(rt) = &want.read_token else {
        return true;
    };
    let basic = basic_password(headers);
    let given = bearer(headers).or(basic.as_deref());
    // The write token also reads.
    token_matches(given, rt)
        || want
            .token
            .as_deref()
            .is_some_and(|t| token_matches(given, t))
}

async fn require_read(State(auth): State<Arc<RwLock<Auth>>>, req: Request, next: Next) -> Response {
    if !may_read(&auth, req.headers()) {
        return unauthorized(
            "reads need Authorization: Bearer <api.read_token> (or Basic auth with it as the password)",
        );
    }
    next.run(req).await
}

/// The dashboard's read check: as [`require_read`], but a refusal asks for Basic auth, so a
/// browser prompts for the read token (as the password; any user name).
async fn require_read_page(
    State(auth): State<Arc<RwLock<Auth>>>,
    req: Request,
    next: Next,
) -> Response {
    if !may_read(&auth, req.headers()) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "the dashboard needs the read token: any user name, api.read_token as the password",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"mcp-scout\", charset=\"UTF-8\""),
        );
        return r;
    }
    next.run(req).await
}

async fn require_write(
    State(auth): State<Arc<RwLock<Auth>>>,
    req: Request,
    next: Next,
) -> Response {
    let want = auth
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .token
        .clone();
    let Some(token) = want else {
        return error(StatusCode::FORBIDDEN, "writes disabled: set api.token");
    };
    if !token_matches(bearer(req.headers()), &token) {
        return unauthorized(
            "missing or wrong token: writes need Authorization: Bearer <api.token>",
        );
    }
    next.run(req).await
}

async fn readyz(State(st): State<AppState>) -> Response {
    let s = st.store.status();
    let scheduler = st
        .ready
        .scheduler
        .load(std::sync::atomic::Ordering::Relaxed);
    let failing = st.ready.failing();
    if s.writable && scheduler && failing.is_empty() {
        return (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response();
    }
    let reason = if s.writable && scheduler {
        failing
            .iter()
            .map(|(k, v)| format!("source {k} fails: {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    } else if s.writable {
        "the scheduler is not running".to_string()
    } else {
        format!(
            "the store is not writable: {}",
            s.last_error.as_deref().unwrap_or("unknown error")
        )
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(
            json!({ "status": "not ready", "reason": reason, "queued_writes": s.queued, "failing_sources": failing }),
        ),
    )
        .into_response()
}

async fn metrics(State(st): State<AppState>) -> Response {
    let m = st.metrics.clone();
    match tokio::task::spawn_blocking(move || m.render()).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "metrics failed"),
    }
}

/// Run a blocking store read; a store error is a 500 naming it.
async fn read<T: Send + 'static>(
    reader: &Reader,
    f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let r = reader.clone();
    match tokio::task::spawn_blocking(move || f(&r)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "the read failed")),
    }
}

/// A strict query string: every key must be one of `accepted`.
struct Params(HashMap<String, String>);

impl Params {
    fn new(q: HashMap<String, String>, accepted: &[&str]) -> Result<Self, Refused> {
        let mut keys: Vec<&String> = q.keys().collect();
        keys.sort();
        for k in keys {
            if !accepted.contains(&k.as_str()) {
                return Err(Refused::bad(format!(
                    "unknown parameter {k:?}; accepted: {}",
                    accepted.join(", ")
                )));
            }
        }
        Ok(Self(q))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    fn choice<T>(
        &self,
        k: &str,
        parse: impl Fn(&str) -> Option<T>,
        accepted: &str,
    ) -> Result<Option<T>, Refused> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| {
                Refused::bad(format!("invalid {k} {v:?}; accepted values: {accepted}"))
            }),
        }
    }

    fn number(&self, k: &str, default: i64, max: i64) -> Result<i64, Refused> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| {
                    Refused::bad(format!(
                        "invalid {k} {v:?}; accepted values: a whole number from 0 to {max}"
                    ))
                }),
        }
    }

    fn text(&self, k: &str) -> Result<Option<String>, Refused> {
        match self.get(k) {
            Some(v) if v.is_empty() || v.len() > 256 => Err(Refused::bad(format!(
                "invalid {k} {v:?}; accepted values: 1 to 256 characters, * as a wildcard"
            ))),
            v => Ok(v.map(str::to_string)),
        }
    }
}

/// Parse the `servers` filters (shared with `mcp-scout servers`).
pub fn parse_verdict(s: &str) -> Option<Verdict> {
    Some(match s {
        "mcp" => Verdict::Mcp,
        "mcp-auth-required" => Verdict::McpAuthRequired,
        "mcp-likely" => Verdict::McpLikely,
        _ => return None,
    })
}

/// Parse a transport name.
pub fn parse_transport(s: &str) -> Option<Transport> {
    Some(match s {
        "streamable-http" => Transport::StreamableHttp,
        "sse" => Transport::Sse,
        _ => return None,
    })
}

/// Parse an origin name.
pub fn parse_origin(s: &str) -> Option<Origin> {
    Some(match s {
        "sweep" => Origin::Sweep,
        "mdns" => Origin::Mdns,
        "srv" => Origin::Srv,
        "static" => Origin::Static,
        "catalog" => Origin::Catalog,
        "kubernetes" => Origin::Kubernetes,
        _ => return None,
    })
}

/// Parse a status filter.
pub fn parse_status(s: &str) -> Option<StatusFilter> {
    Some(match s {
        "active" => StatusFilter::Active,
        "gone" => StatusFilter::Gone,
        "all" => StatusFilter::All,
        _ => return None,
    })
}

/// The accepted health statuses, as errors list them.
pub const HEALTH_STATUSES: &str = "unknown, healthy, degraded, unhealthy, gone";

/// Parse a health status filter.
pub fn parse_health_status(s: &str) -> Option<Status> {
    Some(match s {
        "unknown" => Status::Unknown,
        "healthy" => Status::Healthy,
        "degraded" => Status::Degraded,
        "unhealthy" => Status::Unhealthy,
        "gone" => Status::Gone,
        _ => return None,
    })
}

/// Every filter of `GET /api/v1/servers`, in the order the error lists them.
pub const SERVER_FILTERS: &[&str] = &[
    "kind",
    "transport",
    "origin",
    "job",
    "capability",
    "server_name",
    "status",
    "health_status",
];

fn server_filter(p: &Params) -> Result<ServerFilter, Refused> {
    Ok(ServerFilter {
        kind: p.choice("kind", parse_verdict, "mcp, mcp-auth-required, mcp-likely")?,
        transport: p.choice("transport", parse_transport, "streamable-http, sse")?,
        origin: p.choice(
            "origin",
            parse_origin,
            "sweep, mdns, srv, static, catalog, kubernetes",
        )?,
        job: p.text("job")?,
        capability: p.text("capability")?,
        server_name: p.text("server_name")?,
        status: p
            .choice("status", parse_status, "active, gone, all")?
            .unwrap_or_default(),
        health_status: p.choice("health_status", parse_health_status, HEALTH_STATUSES)?,
    })
}

async fn list_servers(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let filter = match Params::new(q, SERVER_FILTERS).and_then(|p| server_filter(&p)) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    if let Some(r) = super::cached::list(&st, &filter) {
        return r;
    }
    // Bounded: one unfiltered list of 10,000 servers takes about 180 MB while it is built,
    // so only a few are built at once; the rest wait (within the request timeout).
    let Ok(_permit) = st.lists.clone().acquire_owned().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    // Reading and serializing both happen on the blocking pool: a large list must not hold
    // the runtime's workers, which also drive the scheduler.
    match read(&st.reader, move |r| r.servers_json(&filter)).await {
        Ok(body) => json_bytes(body),
        Err(r) => r,
    }
}

pub(super) fn json_bytes(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `{"servers": [...], "count": N}`, serialized straight from the records (through a
/// `serde_json::Value`, an `f32` such as `confidence` would print as 0.949999988…).
#[derive(serde::Serialize)]
pub struct ServerList<'a> {
    /// The servers.
    pub servers: &'a [crate::store::StoredServer],
    /// How many.
    pub count: usize,
}

impl<'a> ServerList<'a> {
    /// The document for `servers`.
    pub fn new(servers: &'a [crate::store::StoredServer]) -> Self {
        Self {
            servers,
            count: servers.len(),
        }
    }
}

/// One server with its recent changes.
#[derive(serde::Serialize)]
struct OneServer<'a> {
    #[serde(flatten)]
    server: &'a crate::store::StoredServer,
    changes: &'a [Change],
}

async fn get_server(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    if let Some(r) = super::cached::one(&st, &id) {
        return r;
    }
    let key = id.clone();
    let one = read(&st.reader, move |r| {
        Ok(r.server(&key)?.map(|(server, changes)| {
            serde_json::to_vec(&OneServer {
                server: &server,
                changes: &changes,
            })
            .unwrap_or_default()
        }))
    })
    .await;
    match one {
        Ok(Some(body)) => json_bytes(body),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no server with id {id:?}")),
        Err(r) => r,
    }
}

async fn list_checks(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match Params::new(q, &["since", "check", "limit"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let since = match p.get("since") {
        None => None,
        Some(v) => match crate::monitor::state::rfc3339_serde::parse(v) {
            Some(t) => Some(t),
            None => {
                return Refused::bad(format!(
                    "invalid since {v:?}; accepted values: an RFC 3339 UTC time such as \
                     2026-01-01T00:00:00Z or 2026-01-01T00:00:00.000Z"
                ))
                .into_response()
            }
        },
    };
    let check = match p.get("check") {
        Some(c) if c.is_empty() || c.len() > 256 => {
            return Refused::bad(format!(
                "invalid check {c:?}; accepted values: a check name of 1 to 256 characters \
                 (mcp, or a custom check's name)"
            ))
            .into_response()
        }
        c => c.map(str::to_string),
    };
    let limit = match p.number("limit", DEFAULT_CHECKS_LIMIT as i64, MAX_LIMIT as i64) {
        Ok(l) => l as usize,
        Err(r) => return r.into_response(),
    };
    let key = id.clone();
    let rows = read(&st.reader, move |r| {
        if !r.has_server(&key)? {
            return Ok(None);
        }
        r.checks(&key, since, check.as_deref(), limit).map(Some)
    })
    .await;
    match rows {
        Ok(Some(checks)) => {
            let count = checks.len();
            Json(json!({ "checks": checks, "count": count })).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no server with id {id:?}")),
        Err(r) => r,
    }
}

async fn list_changes(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match Params::new(q, &["since", "limit"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let (since, limit) = match (
        p.number("since", 0, i64::MAX),
        p.number("limit", DEFAULT_CHANGES_LIMIT as i64, MAX_LIMIT as i64),
    ) {
        (Ok(s), Ok(l)) => (s, l as usize),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    match read(&st.reader, move |r| r.changes(since, limit)).await {
        Ok((changes, next)) => Json(json!({ "changes": changes, "next": next })).into_response(),
        Err(r) => r,
    }
}

async fn list_runs(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match Params::new(q, &["job", "limit"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let job = match p.text("job") {
        Ok(j) => j,
        Err(r) => return r.into_response(),
    };
    let limit = match p.number("limit", DEFAULT_RUNS_LIMIT as i64, MAX_LIMIT as i64) {
        Ok(l) => l as usize,
        Err(r) => return r.into_response(),
    };
    match read(&st.reader, move |r| r.runs(job.as_deref(), limit)).await {
        Ok(runs) => {
            let count = runs.len();
            Json(json!({ "runs": runs, "count": count })).into_response()
        }
        Err(r) => r,
    }
}

async fn list_jobs(State(st): State<AppState>) -> Response {
    let jobs = st.jobs.statuses();
    Json(json!({ "jobs": jobs, "count": jobs.len() })).into_response()
}

/// Each sink's status with its latest dead letters (newest first).
async fn list_sinks(State(st): State<AppState>) -> Response {
    let statuses = st.sinks.snapshot();
    let names: Vec<String> = statuses.iter().map(|s| s.name.clone()).collect();
    let letters = read(&st.reader, move |r| {
        names
            .iter()
            .map(|n| r.dead_letters(n, crate::store::sinks::DEAD_LETTERS_SHOWN))
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    let letters = match letters {
        Ok(l) => l,
        Err(r) => return r,
    };
    let sinks: Vec<serde_json::Value> = statuses
        .into_iter()
        .zip(letters)
        .map(|(s, (dead, total))| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["dead_letter_count"] = json!(total);
            v["dead_letters"] = json!(dead);
            v
        })
        .collect();
    Json(json!({ "sinks": sinks, "count": sinks.len() })).into_response()
}

async fn show_config(State(st): State<AppState>) -> Response {
    let doc = st
        .config
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Json(doc).into_response()
}

/// The parameters of `GET /api/v1/dashboard/servers`: the list's filters and these.
pub const PAGE_PARAMS: &[&str] = &["q", "sort", "order", "offset", "limit"];

/// `GET /api/v1/dashboard/servers`: one sorted page of compact rows for the servers table,
/// `{"rows": [...], "total": N, "offset": O, "limit": L}`.
async fn page_servers(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let accepted: Vec<&str> = SERVER_FILTERS.iter().chain(PAGE_PARAMS).copied().collect();
    let query = match Params::new(q, &accepted).and_then(|p| page_query(&p)) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let (offset, limit) = (query.offset, query.limit);
    match read(&st.reader, move |r| r.servers_page(&query)).await {
        Ok((rows, total)) => {
            let mut body = Vec::with_capacity(rows.len() + 64);
            body.extend_from_slice(b"{\"rows\":");
            body.extend_from_slice(&rows);
            body.extend_from_slice(
                format!(",\"total\":{total},\"offset\":{offset},\"limit\":{limit}}}").as_bytes(),
            );
            json_bytes(body)
        }
        Err(r) => r,
    }
}

fn page_query(p: &Params) -> Result<crate::store::dashboard::PageQuery, Refused> {
    use crate::store::dashboard::{PageQuery, SortKey, DEFAULT_PAGE_ROWS, MAX_PAGE_ROWS};
    let descending = match p.get("order") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(v) => {
            return Err(Refused::bad(format!(
                "invalid order {v:?}; accepted values: asc, desc"
            )))
        }
    };
    Ok(PageQuery {
        filter: server_filter(p)?,
        text: p.text("q")?,
        sort: p
            .choice("sort", SortKey::parse, SortKey::NAMES)?
            .unwrap_or_default(),
        descending,
        offset: p.number("offset", 0, i64::from(u32::MAX))? as usize,
        limit: p.number("limit", DEFAULT_PAGE_ROWS as i64, MAX_PAGE_ROWS as i64)? as usize,
    })
}

/// Windows `GET /api/v1/servers/{id}/series` accepts.
const SERIES_WINDOWS: &str = "1h, 6h, 24h, 7d";

/// `GET /api/v1/servers/{id}/series?window=24h&buckets=288`: the server's check history in
/// buckets (latency chart and status strip).
async fn server_series(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    use crate::store::dashboard::{DEFAULT_BUCKETS, MAX_BUCKETS};
    let p = match Params::new(q, &["window", "buckets"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let window = match p.choice(
        "window",
        |w| {
            Some(Duration::from_secs(match w {
                "1h" => 3600,
                "6h" => 6 * 3600,
                "24h" => 24 * 3600,
                "7d" => 7 * 24 * 3600,
                _ => return None,
            }))
        },
        SERIES_WINDOWS,
    ) {
        Ok(w) => w.unwrap_or(Duration::from_secs(24 * 3600)),
        Err(r) => return r.into_response(),
    };
    let buckets = match p.number("buckets", DEFAULT_BUCKETS as i64, MAX_BUCKETS as i64) {
        Ok(0) => {
            return Refused::bad(format!(
                "invalid buckets \"0\"; accepted values: a whole number from 1 to {MAX_BUCKETS}"
            ))
            .into_response()
        }
        Ok(b) => b as usize,
        Err(r) => return r.into_response(),
    };
    let key = id.clone();
    let series = read(&st.reader, move |r| {
        if !r.has_server(&key)? {
            return Ok(None);
        }
        r.series(&key, window, buckets, std::time::SystemTime::now())
            .map(Some)
    })
    .await;
    match series {
        Ok(Some(s)) => Json(s).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no server with id {id:?}")),
        Err(r) => r,
    }
}

async fn run_job(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    match st.jobs.trigger(&name).await {
        Ok(run) => (
            StatusCode::ACCEPTED,
            Json(json!({ "run_id": run, "job": name })),
        )
            .into_response(),
        Err(TriggerError::Unknown) => {
            let names: Vec<String> = st.jobs.statuses().into_iter().map(|j| j.name).collect();
            error(
                StatusCode::NOT_FOUND,
                format!("no job named {name:?}; jobs: {}", names.join(", ")),
            )
        }
        Err(TriggerError::Running(run)) => (
            StatusCode::CONFLICT,
            Json(json!({ "error": format!("job {name:?} is already running (run {run})"), "run_id": run })),
        )
            .into_response(),
        Err(TriggerError::Store(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn forget_server(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match st.store.forget(&id).await {
        Ok(changes) if !changes.is_empty() => {
            super::jobs::count_changes(&st.metrics, &changes);
            // `change` is the `gone` one (always first); `changes` adds a `health_changed`.
            Json(json!({ "forgotten": id, "change": changes[0], "changes": changes }))
                .into_response()
        }
        Ok(_) => error(StatusCode::NOT_FOUND, format!("no server with id {id:?}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn stream_changes(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = match Params::new(q, &["since"]) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let from_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let since = match from_header {
        Some(s) => s,
        None => match p.number("since", -1, i64::MAX) {
            Ok(s) => s,
            Err(r) => return r.into_response(),
        },
    };
    // Subscribe before reading the store, so nothing committed in between is missed.
    let rx = st.store.subscribe();
    let since = if since < 0 {
        // No cursor: only what happens from now on.
        match read(&st.reader, |r| r.last_seq()).await {
            Ok(s) => s,
            Err(r) => return r.into_response(),
        }
    } else {
        since
    };
    Sse::new(change_stream(st, rx, since))
        .keep_alive(KeepAlive::new().interval(KEEPALIVE))
        .into_response()
}

fn change_stream(
    st: AppState,
    rx: broadcast::Receiver<Change>,
    since: i64,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(
        (st, rx, since, std::collections::VecDeque::<Change>::new()),
        |(st, mut rx, mut last, mut buf)| async move {
            loop {
                if let Some(c) = buf.pop_front() {
                    if c.seq <= last {
                        continue;
                    }
                    last = c.seq;
                    let ev = SseEvent::default()
                        .id(c.seq.to_string())
                        .event(c.kind.as_str())
                        .data(serde_json::to_string(&c).unwrap_or_default());
                    return Some((Ok(ev), (st, rx, last, buf)));
                }
                // Catch up from the store first (at start, and after lagging).
                let from = last;
                let batch = read(&st.reader, move |r| r.changes(from, STREAM_BATCH))
                    .await
                    .map(|(c, _)| c)
                    .unwrap_or_default();
                if !batch.is_empty() {
                    buf.extend(batch);
                    continue;
                }
                let next = tokio::select! {
                    () = st.shutdown.cancelled() => return None,
                    r = rx.recv() => r,
                };
                match next {
                    Ok(c) => buf.push_back(c),
                    Err(broadcast::error::RecvError::Lagged(_)) => {} // reload from the store
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}
