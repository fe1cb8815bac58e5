//! The typed job plan: one set of validated settings behind both front doors.
//!
//! Raw input arrives two ways: `scan`'s flags ([`crate::cli`]) and a daemon config job
//! (`crate::config`). Each turns what the user typed into a [`JobSpec`] (still strings,
//! as typed, but no clap or serde types), and [`JobPlan::resolve`] turns that into typed,
//! validated values (`PortList`, `TargetSpec`, `StateFilter`, `FingerprintOptions`…), as
//! ripgrep turns its LowArgs into HiArgs. Nothing below this file sees a clap or serde-raw
//! type, so `scan` and the daemon cannot drift apart: [`crate::pipeline`] runs a plan, from
//! whichever door it came.
//!
//! Resolution is pure and synchronous: hostnames, `@FILE`s and `local` are expanded by the
//! pipeline at each run, so a daemon job follows DNS and interface changes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnetwork::IpNetwork;

use crate::discover::dns_srv::SrvOptions;
use crate::discover::local::LocalFilter;
use crate::discover::mdns::{self, MdnsError, MdnsOptions};
use crate::discover::sweep::{StateFilter, DEFAULT_MIN_TIMEOUT};
use crate::finding::PortState;
use crate::fingerprint::credentials::{CredentialError, RawCredentials};
use crate::fingerprint::http::HttpLimits;
use crate::fingerprint::FingerprintOptions;
use crate::kube::pods::PodsSpec;
use crate::ports::{PortList, PortSpecError};
use crate::target::{TargetError, TargetSpec};

/// Targets swept when none are given: the local machine.
pub const DEFAULT_TARGETS: &[&str] = &["127.0.0.1", "::1"];
/// Probes above which a sweep is refused without `force`.
pub const DEFAULT_MAX_TARGETS: u64 = 1_048_576;
/// Default port list (the named set).
pub const DEFAULT_PORTS: &str = "mcp";
/// Default per-attempt connect deadline (the adaptive ceiling).
pub const DEFAULT_TIMEOUT: Duration = crate::discover::sweep::DEFAULT_TIMEOUT;
/// Endpoints fingerprinted at once.
pub const DEFAULT_FINGERPRINT_CONCURRENCY: u16 = 32;
/// Paths tried on every open port, in order.
pub const DEFAULT_PATHS: &[&str] = &["/mcp", "/", "/sse", "/api/mcp", "/mcp/v1", "/v1/mcp"];
/// Total time spent fingerprinting one endpoint.
pub const DEFAULT_FINGERPRINT_BUDGET: Duration = Duration::from_secs(10);
/// Deadline of one HTTP request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Cap on one response body.
pub const DEFAULT_MAX_BODY: u32 = 1024 * 1024;
/// Cap on bytes read from one event stream.
pub const DEFAULT_SSE_MAX_BYTES: u32 = 64 * 1024;
/// Cap on time spent reading one event stream.
pub const DEFAULT_SSE_MAX_TIME: Duration = Duration::from_secs(2);
/// One-shot mDNS browse time.
pub const DEFAULT_MDNS_WAIT: Duration = Duration::from_secs(3);
/// Deadline of one DNS query.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(2);
/// SRV names resolved at once.
pub const DEFAULT_DNS_CONCURRENCY: u16 = 16;

