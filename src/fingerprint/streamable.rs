//! Streamable HTTP (2025-03-26 and later) and the modern era (2026-07-28).
//!
//! One POST of `initialize` to the path says most of what there is to know: a valid result
//! confirms MCP; a 401 leads to the authorization check ([`super::auth`]); an error that
//! hints at the modern era (-32020, -32022, `supported`) is re-probed with `server/discover`;
//! SDK-specific transport errors (406 demanding `text/event-stream`, missing-session 400s,
//! 421/403 Host rejections, `Mcp-Session-Id` on an error) make a server `mcp-likely`.
//! A confirmed server is then asked for its tools (and resources and prompts where
//! advertised), whether it also speaks the modern era, and its session is closed with DELETE:
//! Python servers keep probe sessions forever otherwise.

use std::time::Duration;

use serde_json::{json, Value};
use url::Url;

use super::http::{Request, Stream, StreamCaps};
use super::jsonrpc::{self, Expect, Reply};
use super::sse::{SseLimits, SseParser};
use super::{trim_text, Ctx, McpInfo, PathOutcome, Tool, Transport, ASK_VERSION, MODERN_VERSION};

/// `tools/list` pages followed at most: enough for any real server, bounded for a hostile one.
pub(crate) const MAX_TOOL_PAGES: usize = 5;
/// Body text kept for signal matching and the report.
const SNIPPET: usize = 300;

/// What one JSON-RPC POST returned.
pub(crate) struct RpcReply {
    pub(crate) status: u16,
    pub(crate) media: String,
    pub(crate) session: Option<String>,
    pub(crate) location: Option<String>,
    pub(crate) www_authenticate: Vec<String>,
    pub(crate) reply: Option<Reply>,
    /// The start of the body as text, for transport-error signals.
    pub(crate) snippet: String,
}

/// The `Accept` every POST sends: Streamable HTTP servers refuse requests without both.
pub(crate) const ACCEPT: &str = "application/json, text/event-stream";
/// How long the rest of a reply's event stream is read after the reply (see
/// [`Stream::drain`]): long enough for the end a server sends right after it, short enough
/// that a stream left open costs little.
const DRAIN_WAIT: Duration = Duration::from_millis(50);

pub(crate) fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

pub(crate) fn initialize(id: u64) -> Value {
    rpc(
        id,
        "initialize",
        json!({
            "protocolVersion": ASK_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-scout", "version": env!("CARGO_PKG_VERSION")}
        }),
    )
}

pub(crate) fn modern_params() -> Value {
    json!({"_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {}
    }})
}

/// Read one JSON-RPC reply from a response that is either a JSON body or an event stream,
/// stopping at the first response (server notifications and requests before it are skipped).
pub(crate) async fn read_reply(stream: &mut Stream, expect: Expect) -> (Option<Reply>, String) {
    read_reply_within(stream, expect, SseLimits::default()).await
}

/// [`read_reply`] with the event-stream parser's limits given (a health check raises them to
/// its body cap: a long `tools/list` arrives as one event).
pub(crate) async fn read_reply_within(
    stream: &mut Stream,
    expect: Expect,
    limits: SseLimits,
) -> (Option<Reply>, String) {
    let media = stream.media_type();
    let mut snippet = String::new();
    if media == "text/event-stream" {
        let mut parser = SseParser::new(limits);
        while let Some(chunk) = stream.next_chunk().await {
            if snippet.len() < SNIPPET {
                snippet.push_str(&String::from_utf8_lossy(&chunk[..chunk.len().min(SNIPPET)]));
            }
            let Ok(events) = parser.push(&chunk) else {
                break;
            };
            for ev in events {
                let r = jsonrpc::classify(ev.data.as_bytes(), expect);
                if !matches!(r, Reply::NotJsonRpc | Reply::Malformed(_)) {
                    return (Some(r), snippet);
                }
            }
        }
        return (None, snippet);
    }
    let mut body = Vec::new();
    while let Some(chunk) = stream.next_chunk().await {
        body.extend_from_slice(&chunk);
    }
    snippet = String::from_utf8_lossy(&body[..body.len().min(SNIPPET)]).into_owned();
    if body.is_empty() {
        return (None, snippet);
    }
    (Some(jsonrpc::classify(&body, expect)), snippet)
}

