//! The legacy HTTP+SSE transport (2024-11-05).
//!
//! `GET` opens an event stream whose first event is `endpoint`, naming where to POST
//! (`/messages/?session_id=…` from Python, `/messages?sessionId=…` from TypeScript). The POST
//! of `initialize` is answered 202, and the result arrives on the open stream. The stream
//! never ends, so it is read within byte and time caps and dropped, which ends the session.
//! An endpoint that points off the probed host is reported, never contacted.

use url::Url;

use super::http::{Request, Stream, StreamCaps};
use super::jsonrpc::{self, Expect, Reply};
use super::sse::{SseEvent, SseLimits, SseParser};
use super::streamable::{rpc, tool_of, ACCEPT};
use super::{Ctx, McpInfo, PathOutcome, Transport};

/// Reads events from an open stream, keeping what the parser buffered between calls.
struct Events {
    stream: Stream,
    parser: SseParser,
    queue: std::collections::VecDeque<SseEvent>,
}

impl Events {
    /// The next event with data, or `None` when the stream ends or a cap is reached.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            let chunk = self.stream.next_chunk().await?;
            self.queue.extend(self.parser.push(&chunk).ok()?);
        }
    }

    /// The next JSON-RPC reply on the stream (skipping notifications and requests).
    async fn next_reply(&mut self, expect: Expect) -> Option<Reply> {
        while let Some(ev) = self.next().await {
            let r = jsonrpc::classify(ev.data.as_bytes(), expect);
            if !matches!(r, Reply::NotJsonRpc | Reply::Malformed(_)) {
                return Some(r);
            }
        }
        None
    }
}

/// Probe `url` as a legacy SSE endpoint.
pub(crate) async fn probe(ctx: &mut Ctx<'_>, url: &Url) -> PathOutcome {
    if !ctx.has_time() {
        return PathOutcome::Nothing;
    }
    let req = Request::new(reqwest::Method::GET, url.clone()).header("accept", "text/event-stream");
    // The stream must stay open through the whole exchange, so it gets a request's time on
    // top of the event-stream read time.
    let limits = ctx.http.limits().clone();
    let caps = StreamCaps {
        max_bytes: limits.sse_max_bytes,
        max_time: limits.sse_max_time + limits.request_timeout,
    };
    let label = format!("GET {} (legacy SSE?)", url.path());
    let stream = match ctx.http.open_stream(&req, caps).await {
        Ok(s) => s,
        Err(e) => {
            ctx.log(&label, e.to_string());
            return PathOutcome::Nothing;
        }
    };
    let media = stream.media_type();
    if stream.status != 200 || media != "text/event-stream" {
        ctx.log(&label, format!("{} {media}", stream.status));
        return PathOutcome::Nothing;
    }
    let mut events = Events {
        stream,
        parser: SseParser::new(SseLimits::default()),
        queue: Default::default(),
    };
    let first = tokio::time::timeout(limits.sse_max_time, events.next())
        .await
        .ok()
        .flatten();
    let Some(first) = first else {
        ctx.log(&label, "200 text/event-stream, no event within the caps");
        ctx.evidence.push(format!(
            "{}: an event stream with no event (weak)",
            url.path()
        ));
        return PathOutcome::Nothing;
    };
    if first.event != "endpoint" {
        ctx.log(
            &label,
            format!("200 text/event-stream, first event {:?}", first.event),
        );
        ctx.evidence.push(format!(
            "{}: an event stream whose first event is {:?}, not \"endpoint\" (weak)",
            url.path(),
            first.event
        ));
        return PathOutcome::Nothing;
    }
    let data = first.data.trim();
    ctx.log(
        &label,
        format!("200 text/event-stream, event: endpoint {data:?}"),
    );
    let Ok(endpoint) = url.join(data) else {
        ctx.evidence.push(format!(
            "{}: endpoint event {data:?} is not a URL",
            url.path()
        ));
        return PathOutcome::Nothing;
    };
    if !ctx.same_origin(&endpoint) {
        ctx.evidence.push(format!(
            "{}: endpoint event points off-host ({endpoint}); not contacted",
            url.path()
        ));
        return PathOutcome::Likely {
            url: url.clone(),
            reason: format!(
                "{}: legacy SSE endpoint event (off-host endpoint not contacted)",
                url.path()
            ),
            // The endpoint event itself is the legacy transport's signature.
            transport: Some(Transport::Sse),
        };
    }

    let id = ctx.next_id();
    let init = rpc(
        id,
        "initialize",
        serde_json::json!({
            "protocolVersion": "2024-11-05",
            "capabilities": {},
            "clientInfo": {"name": "mcp-scout", "version": env!("CARGO_PKG_VERSION")}
        }),
    );
    let post_path = endpoint.path().to_string();
    let req = Request::new(reqwest::Method::POST, endpoint.clone())
        .json(&init)
        .header("accept", ACCEPT);
    let accepted = ctx
        .send(&format!("POST {post_path} initialize (2024-11-05)"), &req)
        .await;
    let accepted = accepted.is_some_and(|r| (200..300).contains(&r.status));
    let reply = if accepted {
        events.next_reply(Expect::Initialize).await
    } else {
        None
    };
    let info = match reply {
        Some(Reply::Initialize(i)) if i.known_version => i,
        other => {
            ctx.log(
                "read the event stream",
                format!(
                    "{:?}",
                    other.map(|r| format!("{r:?}").chars().take(120).collect::<String>())
                ),
            );
            let reason = if accepted {
                format!("{}: legacy SSE endpoint event and an accepted POST, but no handshake result on the stream", url.path())
            } else {
                format!(
                    "{}: legacy SSE endpoint event, but the POST was not accepted",
                    url.path()
                )
            };
            return PathOutcome::Likely {
                url: url.clone(),
                reason,
                transport: Some(Transport::Sse),
            };
        }
    };
    ctx.log(
        "read the event stream",
        format!(
            "event: message → initialize result: protocolVersion {}, server {} {}",
            info.protocol_version, info.server_name, info.server_version
        ),
    );
    ctx.evidence.push(format!(
        "{}: legacy SSE endpoint event, and initialize over it returned a valid result (protocolVersion {}, serverInfo {} {})",
        url.path(),
        info.protocol_version,
        info.server_name,
        info.server_version
    ));
    // Legacy SSE sessions live as long as the stream: always stateful.
    let mut mcp = McpInfo::from_initialize(&info, true);
    let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let req = Request::new(reqwest::Method::POST, endpoint.clone()).json(&note);
    let _ = ctx
        .send(&format!("POST {post_path} notifications/initialized"), &req)
        .await;
    let id = ctx.next_id();
    let req = Request::new(reqwest::Method::POST, endpoint.clone()).json(&rpc(
        id,
        "tools/list",
        serde_json::json!({}),
    ));
    if ctx
        .send(&format!("POST {post_path} tools/list"), &req)
        .await
        .is_some()
    {
        if let Some(Reply::Tools(page)) = events.next_reply(Expect::Tools).await {
            ctx.log(
                "read the event stream",
                format!("event: message → {} tools", page.tools.len()),
            );
            mcp.tools = page.tools.iter().map(tool_of).collect();
        }
    }
    PathOutcome::Confirmed {
        url: url.clone(),
        transport: Transport::Sse,
        info: mcp,
    }
}