/// Why settings are invalid (exit code 2). Messages name the flag as `scan` spells it; the
/// config loader checks each key first and reports it with its file position.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A bad target or exclusion.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A bad port list.
    #[error(transparent)]
    Ports(#[from] PortSpecError),
    /// A bad `--report`.
    #[error("invalid --report {0:?}; accepted forms: open, all, or a comma list of open,closed,filtered,unreachable")]
    Report(String),
    /// `--min-timeout` above `--timeout`.
    #[error(
        "--min-timeout {min:?} is above --timeout {max:?}; lower --min-timeout or raise --timeout"
    )]
    TimeoutOrder {
        /// --min-timeout.
        min: Duration,
        /// --timeout.
        max: Duration,
    },
    /// A `--paths` item is malformed.
    #[error(
        "invalid --paths item {0:?}: a path starts with '/' and has no spaces, for example /mcp"
    )]
    Path(String),
    /// A malformed mDNS service type.
    #[error(transparent)]
    Mdns(#[from] MdnsError),
    /// A bad `--header` or `--bearer` (the message never holds the value).
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// A bad `--scope`.
    #[error("invalid --scope {0:?}; accepted forms: 10.0.0.0/24, fd00::/64, 10.0.0.5")]
    Scope(String),
    /// A bad `--dns-server`.
    #[error(
        "invalid --dns-server {0:?}; accepted forms: 10.0.0.53, 10.0.0.53:5353, [fd00::53]:53"
    )]
    DnsServer(String),
    /// A shard index outside its count.
    #[error("shard index {index} is not below shard count {count}; use an index from 0 to {}", count.saturating_sub(1))]
    Shard {
        /// Index.
        index: u32,
        /// Count.
        count: u32,
    },
    /// A `local` prefix limit beyond the family's width.
    #[error("--max-local-prefix{} {value} is above /{max}, the width of an {family} address; use 0 to {max}", if *family == "IPv6" { "-v6" } else { "" })]
    LocalPrefix {
        /// IPv4 or IPv6.
        family: &'static str,
        /// The limit given.
        value: u8,
        /// The family's width.
        max: u8,
    },
    /// An empty `--skip-interfaces` pattern.
    #[error("invalid --skip-interfaces pattern {0:?}: an interface name or a glob such as docker* (give an empty list to skip none)")]
    SkipInterface(String),
}

/// This instance's share of a job's address×port space: every probe index `i` with
/// `i % count == index`. Instances with counts 0..N-1 cover the space exactly once,
/// whatever their probe-order seeds, because the share is cut before the permutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This instance's index, below `count`.
    pub index: u32,
    /// Instances sharing the job.
    pub count: u32,
}

/// Fingerprinting settings as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintSpec {
    /// Paths tried on every open port, in order.
    pub paths: Vec<String>,
    /// Time budget per endpoint.
    pub budget: Duration,
    /// Deadline of one HTTP request.
    pub request_timeout: Duration,
    /// Cap on one response body.
    pub max_body: u32,
    /// Cap on bytes read from one event stream.
    pub sse_max_bytes: u32,
    /// Cap on time spent reading one event stream.
    pub sse_max_time: Duration,
    /// `--header` and `--bearer`, sent only to named or in-scope targets.
    pub credentials: RawCredentials,
}

impl Default for FingerprintSpec {
    fn default() -> Self {
        Self {
            paths: DEFAULT_PATHS.iter().map(|p| (*p).to_string()).collect(),
            budget: DEFAULT_FINGERPRINT_BUDGET,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            sse_max_bytes: DEFAULT_SSE_MAX_BYTES,
            sse_max_time: DEFAULT_SSE_MAX_TIME,
            credentials: RawCredentials::default(),
        }
    }
}

impl FingerprintSpec {
    /// Validated fingerprinting options.
    pub fn resolve(&self) -> Result<FingerprintOptions, PlanError> {
        let mut paths = Vec::new();
        for p in &self.paths {
            let p = p.trim();
            if !p.starts_with('/') || p.contains(char::is_whitespace) || p.len() > 256 {
                return Err(PlanError::Path(p.to_string()));
            }
            if !paths.iter().any(|q: &String| q == p) {
                paths.push(p.to_string());
            }
        }
        if paths.is_empty() {
            return Err(PlanError::Path(String::new()));
        }
        Ok(FingerprintOptions {
            paths,
            budget: self.budget,
            http: HttpLimits {
                request_timeout: self.request_timeout,
                max_body: self.max_body as usize,
                sse_max_bytes: self.sse_max_bytes as usize,
                sse_max_time: self.sse_max_time,
            },
            credentials: self.credentials.resolve()?,
        })
    }
}

