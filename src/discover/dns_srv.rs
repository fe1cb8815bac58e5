//! DNS SRV discovery: `_mcp._tcp.example.com`, Kubernetes headless services
//! (`_http._tcp.my-svc.my-ns.svc.cluster.local`) and the like.
//!
//! Each name is queried for SRV and TXT through hickory-resolver (the system resolver, or
//! `--dns-server`), targets are ordered by priority (lowest first) then weight (highest first),
//! and each target's A/AAAA records are resolved. A target of `.` means "service explicitly
//! unavailable" (RFC 2782) and NXDOMAIN is reported as such, not as an error. Bounded: names
//! are resolved at most [`SrvOptions::concurrency`] at a time, each query has a deadline and a
//! retry count, at most [`MAX_TARGETS`] targets per name are used, and CNAME chains are
//! followed by the resolver within its own depth limit. [`SrvResolver::watch`] re-resolves on
//! an interval and emits appeared/gone events.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::candidate::{Candidate, DiscoveryEvent, Hints};
use crate::vocab::Origin;

/// Default deadline of one DNS query.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default tries per query.
pub const DEFAULT_ATTEMPTS: usize = 2;
/// Default names resolved at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default re-resolution interval in watch mode.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// SRV targets used per name at most (a hostile zone cannot fan out without bound).
pub const MAX_TARGETS: usize = 64;

/// Resolution settings.
#[derive(Debug, Clone)]
pub struct SrvOptions {
    /// `--dns-server`; `None` reads the system configuration.
    pub server: Option<SocketAddr>,
    /// Deadline of one query.
    pub timeout: Duration,
    /// Tries per query.
    pub attempts: usize,
    /// Names resolved at once.
    pub concurrency: usize,
}

impl Default for SrvOptions {
    fn default() -> Self {
        Self {
            server: None,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// The resolver could not be set up or asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SrvError {
    /// No resolver configuration.
    #[error("cannot set up DNS resolution: {0}")]
    Setup(String),
    /// A name that is not a DNS name.
    #[error("invalid SRV name {0:?}; accepted form: _service._proto.domain (for example _mcp._tcp.example.com)")]
    Name(String),
    /// The server did not answer.
    #[error("DNS server {server} did not answer for {name} within {timeout:?} ({attempts} tries)")]
    Timeout {
        /// The name asked.
        name: String,
        /// Who was asked.
        server: String,
        /// Per-query deadline.
        timeout: Duration,
        /// Tries.
        attempts: usize,
    },
    /// Any other resolver failure (SERVFAIL, refused, malformed answer).
    #[error("DNS lookup of {name} failed: {reason}")]
    Lookup {
        /// The name asked.
        name: String,
        /// The resolver's message.
        reason: String,
    },
}

/// One SRV target, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Target host name.
    pub target: String,
    /// Port.
    pub port: u16,
    /// Priority (lower first).
    pub priority: u16,
    /// Weight (higher first within a priority).
    pub weight: u16,
    /// A/AAAA addresses of the target.
    pub addrs: Vec<IpAddr>,
}

/// What a name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrvAnswer {
    /// Targets, in priority and weight order, with TXT hints.
    Targets {
        /// The targets.
        targets: Vec<SrvTarget>,
        /// Hints from the TXT record at the name.
        hints: Hints,
    },
    /// The single target `.`: the service is explicitly not available here.
    Unavailable,
    /// The name does not exist.
    NxDomain,
    /// The name exists but has no SRV record.
    NoRecords,
}

impl SrvAnswer {
    /// Candidates, one per target address.
    pub fn candidates(&self, name: &str) -> Vec<Candidate> {
        let Self::Targets { targets, hints } = self else {
            return Vec::new();
        };
        targets
            .iter()
            .flat_map(|t| {
                t.addrs.iter().map(move |ip| Candidate {
                    addr: SocketAddr::new(*ip, t.port),
                    origin: Origin::Srv,
                    name: name.to_string(),
                    hints: hints.clone(),
                })
            })
            .collect()
    }
}

/// Resolves SRV names.
#[derive(Clone)]
pub struct SrvResolver {
    resolver: TokioResolver,
    opts: SrvOptions,
    server_label: String,
}

fn fqdn(name: &str) -> Result<String, SrvError> {
    let n = name.trim();
    let valid = !n.is_empty()
        && n.len() <= 253
        && n.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(SrvError::Name(name.to_string()));
    }
    Ok(if n.ends_with('.') {
        n.to_string()
    } else {
        format!("{n}.")
    })
}

impl SrvResolver {
    /// A resolver asking `opts.server`, or the system's configured servers.
    pub fn new(opts: SrvOptions) -> Result<Self, SrvError> {
        let mut ro = ResolverOpts::default();
        ro.timeout = opts.timeout;
        ro.attempts = opts.attempts;
        ro.ndots = 0;
        let (builder, server_label) = match opts.server {
            Some(sa) => {
                let mut ns = NameServerConfig::udp_and_tcp(sa.ip());
                for c in &mut ns.connections {
                    c.port = sa.port();
                }
                let cfg = ResolverConfig::from_name_servers(vec![ns]);
                (
                    TokioResolver::builder_with_config(cfg, TokioRuntimeProvider::default()),
                    sa.to_string(),
                )
            }
            None => (
                TokioResolver::builder_tokio().map_err(|e| SrvError::Setup(e.to_string()))?,
                "the system resolver".to_string(),
            ),
        };
        let resolver = builder
            .with_options(ro)
            .build()
            .map_err(|e| SrvError::Setup(e.to_string()))?;
        Ok(Self {
            resolver,
            opts,
            server_label,
        })
    }

