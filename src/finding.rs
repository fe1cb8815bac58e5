//! The records mcp-scout reports: one per probed address×port worth showing.
//!
//! It sits above both engines: a [`Record`] is built from the sweep's [`ProbeResult`]
//! (vocabulary in [`crate::vocab`], which imports nothing of ours) and a fingerprint.
//!
//! [`Record`] is the stable output schema shared by every writer (table, JSON, NDJSON, CSV)
//! and, later, the HTTP API. Field names are snake_case and documented in README.md.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::fingerprint::server_card::ServerCard;
use crate::fingerprint::{
    AuthInfo, Fingerprint, HealthEndpoint, HttpInfo, Tool, Transport, Verdict,
};
use crate::monitor::state::Health;
pub use crate::vocab::{rfc3339, Origin, PortState, ProbeResult};

/// The output record (stable schema, documented in README.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Address (IPv4 or IPv6).
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
    /// `open`, `closed`, `filtered` or `unreachable`.
    pub state: PortState,
    /// Connect round-trip time in milliseconds (null when nothing answered).
    pub rtt_ms: Option<f64>,
    /// What answers on an open port (`mcp`, `mcp-auth-required`, `mcp-likely`, `http`,
    /// `open`); null for ports that are not open.
    pub kind: Option<Verdict>,
    /// The sources that found it.
    pub origins: Vec<Origin>,
    /// mDNS instance names and SRV names it was announced under.
    pub announced_as: Vec<String>,
    /// RFC 3339 UTC time of the answer.
    pub seen_at: String,
    /// The MCP endpoint (or the HTTP base URL).
    pub url: Option<String>,
    /// `streamable-http` or `sse`.
    pub transport: Option<Transport>,
    /// Negotiated protocol version.
    pub protocol_version: Option<String>,
    /// Every protocol version the server was seen to speak.
    pub protocol_versions: Vec<String>,
    /// `serverInfo.name`.
    pub server_name: Option<String>,
    /// `serverInfo.version`.
    pub server_version: Option<String>,
    /// Server instructions, trimmed.
    pub instructions: Option<String>,
    /// Advertised capabilities, as sent.
    pub capabilities: Option<serde_json::Value>,
    /// Tools: name, description, input schema hash.
    pub tools: Vec<Tool>,
    /// Resources listed, when advertised.
    pub resources: Option<usize>,
    /// Prompts listed, when advertised.
    pub prompts: Option<usize>,
    /// Authorization facts, when the endpoint demands a token.
    pub auth: Option<AuthInfo>,
    /// HTTP facts (scheme, status, Server, title, certificate).
    pub http: Option<HttpInfo>,
    /// MCP Mesh health endpoints that answered (`health` before the monitor took that name).
    pub health_endpoints: Vec<HealthEndpoint>,
    /// What the server's Server Card (SEP-2127 draft) and its origin's MCP Catalog say;
    /// advisory, the handshake fields above win (absent in records stored before it).
    #[serde(default)]
    pub server_card: Option<ServerCard>,
    /// The monitor's health object; null in `scan` output (nothing checked it), the
    /// stored server's health in the inventory.
    pub health: Option<Health>,
    /// Signals behind the verdict, strongest first.
    pub evidence: Vec<String>,
    /// Confidence in the verdict, 0 to 1 (null without fingerprinting).
    pub confidence: Option<f32>,
    /// The node of the daemon that found it (`kubernetes.node`); null outside Kubernetes
    /// (absent in records stored before it).
    #[serde(default)]
    pub node: Option<String>,
    /// The pod it runs in, for records found by a `kubernetes:` pod source; null otherwise.
    #[serde(default)]
    pub k8s: Option<K8sInfo>,
}

/// Where a pod-sourced server runs (`k8s` in records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct K8sInfo {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The node it is scheduled on.
    pub node: String,
    /// The pod labels the job's `labels:` list chose.
    pub labels: BTreeMap<String, String>,
}

impl From<&ProbeResult> for Record {
    fn from(r: &ProbeResult) -> Self {
        Self {
            ip: r.ip,
            port: r.port,
            state: r.state,
            rtt_ms: r.rtt.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
            kind: (r.state == PortState::Open).then_some(Verdict::Open),
            origins: vec![Origin::Sweep],
            announced_as: Vec::new(),
            seen_at: rfc3339(r.seen_at),
            url: None,
            transport: None,
            protocol_version: None,
            protocol_versions: Vec::new(),
            server_name: None,
            server_version: None,
            instructions: None,
            capabilities: None,
            tools: Vec::new(),
            resources: None,
            prompts: None,
            auth: None,
            http: None,
            health_endpoints: Vec::new(),
            server_card: None,
            health: None,
            evidence: Vec::new(),
            confidence: None,
            node: None,
            k8s: None,
        }
    }
}

impl Record {
    /// Fold a fingerprint into the record.
    pub fn with_fingerprint(mut self, fp: Fingerprint) -> Self {
        self.kind = Some(fp.verdict);
        self.url = fp.url;
        self.transport = fp.transport;
        if let Some(m) = fp.mcp {
            self.protocol_version = m.protocol_version;
            self.protocol_versions = m.protocol_versions;
            self.server_name = m.server_name;
            self.server_version = m.server_version;
            self.instructions = m.instructions;
            self.capabilities = m.capabilities;
            self.tools = m.tools;
            self.resources = m.resources;
            self.prompts = m.prompts;
            self.health_endpoints = m.health_endpoints;
        }
        self.auth = fp.auth;
        self.http = fp.http;
        self.server_card = fp.server_card;
        self.evidence = fp.evidence;
        self.confidence = Some((fp.confidence * 100.0).round() / 100.0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn record_has_the_documented_fields() {
        let r = ProbeResult {
            ip: "10.0.0.1".parse().unwrap(),
            port: 8000,
            state: PortState::Open,
            rtt: Some(Duration::from_micros(1234)),
            attempts: 1,
            seen_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        };
        let v = serde_json::to_value(Record::from(&r)).unwrap();
        assert_eq!(v["ip"], "10.0.0.1");
        assert_eq!(v["port"], 8000);
        assert_eq!(v["state"], "open");
        assert_eq!(v["rtt_ms"], 1.234);
        assert_eq!(v["kind"], "open");
        assert!(v["tools"].as_array().unwrap().is_empty());
        assert!(v["health_endpoints"].as_array().unwrap().is_empty());
        assert!(v["health"].is_null(), "scan records carry health: null");
        assert!(v["url"].is_null() && v["confidence"].is_null());
        assert_eq!(v["origins"][0], "sweep");
        assert_eq!(v["seen_at"], "2023-11-14T22:13:20.123Z");
    }
}
