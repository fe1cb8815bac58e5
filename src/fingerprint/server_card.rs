//! Server Cards (MCP SEP-2127, draft, extensions track): what a confirmed server says about
//! itself before any handshake, read after the handshake to compare.
//!
//! Two documents are read, each with one bounded GET on the probed origin (the scope wall
//! holds: a URL a document hands us is recorded, never contacted when it is off the origin):
//!
//! - the card at the reserved location `<mcp-url>/server-card`
//!   (`application/mcp-server-card+json`): name (reverse DNS), version, title, description
//!   and `remotes` (transport, URL, `supportedProtocolVersions`);
//! - the origin's MCP Catalog, `/.well-known/mcp/catalog.json`: entries of type
//!   `application/mcp-server-card+json`, each naming a card URL. Entries of other types are
//!   ignored, as the draft says.
//!
//! The card is advisory: the handshake stays the truth. Where the two disagree (version,
//! the transport or protocol versions of the remote at the probed URL) the disagreement is
//! written to the evidence and the verdict does not move.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::http::Request;
use super::{trim_text, Ctx, McpInfo, Transport};

/// The card's media type, also the catalog entry `type` that names a card.
pub const CARD_MEDIA: &str = "application/mcp-server-card+json";
/// Where the origin's catalog lives.
pub const CATALOG_PATH: &str = "/.well-known/mcp/catalog.json";
/// Remotes kept from one card (a hostile card cannot grow the record).
const MAX_REMOTES: usize = 16;
/// Protocol versions kept per remote.
const MAX_VERSIONS: usize = 16;
/// Catalog entries kept.
const MAX_ENTRIES: usize = 32;

/// What a server's card and its origin's catalog say (advisory; the handshake wins).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCard {
    /// Where the card was read; null when only a catalog was found.
    pub url: Option<String>,
    /// `name`, reverse DNS (`com.example/weather`).
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `remotes`: where and how the card says to connect.
    pub remotes: Vec<CardRemote>,
    /// Card entries of the origin's MCP Catalog.
    pub catalog: Vec<CatalogEntry>,
}

/// One `remotes[]` item of a card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRemote {
    /// `type`: `streamable-http` or `sse` (kept as sent).
    pub transport: String,
    /// `url`, as sent (it may be a template).
    pub url: String,
    /// `supportedProtocolVersions`.
    pub supported_protocol_versions: Vec<String>,
}

/// One card entry of an MCP Catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// `identifier` (a URN).
    pub identifier: String,
    /// `displayName`.
    pub display_name: String,
    /// `url` of the card.
    pub url: String,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(trim_text)
        .filter(|s| !s.is_empty())
}

