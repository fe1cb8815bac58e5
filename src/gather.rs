//! Announce-based discovery for `scan` and `watch`: run mDNS and DNS SRV, apply the scope
//! wall, and merge what they found by address.
//!
//! Glue: typed options come from the job plan ([`DiscoveryPlan`]); the sources themselves live in
//! [`crate::discover::mdns`] and [`crate::discover::dns_srv`]. Everything announced outside
//! the scope is returned as [`OutOfScope`] and never contacted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use ipnetwork::IpNetwork;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::discover::candidate::{Candidate, Hints};
use crate::discover::dns_srv::{SrvAnswer, SrvError, SrvOptions, SrvResolver};
use crate::discover::local;
use crate::discover::mdns::{self, MdnsBrowser, MdnsError, MdnsOptions};
use crate::plan::DiscoveryPlan;
use crate::scope::Scope;
use crate::target::AddrRange;
use crate::vocab::Origin;

/// Announce-based discovery could not be set up (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// mDNS failed to start or a type is malformed.
    #[error(transparent)]
    Mdns(#[from] MdnsError),
    /// The resolver could not be set up or a name is malformed.
    #[error(transparent)]
    Srv(#[from] SrvError),
    /// Interfaces could not be listed.
    #[error("cannot list network interfaces: {0}")]
    Interfaces(#[source] std::io::Error),
}

/// Discovery settings for one run: the plan's sources plus the scope wall of that moment.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// mDNS settings, when asked for.
    pub mdns: Option<MdnsOptions>,
    /// SRV names.
    pub srv: Vec<String>,
    /// Resolver settings.
    pub srv_opts: SrvOptions,
    /// Scope for mDNS answers.
    pub mdns_scope: Scope,
    /// Scope for SRV answers.
    pub srv_scope: Scope,
}

impl Discovery {
    /// Whether any announce-based source is on.
    pub fn any(&self) -> bool {
        self.mdns.is_some() || !self.srv.is_empty()
    }
}

/// Complete the plan's discovery settings with the scope wall; `targets` are the explicit
/// sweep targets (SRV scope).
pub fn discovery(p: &DiscoveryPlan, targets: &[AddrRange]) -> Result<Discovery, GatherError> {
    let interfaces = &p.interfaces;
    let (mdns_scope, srv_scope) = if p.scope.is_empty() {
        // The subnets of the chosen interfaces (every one when none is chosen).
        let subnets: Vec<IpNetwork> = local::attached_networks()
            .map_err(GatherError::Interfaces)?
            .into_iter()
            .filter(|(ifname, _)| interfaces.is_empty() || interfaces.contains(ifname))
            .map(|(_, n)| n)
            .collect();
        let mut m = Scope::new(&subnets);
        m.add_loopback();
        let mut s = Scope::new(&subnets);
        s.add_ranges(targets, "the explicit targets");
        (m, s)
    } else {
        (Scope::new(&p.scope), Scope::new(&p.scope))
    };
    Ok(Discovery {
        mdns: p.mdns.clone(),
        srv: p.srv.clone(),
        srv_opts: p.srv_opts.clone(),
        mdns_scope,
        srv_scope,
    })
}

/// Where an in-scope address was announced.
#[derive(Debug, Clone, Default)]
pub struct Announced {
    /// Origins (`mdns`, `srv`), once each.
    pub origins: Vec<Origin>,
    /// Instance and SRV names.
    pub names: Vec<String>,
    /// Merged hints (the first announcement's win).
    pub hints: Hints,
}

impl Announced {
    fn add(&mut self, c: &Candidate) {
        if !self.origins.contains(&c.origin) {
            self.origins.push(c.origin);
        }
        if !self.names.contains(&c.name) {
            self.names.push(c.name.clone());
        }
        if self.hints.path.is_none() {
            self.hints.path.clone_from(&c.hints.path);
        }
        if self.hints.transport.is_none() {
            self.hints.transport.clone_from(&c.hints.transport);
        }
        if self.hints.version.is_none() {
            self.hints.version.clone_from(&c.hints.version);
        }
    }
}

/// An announced address outside the scope: reported, never contacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutOfScope {
    /// Address.
    pub ip: IpAddr,
    /// Port.
    pub port: u16,
    /// `mdns` or `srv`.
    pub origin: Origin,
    /// Instance or SRV name.
    pub name: String,
}

