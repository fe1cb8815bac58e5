//! Classify one JSON-RPC reply body as MCP evidence.
//!
//! Owns the reading of MCP result shapes: the probes (Streamable HTTP, legacy SSE, the modern
//! era's `server/discover`) POST a request, extract the reply's JSON (a JSON body, or the
//! `data` of an SSE event from [`super::sse`]), and ask [`classify`] what it proves. Pure: no
//! I/O.
//!
//! The rule that matters most: only a complete handshake is MCP. An `initialize` result needs a
//! known `protocolVersion`, a `serverInfo` with name and version, and an object of
//! `capabilities`; a `server/discover` result needs `supportedVersions` naming a known version
//! and an object of `capabilities`. Anything less is [`Reply::OtherResult`], because Ethereum
//! and Bitcoin nodes speak JSON-RPC 2.0 too and must never be reported as MCP servers.
//!
//! Everything kept is bounded: bodies over [`MAX_BODY_BYTES`] are refused, texts are clipped to
//! [`MAX_TEXT_CHARS`], lists and embedded JSON have caps, and serde_json's recursion limit
//! (128 levels) turns deep nesting into [`Reply::Malformed`] instead of a stack overflow.
//!
//! Tool schemas are compared across scans by [`schema_hash`]: 64-bit FNV-1a over the schema's
//! canonical JSON (object keys sorted by bytes, no whitespace, strings and numbers as
//! serde_json writes them). SHA-256 is not a dependency, and a schema fingerprint needs
//! stability, not collision resistance against an adversary.
//!
//! The module is self-contained (it names nothing else in the crate) because `fuzz/` compiles
//! it on its own.

use std::io;

use serde_json::{Map, Value};

/// Protocol revisions this scanner knows, oldest first.
pub const KNOWN_PROTOCOL_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];
/// Largest body classified: MCP handshake and listing replies are a few KiB; anything bigger
/// is refused before parsing so a hostile peer cannot make the parser allocate much.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest free text kept (descriptions, instructions, error messages), in characters.
pub const MAX_TEXT_CHARS: usize = 500;
/// Longest short string kept (names, versions, string ids), in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most tools kept from one `tools/list` page; the rest are counted in
/// [`ToolsPage::omitted`].
pub const MAX_TOOLS_PER_PAGE: usize = 1024;
/// Most entries kept from a version list (`supportedVersions`, `data.supported`).
pub const MAX_VERSIONS: usize = 64;
/// Largest JSON kept verbatim for an error's `data` or a server's `capabilities`.
pub const MAX_EMBEDDED_JSON_BYTES: usize = 16 * 1024;
/// Most capability names kept when `capabilities` is too large to keep verbatim.
pub const MAX_CAPABILITY_NAMES: usize = 64;
/// Longest [`Reply::Malformed`] reason, in characters.
pub const MAX_REASON_CHARS: usize = 120;
/// Where the modern era puts `serverInfo` in a `server/discover` result.
const SERVER_INFO_META_KEY: &str = "io.modelcontextprotocol/serverInfo";
/// Modern era: the `Mcp-Method` header does not match the body.
pub const ERROR_HEADER_MISMATCH: i64 = -32020;
/// Modern era: unsupported protocol version (with `data.supported`).
pub const ERROR_UNSUPPORTED_VERSION: i64 = -32022;
/// FNV-1a 64-bit offset basis.
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Which request the body answers: decides which result shape counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `initialize`.
    Initialize,
    /// `server/discover` (2026-07-28).
    Discover,
    /// `tools/list`.
    Tools,
    /// `resources/list`.
    Resources,
    /// `prompts/list`.
    Prompts,
    /// `tools/call` (health checks only): any result object is the answer.
    Call,
}

/// What one reply body is.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `initialize` result: protocolVersion (string), serverInfo {name, version}, capabilities
    /// (object), instructions (optional).
    Initialize(InitializeInfo),
    /// `server/discover` result (2026-07-28): supportedVersions, capabilities, instructions,
    /// ttlMs, `_meta["io.modelcontextprotocol/serverInfo"]`.
    Discover(DiscoverInfo),
    /// `tools/list` result: tools [{name, description, inputSchema}] (+ nextCursor).
    Tools(ToolsPage),
    /// `resources/list` / `prompts/list`: counts (+ nextCursor).
    Listing {
        /// Which listing.
        kind: ListingKind,
        /// Entries on this page.
        count: usize,
        /// Cursor of the next page.
        next_cursor: Option<String>,
    },
    /// A `tools/call` result, as sent (bounded by the body cap).
    CallResult(Value),
    /// JSON-RPC error object: code, message, data (size-capped), id.
    Error(RpcError),
    /// Some other JSON-RPC 2.0 result (valid envelope, unknown shape): NOT MCP evidence by
    /// itself.
    OtherResult,
    /// JSON, but not a JSON-RPC 2.0 response (this includes requests and notifications a
    /// server sends on a stream before its reply).
    NotJsonRpc,
    /// Not parseable JSON (malformed, too deep, too large, invalid UTF-8); with a short reason.
    Malformed(String),
}

