//! [`Carry`]: the facts a daemon job keeps from one run to the next so that a rescan does
//! not fetch them again while the server is plainly the same one.
//!
//! **What is carried.** What a confirmed server is asked beyond its handshake and listings:
//! the MCP Mesh health endpoints (three GETs), the Server Card and MCP Catalog
//! ([`super::server_card`], two GETs), with the evidence they produced, and whether it also
//! speaks the modern era (`server/discover`, one POST, plus the DELETE of the session a
//! Python server mints on refusing it). Of the fourteen requests a rescan of a FastMCP
//! server makes, these are seven. The handshake and the tool, resource and prompt listings
//! are never carried: every run asks them again, so a change to tools, capabilities,
//! server version or negotiated protocol is seen in the next run as before. The versions
//! `server/discover` adds to `protocol_versions` are carried with the identity below: a
//! server that starts to speak the modern era without a new version is seen within
//! [`MAX_AGE`].
//!
//! **When.** Only when this run's handshake shows the same identity as the run that fetched
//! them: the same MCP URL (the key), transport, `serverInfo` name and version, and
//! negotiated protocol version. A server that was upgraded or replaced is read in full.
//! Facts from a fingerprint in which a request went unanswered (it failed, timed out or was
//! skipped for the budget) are not kept, so a transient failure is never carried forward.
//!
//! **How long.** Each entry is fetched again at the latest after [`MAX_AGE`], shortened per
//! entry by up to half (a stable hash of its URL and its fetch count), so that a thousand
//! servers found in one run are re-read a few per run over the following half hour, not all
//! in the same run an hour later. A card that changes without a version change is therefore
//! seen within [`MAX_AGE`].
//!
//! **Memory, bounded.** At most [`MAX_ENTRIES`] entries per job (expired ones are dropped
//! first when it is full; past that, new servers are simply read in full every run). One
//! entry is its identity strings, the health endpoints and the card, which
//! [`super::server_card`] already bounds in remotes, versions and catalog entries; the same
//! card is held in the stored record and the API's read model anyway.
//!
//! `scan`, `probe` and `watch` never use a carry: each of their fingerprints reads
//! everything.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::server_card::ServerCard;
use super::{HealthEndpoint, McpInfo, Transport};

/// Longest time a carried fact is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// Entries kept per job at most.
pub const MAX_ENTRIES: usize = 16_384;
/// The outcome logged for a request a carry made unnecessary.
pub(crate) const CARRIED: &str = "carried over from an earlier run (same server identity)";

/// What identifies a server for carrying: if any of it changed, nothing is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    transport: Transport,
    server_name: Option<String>,
    server_version: Option<String>,
    protocol_version: Option<String>,
}

impl Identity {
    /// The identity a handshake showed.
    pub(crate) fn of(info: &McpInfo, transport: Transport) -> Self {
        Self {
            transport,
            server_name: info.server_name.clone(),
            server_version: info.server_version.clone(),
            protocol_version: info.protocol_version.clone(),
        }
    }
}

/// The carried facts of one server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facts {
    /// MCP Mesh health endpoints that answered.
    pub(crate) health: Vec<HealthEndpoint>,
    /// The Server Card and catalog.
    pub(crate) server_card: Option<ServerCard>,
    /// The evidence the card and catalog produced (disagreements, off-origin entries).
    pub(crate) evidence: Vec<String>,
    /// What `server/discover` showed: the modern-era versions, `None` when refused.
    pub(crate) modern: Option<Vec<String>>,
}

#[derive(Debug)]
struct Entry {
    identity: Identity,
    facts: Facts,
    expires: Instant,
    /// Fetches so far (varies the spread of the next expiry).
    fetches: u32,
}

/// One job's carried facts, shared by the fingerprints of its runs (see the module doc).
#[derive(Debug)]
pub struct Carry {
    entries: Mutex<HashMap<String, Entry>>,
    max_age: Duration,
    max_entries: usize,
}

impl Default for Carry {
    fn default() -> Self {
        Self::new(MAX_AGE, MAX_ENTRIES)
    }
}