/// POST one JSON-RPC message and read its reply.
pub(crate) async fn post(
    ctx: &mut Ctx<'_>,
    label: &str,
    req: Request,
    expect: Expect,
) -> Option<RpcReply> {
    if !ctx.has_time() {
        ctx.log(label, "skipped: endpoint budget spent");
        return None;
    }
    let caps = StreamCaps {
        max_bytes: ctx.http.limits().max_body,
        max_time: ctx.http.limits().request_timeout,
    };
    let mut stream = match ctx.http.open_stream(&req, caps).await {
        Ok(s) => s,
        Err(e) => {
            ctx.log(label, e.to_string());
            return None;
        }
    };
    if ctx.cert.is_none() {
        ctx.cert.clone_from(&stream.cert);
    }
    let (reply, snippet) = read_reply(&mut stream, expect).await;
    if reply.is_some() {
        stream.drain(DRAIN_WAIT).await;
    }
    let out = RpcReply {
        status: stream.status,
        media: stream.media_type(),
        session: stream.header("mcp-session-id").map(str::to_string),
        location: stream.header("location").map(str::to_string),
        www_authenticate: stream
            .headers
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect(),
        reply,
        snippet,
    };
    if let Some(sid) = &out.session {
        if !ctx.sessions.iter().any(|(_, s)| s == sid) {
            ctx.sessions.push((req.url.clone(), sid.clone()));
        }
    }
    ctx.log(label, describe(&out));
    Some(out)
}

fn describe(r: &RpcReply) -> String {
    let mut s = format!(
        "{} {}",
        r.status,
        if r.media.is_empty() {
            "(no body type)"
        } else {
            &r.media
        }
    );
    if let Some(sid) = &r.session {
        s.push_str(&format!(", Mcp-Session-Id {sid}"));
    }
    match &r.reply {
        Some(Reply::Initialize(i)) => s.push_str(&format!(
            " → initialize result: protocolVersion {}, server {} {}",
            i.protocol_version, i.server_name, i.server_version
        )),
        Some(Reply::Discover(d)) => s.push_str(&format!(
            " → server/discover result: versions {:?}",
            d.supported_versions
        )),
        Some(Reply::Tools(t)) => s.push_str(&format!(" → {} tools", t.tools.len())),
        Some(Reply::Listing { count, .. }) => s.push_str(&format!(" → {count} items")),
        Some(Reply::Error(e)) => s.push_str(&format!(
            " → JSON-RPC error {}: {}",
            e.code,
            trim_text(&e.message)
        )),
        Some(Reply::OtherResult) => s.push_str(" → a JSON-RPC result that is not an MCP handshake"),
        Some(Reply::CallResult(_)) => s.push_str(" → a tools/call result"),
        Some(Reply::NotJsonRpc) => s.push_str(" → JSON, not JSON-RPC"),
        Some(Reply::Malformed(why)) => match first_line(&r.snippet) {
            Some(line) => s.push_str(&format!(" → {line:?} (not JSON-RPC: {why})")),
            None => s.push_str(&format!(" → unparseable body: {why}")),
        },
        None if !r.snippet.is_empty() => s.push_str(&format!(" → {:?}", trim_snippet(&r.snippet))),
        None => {}
    }
    s
}

/// Longest first line of a body quoted in evidence, in characters.
pub(crate) const FIRST_LINE: usize = 120;

/// The first non-blank line of `body`, control characters dropped, at most [`FIRST_LINE`]
/// characters.
pub(crate) fn first_line(body: &str) -> Option<String> {
    let line = body.lines().map(str::trim).find(|l| !l.is_empty())?;
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return None;
    }
    Some(match clean.char_indices().nth(FIRST_LINE) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean.to_string(),
    })
}

fn trim_snippet(s: &str) -> String {
    let t: String = s.chars().take(120).collect();
    t.replace(['\r', '\n'], " ")
}