/// Announce-based discovery settings as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySpec {
    /// mDNS service types; `Some(empty)` means the default types.
    pub mdns: Option<Vec<String>>,
    /// Enumerate every announced type.
    pub mdns_all: bool,
    /// One-shot browse time.
    pub mdns_wait: Duration,
    /// Interfaces for mDNS (empty: all).
    pub interfaces: Vec<String>,
    /// SRV names.
    pub srv: Vec<String>,
    /// DNS server for SRV, as `IP` or `IP:PORT`.
    pub dns_server: Option<String>,
    /// Deadline of one DNS query.
    pub dns_timeout: Duration,
    /// SRV names resolved at once.
    pub dns_concurrency: u16,
    /// Networks announced addresses may be in.
    pub scope: Vec<String>,
    /// The node-local pod source (`kubernetes:` of a daemon job; `scan` has none).
    pub kubernetes: Option<PodsSpec>,
}

impl Default for DiscoverySpec {
    fn default() -> Self {
        Self {
            mdns: None,
            mdns_all: false,
            mdns_wait: DEFAULT_MDNS_WAIT,
            interfaces: Vec::new(),
            srv: Vec::new(),
            dns_server: None,
            dns_timeout: DEFAULT_DNS_TIMEOUT,
            dns_concurrency: DEFAULT_DNS_CONCURRENCY,
            scope: Vec::new(),
            kubernetes: None,
        }
    }
}

/// Validated announce-based discovery settings (the scope is completed per run, from the
/// interfaces and targets of that moment).
#[derive(Debug, Clone)]
pub struct DiscoveryPlan {
    /// mDNS settings, when asked for.
    pub mdns: Option<MdnsOptions>,
    /// SRV names, re-resolved every run.
    pub srv: Vec<String>,
    /// Resolver settings.
    pub srv_opts: SrvOptions,
    /// Interfaces whose subnets form the default scope (empty: all).
    pub interfaces: Vec<String>,
    /// The explicit scope; empty means "the chosen interfaces' subnets" (see
    /// [`crate::gather::discovery`]).
    pub scope: Vec<IpNetwork>,
    /// The node-local pod source, run by the daemon beside the pipeline (a continuous
    /// source, like the daemon's mDNS browser; see [`crate::kube::pods`]).
    pub kubernetes: Option<PodsSpec>,
}

impl DiscoveryPlan {
    /// Whether any announce-based source is on.
    pub fn any(&self) -> bool {
        self.mdns.is_some() || !self.srv.is_empty()
    }
}

impl DiscoverySpec {
    /// Whether any announce-based source is asked for.
    pub fn requested(&self) -> bool {
        self.mdns.is_some() || self.mdns_all || !self.srv.is_empty() || self.kubernetes.is_some()
    }

    /// Validated discovery settings.
    pub fn resolve(&self) -> Result<DiscoveryPlan, PlanError> {
        let mdns = if self.mdns.is_some() || self.mdns_all {
            let mut types = Vec::new();
            for t in self.mdns.iter().flatten() {
                types.push(mdns::normalize_type(t)?);
            }
            if types.is_empty() {
                types = mdns::DEFAULT_TYPES
                    .iter()
                    .map(|t| (*t).to_string())
                    .collect();
            }
            Some(MdnsOptions {
                types,
                enumerate_all: self.mdns_all,
                wait: self.mdns_wait,
                interfaces: self.interfaces.clone(),
                ..MdnsOptions::default()
            })
        } else {
            None
        };
        let server = self
            .dns_server
            .as_deref()
            .map(parse_dns_server)
            .transpose()?;
        let scope = self
            .scope
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_scope(s).ok_or_else(|| PlanError::Scope(s.clone())))
            .collect::<Result<_, _>>()?;
        Ok(DiscoveryPlan {
            mdns,
            srv: self.srv.clone(),
            interfaces: self.interfaces.clone(),
            srv_opts: SrvOptions {
                server,
                timeout: self.dns_timeout,
                concurrency: usize::from(self.dns_concurrency),
                ..SrvOptions::default()
            },
            scope,
            kubernetes: self.kubernetes.clone(),
        })
    }
}

