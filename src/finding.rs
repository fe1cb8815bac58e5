//! The records mcp-scout reports: one per probed address×port worth showing.
//!
//! [`Record`] is the stable output schema shared by every writer (table, JSON, NDJSON, CSV)
//! and, later, the HTTP API. Field names are snake_case and documented in README.md.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

/// What a TCP connect probe concluded about one address×port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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

/// What the endpoint behind an open port is. Only `open` exists until fingerprinting lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An open TCP port, not (yet) classified.
    Open,
}

impl Kind {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
        }
    }
}

/// Which discovery source produced a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The CIDR × port sweep.
    Sweep,
}

impl Origin {
    /// The lowercase name used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sweep => "sweep",
        }
    }
}

/// One result of the sweep engine, before it becomes a [`Record`].
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

/// The output record (stable schema).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Address (IPv4 or IPv6).
    pub ip: IpAddr,
    /// TCP port.
    pub port: u16,
    /// `open`, `closed`, `filtered` or `unreachable`.
    pub state: PortState,
    /// Connect round-trip time in milliseconds (null when nothing answered).
    pub rtt_ms: Option<f64>,
    /// What answers on an open port; null for ports that are not open.
    pub kind: Option<Kind>,
    /// The sources that found it.
    pub origins: Vec<Origin>,
    /// RFC 3339 UTC time of the answer.
    pub seen_at: String,
}

impl From<&ProbeResult> for Record {
    fn from(r: &ProbeResult) -> Self {
        Self {
            ip: r.ip,
            port: r.port,
            state: r.state,
            rtt_ms: r.rtt.map(|d| (d.as_secs_f64() * 1e6).round() / 1e3),
            kind: (r.state == PortState::Open).then_some(Kind::Open),
            origins: vec![Origin::Sweep],
            seen_at: rfc3339(r.seen_at),
        }
    }
}

/// Format a time as RFC 3339 UTC with millisecond precision.
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(v["origins"][0], "sweep");
        assert_eq!(v["seen_at"], "2023-11-14T22:13:20.123Z");
    }
}