pub(crate) fn headers(req: Request, version: Option<&str>, session: Option<&str>) -> Request {
    let mut req = req.header("accept", ACCEPT);
    if let Some(v) = version {
        req = req.header("mcp-protocol-version", v);
    }
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    req
}

/// Probe `url` with Streamable HTTP. Returns the outcome and, for a 3xx, where it points.
pub(crate) async fn probe(ctx: &mut Ctx<'_>, url: &Url) -> (PathOutcome, Option<Url>) {
    let id = ctx.next_id();
    let req = headers(
        Request::new(reqwest::Method::POST, url.clone()).json(&initialize(id)),
        None,
        None,
    );
    let label = format!("POST {} initialize ({ASK_VERSION})", url.path());
    let Some(r) = post(ctx, &label, req, Expect::Initialize).await else {
        return (PathOutcome::Nothing, None);
    };
    if (300..400).contains(&r.status) {
        let next = r.location.as_deref().and_then(|l| url.join(l).ok());
        return (PathOutcome::Nothing, next);
    }
    if r.status == 401 {
        return (
            super::auth::challenge(ctx, url, &r.www_authenticate).await,
            None,
        );
    }
    match &r.reply {
        Some(Reply::Initialize(info)) if info.known_version => {
            let mut mcp = McpInfo::from_initialize(info, r.session.is_some());
            ctx.evidence.push(format!(
                "initialize on {} returned a valid result (protocolVersion {}, serverInfo {} {})",
                url.path(),
                info.protocol_version,
                info.server_name,
                info.server_version
            ));
            explore(ctx, url, &mut mcp, r.session.as_deref()).await;
            if let Some(v) = modern_versions(ctx, url, &mcp).await {
                for v in v {
                    if !mcp.protocol_versions.contains(&v) {
                        mcp.protocol_versions.push(v);
                    }
                }
            }
            return (
                PathOutcome::Confirmed {
                    url: url.clone(),
                    transport: Transport::StreamableHttp,
                    info: mcp,
                },
                None,
            );
        }
        Some(Reply::Error(e)) if e.is_modern_era_hint() => {
            ctx.evidence.push(format!(
                "initialize on {} was refused with a modern-era hint (code {}); re-probed with server/discover",
                url.path(),
                e.code
            ));
            if let Some(outcome) = modern(ctx, url).await {
                return (outcome, None);
            }
        }
        _ => {}
    }
    if let Some(reason) = sdk_signal(&r) {
        return (
            PathOutcome::Likely {
                url: url.clone(),
                reason: format!("{}: {reason}", url.path()),
                transport: None,
            },
            None,
        );
    }
    weak_signals(ctx, url, &r);
    (PathOutcome::Nothing, None)
}

/// SDK-specific transport errors: strong, but short of a handshake.
pub(crate) fn sdk_signal(r: &RpcReply) -> Option<String> {
    let body = r.snippet.as_str();
    let has = |needle: &str| {
        body.to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    };
    if r.status == 406 && has("not acceptable") && has("text/event-stream") {
        return Some("406 Not Acceptable demanding text/event-stream (MCP SDK transport)".into());
    }
    if r.status == 421 && has("invalid host") {
        return Some(
            "421 Invalid Host header: an MCP SDK server that restricts its Host header".into(),
        );
    }
    if r.status == 403 && has("invalid host") {
        return Some("403 Invalid Host: an MCP SDK server that restricts its Host header".into());
    }
    if r.status == 400
        && (has("missing session id")
            || has("mcp-session-id header is required")
            || has("no valid session id")
            || has("unsupported protocol version"))
    {
        return Some(format!(
            "400 with an MCP session/version error: {:?}",
            trim_snippet(body)
        ));
    }
    if r.status >= 400 && r.session.is_some() {
        return Some(format!("{} error reply carrying Mcp-Session-Id", r.status));
    }
    if let Some(Reply::Error(e)) = &r.reply {
        if e.id == Value::String("server-error".into()) {
            return Some(format!(
                "JSON-RPC error with id \"server-error\" (Python MCP SDK): {}",
                trim_text(&e.message)
            ));
        }
    }
    None
}

