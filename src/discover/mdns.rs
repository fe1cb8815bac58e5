//! mDNS / DNS-SD discovery: browse service types, resolve instances, read TXT hints.
//!
//! There is no registered MCP service type (MCP-WIRE.md), so the configured types are browsed
//! (default `_mcp._tcp.local.` and `_http._tcp.local.`), or every type a LAN announces when
//! `_services._dns-sd._udp.local.` is enumerated first. mdns-sd runs its own thread; this
//! module turns its events into [`Candidate`]s, either once within a bounded wait
//! ([`MdnsBrowser::browse`]) or continuously as appeared/gone events ([`MdnsBrowser::watch`]).
//!
//! **Stale answers.** A responder may send an answer it queued before its goodbye after the
//! goodbye: python-zeroconf, for one, delays its answer to a query that arrived while it was
//! announcing (RFC 6762 allows a record to be multicast at most once a second), and sends it
//! after the service was unregistered. The stale answer carries full TTLs (SRV 120 s, PTR
//! 75 min), so mdns-sd's cache revives the instance and reports no removal for minutes: a
//! service announced while `watch` starts and withdrawn at once never went `gone`. So in
//! [`MdnsBrowser::watch`] each newly resolved instance is verified once, [`VERIFY_AFTER`]
//! later (RFC 6762 §10.4: queries for its SRV and address records; without an answer
//! within [`VERIFY_TIMEOUT`] they are flushed and the removal is reported). A live instance
//! answers, and costs one query.
//!
//! Bounded: at most [`MAX_INSTANCES`] instances are tracked (a flood of announcements cannot
//! grow memory), TXT hint values are capped ([`super::candidate::MAX_HINT_LEN`]), and every
//! wait has a deadline. Addresses are not checked here: the caller applies the scope wall.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::candidate::{Candidate, DiscoveryEvent, Hints};
use crate::vocab::Origin;

/// Service types browsed by default.
pub const DEFAULT_TYPES: &[&str] = &["_mcp._tcp.local.", "_http._tcp.local."];
/// Default time spent browsing in one-shot mode.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);
/// Instances tracked at most; announcements beyond are counted and ignored.
pub const MAX_INSTANCES: usize = 4096;
/// Service types enumerated at most with `--mdns-all`.
const MAX_TYPES: usize = 64;
/// The DNS-SD meta-query that lists every announced service type.
const META_TYPE: &str = "_services._dns-sd._udp.local.";
/// Events buffered from the mdns-sd thread.
const EVENT_BUFFER: usize = 1024;
/// How long after an instance appears `watch` verifies it is still there.
pub const VERIFY_AFTER: Duration = Duration::from_secs(2);
/// How long a verified instance has to answer (RFC 6762 §10.4: ten seconds).
pub const VERIFY_TIMEOUT: Duration = mdns_sd::VERIFY_TIMEOUT_DEFAULT;

/// Browsing settings.
#[derive(Debug, Clone)]
pub struct MdnsOptions {
    /// Service types to browse (fully qualified, ending in `.local.`).
    pub types: Vec<String>,
    /// Enumerate every announced type first.
    pub enumerate_all: bool,
    /// One-shot browse time.
    pub wait: Duration,
    /// Interfaces to use (names); empty means every interface.
    pub interfaces: Vec<String>,
    /// Continuous mode: verify each new instance this long after it appears.
    pub verify_after: Duration,
    /// Continuous mode: how long a verified instance has to answer.
    pub verify_timeout: Duration,
}

impl Default for MdnsOptions {
    fn default() -> Self {
        Self {
            types: DEFAULT_TYPES.iter().map(|t| (*t).to_string()).collect(),
            enumerate_all: false,
            wait: DEFAULT_WAIT,
            interfaces: Vec::new(),
            verify_after: VERIFY_AFTER,
            verify_timeout: VERIFY_TIMEOUT,
        }
    }
}

/// mDNS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MdnsError {
    /// The daemon could not start (no multicast socket, no interface).
    #[error("cannot start mDNS: {0}")]
    Daemon(String),
    /// A service type is malformed.
    #[error("invalid mDNS service type {0:?}; accepted form: _name._tcp.local. (for example _mcp._tcp.local.)")]
    Type(String),
}