/// A valid `initialize` result.
#[derive(Debug, Clone, PartialEq)]
pub struct InitializeInfo {
    /// The version the server chose (its own when it does not speak the one asked for: a
    /// version fingerprint).
    pub protocol_version: String,
    /// Whether `protocol_version` is in [`KNOWN_PROTOCOL_VERSIONS`]. [`classify`] only returns
    /// `Initialize` for known versions, so this is always true from it; the field keeps that
    /// rule visible where the info is used.
    pub known_version: bool,
    /// `serverInfo.name`, clipped to [`MAX_NAME_CHARS`].
    pub server_name: String,
    /// `serverInfo.version`, clipped to [`MAX_NAME_CHARS`].
    pub server_version: String,
    /// `capabilities`: always an object; as sent unless its JSON exceeds
    /// [`MAX_EMBEDDED_JSON_BYTES`], then reduced to its first [`MAX_CAPABILITY_NAMES`] names,
    /// each mapped to `{}`.
    pub capabilities: Value,
    /// `instructions`, clipped to [`MAX_TEXT_CHARS`].
    pub instructions: Option<String>,
}

/// A valid `server/discover` result.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoverInfo {
    /// `supportedVersions` (string entries, at most [`MAX_VERSIONS`]); at least one is known.
    pub supported_versions: Vec<String>,
    /// `capabilities`, bounded as in [`InitializeInfo::capabilities`].
    pub capabilities: Value,
    /// `instructions`, clipped to [`MAX_TEXT_CHARS`].
    pub instructions: Option<String>,
    /// `ttlMs`: how long the answer may be cached.
    pub ttl_ms: Option<u64>,
    /// `_meta["io.modelcontextprotocol/serverInfo"].name`.
    pub server_name: Option<String>,
    /// `_meta["io.modelcontextprotocol/serverInfo"].version`.
    pub server_version: Option<String>,
}

/// One tool from `tools/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolInfo {
    /// `name`, clipped to [`MAX_NAME_CHARS`].
    pub name: String,
    /// `description`, clipped to [`MAX_TEXT_CHARS`].
    pub description: Option<String>,
    /// [`schema_hash`] of `inputSchema`, when present.
    pub input_schema_hash: Option<u64>,
}

/// One page of `tools/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolsPage {
    /// The tools, in order, at most [`MAX_TOOLS_PER_PAGE`].
    pub tools: Vec<ToolInfo>,
    /// Entries left out: over the cap, or without a string `name`.
    pub omitted: usize,
    /// `nextCursor`: send it back for the next page.
    pub next_cursor: Option<String>,
}

/// Which `*/list` a [`Reply::Listing`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingKind {
    /// `resources/list`.
    Resources,
    /// `prompts/list`.
    Prompts,
}

/// A JSON-RPC error reply.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// `error.code`.
    pub code: i64,
    /// `error.message` (empty when absent), clipped to [`MAX_TEXT_CHARS`].
    pub message: String,
    /// `error.data`, when its JSON fits in [`MAX_EMBEDDED_JSON_BYTES`].
    pub data: Option<Value>,
    /// Whether `error.data` was present but dropped for its size.
    pub data_truncated: bool,
    /// `error.data.supported` (the modern era's supported versions), read before any size
    /// cap: string entries, or the single string.
    pub supported: Option<Vec<String>>,
    /// The reply's `id`: SDKs answer transport errors with their own (`"server-error"` from
    /// Python, `null` with -32000 from TypeScript). Strings are clipped to [`MAX_NAME_CHARS`].
    pub id: Value,
}

impl RpcError {
    /// Whether the refusal says "speak the modern era": codes -32020 or -32022, or a
    /// `data.supported` list. MCP-WIRE.md: re-probe with `server/discover` then.
    pub fn is_modern_era_hint(&self) -> bool {
        matches!(self.code, ERROR_HEADER_MISMATCH | ERROR_UNSUPPORTED_VERSION)
            || self.supported.is_some()
    }
}

/// Whether `version` is one of [`KNOWN_PROTOCOL_VERSIONS`].
pub fn is_known_protocol_version(version: &str) -> bool {
    KNOWN_PROTOCOL_VERSIONS.contains(&version)
}