    fn failure(&self, name: &str, e: &dyn std::fmt::Display) -> SrvError {
        let reason = e.to_string();
        if reason.to_ascii_lowercase().contains("timed out")
            || reason.to_ascii_lowercase().contains("timeout")
        {
            SrvError::Timeout {
                name: name.to_string(),
                server: self.server_label.clone(),
                timeout: self.opts.timeout,
                attempts: self.opts.attempts,
            }
        } else {
            SrvError::Lookup {
                name: name.to_string(),
                reason,
            }
        }
    }

    /// Resolve one name.
    pub async fn resolve(&self, name: &str) -> Result<SrvAnswer, SrvError> {
        let q = fqdn(name)?;
        let lookup = match self.resolver.lookup(q.as_str(), RecordType::SRV).await {
            Ok(l) => l,
            Err(e) if e.is_nx_domain() => return Ok(SrvAnswer::NxDomain),
            Err(e) if e.is_no_records_found() => return Ok(SrvAnswer::NoRecords),
            Err(e) => return Err(self.failure(name, &e)),
        };
        let mut raw: Vec<(u16, u16, u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_ascii())),
                _ => None,
            })
            .collect();
        if raw.is_empty() {
            return Ok(SrvAnswer::NoRecords);
        }
        if raw.len() == 1 && (raw[0].3 == "." || raw[0].3.is_empty()) {
            return Ok(SrvAnswer::Unavailable);
        }
        raw.retain(|r| r.3 != "." && !r.3.is_empty());
        // Priority ascending, then weight descending (RFC 2782 picks by weight within a
        // priority; a scanner probes them all, heaviest first).
        raw.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.3.cmp(&b.3)));
        raw.truncate(MAX_TARGETS);
        let mut targets = Vec::with_capacity(raw.len());
        for (priority, weight, port, target) in raw {
            let addrs = match self.resolver.lookup_ip(target.as_str()).await {
                Ok(ips) => {
                    let set: BTreeSet<IpAddr> = ips.iter().collect();
                    set.into_iter().collect()
                }
                Err(_) => Vec::new(),
            };
            targets.push(SrvTarget {
                target,
                port,
                priority,
                weight,
                addrs,
            });
        }
        let hints = match self.resolver.lookup(q.as_str(), RecordType::TXT).await {
            Ok(l) => {
                let strings: Vec<String> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect::<Vec<_>>(),
                        ),
                        _ => None,
                    })
                    .flatten()
                    .take(32)
                    .collect();
                Hints::from_txt(strings.iter().map(String::as_str))
            }
            Err(_) => Hints::default(),
        };
        Ok(SrvAnswer::Targets { targets, hints })
    }

    /// Resolve many names, at most `concurrency` at once, in input order.
    pub async fn resolve_all(
        &self,
        names: &[String],
    ) -> Vec<(String, Result<SrvAnswer, SrvError>)> {
        stream::iter(names.iter().cloned())
            .map(|n| async move {
                let r = self.resolve(&n).await;
                (n, r)
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await
    }

    /// Re-resolve `names` every `interval` until `shutdown`, sending appeared/gone events.
    pub async fn watch(
        &self,
        names: &[String],
        interval: Duration,
        tx: mpsc::Sender<DiscoveryEvent>,
        shutdown: CancellationToken,
    ) {
        let mut known: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for (name, res) in self.resolve_all(names).await {
                // A failed lookup (timeout) keeps the last known state: a flaky DNS server
                // must not make every server "gone".
                let Ok(answer) = res else { continue };
                let now = answer.candidates(&name);
                let before = known.get(&name).cloned().unwrap_or_default();
                if now == before {
                    continue;
                }
                if now.is_empty() {
                    known.remove(&name);
                    if tx
                        .send(DiscoveryEvent::Gone {
                            origin: Origin::Srv,
                            name,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                for c in now.iter().filter(|c| !before.contains(c)) {
                    if tx.send(DiscoveryEvent::Appeared(c.clone())).await.is_err() {
                        return;
                    }
                }
                known.insert(name, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_fully_qualified_or_are_refused() {
        assert_eq!(
            fqdn("_mcp._tcp.example.test").unwrap(),
            "_mcp._tcp.example.test."
        );
        assert_eq!(
            fqdn("_http._tcp.my-svc.my-ns.svc.cluster.local.").unwrap(),
            "_http._tcp.my-svc.my-ns.svc.cluster.local."
        );
        for bad in ["", "a..b", "bad name", "x/y"] {
            let e = fqdn(bad).unwrap_err().to_string();
            assert!(e.contains("accepted form"), "{e}");
        }
    }
}