/// One resolved instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsService {
    /// Full instance name, `srv1._mcp._tcp.local.`.
    pub fullname: String,
    /// Service type.
    pub service_type: String,
    /// Announced port.
    pub port: u16,
    /// Announced addresses.
    pub addrs: Vec<IpAddr>,
    /// TXT hints.
    pub hints: Hints,
}

impl MdnsService {
    /// One candidate per announced address.
    pub fn candidates(&self) -> impl Iterator<Item = Candidate> + '_ {
        self.addrs.iter().map(|ip| Candidate {
            addr: SocketAddr::new(*ip, self.port),
            origin: Origin::Mdns,
            name: self.fullname.clone(),
            hints: self.hints.clone(),
        })
    }
}

/// Normalise a service type: `_mcp._tcp` → `_mcp._tcp.local.`.
pub fn normalize_type(t: &str) -> Result<String, MdnsError> {
    let mut s = t.trim().to_string();
    if !s.ends_with('.') {
        s.push('.');
    }
    if !s.ends_with(".local.") {
        s.push_str("local.");
    }
    let labels: Vec<&str> = s.trim_end_matches('.').split('.').collect();
    let ok = labels.len() == 3
        && labels[0].starts_with('_')
        && labels[0].len() > 1
        && labels[0].len() <= 16
        && (labels[1] == "_tcp" || labels[1] == "_udp")
        && labels[0][1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(s)
    } else {
        Err(MdnsError::Type(t.to_string()))
    }
}

/// A running mDNS browser (mdns-sd daemon thread).
pub struct MdnsBrowser {
    daemon: ServiceDaemon,
}

impl Drop for MdnsBrowser {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

impl MdnsBrowser {
    /// Start the daemon on the chosen interfaces.
    pub fn new(opts: &MdnsOptions) -> Result<Self, MdnsError> {
        let daemon = ServiceDaemon::new().map_err(|e| MdnsError::Daemon(e.to_string()))?;
        if !opts.interfaces.is_empty() {
            daemon
                .disable_interface(IfKind::All)
                .map_err(|e| MdnsError::Daemon(e.to_string()))?;
            for i in &opts.interfaces {
                daemon
                    .enable_interface(IfKind::Name(i.clone()))
                    .map_err(|e| MdnsError::Daemon(e.to_string()))?;
            }
        }
        Ok(Self { daemon })
    }

    /// Start browsing `types`, forwarding every event into one channel.
    fn subscribe(&self, types: &[String]) -> Result<mpsc::Receiver<ServiceEvent>, MdnsError> {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        for t in types {
            let events = self
                .daemon
                .browse(t)
                .map_err(|e| MdnsError::Daemon(e.to_string()))?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok(ev) = events.recv_async().await {
                    tracing::debug!(?ev, "mdns event");
                    if tx.send(ev).await.is_err() {
                        break;
                    }
                }
            });
        }
        Ok(rx)
    }

    /// The service types to browse: the configured ones, plus every announced one when
    /// enumerating (within half the wait).
    async fn types(
        &self,
        opts: &MdnsOptions,
        shutdown: &CancellationToken,
    ) -> Result<Vec<String>, MdnsError> {
        let mut types = opts.types.clone();
        if !opts.enumerate_all {
            return Ok(types);
        }
        let mut rx = self.subscribe(&[META_TYPE.to_string()])?;
        let deadline = Instant::now() + opts.wait / 2;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(deadline) => break,
                ev = rx.recv() => match ev {
                    Some(ServiceEvent::ServiceFound(_, name)) => {
                        if let Ok(t) = normalize_type(&name) {
                            if !types.contains(&t) && types.len() < MAX_TYPES {
                                types.push(t);
                            }
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
            }
        }
        let _ = self.daemon.stop_browse(META_TYPE);
        Ok(types)
    }

    /// Browse for `opts.wait` and return every instance resolved and not withdrawn.
    pub async fn browse(
        &self,
        opts: &MdnsOptions,
        shutdown: &CancellationToken,
    ) -> Result<(Vec<MdnsService>, u64), MdnsError> {
        let types = self.types(opts, shutdown).await?;
        let mut rx = self.subscribe(&types)?;
        let mut seen = Tracker::default();
        let deadline = Instant::now() + opts.wait;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(deadline) => break,
                ev = rx.recv() => match ev {
                    Some(ev) => { seen.apply(ev); }
                    None => break,
                },
            }
        }
        for t in &types {
            let _ = self.daemon.stop_browse(t);
        }
        let dropped = seen.dropped;
        Ok((seen.into_services(), dropped))
    }

    /// Browse until `shutdown`, sending an event whenever an instance appears, changes or goes
    /// (goodbye packet or TTL expiry, as mdns-sd reports them).
    pub async fn watch(
        &self,
        opts: &MdnsOptions,
        tx: mpsc::Sender<DiscoveryEvent>,
        shutdown: CancellationToken,
    ) -> Result<(), MdnsError> {
        let types = self.types(opts, &shutdown).await?;
        let mut rx = self.subscribe(&types)?;
        let mut seen = Tracker::default();
        // Instances to verify, due first (bounded by the tracker: one entry per appearance).
        let mut verify: std::collections::VecDeque<(Instant, String)> = Default::default();
        let mut queued: std::collections::HashSet<String> = Default::default();
        loop {
            let due = verify.front().map(|(at, _)| *at);
            let ev = tokio::select! {
                () = shutdown.cancelled() => break,
                () = sleep_until(due) => {
                    while let Some((at, name)) = verify.pop_front() {
                        if at > Instant::now() {
                            verify.push_front((at, name));
                            break;
                        }
                        queued.remove(&name);
                        if seen.services.contains_key(&name) {
                            tracing::debug!("mdns: verifying {name}");
                            if let Err(e) = self.daemon.verify(name, opts.verify_timeout) {
                                tracing::debug!("mdns: cannot verify: {e}");
                            }
                        }
                    }
                    continue;
                }
                ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            };
            for out in seen.apply(ev) {
                if let DiscoveryEvent::Appeared(c) = &out {
                    // One entry per instance (an instance appears once per address).
                    if queued.insert(c.name.clone()) {
                        verify.push_back((Instant::now() + opts.verify_after, c.name.clone()));
                    }
                }
                if tx.send(out).await.is_err() {
                    return Ok(());
                }
            }
        }
        for t in &types {
            let _ = self.daemon.stop_browse(t);
        }
        Ok(())
    }
}

