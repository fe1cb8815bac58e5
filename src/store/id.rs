//! [`ServerId`]: the one identity of a server across sources, runs, pods and sinks.
//!
//! An id is derived only from the server's endpoint URL, so the same server found by a
//! sweep, an mDNS announcement and an SRV record is one row, and every sink write keyed by it
//! is an idempotent upsert. It is slug-safe (`[a-z0-9-]`, at most 63 characters, alphanumeric
//! at both ends: a DNS label, a Kubernetes name, an etcd key segment) and reads as the address
//! and port, for example `127-0-0-1-8000-3fa81c2b`.
//!
//! The address part alone is not unique (two paths on one port, `https` and `http`, a host
//! truncated to fit), so a short hash of the whole canonical URL ends the id. The hash is
//! FNV-1a 64 folded to 32 bits, written out here because `std`'s `DefaultHasher` is not
//! stable across releases and an id must never change under a stored inventory.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::hash::fnv1a;

/// Longest id: a DNS label.
pub const MAX_ID_LEN: usize = 63;
/// Hex digits of the hash suffix.
const HASH_HEX: usize = 8;

/// A server's stable, slug-safe identity (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerId(String);

impl ServerId {
    /// The id of the server at `url`.
    ///
    /// The URL is canonicalised first: scheme and host lowercased, the port written out
    /// (`http://h/mcp` and `http://h:80/mcp` are one server), the path and query kept, the
    /// fragment dropped. A string that does not parse as a URL still gets a valid id, from
    /// its lowercased text.
    pub fn from_url(url: &str) -> Self {
        let (canonical, host, port) = canonical(url);
        let hash = fold(fnv1a(canonical.as_bytes()));
        let tail = match port {
            Some(p) => format!("{p}-{hash:0HASH_HEX$x}"),
            None => format!("{hash:0HASH_HEX$x}"),
        };
        let room = MAX_ID_LEN - tail.len() - 1;
        let mut head = slug(&host);
        if head.len() > room {
            head.truncate(room);
            head.truncate(head.trim_end_matches('-').len());
        }
        if head.is_empty() {
            Self(tail)
        } else {
            Self(format!("{head}-{tail}"))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from the store (already valid: it was made by [`Self::from_url`]).
    pub(crate) fn from_stored(id: String) -> Self {
        Self(id)
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ServerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The canonical URL, its host (without IPv6 brackets) and its port.
fn canonical(raw: &str) -> (String, String, Option<u16>) {
    let trimmed = raw.trim();
    match url::Url::parse(trimmed) {
        Ok(mut u) if u.host_str().is_some() => {
            u.set_fragment(None);
            // `url` already lowercases the scheme and a domain host; IPv6 keeps its brackets.
            let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
            let port = u.port_or_known_default();
            let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = u.query().map(|q| format!("?{q}")).unwrap_or_default();
            let canonical = format!("{}://{host}{port_text}{}{query}", u.scheme(), u.path());
            let bare = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            (canonical, bare, port)
        }
        _ => {
            let lower = trimmed.to_ascii_lowercase();
            (lower.clone(), lower, None)
        }
    }
}

/// `[a-z0-9]` runs joined by single dashes: dots, colons and everything else become `-`.
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(out.trim_end_matches('-').len());
    out
}

/// Fold 64 bits to 32 so that every input bit reaches the short suffix.
fn fold(h: u64) -> u32 {
    // Truncation is the point: the high half is mixed into the low half first.
    ((h >> 32) ^ h) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid(id: &str) -> bool {
        let b = id.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_ID_LEN
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
    }

    #[test]
    fn ipv4_ids_read_as_address_and_port() {
        let id = ServerId::from_url("http://127.0.0.1:8000/mcp");
        assert!(id.as_str().starts_with("127-0-0-1-8000-"), "{id}");
        assert_eq!(id.as_str().len(), "127-0-0-1-8000-".len() + HASH_HEX);
        assert!(valid(id.as_str()));
    }

    #[test]
    fn ids_are_pinned_so_a_stored_inventory_keeps_its_keys() {
        // Changing the canonical form or the hash renames every stored server: don't.
        let h = fold(fnv1a(b"http://127.0.0.1:8000/mcp"));
        assert_eq!(
            ServerId::from_url("http://127.0.0.1:8000/mcp").as_str(),
            format!("127-0-0-1-8000-{h:08x}")
        );
        assert_eq!(
            ServerId::from_url("http://127.0.0.1:8000/mcp").as_str(),
            "127-0-0-1-8000-ec971604"
        );
    }

    #[test]
    fn ipv6_ids_drop_brackets_and_colons() {
        let id = ServerId::from_url("http://[fd00::1]:8000/mcp");
        assert!(id.as_str().starts_with("fd00-1-8000-"), "{id}");
        assert!(valid(id.as_str()));
    }

    #[test]
    fn hostnames_become_dashed_and_lowercase() {
        let id = ServerId::from_url("HTTP://MCP.Example.COM:9000/mcp");
        assert!(id.as_str().starts_with("mcp-example-com-9000-"), "{id}");
        assert_eq!(id, ServerId::from_url("http://mcp.example.com:9000/mcp"));
    }

    #[test]
    fn the_default_port_is_made_explicit() {
        assert_eq!(
            ServerId::from_url("http://10.0.0.1/mcp"),
            ServerId::from_url("http://10.0.0.1:80/mcp")
        );
        assert!(ServerId::from_url("https://10.0.0.1/mcp")
            .as_str()
            .starts_with("10-0-0-1-443-"));
    }

    #[test]
    fn paths_schemes_and_queries_make_different_ids_fragments_do_not() {
        let a = ServerId::from_url("http://10.0.0.1:8000/mcp");
        assert_ne!(a, ServerId::from_url("http://10.0.0.1:8000/sse"));
        assert_ne!(a, ServerId::from_url("http://10.0.0.1:8000/mcp/"));
        assert_ne!(a, ServerId::from_url("https://10.0.0.1:8000/mcp"));
        assert_ne!(a, ServerId::from_url("http://10.0.0.1:8000/mcp?t=1"));
        assert_eq!(a, ServerId::from_url("http://10.0.0.1:8000/mcp#x"));
    }

    #[test]
    fn long_hosts_are_cut_to_fit_and_stay_distinct() {
        let host = "a".repeat(40) + "." + &"b".repeat(40);
        let a = ServerId::from_url(&format!("http://{host}.example:8000/mcp"));
        let b = ServerId::from_url(&format!("http://{host}.other:8000/mcp"));
        assert_eq!(a.as_str().len(), MAX_ID_LEN);
        assert!(valid(a.as_str()) && valid(b.as_str()));
        assert!(a
            .as_str()
            .ends_with(&format!("-8000-{}", &a.as_str()[55..])));
        assert_ne!(a, b);
    }

    #[test]
    fn unparseable_input_still_gets_a_valid_id() {
        for s in ["", "not a url", "::::", "http://", "-x-"] {
            let id = ServerId::from_url(s);
            assert!(valid(id.as_str()), "{s:?} → {id}");
        }
    }

    #[test]
    fn serializes_as_a_plain_string() {
        let id = ServerId::from_url("http://127.0.0.1:8000/mcp");
        let v = serde_json::to_value(&id).unwrap();
        assert_eq!(v, serde_json::Value::String(id.to_string()));
        assert_eq!(serde_json::from_value::<ServerId>(v).unwrap(), id);
    }

    proptest! {
        #[test]
        fn every_url_gives_a_valid_id(s in ".{0,200}") {
            let id = ServerId::from_url(&s);
            prop_assert!(valid(id.as_str()), "{:?} → {}", s, id);
        }

        #[test]
        fn every_host_port_path_gives_a_stable_valid_id(
            host in "[a-zA-Z0-9.-]{1,120}",
            port in 1u16..,
            path in "(/[a-z0-9_.-]{0,20}){0,4}",
        ) {
            let url = format!("http://{host}:{port}{path}");
            let id = ServerId::from_url(&url);
            prop_assert!(valid(id.as_str()), "{} → {}", url, id);
            prop_assert_eq!(&id, &ServerId::from_url(&url));
        }

        #[test]
        fn ipv4_ids_start_with_the_dashed_address(a: u8, b: u8, c: u8, d: u8, port in 1u16..) {
            let id = ServerId::from_url(&format!("http://{a}.{b}.{c}.{d}:{port}/mcp"));
            let head = format!("{a}-{b}-{c}-{d}-{port}-");
            prop_assert!(id.as_str().starts_with(&head), "{}", id);
        }
    }
}