/// Parse one scope network (`10.0.0.0/24` or a single address).
pub fn parse_scope(s: &str) -> Option<IpNetwork> {
    let t = s.trim();
    t.parse::<IpNetwork>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNetwork::from))
        .ok()
}

/// Parse a DNS server, `IP` or `IP:PORT`.
pub fn parse_dns_server(s: &str) -> Result<SocketAddr, PlanError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| PlanError::DnsServer(s.to_string()))
}

/// Parse a `report` list: `open`, `all`, or a comma list of states.
pub fn parse_report(s: &str) -> Result<StateFilter, PlanError> {
    let mut f = StateFilter::OPEN;
    for tok in s.split(',').map(str::trim) {
        f = match tok {
            "open" => f,
            "all" => StateFilter::ALL,
            "closed" => f.with(PortState::Closed),
            "filtered" => f.with(PortState::Filtered),
            "unreachable" => f.with(PortState::Unreachable),
            _ => return Err(PlanError::Report(s.to_string())),
        };
    }
    Ok(f)
}

/// One job's settings as typed, from either front door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// Targets (scan's grammar); empty means the defaults unless `local` or announce sources.
    pub targets: Vec<String>,
    /// Exclusions (same grammar; items may be comma lists).
    pub exclude: Vec<String>,
    /// Port list.
    pub ports: String,
    /// Also sweep the attached subnets.
    pub local: bool,
    /// Probe cap.
    pub max_targets: u64,
    /// Ignore the cap.
    pub force: bool,
    /// Connects in flight (None: by descriptors and target kind).
    pub concurrency: Option<u32>,
    /// Probes per second (None: by target kind).
    pub rate: Option<u32>,
    /// Connect deadline ceiling.
    pub timeout: Duration,
    /// Connect deadline floor.
    pub min_timeout: Option<Duration>,
    /// Retries of a timed-out probe.
    pub retries: u8,
    /// Retry cap once loss is proven.
    pub max_retries: u8,
    /// ICMP host discovery.
    pub ping: bool,
    /// Wait for an echo reply after the last request to a host.
    pub ping_timeout: Duration,
    /// Port states to report.
    pub report: String,
    /// Fingerprinting; `None` for ports only.
    pub fingerprint: Option<FingerprintSpec>,
    /// Endpoints fingerprinted at once.
    pub fingerprint_concurrency: u16,
    /// Announce-based discovery.
    pub discovery: DiscoverySpec,
    /// Sweep threads.
    pub threads: Option<u16>,
    /// Probe-order key.
    pub seed: Option<u64>,
    /// This instance's share of the job.
    pub shard: Option<Shard>,
    /// What `local` keeps of the attached networks.
    pub local_filter: LocalFilter,
    /// `shard: auto`: split the targets over this DaemonSet's ready pods at each run.
    pub shard_auto: bool,
}

impl Default for JobSpec {
    fn default() -> Self {
        Self {
            targets: Vec::new(),
            exclude: Vec::new(),
            ports: DEFAULT_PORTS.to_string(),
            local: false,
            max_targets: DEFAULT_MAX_TARGETS,
            force: false,
            concurrency: None,
            rate: None,
            timeout: DEFAULT_TIMEOUT,
            min_timeout: None,
            retries: crate::discover::sweep::DEFAULT_RETRIES,
            max_retries: crate::discover::sweep::DEFAULT_MAX_RETRIES,
            ping: true,
            ping_timeout: crate::discover::icmp::DEFAULT_PING_TIMEOUT,
            report: "open".to_string(),
            fingerprint: Some(FingerprintSpec::default()),
            fingerprint_concurrency: DEFAULT_FINGERPRINT_CONCURRENCY,
            discovery: DiscoverySpec::default(),
            threads: None,
            seed: None,
            shard: None,
            local_filter: LocalFilter::default(),
            shard_auto: false,
        }
    }
}

