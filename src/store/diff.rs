//! What changed between two scan records of one server, as the detail of an `updated`
//! change.
//!
//! Only fields that mean something are compared: tools (by name: added, removed, and those
//! whose description or input schema hash changed), `server_name`, `server_version`,
//! `protocol_versions` (as a set), `transport`, `auth` and `kind`. `seen_at`, `rtt_ms`,
//! `evidence` and `confidence` move on every run and are not news; nor are the HTTP facts,
//! health endpoints, capabilities and instructions, which follow from the fields above or
//! are too noisy to notify on. `server_name` is compared although the brief's list leaves it
//! out: the id is the URL, so a new name at the same URL is a different server deployed
//! there.
//!
//! The detail is an object with one key per changed field, each `{"before": …, "after": …}`,
//! except `tools`, which is `{"added": [tool…], "removed": [tool…], "changed": [{"name",
//! "before": {"description", "input_schema_hash"}, "after": {…}}]}`, each list sorted by name.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::finding::Record;
use crate::fingerprint::Tool;

/// The detail of an `updated` change from `before` to `after`, or `None` when nothing
/// meaningful changed.
pub fn diff(before: &Record, after: &Record) -> Option<Value> {
    let mut out = Map::new();
    let mut field = |name: &str, b: Value, a: Value| {
        if b != a {
            out.insert(name.into(), json!({ "before": b, "after": a }));
        }
    };
    field("kind", json!(before.kind), json!(after.kind));
    field("transport", json!(before.transport), json!(after.transport));
    field(
        "server_name",
        json!(before.server_name),
        json!(after.server_name),
    );
    field(
        "server_version",
        json!(before.server_version),
        json!(after.server_version),
    );
    let mut bv = before.protocol_versions.clone();
    let mut av = after.protocol_versions.clone();
    bv.sort();
    bv.dedup();
    av.sort();
    av.dedup();
    if bv != av {
        field(
            "protocol_versions",
            json!(before.protocol_versions),
            json!(after.protocol_versions),
        );
    }
    field("auth", json!(before.auth), json!(after.auth));
    if let Some(tools) = tools(&before.tools, &after.tools) {
        out.insert("tools".into(), tools);
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn by_name(tools: &[Tool]) -> BTreeMap<&str, &Tool> {
    let mut m = BTreeMap::new();
    for t in tools {
        // A duplicate name is a server bug; the first one is what clients would call.
        m.entry(t.name.as_str()).or_insert(t);
    }
    m
}

fn tools(before: &[Tool], after: &[Tool]) -> Option<Value> {
    let b = by_name(before);
    let a = by_name(after);
    let added: Vec<&Tool> = a
        .iter()
        .filter(|(n, _)| !b.contains_key(*n))
        .map(|(_, t)| *t)
        .collect();
    let removed: Vec<&Tool> = b
        .iter()
        .filter(|(n, _)| !a.contains_key(*n))
        .map(|(_, t)| *t)
        .collect();
    let facts = |t: &Tool| json!({ "description": t.description, "input_schema_hash": t.input_schema_hash });
    let changed: Vec<Value> = b
        .iter()
        .filter_map(|(n, bt)| {
            let at = a.get(n)?;
            (bt.description != at.description || bt.input_schema_hash != at.input_schema_hash)
                .then(|| json!({ "name": n, "before": facts(bt), "after": facts(at) }))
        })
        .collect();
    if added.is_empty() && removed.is_empty() && changed.is_empty() {
        return None;
    }
    Some(json!({ "added": added, "removed": removed, "changed": changed }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Origin, PortState};
    use crate::fingerprint::{AuthInfo, Transport, Verdict};

    fn tool(name: &str, desc: &str, hash: &str) -> Tool {
        Tool {
            name: name.into(),
            description: Some(desc.into()),
            input_schema_hash: Some(hash.into()),
        }
    }

    fn record() -> Record {
        Record {
            ip: "10.0.0.1".parse().unwrap(),
            port: 8000,
            state: PortState::Open,
            rtt_ms: Some(1.0),
            kind: Some(Verdict::Mcp),
            origins: vec![Origin::Sweep],
            announced_as: vec![],
            seen_at: "2026-01-01T00:00:00.000Z".into(),
            url: Some("http://10.0.0.1:8000/mcp".into()),
            transport: Some(Transport::StreamableHttp),
            protocol_version: Some("2025-06-18".into()),
            protocol_versions: vec!["2025-06-18".into()],
            server_name: Some("demo".into()),
            server_version: Some("1.0".into()),
            instructions: None,
            capabilities: None,
            tools: vec![tool("echo", "Echo", "aa"), tool("add", "Add", "bb")],
            resources: None,
            prompts: None,
            auth: None,
            http: None,
            health_endpoints: vec![],
            server_card: None,
            health: None,
            evidence: vec!["initialize result".into()],
            confidence: Some(1.0),
            node: None,
            k8s: None,
        }
    }

    #[test]
    fn noise_fields_are_not_news() {
        let a = record();
        let mut b = record();
        b.seen_at = "2026-01-02T00:00:00.000Z".into();
        b.rtt_ms = Some(9.0);
        b.evidence = vec!["other".into()];
        b.confidence = Some(0.5);
        b.tools.reverse();
        b.origins.push(Origin::Mdns);
        assert_eq!(diff(&a, &b), None);
    }

    #[test]
    fn tool_drift_lists_added_removed_and_changed_by_name() {
        let a = record();
        let mut b = record();
        b.tools = vec![
            tool("add", "Add two numbers", "bb"),
            tool("zap", "Zap", "cc"),
        ];
        assert_eq!(
            diff(&a, &b).unwrap(),
            json!({"tools": {
                "added": [{"name": "zap", "description": "Zap", "input_schema_hash": "cc"}],
                "removed": [{"name": "echo", "description": "Echo", "input_schema_hash": "aa"}],
                "changed": [{
                    "name": "add",
                    "before": {"description": "Add", "input_schema_hash": "bb"},
                    "after": {"description": "Add two numbers", "input_schema_hash": "bb"}
                }]
            }})
        );
    }

    #[test]
    fn scalar_fields_carry_before_and_after() {
        let a = record();
        let mut b = record();
        b.kind = Some(Verdict::McpAuthRequired);
        b.server_version = Some("1.1".into());
        b.transport = Some(Transport::Sse);
        b.protocol_versions = vec!["2025-06-18".into(), "2025-11-25".into()];
        b.auth = Some(AuthInfo {
            required: true,
            ..AuthInfo::default()
        });
        let d = diff(&a, &b).unwrap();
        assert_eq!(
            d["kind"],
            json!({"before": "mcp", "after": "mcp-auth-required"})
        );
        assert_eq!(
            d["server_version"],
            json!({"before": "1.0", "after": "1.1"})
        );
        assert_eq!(
            d["transport"],
            json!({"before": "streamable-http", "after": "sse"})
        );
        assert_eq!(d["protocol_versions"]["after"][1], "2025-11-25");
        assert_eq!(d["auth"]["before"], Value::Null);
        assert_eq!(d["auth"]["after"]["required"], true);
        assert!(d.get("tools").is_none());
    }

    #[test]
    fn protocol_versions_compare_as_a_set() {
        let mut a = record();
        a.protocol_versions = vec!["x".into(), "y".into()];
        let mut b = a.clone();
        b.protocol_versions = vec!["y".into(), "x".into(), "x".into()];
        assert_eq!(diff(&a, &b), None);
    }
}