/// Sleep until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Instances by full name, bounded.
#[derive(Default)]
struct Tracker {
    services: HashMap<String, MdnsService>,
    dropped: u64,
}

impl Tracker {
    /// Apply one daemon event; returns the resulting appeared/gone events.
    fn apply(&mut self, ev: ServiceEvent) -> Vec<DiscoveryEvent> {
        match ev {
            ServiceEvent::ServiceResolved(r) => {
                let mut hints = Hints::default();
                for p in r.txt_properties.iter() {
                    hints.absorb(p.key(), p.val_str());
                }
                let mut addrs: Vec<IpAddr> = r.addresses.iter().map(|a| a.to_ip_addr()).collect();
                addrs.sort();
                addrs.dedup();
                let svc = MdnsService {
                    fullname: r.fullname.clone(),
                    service_type: r.ty_domain.clone(),
                    port: r.port,
                    addrs,
                    hints,
                };
                if self.services.get(&svc.fullname) == Some(&svc) {
                    return Vec::new();
                }
                if !self.services.contains_key(&svc.fullname)
                    && self.services.len() >= MAX_INSTANCES
                {
                    self.dropped += 1;
                    return Vec::new();
                }
                let out = svc.candidates().map(DiscoveryEvent::Appeared).collect();
                self.services.insert(svc.fullname.clone(), svc);
                out
            }
            ServiceEvent::ServiceRemoved(_, fullname) => match self.services.remove(&fullname) {
                Some(_) => vec![DiscoveryEvent::Gone {
                    origin: Origin::Mdns,
                    name: fullname,
                }],
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn into_services(self) -> Vec<MdnsService> {
        let mut v: Vec<MdnsService> = self.services.into_values().collect();
        v.sort_by(|a, b| a.fullname.cmp(&b.fullname));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_validates_types() {
        assert_eq!(normalize_type("_mcp._tcp").unwrap(), "_mcp._tcp.local.");
        assert_eq!(
            normalize_type("_http._tcp.local.").unwrap(),
            "_http._tcp.local."
        );
        for bad in [
            "mcp._tcp",
            "_mcp._xyz",
            "_a b._tcp",
            "_mcp",
            "_._tcp",
            "_waytoolongservicename._tcp",
        ] {
            let e = normalize_type(bad).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("accepted form"),
                "{bad}: {e}"
            );
        }
    }
}