/// Sweep settings; limits left `None` are computed per run from the targets and the
/// descriptor limit.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// Connects in flight.
    pub concurrency: Option<usize>,
    /// Probes per second.
    pub rate: Option<u32>,
    /// Connect deadline ceiling.
    pub timeout: Duration,
    /// Connect deadline floor.
    pub min_timeout: Duration,
    /// Retries of a timed-out probe.
    pub retries: u8,
    /// Retry cap once loss is proven.
    pub max_retries: u8,
    /// ICMP host discovery.
    pub ping: bool,
    /// Wait for an echo reply after the last request to a host.
    pub ping_timeout: Duration,
    /// Port states to report.
    pub report: StateFilter,
    /// Sweep threads.
    pub threads: Option<usize>,
    /// Probe-order key (None: a fresh one per run).
    pub seed: Option<u64>,
}

/// A validated job: what to scan and how. Served to [`crate::pipeline::run`].
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Targets as typed, the defaults filled in.
    pub targets: Vec<TargetSpec>,
    /// Also sweep the attached subnets.
    pub local: bool,
    /// Exclusions.
    pub exclude: Vec<TargetSpec>,
    /// Ports.
    pub ports: PortList,
    /// Probe cap (`None` when forced).
    pub max_targets: Option<u64>,
    /// Sweep settings.
    pub sweep: SweepPlan,
    /// Fingerprinting; `None` for ports only.
    pub fingerprint: Option<FingerprintOptions>,
    /// Endpoints fingerprinted at once.
    pub fingerprint_concurrency: usize,
    /// Announce-based discovery.
    pub discovery: DiscoveryPlan,
    /// This instance's share of the job.
    pub shard: Option<Shard>,
    /// What `local` keeps of the attached networks.
    pub local_filter: LocalFilter,
    /// `shard: auto`: the run needs [`crate::pipeline::Inputs::members`].
    pub shard_auto: bool,
}