/// Classify the body of ONE JSON-RPC message, read as the reply to `expect`.
pub fn classify(body: &[u8], expect: Expect) -> Reply {
    if body.len() > MAX_BODY_BYTES {
        return Reply::Malformed(format!("body exceeds {MAX_BODY_BYTES} bytes"));
    }
    let msg = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(msg)) => msg,
        Ok(_) => return Reply::NotJsonRpc,
        Err(e) => return Reply::Malformed(clip(&format!("invalid json: {e}"), MAX_REASON_CHARS)),
    };
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Reply::NotJsonRpc;
    }
    // JSON-RPC 2.0: a response has an id (string, number, or null on errors) and exactly one of
    // `result` and `error`.
    let Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) = msg.get("id") else {
        return Reply::NotJsonRpc;
    };
    match (msg.get("result"), msg.get("error")) {
        (Some(_), None) if id.is_null() => Reply::NotJsonRpc,
        (Some(result), None) => classify_result(result, expect),
        (None, Some(error)) => rpc_error(error, id).map_or(Reply::NotJsonRpc, Reply::Error),
        _ => Reply::NotJsonRpc,
    }
}

/// Stable 64-bit hash of a JSON value: FNV-1a over its canonical serialization (object keys
/// sorted by bytes, no whitespace, strings and numbers as serde_json writes them). Key order
/// and formatting in the original text do not change it.
pub fn schema_hash(schema: &Value) -> u64 {
    let mut hasher = Fnv1a(FNV_OFFSET_BASIS);
    write_canonical(schema, &mut hasher);
    hasher.0
}

fn classify_result(result: &Value, expect: Expect) -> Reply {
    let reply = match expect {
        Expect::Initialize => initialize(result).map(Reply::Initialize),
        Expect::Discover => discover(result).map(Reply::Discover),
        Expect::Tools => tools(result).map(Reply::Tools),
        Expect::Resources => listing(result, ListingKind::Resources),
        Expect::Prompts => listing(result, ListingKind::Prompts),
        Expect::Call => result
            .is_object()
            .then(|| Reply::CallResult(result.clone())),
    };
    reply.unwrap_or(Reply::OtherResult)
}

fn initialize(result: &Value) -> Option<InitializeInfo> {
    let protocol_version = result.get("protocolVersion")?.as_str()?;
    if !is_known_protocol_version(protocol_version) {
        return None;
    }
    let server_info = result.get("serverInfo")?;
    Some(InitializeInfo {
        protocol_version: protocol_version.to_owned(),
        known_version: true,
        server_name: clip(server_info.get("name")?.as_str()?, MAX_NAME_CHARS),
        server_version: clip(server_info.get("version")?.as_str()?, MAX_NAME_CHARS),
        capabilities: capabilities(result.get("capabilities")?.as_object()?),
        instructions: text(result, "instructions"),
    })
}

fn discover(result: &Value) -> Option<DiscoverInfo> {
    let supported_versions = versions(result.get("supportedVersions")?.as_array()?);
    if !supported_versions
        .iter()
        .any(|v| is_known_protocol_version(v))
    {
        return None;
    }
    let server_info = result
        .get("_meta")
        .and_then(|meta| meta.get(SERVER_INFO_META_KEY));
    let info_field = |key: &str| {
        server_info
            .and_then(|info| info.get(key))
            .and_then(Value::as_str)
            .map(|s| clip(s, MAX_NAME_CHARS))
    };
    Some(DiscoverInfo {
        capabilities: capabilities(result.get("capabilities")?.as_object()?),
        instructions: text(result, "instructions"),
        ttl_ms: result.get("ttlMs").and_then(Value::as_u64),
        server_name: info_field("name"),
        server_version: info_field("version"),
        supported_versions,
    })
}

fn tools(result: &Value) -> Option<ToolsPage> {
    let entries = result.get("tools")?.as_array()?;
    let tools: Vec<ToolInfo> = entries
        .iter()
        .filter_map(tool)
        .take(MAX_TOOLS_PER_PAGE)
        .collect();
    Some(ToolsPage {
        omitted: entries.len() - tools.len(),
        tools,
        next_cursor: next_cursor(result),
    })
}

fn tool(entry: &Value) -> Option<ToolInfo> {
    Some(ToolInfo {
        name: clip(entry.get("name")?.as_str()?, MAX_NAME_CHARS),
        description: text(entry, "description"),
        input_schema_hash: entry.get("inputSchema").map(schema_hash),
    })
}

fn listing(result: &Value, kind: ListingKind) -> Option<Reply> {
    let key = match kind {
        ListingKind::Resources => "resources",
        ListingKind::Prompts => "prompts",
    };
    Some(Reply::Listing {
        kind,
        count: result.get(key)?.as_array()?.len(),
        next_cursor: next_cursor(result),
    })
}