fn weak_signals(ctx: &mut Ctx<'_>, url: &Url, r: &RpcReply) {
    let p = url.path();
    match (&r.reply, r.status) {
        (_, 404) => {}
        (_, 405) => ctx.evidence.push(format!("{p}: POST answered 405 (weak)")),
        (Some(Reply::Error(e)), _) => ctx.evidence.push(format!(
            "{p}: a JSON-RPC 2.0 error ({}: {}) without MCP transport signals: JSON-RPC, not MCP (weak)",
            e.code,
            trim_text(&e.message)
        )),
        (Some(Reply::OtherResult), _) => ctx.evidence.push(format!("{p}: a JSON-RPC result that is not an MCP handshake")),
        (Some(Reply::Initialize(i)), _) => ctx.evidence.push(format!(
            "{p}: initialize-shaped result with unknown protocolVersion {:?}: not accepted as MCP",
            i.protocol_version
        )),
        // Name what the server said: "403: Access is only allowed at localhost:5000" tells a
        // user more than the parser's complaint.
        (Some(Reply::Malformed(why)), status) => ctx.evidence.push(match first_line(&r.snippet) {
            Some(line) => format!("{p}: {status}: {line} (not JSON-RPC: {why})"),
            None => format!("{p}: {status}: unparseable body ({why})"),
        }),
        (None, _) if r.media == "text/event-stream" => {
            ctx.evidence.push(format!("{p}: an event stream without a JSON-RPC reply (weak)"));
        }
        _ => {}
    }
}

/// After a handshake: initialized notification, tools, resources, prompts, then DELETE.
async fn explore(ctx: &mut Ctx<'_>, url: &Url, mcp: &mut McpInfo, session: Option<&str>) {
    let version = mcp.protocol_version.clone();
    let v = version.as_deref();
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let req = headers(
        Request::new(reqwest::Method::POST, url.clone()).json(&note),
        v,
        session,
    );
    let _ = ctx
        .send(
            &format!("POST {} notifications/initialized", url.path()),
            &req,
        )
        .await;

    let mut cursor: Option<String> = None;
    for _ in 0..MAX_TOOL_PAGES {
        let id = ctx.next_id();
        let params = cursor
            .as_ref()
            .map_or_else(|| json!({}), |c| json!({"cursor": c}));
        let req = headers(
            Request::new(reqwest::Method::POST, url.clone()).json(&rpc(id, "tools/list", params)),
            v,
            session,
        );
        let Some(r) = post(
            ctx,
            &format!("POST {} tools/list", url.path()),
            req,
            Expect::Tools,
        )
        .await
        else {
            break;
        };
        let Some(Reply::Tools(page)) = r.reply else {
            break;
        };
        mcp.tools.extend(page.tools.iter().map(tool_of));
        cursor = page.next_cursor.clone();
        if cursor.is_none() {
            break;
        }
    }
    let caps = mcp.capabilities.clone().unwrap_or(Value::Null);
    for (cap, method, expect) in [
        ("resources", "resources/list", Expect::Resources),
        ("prompts", "prompts/list", Expect::Prompts),
    ] {
        if caps.get(cap).is_none() {
            continue;
        }
        let id = ctx.next_id();
        let req = headers(
            Request::new(reqwest::Method::POST, url.clone()).json(&rpc(id, method, json!({}))),
            v,
            session,
        );
        if let Some(RpcReply {
            reply: Some(Reply::Listing { count, .. }),
            ..
        }) = post(ctx, &format!("POST {} {method}", url.path()), req, expect).await
        {
            if cap == "resources" {
                mcp.resources = Some(count);
            } else {
                mcp.prompts = Some(count);
            }
        }
    }
    if let Some(s) = session {
        let req = headers(
            Request::new(reqwest::Method::DELETE, url.clone()),
            v,
            Some(s),
        );
        let _ = ctx
            .send(
                &format!("DELETE {} (close the probe session)", url.path()),
                &req,
            )
            .await;
        ctx.sessions.retain(|(_, x)| x != s);
    }
}