impl JobPlan {
    /// Validate `spec` into a plan.
    pub fn resolve(spec: &JobSpec) -> Result<Self, PlanError> {
        let ports = PortList::parse(&spec.ports)?;
        let report = parse_report(&spec.report)?;
        // An explicit floor above the ceiling is a contradiction; the default floor simply
        // follows a low timeout down.
        let min_timeout = match spec.min_timeout {
            Some(min) if min > spec.timeout => {
                return Err(PlanError::TimeoutOrder {
                    min,
                    max: spec.timeout,
                })
            }
            Some(min) => min,
            None => DEFAULT_MIN_TIMEOUT.min(spec.timeout),
        };
        let mut targets = spec
            .targets
            .iter()
            .map(|t| TargetSpec::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() && !spec.local && !spec.discovery.requested() {
            targets = DEFAULT_TARGETS
                .iter()
                .map(|t| TargetSpec::parse(t))
                .collect::<Result<_, _>>()?;
        }
        let exclude = spec
            .exclude
            .iter()
            .flat_map(|e| e.split(','))
            .filter(|e| !e.trim().is_empty())
            .map(TargetSpec::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let discovery = spec.discovery.resolve()?;
        let fingerprint = spec
            .fingerprint
            .as_ref()
            .map(FingerprintSpec::resolve)
            .transpose()?;
        if let Some(s) = spec.shard {
            if s.count == 0 || s.index >= s.count {
                return Err(PlanError::Shard {
                    index: s.index,
                    count: s.count,
                });
            }
        }
        let lf = &spec.local_filter;
        for (family, v, max) in [
            ("IPv4", lf.max_prefix_v4, 32),
            ("IPv6", lf.max_prefix_v6, 128),
        ] {
            if v > max {
                return Err(PlanError::LocalPrefix {
                    family,
                    value: v,
                    max,
                });
            }
        }
        if let Some(p) = lf.skip_interfaces.iter().find(|p| p.trim().is_empty()) {
            return Err(PlanError::SkipInterface(p.clone()));
        }
        Ok(Self {
            targets,
            local: spec.local,
            exclude,
            ports,
            max_targets: (!spec.force).then_some(spec.max_targets),
            sweep: SweepPlan {
                concurrency: spec.concurrency.map(|c| c as usize),
                rate: spec.rate,
                timeout: spec.timeout,
                min_timeout,
                retries: spec.retries,
                max_retries: spec.max_retries,
                ping: spec.ping,
                ping_timeout: spec.ping_timeout,
                report,
                threads: spec.threads.map(usize::from),
                seed: spec.seed,
            },
            fingerprint,
            fingerprint_concurrency: usize::from(spec.fingerprint_concurrency.max(1)),
            discovery,
            shard: spec.shard.filter(|s| s.count > 1),
            local_filter: spec.local_filter.clone(),
            shard_auto: spec.shard_auto,
        })
    }

    /// Targets as labels (for summaries and `config check`).
    pub fn target_labels(&self) -> Vec<String> {
        let mut v: Vec<String> = self.targets.iter().map(ToString::to_string).collect();
        if self.local {
            v.push("local".to_string());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_scan_localhost_on_the_mcp_ports() {
        let p = JobPlan::resolve(&JobSpec::default()).unwrap();
        assert_eq!(p.target_labels(), ["127.0.0.1", "::1"]);
        assert_eq!(
            p.ports.to_string(),
            PortList::parse("mcp").unwrap().to_string()
        );
        assert!(p.fingerprint.is_some() && p.discovery.mdns.is_none());
        assert_eq!(p.max_targets, Some(DEFAULT_MAX_TARGETS));
    }

    #[test]
    fn announce_sources_or_local_replace_the_default_targets() {
        let mut s = JobSpec::default();
        s.discovery.srv = vec!["_mcp._tcp.example.test".into()];
        assert!(JobPlan::resolve(&s).unwrap().targets.is_empty());
        let s = JobSpec {
            local: true,
            ..JobSpec::default()
        };
        assert_eq!(JobPlan::resolve(&s).unwrap().target_labels(), ["local"]);
    }

    #[test]
    fn bad_settings_are_refused_with_the_flag_name() {
        let cases: Vec<(JobSpec, &str)> = vec![
            (
                JobSpec {
                    report: "bogus".into(),
                    ..JobSpec::default()
                },
                "invalid --report \"bogus\"",
            ),
            (
                JobSpec {
                    min_timeout: Some(Duration::from_secs(2)),
                    ..JobSpec::default()
                },
                "--min-timeout 2s is above --timeout 1s",
            ),
            (
                JobSpec {
                    shard: Some(Shard { index: 3, count: 3 }),
                    ..JobSpec::default()
                },
                "shard index 3 is not below shard count 3; use an index from 0 to 2",
            ),
            (
                JobSpec {
                    fingerprint: Some(FingerprintSpec {
                        paths: vec!["mcp".into()],
                        ..FingerprintSpec::default()
                    }),
                    ..JobSpec::default()
                },
                "invalid --paths item \"mcp\"",
            ),
        ];
        for (spec, want) in cases {
            let e = JobPlan::resolve(&spec).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn a_single_shard_is_the_whole_job() {
        let s = JobSpec {
            shard: Some(Shard { index: 0, count: 1 }),
            ..JobSpec::default()
        };
        assert_eq!(JobPlan::resolve(&s).unwrap().shard, None);
    }
}