fn rpc_error(error: &Value, id: &Value) -> Option<RpcError> {
    let code = error.get("code")?.as_i64()?;
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(String::new, |m| clip(m, MAX_TEXT_CHARS));
    let raw_data = error.get("data");
    let supported = raw_data.and_then(|d| d.get("supported")).map(|s| match s {
        Value::Array(items) => versions(items),
        Value::String(one) => vec![clip(one, MAX_NAME_CHARS)],
        _ => Vec::new(),
    });
    let data = raw_data
        .filter(|d| fits(d, MAX_EMBEDDED_JSON_BYTES))
        .cloned();
    let id = match id {
        Value::String(s) => Value::String(clip(s, MAX_NAME_CHARS)),
        other => other.clone(),
    };
    Some(RpcError {
        code,
        message,
        data_truncated: raw_data.is_some() && data.is_none(),
        data,
        supported,
        id,
    })
}

/// `capabilities` verbatim when small, else just its names (still an object, so "is it
/// advertised?" keeps working).
fn capabilities(caps: &Map<String, Value>) -> Value {
    let caps_value = Value::Object(caps.clone());
    if fits(&caps_value, MAX_EMBEDDED_JSON_BYTES) {
        return caps_value;
    }
    let names = caps
        .keys()
        .take(MAX_CAPABILITY_NAMES)
        .map(|k| (clip(k, MAX_NAME_CHARS), Value::Object(Map::new())));
    Value::Object(names.collect())
}

fn versions(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(Value::as_str)
        .take(MAX_VERSIONS)
        .map(|v| clip(v, MAX_NAME_CHARS))
        .collect()
}

fn text(obj: &Value, key: &str) -> Option<String> {
    obj.get(key)?.as_str().map(|s| clip(s, MAX_TEXT_CHARS))
}

fn next_cursor(result: &Value) -> Option<String> {
    // Opaque and sent back verbatim, so never clipped; the body cap bounds it.
    result.get("nextCursor")?.as_str().map(str::to_owned)
}