pub(crate) fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub(crate) fn tool_of(t: &jsonrpc::ToolInfo) -> Tool {
    Tool {
        name: t.name.clone(),
        description: t.description.as_deref().map(trim_text),
        input_schema_hash: t.input_schema_hash.map(|h| format!("{h:016x}")),
    }
}

fn modern_request(ctx: &mut Ctx<'_>, url: &Url, method: &str) -> Request {
    let id = ctx.next_id();
    Request::new(reqwest::Method::POST, url.clone())
        .json(&rpc(id, method, modern_params()))
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", MODERN_VERSION)
        .header("mcp-method", method)
}

/// Whether the server also speaks the modern era: its supported versions, if so. A daemon
/// job's carry answers for a server with the same identity as in an earlier run
/// ([`super::carry`]); otherwise `server/discover` is asked.
async fn modern_versions(ctx: &mut Ctx<'_>, url: &Url, mcp: &McpInfo) -> Option<Vec<String>> {
    let label = format!(
        "POST {} server/discover ({MODERN_VERSION}, does it speak the modern era?)",
        url.path()
    );
    let identity = super::carry::Identity::of(mcp, Transport::StreamableHttp);
    if let Some(f) = ctx.carry.and_then(|c| c.recall(url.as_str(), &identity)) {
        ctx.log(label, super::carry::CARRIED);
        ctx.modern.clone_from(&f.modern);
        return f.modern;
    }
    let req = modern_request(ctx, url, "server/discover");
    let Some(r) = post(ctx, &label, req, Expect::Discover).await else {
        // No answer: nothing of this fingerprint is carried to the next run.
        ctx.misses += 1;
        return None;
    };
    ctx.modern = match r.reply {
        Some(Reply::Discover(d)) => Some(d.supported_versions),
        _ => None,
    };
    ctx.modern.clone()
}

/// A modern-only server: `server/discover`, then `tools/list` in the same envelope.
async fn modern(ctx: &mut Ctx<'_>, url: &Url) -> Option<PathOutcome> {
    let req = modern_request(ctx, url, "server/discover");
    let r = post(
        ctx,
        &format!("POST {} server/discover ({MODERN_VERSION})", url.path()),
        req,
        Expect::Discover,
    )
    .await?;
    let Some(Reply::Discover(d)) = r.reply else {
        return None;
    };
    ctx.evidence.push(format!(
        "server/discover on {} returned a valid result (versions {:?})",
        url.path(),
        d.supported_versions
    ));
    let mut mcp = McpInfo {
        protocol_version: d.supported_versions.iter().max().cloned(),
        protocol_versions: d.supported_versions.clone(),
        server_name: d.server_name.clone(),
        server_version: d.server_version.clone(),
        capabilities: Some(d.capabilities.clone()),
        instructions: d.instructions.as_deref().map(trim_text),
        ..McpInfo::default()
    };
    let req = modern_request(ctx, url, "tools/list");
    if let Some(RpcReply {
        reply: Some(Reply::Tools(page)),
        ..
    }) = post(
        ctx,
        &format!("POST {} tools/list ({MODERN_VERSION})", url.path()),
        req,
        Expect::Tools,
    )
    .await
    {
        mcp.tools = page.tools.iter().map(tool_of).collect();
    }
    Some(PathOutcome::Confirmed {
        url: url.clone(),
        transport: Transport::StreamableHttp,
        info: mcp,
    })
}

#[cfg(test)]
mod tests {
    //! The classifier over bytes captured from the real SDK servers (tests/fixtures/wire,
    //! recorded by scripts/peers/record-fixtures.sh).
    use super::*;

    /// Parse a raw `curl -si` capture into what [`post`] would have seen.
    fn load(name: &str) -> RpcReply {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/wire")
            .join(name);
        let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parse(&raw, Expect::Initialize)
    }

