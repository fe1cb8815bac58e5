//! The engines' vocabulary: what a probe concluded ([`PortState`], [`ProbeResult`]) and which
//! source found an address ([`Origin`]).
//!
//! It imports nothing of ours, so the sweep engine and the discovery sources depend on this
//! file alone, not on the classifier or the output record built above them
//! ([`crate::finding::Record`]).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// What a TCP connect probe concluded about one address×port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// The handshake completed.
    Open,
    /// The host answered with a reset: it is up, nothing listens.
    Closed,
    /// No answer within the deadline, after every retry.
    Filtered,
    /// The network said the host cannot be reached (no route, ARP failure).
    Unreachable,
}

impl PortState {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
            Self::Filtered => "filtered",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Which discovery source produced a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The CIDR × port sweep.
    Sweep,
    /// Named by the user (`probe URL`).
    Static,
    /// Announced over mDNS / DNS-SD.
    Mdns,
    /// Listed in a DNS SRV record.
    Srv,
    /// Named by an MCP Catalog (`/.well-known/mcp/catalog.json`) of a confirmed server.
    Catalog,
    /// A pod on this node, from the Kubernetes API (`kubernetes: { pods: node }`).
    Kubernetes,
}

impl Origin {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sweep => "sweep",
            Self::Static => "static",
            Self::Mdns => "mdns",
            Self::Srv => "srv",
            Self::Catalog => "catalog",
            Self::Kubernetes => "kubernetes",
        }
    }
}

/// One result of the sweep engine, before it becomes a [`crate::finding::Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// Probed address.
    pub ip: IpAddr,
    /// Probed port.
    pub port: u16,
    /// The conclusion.
    pub state: PortState,
    /// Round-trip time of the answering attempt (none for filtered).
    pub rtt: Option<Duration>,
    /// Attempts sent (1 + retries used).
    pub attempts: u8,
    /// When the answer arrived.
    pub seen_at: SystemTime,
}

/// Format a time as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&fmt).unwrap_or_default()
}
