//! What announce-based sources (mDNS, DNS SRV) hand to fingerprinting: an address and port,
//! where it came from, and the hints its TXT record gave.

use std::net::SocketAddr;

use serde::Serialize;

use crate::vocab::Origin;

/// Longest TXT hint value kept; longer values are ignored (an oversized or hostile TXT record
/// must not grow memory or end up in a URL).
pub const MAX_HINT_LEN: usize = 256;

/// Hints from TXT records (`path=/mcp`, `mcp_path=/mcp`, `transport=sse`, `version=...`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hints {
    /// HTTP path of the MCP endpoint.
    pub path: Option<String>,
    /// `streamable-http` or `sse`, as announced.
    pub transport: Option<String>,
    /// Protocol or server version, as announced.
    pub version: Option<String>,
}

impl Hints {
    /// Take a `key=value` pair from a TXT record if it is a known hint and sane.
    pub fn absorb(&mut self, key: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() || value.len() > MAX_HINT_LEN || value.chars().any(char::is_control) {
            return;
        }
        match key.to_ascii_lowercase().as_str() {
            "path" | "mcp_path"
                if value.starts_with('/') && !value.contains(char::is_whitespace) =>
            {
                self.path = Some(value.to_string());
            }
            "transport" => self.transport = Some(value.to_ascii_lowercase()),
            "version" => self.version = Some(value.to_string()),
            _ => {}
        }
    }

    /// Parse TXT strings of the form `key=value`.
    pub fn from_txt<'a>(strings: impl IntoIterator<Item = &'a str>) -> Self {
        let mut h = Self::default();
        for s in strings {
            if let Some((k, v)) = s.split_once('=') {
                h.absorb(k, v);
            }
        }
        h
    }
}

/// An address worth fingerprinting, learned from an announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Address and port.
    pub addr: SocketAddr,
    /// `mdns` or `srv`.
    pub origin: Origin,
    /// The mDNS instance (`srv1._mcp._tcp.local.`) or the SRV name.
    pub name: String,
    /// TXT hints.
    pub hints: Hints,
}

/// A change seen by a continuously running source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A service appeared (or its address, port or hints changed).
    Appeared(Candidate),
    /// A service withdrew (goodbye), expired, or no longer resolves.
    Gone {
        /// `mdns` or `srv`.
        origin: Origin,
        /// Instance or SRV name.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_hints_only() {
        let h = Hints::from_txt([
            "path=/custom/mcp",
            "transport=SSE",
            "version=1.2",
            "junk",
            "x=y",
        ]);
        assert_eq!(h.path.as_deref(), Some("/custom/mcp"));
        assert_eq!(h.transport.as_deref(), Some("sse"));
        let long = format!("path=/{}", "a".repeat(MAX_HINT_LEN + 1));
        assert_eq!(
            Hints::from_txt([long.as_str(), "mcp_path=no-slash"]).path,
            None
        );
        assert_eq!(Hints::from_txt(["mcp_path=/m"]).path.as_deref(), Some("/m"));
    }
}