    fn parse(raw: &[u8], expect: Expect) -> RpcReply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
            .unwrap_or((raw.len(), 0));
        let head = String::from_utf8_lossy(&raw[..split.0]).into_owned();
        let body = &raw[(split.0 + split.1).min(raw.len())..];
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let media = get("content-type")
            .and_then(|c| c.split(';').next().map(|m| m.trim().to_ascii_lowercase()))
            .unwrap_or_default();
        let reply = if media == "text/event-stream" {
            let mut p = SseParser::new(SseLimits::default());
            p.push(body)
                .unwrap_or_default()
                .into_iter()
                .chain(p.push(b"\n\n").unwrap_or_default())
                .map(|e| jsonrpc::classify(e.data.as_bytes(), expect))
                .find(|r| !matches!(r, Reply::NotJsonRpc | Reply::Malformed(_)))
        } else if body.is_empty() {
            None
        } else {
            Some(jsonrpc::classify(body, expect))
        };
        RpcReply {
            status,
            media,
            session: get("mcp-session-id"),
            location: get("location"),
            www_authenticate: headers
                .iter()
                .filter(|(n, _)| n == "www-authenticate")
                .map(|(_, v)| v.clone())
                .collect(),
            reply,
            snippet: String::from_utf8_lossy(&body[..body.len().min(SNIPPET)]).into_owned(),
        }
    }

    #[test]
    fn first_lines_are_bounded_and_clean() {
        assert_eq!(
            first_line("\n  Access is only allowed at localhost:5000\r\nmore").as_deref(),
            Some("Access is only allowed at localhost:5000")
        );
        assert_eq!(first_line(" \n\t\n"), None);
        let long = format!("{}\u{1b}[0m", "x".repeat(FIRST_LINE + 5));
        let l = first_line(&long).unwrap();
        assert_eq!(l.chars().count(), FIRST_LINE + 1, "{l}");
        assert!(l.ends_with('…') && !l.contains('\u{1b}'));
    }

    #[test]
    fn every_sdk_initialize_result_is_a_handshake() {
        for f in [
            "py1-streamable.01-initialize-2025-11-25.http",
            "py2-streamable.01-initialize-2025-11-25.http",
            "ts-streamable.01-initialize-2025-11-25.http",
            "py1-streamable.10-initialize-2024-11-05.http",
            "py1-streamable.10-initialize-2099-01-01.http",
        ] {
            let r = load(f);
            match &r.reply {
                Some(Reply::Initialize(i)) => {
                    assert!(i.known_version, "{f}: {}", i.protocol_version)
                }
                other => panic!("{f}: {other:?}"),
            }
            assert!(
                r.session.is_some(),
                "{f}: stateful servers send Mcp-Session-Id"
            );
        }
    }

    #[test]
    fn host_rejections_and_session_errors_are_sdk_signals() {
        for f in [
            "py1-hostcheck.01-initialize.http",
            "py1-streamable.31-bad-host.http",
            "ts-streamable.31-bad-host.http",
            "py1-streamable.09-tools-list-unknown-session.http",
            "py1-streamable.40-discover-2026-07-28.http",
            "ts-streamable.40-discover-2026-07-28.http",
            "py1-stateless-json.40-discover-2026-07-28.http",
        ] {
            let r = load(f);
            assert!(
                sdk_signal(&r).is_some(),
                "{f}: {} {:?} {:?}",
                r.status,
                r.snippet,
                r.reply
            );
        }
    }

    #[test]
    fn modern_era_discover_result_is_recognised() {
        let raw = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/wire/py2-streamable.40-discover-2026-07-28.http"),
        )
        .unwrap();
        let r = parse(&raw, Expect::Discover);
        assert!(
            matches!(&r.reply, Some(Reply::Discover(d)) if d.supported_versions.iter().any(|v| v == MODERN_VERSION)),
            "{:?}",
            r.reply
        );
    }

    /// The request behind each capture (`requests.tsv`): which reply the classifier expects.
    fn expectations() -> std::collections::BTreeMap<String, Expect> {
        let tsv = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/wire/requests.tsv"),
        )
        .unwrap();
        tsv.lines()
            .skip(1)
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                let body = cols.get(4).copied().unwrap_or("");
                let method = serde_json::from_str::<Value>(body)
                    .ok()
                    .and_then(|v| v["method"].as_str().map(str::to_string));
                let expect = match method.as_deref() {
                    Some("server/discover") => Expect::Discover,
                    Some("tools/list") => Expect::Tools,
                    Some("resources/list") => Expect::Resources,
                    Some("prompts/list") => Expect::Prompts,
                    // initialize, and what has no reply of its own (GET, DELETE, a
                    // notification, a broken body): read as the probe's first POST would be.
                    _ => Expect::Initialize,
                };
                (cols[0].to_string(), expect)
            })
            .collect()
    }

    /// One capture's verdict: `status reply signal`.
    fn verdict(r: &RpcReply) -> String {
        let reply = match &r.reply {
            None => "none".to_string(),
            Some(Reply::Initialize(i)) => format!("initialize:{}", i.protocol_version),
            Some(Reply::Discover(d)) => format!("discover:{}", d.supported_versions.join("+")),
            Some(Reply::Tools(t)) => format!("tools:{}", t.tools.len()),
            Some(Reply::Listing { kind, count, .. }) => format!("{kind:?}:{count}").to_lowercase(),
            Some(Reply::Error(e)) => format!("error:{}", e.code),
            Some(Reply::OtherResult) => "other-result".to_string(),
            Some(Reply::CallResult(_)) => "call-result".to_string(),
            Some(Reply::NotJsonRpc) => "not-jsonrpc".to_string(),
            Some(Reply::Malformed(_)) => "malformed".to_string(),
        };
        let signal = match sdk_signal(r) {
            None => "-",
            Some(s) if s.starts_with("406 Not Acceptable") => "406-accept",
            Some(s) if s.starts_with("421 Invalid Host") => "421-host",
            Some(s) if s.starts_with("403 Invalid Host") => "403-host",
            Some(s) if s.starts_with("400 with an MCP session/version error") => "400-session",
            Some(s) if s.ends_with("error reply carrying Mcp-Session-Id") => "session-on-error",
            Some(s) if s.starts_with("JSON-RPC error with id \"server-error\"") => {
                "server-error-id"
            }
            Some(s) => panic!("a new kind of SDK signal: {s}"),
        };
        format!("{} {reply} {signal}", r.status)
    }

    /// Every capture, classified against `tests/fixtures/wire/verdicts.tsv`: one row per file,
    /// no file without a row, no row without a file, no empty capture.
    #[test]
    fn every_capture_has_its_expected_verdict() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire");
        let table = std::fs::read_to_string(dir.join("verdicts.tsv")).unwrap();
        let want: std::collections::BTreeMap<&str, (&str, String)> = table
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(1) // header
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                assert_eq!(cols.len(), 5, "verdicts.tsv: {l:?}");
                (cols[0], (cols[1], cols[2..].join(" ")))
            })
            .collect();
        let expect = expectations();
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".http"))
            .collect();
        files.sort();
        let mut wrong = Vec::new();
        for f in &files {
            let raw = std::fs::read(dir.join(f)).unwrap();
            assert!(!raw.is_empty(), "{f} is empty: re-record it");
            let e = *expect
                .get(f)
                .unwrap_or_else(|| panic!("{f} is not in requests.tsv"));
            let Some((want_expect, want_verdict)) = want.get(f.as_str()) else {
                panic!("{f} has no row in verdicts.tsv");
            };
            assert_eq!(format!("{e:?}"), *want_expect, "{f}: expect column");
            let got = verdict(&parse(&raw, e));
            if got != *want_verdict {
                wrong.push(format!("{f}: want {want_verdict:?}, got {got:?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} wrong verdicts:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        let extra: Vec<&&str> = want
            .keys()
            .filter(|k| !files.iter().any(|f| f == **k))
            .collect();
        assert!(extra.is_empty(), "rows without a capture: {extra:?}");
        assert_eq!(files.len(), 256, "the full capture set");
    }
}