impl Carry {
    /// A carry whose entries live at most `max_age`, holding at most `max_entries`.
    pub fn new(max_age: Duration, max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_age,
            max_entries,
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The facts fetched for `url` when it showed `identity`, while they are fresh.
    pub(crate) fn recall(&self, url: &str, identity: &Identity) -> Option<Facts> {
        self.recall_at(url, identity, Instant::now())
    }

    fn recall_at(&self, url: &str, identity: &Identity, now: Instant) -> Option<Facts> {
        let map = self.lock();
        let e = map.get(url)?;
        (e.identity == *identity && now < e.expires).then(|| e.facts.clone())
    }

    /// Keep what a complete fetch for `url` found.
    pub(crate) fn remember(&self, url: &str, identity: Identity, facts: Facts) {
        self.remember_at(url, identity, facts, Instant::now());
    }

    fn remember_at(&self, url: &str, identity: Identity, facts: Facts, now: Instant) {
        let mut map = self.lock();
        let fetches = map.get(url).map_or(0, |e| e.fetches.wrapping_add(1));
        if !map.contains_key(url) && map.len() >= self.max_entries {
            map.retain(|_, e| now < e.expires);
            if map.len() >= self.max_entries {
                return;
            }
        }
        let expires = now + self.lifetime(url, fetches);
        map.insert(
            url.to_string(),
            Entry {
                identity,
                facts,
                expires,
                fetches,
            },
        );
    }

    /// `max_age` shortened by up to half, stably per URL and fetch.
    fn lifetime(&self, url: &str, fetches: u32) -> Duration {
        let mut h = crate::hash::Fnv1a::new();
        h.write(url.as_bytes());
        h.write(&fetches.to_le_bytes());
        // The top 53 bits as a fraction in [0, 1).
        let u = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        self.max_age.mul_f64(1.0 - 0.5 * u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(version: &str) -> Identity {
        Identity {
            transport: Transport::StreamableHttp,
            server_name: Some("weather".into()),
            server_version: Some(version.into()),
            protocol_version: Some("2025-11-25".into()),
        }
    }

    fn facts(path: &str) -> Facts {
        Facts {
            health: vec![HealthEndpoint {
                path: path.into(),
                status: 200,
            }],
            server_card: None,
            evidence: vec!["e".into()],
            modern: None,
        }
    }

    #[test]
    fn facts_are_carried_only_for_the_same_identity_while_fresh() {
        let c = Carry::new(Duration::from_secs(100), 8);
        let t0 = Instant::now();
        let url = "http://10.0.0.1:8000/mcp";
        assert_eq!(c.recall_at(url, &id("1"), t0), None);
        c.remember_at(url, id("1"), facts("/livez"), t0);
        assert_eq!(c.recall_at(url, &id("1"), t0), Some(facts("/livez")));
        assert_eq!(
            c.recall_at(url, &id("2"), t0),
            None,
            "a new version is read in full"
        );
        assert_eq!(c.recall_at("http://10.0.0.2:8000/mcp", &id("1"), t0), None);
        // Fresh for at least half the age, never past it.
        assert!(c
            .recall_at(url, &id("1"), t0 + Duration::from_secs(49))
            .is_some());
        assert_eq!(
            c.recall_at(url, &id("1"), t0 + Duration::from_secs(100)),
            None
        );
    }

    #[test]
    fn lifetimes_spread_over_the_second_half_of_the_age() {
        let c = Carry::new(Duration::from_secs(1000), 8);
        let lives: Vec<u64> = (0..200)
            .map(|i| {
                c.lifetime(&format!("http://10.0.{i}.1:8000/mcp"), 0)
                    .as_secs()
            })
            .collect();
        assert!(lives.iter().all(|l| (500..=1000).contains(l)), "{lives:?}");
        let (lo, hi) = (lives.iter().min().unwrap(), lives.iter().max().unwrap());
        assert!(hi - lo > 300, "spread {lo}..{hi}");
        assert_ne!(
            c.lifetime("u", 0),
            c.lifetime("u", 1),
            "each fetch varies it"
        );
    }

    #[test]
    fn a_full_carry_drops_expired_entries_then_stops_growing() {
        let c = Carry::new(Duration::from_secs(100), 2);
        let t0 = Instant::now();
        c.remember_at("a", id("1"), facts("/a"), t0);
        c.remember_at("b", id("1"), facts("/b"), t0);
        c.remember_at("c", id("1"), facts("/c"), t0);
        assert_eq!(c.len(), 2, "full: a new server is not kept");
        assert_eq!(c.recall_at("c", &id("1"), t0), None);
        c.remember_at("a", id("2"), facts("/a2"), t0);
        assert_eq!(
            c.recall_at("a", &id("2"), t0),
            Some(facts("/a2")),
            "a known one is replaced"
        );
        let later = t0 + Duration::from_secs(100);
        c.remember_at("c", id("1"), facts("/c"), later);
        assert_eq!(c.len(), 1, "the expired ones went first");
        assert_eq!(c.recall_at("c", &id("1"), later), Some(facts("/c")));
    }
}