/// The first `max_chars` characters of `s` (never splits a character).
fn clip(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

/// Whether `value`'s JSON is at most `limit` bytes, without building it.
fn fits(value: &Value, limit: usize) -> bool {
    let mut counter = ByteCounter { left: limit };
    // The counter refuses writes past the limit, which surfaces as an error here.
    serde_json::to_writer(&mut counter, value).is_ok()
}

/// An `io::Write` that only counts, and fails once past its budget.
struct ByteCounter {
    left: usize,
}

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.left = self
            .left
            .checked_sub(buf.len())
            .ok_or_else(|| io::Error::other("over the size limit"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// FNV-1a, 64-bit (Fowler, Noll, Vo): fold each byte in with XOR, then multiply.
struct Fnv1a(u64);

impl Fnv1a {
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
}

impl io::Write for Fnv1a {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Feed `value`'s canonical JSON to the hasher. Keys are sorted here rather than trusting the
/// map's order: serde_json keeps insertion order when any crate in the build enables its
/// `preserve_order` feature.
fn write_canonical(value: &Value, hasher: &mut Fnv1a) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            hasher.update(b"{");
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                write_scalar(&Value::String(key.clone()), hasher);
                hasher.update(b":");
                write_canonical(item, hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                write_canonical(item, hasher);
            }
            hasher.update(b"]");
        }
        scalar => write_scalar(scalar, hasher),
    }
}

fn write_scalar(value: &Value, hasher: &mut Fnv1a) {
    // Cannot fail: the hasher never refuses a write, and a scalar always serializes.
    let _ = serde_json::to_writer(hasher, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    // Bodies captured from real servers (tests/fixtures/wire: mcp 1.30 FastMCP = py1, mcp 2.3
    // MCPServer = py2, TypeScript SDK 1.32.2 = ts), SSE framing removed.
    const PY1_INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"experimental":{},"prompts":{"listChanged":false},"resources":{"subscribe":false,"listChanged":false},"tools":{"listChanged":false}},"serverInfo":{"name":"weather-demo","version":"1.30.0"},"instructions":"Weather demo server for mcp-scout tests: forecasts and arithmetic."}}"#;
    const PY2_INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"prompts":{"listChanged":false},"resources":{"listChanged":false,"subscribe":false},"tools":{"listChanged":false}},"instructions":"Weather demo server (SDK 2.x) for mcp-scout tests: forecasts and arithmetic.","protocolVersion":"2025-11-25","serverInfo":{"name":"weather-demo-v2","version":""}}}"#;
    const TS_INITIALIZE: &str = r#"{"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"weather-demo-ts","version":"1.0.0"},"instructions":"Weather demo server (TypeScript SDK) for mcp-scout tests."},"jsonrpc":"2.0","id":1}"#;
    const PY1_MISSING_SESSION: &str = r#"{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,"message":"Bad Request: Missing session ID"}}"#;
    const PY2_UNKNOWN_SESSION: &str =
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Session not found"}}"#;
    const TS_NOT_ACCEPTABLE: &str = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Not Acceptable: Client must accept both application/json and text/event-stream"},"id":null}"#;
    const PY2_DISCOVER: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"private","capabilities":{"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"tools":{"listChanged":true}},"instructions":"Weather demo server (SDK 2.x) for mcp-scout tests: forecasts and arithmetic.","resultType":"complete","supportedVersions":["2026-07-28"],"ttlMs":0,"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"weather-demo-v2","version":""}}}}"#;
    const PY2_UNSUPPORTED_VERSION: &str = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"],"requested":"2099-01-01"}}}"#;
    const PY2_METHOD_MISMATCH: &str = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"mcp-method header does not match the request body's method"}}"#;
    const PY2_INITIALIZE_IN_MODERN_ENVELOPE: &str = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found","data":"initialize"}}"#;
    const PY1_TOOLS: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get_forecast","description":"Get the weather forecast for a city.","inputSchema":{"properties":{"city":{"title":"City","type":"string"}},"required":["city"],"title":"get_forecastArguments","type":"object"},"outputSchema":{"properties":{"result":{"title":"Result","type":"string"}},"required":["result"],"title":"get_forecastOutput","type":"object"}},{"name":"add","description":"Add two integers.","inputSchema":{"properties":{"a":{"title":"A","type":"integer"},"b":{"title":"B","type":"integer"}},"required":["a","b"],"title":"addArguments","type":"object"},"outputSchema":{"properties":{"result":{"title":"Result","type":"integer"}},"required":["result"],"title":"addOutput","type":"object"}}]}}"#;
    const PY2_TOOLS: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"description":"Get the weather forecast for a city.","inputSchema":{"properties":{"city":{"title":"City","type":"string"}},"required":["city"],"type":"object","title":"get_forecastArguments"},"name":"get_forecast","outputSchema":{"properties":{"result":{"title":"Result","type":"string"}},"required":["result"],"type":"object","title":"get_forecastOutput"}},{"description":"Add two integers.","inputSchema":{"properties":{"a":{"title":"A","type":"integer"},"b":{"title":"B","type":"integer"}},"required":["a","b"],"type":"object","title":"addArguments"},"name":"add","outputSchema":{"properties":{"result":{"title":"Result","type":"integer"}},"required":["result"],"type":"object","title":"addOutput"}}]}}"#;
    // Synthetic: a cursor, a tool without schema and an entry without a name.
    const TOOLS: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get_forecast","description":"Get weather forecast for a location.","inputSchema":{"type":"object","properties":{"latitude":{"type":"number"},"longitude":{"type":"number"}},"required":["latitude","longitude"]}},{"name":"ping"},{"description":"no name"}],"nextCursor":"abc"}}"#;
    const ETH_CHAIN_ID: &str = r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#;
    const ETH_NO_METHOD: &str = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"the method initialize does not exist/is not available"}}"#;
    const BITCOIN_1_0: &str =
        r#"{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":1}"#;

    fn init(body: &str) -> InitializeInfo {
        match classify(body.as_bytes(), Expect::Initialize) {
            Reply::Initialize(info) => info,
            other => panic!("not an initialize result: {other:?}"),
        }
    }

    fn error(body: &str) -> RpcError {
        match classify(body.as_bytes(), Expect::Initialize) {
            Reply::Error(e) => e,
            other => panic!("not an error: {other:?}"),
        }
    }

    /// The Initialize fixture with `result` changed by `edit`.
    fn edited_init(edit: impl FnOnce(&mut Map<String, Value>)) -> Reply {
        let mut body: Value = serde_json::from_str(PY1_INITIALIZE).unwrap();
        edit(body["result"].as_object_mut().unwrap());
        classify(body.to_string().as_bytes(), Expect::Initialize)
    }

    #[test]
    fn python_1x_initialize_is_a_handshake() {
        let info = init(PY1_INITIALIZE);
        assert_eq!(info.protocol_version, "2025-11-25");
        assert!(info.known_version);
        assert_eq!(
            (info.server_name.as_str(), info.server_version.as_str()),
            ("weather-demo", "1.30.0")
        );
        assert_eq!(info.capabilities["tools"], json!({"listChanged": false}));
        assert!(info
            .instructions
            .unwrap()
            .starts_with("Weather demo server"));
    }

    #[test]
    fn python_2x_initialize_with_empty_server_version_is_a_handshake() {
        let info = init(PY2_INITIALIZE);
        assert_eq!(
            (info.server_name.as_str(), info.server_version.as_str()),
            ("weather-demo-v2", "")
        );
    }

    #[test]
    fn typescript_initialize_with_result_before_jsonrpc_is_a_handshake() {
        let info = init(TS_INITIALIZE);
        assert_eq!(info.server_name, "weather-demo-ts");
        assert_eq!(info.capabilities, json!({"tools": {"listChanged": true}}));
    }

    #[test]
    fn incomplete_handshakes_are_other_results() {
        // (what is wrong, the result field, its new value or `None` to remove it)
        let cases = [
            (
                "unknown version",
                "protocolVersion",
                Some(json!("2099-01-01")),
            ),
            ("numeric version", "protocolVersion", Some(json!(20250618))),
            ("no serverInfo", "serverInfo", None),
            (
                "serverInfo without version",
                "serverInfo",
                Some(json!({"name": "x"})),
            ),
            (
                "capabilities not an object",
                "capabilities",
                Some(json!([])),
            ),
            ("no capabilities", "capabilities", None),
        ];
        for (what, field, value) in cases {
            let reply = edited_init(|r| match value {
                Some(v) => drop(r.insert(field.into(), v)),
                None => drop(r.remove(field)),
            });
            assert_eq!(reply, Reply::OtherResult, "{what}");
        }
    }

    #[test]
    fn json_rpc_nodes_are_never_mcp() {
        assert_eq!(
            classify(ETH_CHAIN_ID.as_bytes(), Expect::Initialize),
            Reply::OtherResult
        );
        let e = error(ETH_NO_METHOD);
        assert_eq!(e.code, -32601);
        assert!(!e.is_modern_era_hint());
        // Bitcoin Core's JSON-RPC 1.0 replies lack `"jsonrpc":"2.0"`.
        assert_eq!(
            classify(BITCOIN_1_0.as_bytes(), Expect::Initialize),
            Reply::NotJsonRpc
        );
        // A handshake shape answering the wrong request proves nothing either.
        assert_eq!(
            classify(PY1_INITIALIZE.as_bytes(), Expect::Tools),
            Reply::OtherResult
        );
    }

    #[test]
    fn sdk_transport_errors_keep_their_ids() {
        let py1 = error(PY1_MISSING_SESSION);
        assert_eq!((py1.code, py1.id.clone()), (-32600, json!("server-error")));
        assert_eq!(py1.message, "Bad Request: Missing session ID");
        let py2 = error(PY2_UNKNOWN_SESSION);
        assert_eq!((py2.code, py2.id.clone()), (-32600, Value::Null));
        let ts = error(TS_NOT_ACCEPTABLE);
        assert_eq!((ts.code, ts.id.clone()), (-32000, Value::Null));
        assert!(ts
            .message
            .starts_with("Not Acceptable: Client must accept both"));
        assert!([py1, py2, ts].iter().all(|e| !e.is_modern_era_hint()));
    }

    #[test]
    fn modern_era_refusals_are_hints() {
        let e = error(PY2_UNSUPPORTED_VERSION);
        assert!(e.is_modern_era_hint());
        assert_eq!(e.supported, Some(vec!["2026-07-28".to_owned()]));
        assert_eq!(e.data.unwrap()["requested"], "2099-01-01");
        assert!(error(PY2_METHOD_MISMATCH).is_modern_era_hint());
        let by_data = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x","data":{"supported":"2026-07-28"}}}"#;
        assert_eq!(
            error(by_data).supported,
            Some(vec!["2026-07-28".to_owned()])
        );
        // What py2 answers `initialize` in the 2026 envelope: a plain -32601, no hint by itself.
        let refused = error(PY2_INITIALIZE_IN_MODERN_ENVELOPE);
        assert_eq!(
            (refused.code, refused.data),
            (-32601, Some(json!("initialize")))
        );
        assert_eq!(refused.supported, None);
    }

    #[test]
    fn large_error_data_is_dropped_but_supported_survives() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32022, "message": "m",
            "data": {"supported": ["2026-07-28"], "pad": "x".repeat(MAX_EMBEDDED_JSON_BYTES)}}});
        let e = error(&body.to_string());
        assert_eq!((e.data, e.data_truncated), (None, true));
        assert_eq!(e.supported, Some(vec!["2026-07-28".to_owned()]));
    }

    #[test]
    fn python_2x_server_discover_result() {
        let Reply::Discover(d) = classify(PY2_DISCOVER.as_bytes(), Expect::Discover) else {
            panic!("not a discover result");
        };
        assert_eq!(d.supported_versions, ["2026-07-28"]);
        assert_eq!(d.ttl_ms, Some(0));
        assert!(d
            .instructions
            .unwrap()
            .starts_with("Weather demo server (SDK 2.x)"));
        assert_eq!(
            (d.server_name.as_deref(), d.server_version.as_deref()),
            (Some("weather-demo-v2"), Some(""))
        );
        assert_eq!(d.capabilities["resources"]["subscribe"], json!(true));
        let unknown_only =
            r#"{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["1.0"],"capabilities":{}}}"#;
        assert_eq!(
            classify(unknown_only.as_bytes(), Expect::Discover),
            Reply::OtherResult
        );
        // The discover shape answering `initialize` is not a handshake.
        assert_eq!(
            classify(PY2_DISCOVER.as_bytes(), Expect::Initialize),
            Reply::OtherResult
        );
    }

    #[test]
    fn python_1x_and_2x_tool_schemas_hash_alike_despite_key_order() {
        let page = |body: &str| match classify(body.as_bytes(), Expect::Tools) {
            Reply::Tools(page) => page,
            other => panic!("not tools: {other:?}"),
        };
        let (py1, py2) = (page(PY1_TOOLS), page(PY2_TOOLS));
        assert_eq!(py1.tools.len(), 2);
        assert_eq!(py1, py2);
        assert_eq!(
            py1.tools[1].description.as_deref(),
            Some("Add two integers.")
        );
    }

    #[test]
    fn tools_page_with_hashes_and_cursor() {
        let Reply::Tools(page) = classify(TOOLS.as_bytes(), Expect::Tools) else {
            panic!("not a tools page");
        };
        assert_eq!(page.tools.len(), 2);
        assert_eq!(page.omitted, 1);
        assert_eq!(page.next_cursor.as_deref(), Some("abc"));
        assert_eq!(page.tools[0].name, "get_forecast");
        assert!(page.tools[0].input_schema_hash.is_some());
        assert_eq!(page.tools[1].input_schema_hash, None);
        // The same schema written differently hashes the same.
        let reordered = json!({"required": ["latitude", "longitude"], "type": "object",
            "properties": {"longitude": {"type": "number"}, "latitude": {"type": "number"}}});
        assert_eq!(
            page.tools[0].input_schema_hash,
            Some(schema_hash(&reordered))
        );
    }

    #[test]
    fn listings_count_entries() {
        let body = r#"{"jsonrpc":"2.0","id":3,"result":{"resources":[{"uri":"a"},{"uri":"b"}]}}"#;
        assert_eq!(
            classify(body.as_bytes(), Expect::Resources),
            Reply::Listing {
                kind: ListingKind::Resources,
                count: 2,
                next_cursor: None
            }
        );
        let body = r#"{"jsonrpc":"2.0","id":4,"result":{"prompts":[],"nextCursor":"n"}}"#;
        assert_eq!(
            classify(body.as_bytes(), Expect::Prompts),
            Reply::Listing {
                kind: ListingKind::Prompts,
                count: 0,
                next_cursor: Some("n".into())
            }
        );
        assert_eq!(
            classify(body.as_bytes(), Expect::Resources),
            Reply::OtherResult
        );
    }

    #[test]
    fn envelope_rules() {
        let cases = [
            (r#"[1,2]"#, Reply::NotJsonRpc),
            (r#"{"jsonrpc":"1.0","id":1,"result":{}}"#, Reply::NotJsonRpc),
            (r#"{"jsonrpc":"2.0","result":{}}"#, Reply::NotJsonRpc),
            (
                r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
                Reply::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","id":[1],"result":{}}"#,
                Reply::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1}}"#,
                Reply::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":"x","message":"m"}}"#,
                Reply::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#,
                Reply::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
                Reply::OtherResult,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                classify(body.as_bytes(), Expect::Initialize),
                want,
                "{body}"
            );
        }
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &b""[..],
            b"{",
            b"{\"a\":\"\xff\"}",
            b"{} trailing",
            b"nul\0",
        ] {
            assert!(
                matches!(classify(body, Expect::Initialize), Reply::Malformed(_)),
                "{body:?}"
            );
        }
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            classify(&big, Expect::Initialize),
            Reply::Malformed(format!("body exceeds {MAX_BODY_BYTES} bytes"))
        );
    }

    #[test]
    fn deep_nesting_is_malformed_quickly_without_overflowing_the_stack() {
        let started = std::time::Instant::now();
        let deep = vec![b'['; 100_000];
        let Reply::Malformed(reason) = classify(&deep, Expect::Initialize) else {
            panic!("deep nesting accepted");
        };
        assert!(reason.contains("recursion limit"), "{reason}");
        assert!(reason.chars().count() <= MAX_REASON_CHARS);
        let deep_object = "{\"a\":".repeat(100_000);
        assert!(matches!(
            classify(deep_object.as_bytes(), Expect::Tools),
            Reply::Malformed(_)
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn long_texts_are_clipped_on_char_boundaries() {
        let reply = edited_init(|r| {
            drop(r.insert("instructions".into(), json!("é".repeat(MAX_TEXT_CHARS + 7))))
        });
        let Reply::Initialize(info) = reply else {
            panic!("not initialize")
        };
        assert_eq!(info.instructions.unwrap().chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn huge_capabilities_are_reduced_to_names() {
        let reply = edited_init(|r| {
            drop(r.insert(
                "capabilities".into(),
                json!({"tools": {"pad": "x".repeat(MAX_EMBEDDED_JSON_BYTES)}}),
            ))
        });
        let Reply::Initialize(info) = reply else {
            panic!("not initialize")
        };
        assert_eq!(info.capabilities, json!({"tools": {}}));
    }

    #[test]
    fn tools_over_the_cap_are_counted_not_kept() {
        let tools: Vec<Value> = (0..MAX_TOOLS_PER_PAGE + 3)
            .map(|i| json!({"name": format!("t{i}")}))
            .collect();
        let body = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}});
        let Reply::Tools(page) = classify(body.to_string().as_bytes(), Expect::Tools) else {
            panic!("not tools");
        };
        assert_eq!((page.tools.len(), page.omitted), (MAX_TOOLS_PER_PAGE, 3));
    }

    #[test]
    fn schema_hash_is_documented_fnv1a_over_canonical_json() {
        fn fnv1a(bytes: &[u8]) -> u64 {
            let mut h = Fnv1a(FNV_OFFSET_BASIS);
            h.update(bytes);
            h.0
        }
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let schema: Value =
            serde_json::from_str(r#"{ "b" : [1, true, null, "x\"y"], "a" : {"d":1.5,"c":{}} }"#)
                .unwrap();
        assert_eq!(
            schema_hash(&schema),
            fnv1a(br#"{"a":{"c":{},"d":1.5},"b":[1,true,null,"x\"y"]}"#)
        );
        assert_eq!(
            schema_hash(&schema),
            0x8b1b_e2b7_604f_3a70,
            "the hash must stay stable across releases"
        );
    }

    #[test]
    fn known_versions_are_sorted_dates() {
        assert!(KNOWN_PROTOCOL_VERSIONS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            is_known_protocol_version("2025-03-26") && !is_known_protocol_version("2025-03-27")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            for expect in [Expect::Initialize, Expect::Discover, Expect::Tools, Expect::Resources, Expect::Prompts] {
                let _ = classify(&body, expect);
            }
        }

        #[test]
        fn arbitrary_results_never_panic(result in json_value()) {
            let body = json!({"jsonrpc": "2.0", "id": 1, "result": result}).to_string();
            for expect in [Expect::Initialize, Expect::Discover, Expect::Tools, Expect::Resources, Expect::Prompts] {
                let reply = classify(body.as_bytes(), expect);
                prop_assert!(!matches!(reply, Reply::Malformed(_) | Reply::NotJsonRpc | Reply::Error(_)));
            }
        }

        #[test]
        fn schema_hash_ignores_key_order(entries in proptest::collection::btree_map("[a-z]{0,4}", json_value(), 0..6)) {
            let forward: Vec<String> = entries.iter().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
            let backward: Vec<String> = forward.iter().rev().cloned().collect();
            let a: Value = serde_json::from_str(&format!("{{{}}}", forward.join(","))).unwrap();
            let b: Value = serde_json::from_str(&format!("{{ {} }}", backward.join(" , "))).unwrap();
            prop_assert_eq!(schema_hash(&a), schema_hash(&b));
        }

        #[test]
        fn clip_keeps_a_prefix_of_at_most_max_chars(s in "\\PC{0,40}", max in 0usize..50) {
            let c = clip(&s, max);
            prop_assert!(s.starts_with(&c));
            prop_assert_eq!(c.chars().count(), s.chars().count().min(max));
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
            prop_oneof![
                Just("2025-06-18"),
                Just("2026-07-28"),
                Just("name"),
                Just("version")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let keys = prop_oneof![
                Just("protocolVersion".to_owned()),
                Just("serverInfo".to_owned()),
                Just("capabilities".to_owned()),
                Just("supportedVersions".to_owned()),
                Just("tools".to_owned()),
                Just("name".to_owned()),
                Just("version".to_owned()),
                Just("inputSchema".to_owned()),
                "[a-z]{0,4}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