/// Parse a card document; `None` unless it is an object with a string `name`.
fn parse_card(doc: &Value) -> Option<ServerCard> {
    let name = text(doc, "name")?;
    let remotes = doc
        .get("remotes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .take(MAX_REMOTES)
                .filter_map(|r| {
                    Some(CardRemote {
                        transport: text(r, "type")?,
                        url: text(r, "url")?,
                        supported_protocol_versions: r
                            .get("supportedProtocolVersions")
                            .and_then(Value::as_array)
                            .map(|v| {
                                v.iter()
                                    .filter_map(Value::as_str)
                                    .take(MAX_VERSIONS)
                                    .map(trim_text)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(ServerCard {
        url: None,
        name: Some(name),
        version: text(doc, "version"),
        title: text(doc, "title"),
        description: text(doc, "description"),
        remotes,
        catalog: Vec::new(),
    })
}

/// Parse a catalog document's card entries.
fn parse_catalog(doc: &Value) -> Vec<CatalogEntry> {
    doc.get("entries")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|e| e.get("type").and_then(Value::as_str) == Some(CARD_MEDIA))
                .take(MAX_ENTRIES)
                .filter_map(|e| {
                    Some(CatalogEntry {
                        identifier: text(e, "identifier")?,
                        display_name: text(e, "displayName").unwrap_or_default(),
                        url: text(e, "url")?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `<mcp-url>/server-card`.
fn card_url(mcp: &Url) -> Url {
    let mut u = mcp.clone();
    u.set_path(&format!("{}/server-card", mcp.path().trim_end_matches('/')));
    u.set_query(None);
    u
}

fn same_url(a: &str, b: &Url) -> bool {
    Url::parse(a).is_ok_and(|a| {
        a.origin() == b.origin() && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
    })
}

/// Where the card contradicts what the handshake showed (the handshake wins).
fn disagreements(
    card: &ServerCard,
    mcp: &Url,
    info: &McpInfo,
    transport: Transport,
) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(c), Some(h)) = (&card.version, &info.server_version) {
        if c != h {
            out.push(format!(
                "server card says version {c}, the handshake says {h} (the handshake wins)"
            ));
        }
    }
    for r in card.remotes.iter().filter(|r| same_url(&r.url, mcp)) {
        if r.transport != transport.as_str() {
            out.push(format!(
                "server card says {} speaks {}, the handshake confirmed {} (the handshake wins)",
                mcp.path(),
                r.transport,
                transport.as_str()
            ));
        }
        if let Some(v) = &info.protocol_version {
            if !r.supported_protocol_versions.is_empty()
                && !r.supported_protocol_versions.contains(v)
            {
                out.push(format!(
                    "server card lists protocol versions {:?} for {}, the handshake negotiated {v} (the handshake wins)",
                    r.supported_protocol_versions,
                    mcp.path()
                ));
            }
        }
    }
    out
}

/// GET `url` as JSON (the body capped by the client's limits); `None` unless 200 and JSON.
async fn get_json(ctx: &mut Ctx<'_>, url: &Url, accept: &str, why: &str) -> Option<Value> {
    let req = Request::new(reqwest::Method::GET, url.clone()).header("accept", accept.to_string());
    let r = ctx
        .send(&format!("GET {} ({why})", url.path()), &req)
        .await?;
    if r.status != 200 || r.truncated {
        return None;
    }
    serde_json::from_slice(&r.body).ok()
}

/// Read the card and the catalog of a server confirmed at `mcp`.
pub(crate) async fn read(
    ctx: &mut Ctx<'_>,
    mcp: &Url,
    info: &McpInfo,
    transport: Transport,
) -> Option<ServerCard> {
    let at = card_url(mcp);
    let mut card = get_json(
        ctx,
        &at,
        &format!("{CARD_MEDIA}, application/json"),
        "Server Card?",
    )
    .await
    .as_ref()
    .and_then(parse_card)
    .map(|mut c| {
        c.url = Some(at.to_string());
        c
    });
    let catalog = get_json(
        ctx,
        &ctx.url(CATALOG_PATH),
        "application/json",
        "MCP Catalog?",
    )
    .await
    .map(|d| parse_catalog(&d))
    .unwrap_or_default();
    if let Some(c) = &card {
        ctx.evidence.push(format!(
            "server card at {}: {} {} (advisory)",
            at.path(),
            c.name.as_deref().unwrap_or(""),
            c.version.as_deref().unwrap_or("")
        ));
        let mut d = disagreements(c, mcp, info, transport);
        ctx.evidence.append(&mut d);
    }
    for e in &catalog {
        match Url::parse(&e.url).or_else(|_| mcp.join(&e.url)) {
            Ok(u) if ctx.same_origin(&u) => {}
            _ => ctx.evidence.push(format!(
                "catalog entry {} names a card off this origin ({}); not contacted",
                e.identifier, e.url
            )),
        }
    }
    if card.is_none() && catalog.is_empty() {
        return None;
    }
    let card = card.get_or_insert_with(ServerCard::default);
    card.catalog = catalog;
    Some(card.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cards_and_catalogs_parse_within_bounds() {
        let doc = json!({
            "name": "com.example/weather", "version": "1.0.0",
            "remotes": (0..40).map(|i| json!({"type": "streamable-http", "url": format!("https://h/{i}")})).collect::<Vec<_>>()
        });
        let c = parse_card(&doc).unwrap();
        assert_eq!(c.name.as_deref(), Some("com.example/weather"));
        assert_eq!(c.remotes.len(), MAX_REMOTES);
        assert_eq!(
            parse_card(&json!({"version": "1"})),
            None,
            "a card has a name"
        );
        let cat = json!({"specVersion": "draft", "entries": [
            {"identifier": "urn:air:a:b", "displayName": "B", "type": CARD_MEDIA, "url": "https://a/b/server-card"},
            {"identifier": "urn:air:a:c", "displayName": "C", "type": "application/a2a-agent-card+json", "url": "https://a/c"},
            {"displayName": "no identifier", "type": CARD_MEDIA, "url": "https://a/d"}
        ]});
        let e = parse_catalog(&cat);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].identifier, "urn:air:a:b");
    }

    #[test]
    fn disagreements_name_both_sides() {
        let mcp = Url::parse("http://10.0.0.1:8000/mcp").unwrap();
        let info = McpInfo {
            server_version: Some("1.30.0".into()),
            protocol_version: Some("2025-11-25".into()),
            ..McpInfo::default()
        };
        let card = ServerCard {
            version: Some("2.0.0".into()),
            remotes: vec![
                CardRemote {
                    transport: "sse".into(),
                    url: "http://10.0.0.1:8000/mcp/".into(),
                    supported_protocol_versions: vec!["2025-06-18".into()],
                },
                // Another endpoint: not compared.
                CardRemote {
                    transport: "sse".into(),
                    url: "http://10.0.0.1:8000/other".into(),
                    supported_protocol_versions: vec![],
                },
            ],
            ..ServerCard::default()
        };
        assert_eq!(
            disagreements(&card, &mcp, &info, Transport::StreamableHttp),
            [
                "server card says version 2.0.0, the handshake says 1.30.0 (the handshake wins)",
                "server card says /mcp speaks sse, the handshake confirmed streamable-http (the handshake wins)",
                "server card lists protocol versions [\"2025-06-18\"] for /mcp, the handshake negotiated 2025-11-25 (the handshake wins)",
            ]
        );
        assert_eq!(
            card_url(&Url::parse("http://h:1/mcp/").unwrap()).as_str(),
            "http://h:1/mcp/server-card"
        );
    }
}