/// What one round of announce-based discovery found.
#[derive(Debug, Default)]
pub struct Gathered {
    /// In-scope addresses and where they were announced.
    pub candidates: HashMap<SocketAddr, Announced>,
    /// Out-of-scope announcements.
    pub out_of_scope: Vec<OutOfScope>,
    /// Notes for the user (NXDOMAIN, unavailable, timeouts, dropped instances).
    pub notes: Vec<String>,
}

impl Gathered {
    /// Admit a candidate through `scope`.
    pub fn admit(&mut self, c: &Candidate, scope: &Scope) -> bool {
        if scope.allows(c.addr.ip()) {
            self.candidates.entry(c.addr).or_default().add(c);
            true
        } else {
            let o = OutOfScope {
                ip: c.addr.ip(),
                port: c.addr.port(),
                origin: c.origin,
                name: c.name.clone(),
            };
            if !self.out_of_scope.contains(&o) {
                self.out_of_scope.push(o);
            }
            false
        }
    }
}

/// Run mDNS (for its wait) and SRV resolution concurrently, once.
pub async fn gather(d: &Discovery, shutdown: &CancellationToken) -> Result<Gathered, GatherError> {
    gather_with(d, None, shutdown).await
}

/// As [`gather`], but with the mDNS answers already known (`mdns_known`, from a browser that
/// keeps running between a daemon job's runs): only SRV names are resolved now.
pub async fn gather_with(
    d: &Discovery,
    mdns_known: Option<Vec<Candidate>>,
    shutdown: &CancellationToken,
) -> Result<Gathered, GatherError> {
    let mut g = Gathered::default();
    let browser = match (&d.mdns, &mdns_known) {
        (Some(o), None) => Some(MdnsBrowser::new(o)?),
        _ => None,
    };
    let resolver = if d.srv.is_empty() {
        None
    } else {
        Some(SrvResolver::new(d.srv_opts.clone())?)
    };
    let mdns_fut = async {
        match (&browser, &d.mdns) {
            (Some(b), Some(o)) => Some(b.browse(o, shutdown).await),
            _ => None,
        }
    };
    let srv_fut = async {
        match &resolver {
            Some(r) => r.resolve_all(&d.srv).await,
            None => Vec::new(),
        }
    };
    let (mdns_res, srv_res) = tokio::join!(mdns_fut, srv_fut);
    for c in mdns_known.iter().flatten() {
        g.admit(c, &d.mdns_scope);
    }
    if let Some(res) = mdns_res {
        let (services, dropped) = res?;
        for svc in &services {
            for c in svc.candidates() {
                g.admit(&c, &d.mdns_scope);
            }
        }
        if dropped > 0 {
            g.notes.push(format!(
                "mDNS: {dropped} instances ignored beyond the {} tracked",
                mdns::MAX_INSTANCES
            ));
        }
    }
    for (name, res) in srv_res {
        match res {
            Ok(SrvAnswer::NxDomain) => g
                .notes
                .push(format!("SRV {name}: NXDOMAIN (the name does not exist)")),
            Ok(SrvAnswer::NoRecords) => g
                .notes
                .push(format!("SRV {name}: the name exists but has no SRV record")),
            Ok(SrvAnswer::Unavailable) => g.notes.push(format!(
                "SRV {name}: service explicitly unavailable (target \".\")"
            )),
            Ok(answer) => {
                if let SrvAnswer::Targets { targets, .. } = &answer {
                    for t in targets.iter().filter(|t| t.addrs.is_empty()) {
                        g.notes
                            .push(format!("SRV {name}: target {} has no address", t.target));
                    }
                }
                for c in answer.candidates(&name) {
                    g.admit(&c, &d.srv_scope);
                }
            }
            Err(e) => g.notes.push(format!("SRV {name}: {e}")),
        }
    }
    for o in &g.out_of_scope {
        g.notes.push(format!(
            "{} {}: {}:{} is out of scope ({}), not probed",
            o.origin.as_str(),
            o.name,
            o.ip,
            o.port,
            if o.origin == Origin::Mdns {
                d.mdns_scope.describe()
            } else {
                d.srv_scope.describe()
            }
        ));
    }
    Ok(g)
}
