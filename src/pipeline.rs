//! One run of a [`JobPlan`]: announce sources → host discovery → sweep → fingerprint →
//! records.
//!
//! Both `scan` and the daemon call [`run`]. It expands the plan's targets (hostnames, `@FILE`,
//! `local`) for this run, computes the limits the plan left open (window, rate, threads, seed),
//! runs ICMP host discovery beside mDNS/SRV, sweeps, and fingerprints open ports while the
//! sweep goes on. Results leave as [`Event`]s over a bounded channel and the run's facts come
//! back as a [`Summary`]; nothing here prints. A receiver that goes away (a closed pipe)
//! stops the run early, as Ctrl-C does.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::discover::candidate::Candidate;
use crate::discover::icmp::{self, PingOptions, PingStats};
use crate::discover::local;
use crate::discover::sweep::{
    HostMask, Sweep, SweepError, SweepOptions, SweepStats, DEFAULT_LAN_RATE, FD_RESERVE,
    LOOPBACK_DEFAULT_CONCURRENCY, MAX_DEFAULT_CONCURRENCY,
};
use crate::finding::{rfc3339, Origin, PortState, ProbeResult, Record};
use crate::fingerprint::carry::Carry;
use crate::fingerprint::{Fingerprint, Fingerprinter, ProbeTarget, Verdict};
use crate::gather::{Announced, GatherError, OutOfScope};
use crate::plan::JobPlan;
use crate::target::{self, TargetError, TargetSet, TargetSpec};

/// Results buffered between the engine and the consumer; bounded so a slow consumer slows
/// the sweep instead of growing memory.
const RESULT_CHANNEL: usize = 4096;

/// Why a run could not happen (exit code 2 for `scan`; a failed run for the daemon).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A target file could not be read, or a target in it is malformed.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Too many probes without force.
    #[error("the sweep has {total} probes ({addresses} addresses × {ports} ports), above --max-targets {max}; narrow the targets or ports, raise --max-targets, or pass --force")]
    TooLarge {
        /// Probes planned.
        total: u64,
        /// Addresses.
        addresses: u64,
        /// Ports.
        ports: usize,
        /// The limit.
        max: u64,
    },
    /// Interfaces could not be listed for `local`.
    #[error("cannot list network interfaces for --local: {0}")]
    Interfaces(#[source] std::io::Error),
    /// The engine failed.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] crate::fingerprint::http::ClientError),
    /// mDNS/DNS could not start.
    #[error(transparent)]
    Gather(#[from] GatherError),
    /// `shard: auto` without its members, or with too many addresses to split.
    #[error(transparent)]
    Shard(#[from] crate::kube::peers::PeersError),
    /// `shard: auto` and this run has no member list (the API could not be read).
    #[error("shard: auto: this run has no list of the DaemonSet's ready pods (see the error logged before it); the run is skipped rather than sweep addresses another pod owns")]
    NoMembers,
}

/// What a run streams to its consumer.
#[derive(Debug)]
pub enum Event {
    /// ICMP host discovery started; its counters.
    Ping(Arc<PingStats>),
    /// The sweep started; its counters.
    Sweep(Arc<SweepStats>),
    /// One record: every open port (fingerprinted or not), and ports in other states the
    /// plan's `report` asks for.
    Record(Box<Record>),
}

/// What a run may be given besides its plan.
#[derive(Debug, Default)]
pub struct Inputs {
    /// mDNS answers already known from a browser that keeps running between runs (the
    /// daemon); when set, the run does not browse on its own.
    pub mdns_known: Option<Vec<Candidate>>,
    /// Advisory facts kept between the runs of one daemon job (see
    /// [`crate::fingerprint::carry`]); `scan` passes none and reads everything.
    pub carry: Option<Arc<Carry>>,
    /// `shard: auto`: this run's members, read by the daemon at the run's start; a
    /// `shard: auto` plan without them fails rather than sweep what other pods own.
    pub members: Option<crate::kube::peers::ShardMembers>,
}

/// End-of-run facts (the `scan` object of JSON output).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// When the sweep started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// Wall time in seconds.
    pub duration_s: f64,
    /// Targets as typed (after defaults and --local).
    pub targets: Vec<String>,
    /// Port list, folded.
    pub ports: String,
    /// Addresses swept.
    pub addresses: u64,
    /// Planned probes (addresses × ports).
    pub probes_total: u64,
    /// Probes concluded (less than total when interrupted).
    pub probes_done: u64,
    /// Open ports.
    pub open: u64,
    /// Closed ports.
    pub closed: u64,
    /// Filtered ports (no answer after retries).
    pub filtered: u64,
    /// Unreachable probes.
    pub unreachable: u64,
    /// Probes skipped because host discovery found the host down.
    pub skipped_host_down: u64,
    /// Hosts that answered ICMP echo (null when discovery did not run).
    pub hosts_up: Option<u64>,
    /// Retry attempts sent.
    pub retries: u64,
    /// Whether the scan was stopped early (Ctrl-C).
    pub interrupted: bool,
    /// Whether open ports were fingerprinted.
    pub fingerprinted: bool,
    /// Open ports by verdict (when fingerprinted).
    pub kinds: KindCounts,
    /// Open ports fingerprinted as not MCP and left out (pass --all to list them).
    pub not_listed: u64,
    /// Open ports behind a host-wide authentication wall (verdict `http`, `auth.required`):
    /// an OAuth API, or an MCP server behind an API-key proxy; counted apart because only a
    /// key tells them apart (`--bearer`, `--header`).
    pub auth_walls: u64,
    /// In-scope addresses announced over mDNS or DNS SRV.
    pub announced: u64,
    /// Announced addresses outside the scope: reported, never contacted.
    pub out_of_scope: Vec<OutOfScope>,
}

/// Open ports by fingerprint verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindCounts {
    /// Confirmed MCP servers.
    pub mcp: u64,
    /// MCP servers demanding authorization.
    pub mcp_auth_required: u64,
    /// Probable MCP servers.
    pub mcp_likely: u64,
    /// Other HTTP services.
    pub http: u64,
    /// Not HTTP.
    pub open: u64,
}

impl KindCounts {
    /// Count one verdict.
    pub fn add(&mut self, v: Verdict) {
        *match v {
            Verdict::Mcp => &mut self.mcp,
            Verdict::McpAuthRequired => &mut self.mcp_auth_required,
            Verdict::McpLikely => &mut self.mcp_likely,
            Verdict::Http => &mut self.http,
            Verdict::Open => &mut self.open,
        } += 1;
    }
}

/// This run's targets and limits, from the plan and the machine of this moment.
struct Prepared {
    labels: Vec<String>,
    targets: Arc<TargetSet>,
    sweep: SweepOptions,
    ping: Option<PingOptions>,
    discovery: crate::gather::Discovery,
}

async fn prepare(
    plan: &JobPlan,
    members: Option<&crate::kube::peers::ShardMembers>,
) -> Result<Prepared, PipelineError> {
    let mut specs = plan.targets.clone();
    if plan.local {
        let (nets, skipped) =
            local::local_subnets(&plan.local_filter).map_err(PipelineError::Interfaces)?;
        for s in skipped {
            let s = s.to_string();
            if local::first_time(&s) {
                tracing::warn!("local: {s}");
            }
        }
        let none = "local: no attached subnet passed the filter (see the skips logged above)";
        if nets.is_empty() && local::first_time(none) {
            tracing::warn!("{none}");
        }
        for n in nets {
            let line = format!("local: {} {}", n.interface, n.net);
            if local::first_time(&line) {
                tracing::info!("{line}");
            }
            specs.push(TargetSpec::Net(n.net));
        }
    }
    let (include, warn_in) = target::expand(&specs).await?;
    let (exclude, warn_ex) = target::expand(&plan.exclude).await?;
    for w in warn_in.iter().chain(&warn_ex) {
        tracing::warn!("{w}");
    }
    let mut targets = TargetSet::new(include, exclude);
    let mut shard_label = None;
    if plan.shard_auto {
        let m = members.ok_or(PipelineError::NoMembers)?;
        let all = targets.len();
        targets = m.share(&targets)?;
        tracing::info!(
            "shard: auto: {} of {all} addresses are this pod's ({}), split over {} ready pod(s)",
            targets.len(),
            m.me,
            m.pods.len()
        );
        shard_label = Some(format!(
            "shard auto: {} of {all} addresses, {} ready pods",
            targets.len(),
            m.pods.len()
        ));
    }
    let ports = &plan.ports;
    let total = targets.len().saturating_mul(ports.len() as u64);
    if let Some(max) = plan.max_targets.filter(|max| total > *max) {
        return Err(PipelineError::TooLarge {
            total,
            addresses: targets.len(),
            ports: ports.len(),
            max,
        });
    }
    let s = &plan.sweep;
    let nofile = crate::sys::raise_nofile_limit();
    let loopback_only = targets.all_loopback();
    let concurrency = s.concurrency.unwrap_or_else(|| {
        let by_fds =
            (nofile.saturating_sub(FD_RESERVE).max(16) as usize).min(MAX_DEFAULT_CONCURRENCY);
        if loopback_only {
            by_fds.min(LOOPBACK_DEFAULT_CONCURRENCY)
        } else {
            by_fds
        }
    });
    let rate = s.rate.or((!loopback_only).then_some(DEFAULT_LAN_RATE));
    let shards = s
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let seed = s.seed.unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()).rotate_left(32)
    });
    // Discovery pays off only when there is more than one non-loopback host to skip.
    let ping = (s.ping && !loopback_only && targets.len() > 1).then(|| PingOptions {
        attempts: icmp::DEFAULT_PING_ATTEMPTS,
        spacing: icmp::DEFAULT_PING_SPACING,
        timeout: s.ping_timeout,
        concurrency: icmp::DEFAULT_PING_CONCURRENCY.min(concurrency.max(1)),
        rate,
    });
    tracing::debug!(concurrency, ?rate, shards, nofile, "sweep limits");
    let discovery = crate::gather::discovery(&plan.discovery, targets.ranges())?;
    let mut labels: Vec<String> = specs.iter().map(ToString::to_string).collect();
    if let Some(sh) = plan.shard {
        labels.push(format!("shard {}/{}", sh.index, sh.count));
    }
    labels.extend(shard_label);
    Ok(Prepared {
        labels,
        targets: Arc::new(targets),
        sweep: SweepOptions {
            concurrency,
            shards,
            rate,
            timeout: s.timeout,
            min_timeout: s.min_timeout,
            retries: s.retries,
            max_retries: s.max_retries,
            report: s.report,
            seed,
            initial_rtt: None,
            partition: plan
                .shard
                .map(|sh| (u64::from(sh.index), u64::from(sh.count))),
        },
        ping,
        discovery,
    })
}

/// Catalog entries followed at most per run: a catalog cannot make a scan unbounded.
pub const MAX_CATALOG_CANDIDATES: usize = 64;

/// Addresses an MCP Catalog in `d`'s fingerprint names, other than `d`'s own: (address,
/// entry identifier, the MCP path when the card sits at the reserved `<mcp-url>/server-card`).
/// Only IP literals: a host name in a catalog is not resolved (that would be a DNS query
/// the user never asked for). A catalog candidate's own catalog is not followed.
fn catalog_candidates(d: &Done) -> Vec<(SocketAddr, String, Option<String>)> {
    let own = SocketAddr::new(d.res.ip, d.res.port);
    if d.ann
        .as_ref()
        .is_some_and(|a| a.origins.contains(&Origin::Catalog))
    {
        return Vec::new();
    }
    let Some(card) = d.fp.as_ref().and_then(|f| f.server_card.as_ref()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in &card.catalog {
        let Ok(u) = url::Url::parse(&e.url) else {
            continue;
        };
        let ip = match u.host() {
            Some(url::Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
            _ => continue,
        };
        let Some(port) = u.port_or_known_default() else {
            continue;
        };
        let addr = SocketAddr::new(ip, port);
        if addr == own {
            continue;
        }
        let path = u
            .path()
            .strip_suffix("/server-card")
            .filter(|p| p.starts_with('/'))
            .map(str::to_string);
        out.push((addr, e.identifier.clone(), path));
    }
    out
}

/// Run `plan` once, streaming [`Event`]s to `events`, until done or `shutdown` fires.
pub async fn run(
    plan: &JobPlan,
    inputs: Inputs,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> Result<Summary, PipelineError> {
    let prepared = prepare(plan, inputs.members.as_ref()).await?;
    let fingerprinter = plan
        .fingerprint
        .clone()
        .map(Fingerprinter::new)
        .transpose()?
        .map(|f| match &inputs.carry {
            Some(c) => f.with_carry(c.clone()),
            None => f,
        });
    let started = SystemTime::now();
    let clock = Instant::now();
    let Prepared {
        labels,
        targets,
        sweep: sweep_opts,
        ping,
        discovery,
    } = prepared;
    let mut summary = Summary {
        started_at: rfc3339(started),
        targets: labels,
        ports: plan.ports.to_string(),
        addresses: targets.len(),
        fingerprinted: fingerprinter.is_some(),
        ..Summary::default()
    };
    if targets.is_empty() && !discovery.any() {
        tracing::warn!("nothing to scan: every target was excluded or did not resolve");
    }
    // A consumer that went away stops the run; `stop` is this run's own token.
    let stop = shutdown.child_token();

    // Host discovery (ICMP) and announce-based discovery (mDNS, SRV) run side by side.
    let mut alive: Option<Arc<HostMask>> = None;
    let mut initial_rtt = None;
    let ping_fut = async {
        let popts = ping.clone().filter(|_| !targets.is_empty())?;
        let stats = Arc::new(PingStats::default());
        let _ = events.send(Event::Ping(stats.clone())).await;
        Some(icmp::discover(&targets, &popts, stats, stop.clone()).await)
    };
    let gather_fut = async {
        if discovery.any() {
            crate::gather::gather_with(&discovery, inputs.mdns_known, &stop)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (ping_res, gathered) = tokio::join!(ping_fut, gather_fut);
    let mut gathered = gathered?.unwrap_or_default();
    for note in &gathered.notes {
        tracing::warn!("{note}");
    }
    summary.announced = gathered.candidates.len() as u64;
    summary.out_of_scope = gathered.out_of_scope.clone();
    match ping_res {
        None => {}
        Some(Err(e)) => tracing::warn!("{e}"),
        Some(Ok(d)) if d.answered == 0 && d.pinged > 0 => tracing::warn!(
            "no host answered ICMP echo ({} pinged); sweeping every host (pass --no-ping to skip discovery)",
            d.pinged
        ),
        Some(Ok(mut d)) => {
            tracing::info!("host discovery: {} of {} hosts answered ICMP echo", d.answered, d.pinged);
            // A host that announced itself is up, whatever ICMP said.
            for addr in gathered.candidates.keys() {
                if let Some(i) = targets.index_of(addr.ip()) {
                    d.mask.set(i);
                }
            }
            summary.hosts_up = Some(d.mask.count());
            alive = Some(Arc::new(d.mask));
            initial_rtt = d.median_rtt;
        }
    }

    // Sweep.
    let report = sweep_opts.report;
    let connect_timeout = sweep_opts.timeout;
    let stats = Arc::new(SweepStats::default());
    let (tx, mut rx) = mpsc::channel(RESULT_CHANNEL);
    let sweep_opts = SweepOptions {
        initial_rtt,
        ..sweep_opts
    };
    let sweep = Sweep::new(targets.clone(), plan.ports.clone(), alive, sweep_opts);
    let _ = events.send(Event::Sweep(stats.clone())).await;
    let engine = tokio::spawn(sweep.run(tx, stats.clone(), stop.clone()));

    let mut out = Out {
        events: &events,
        gone: false,
    };
    // Fingerprints run beside the sweep, at most `fingerprint_concurrency` at once; waiting
    // for a permit stops reading results, which backs pressure up into the sweep.
    let permits = Arc::new(tokio::sync::Semaphore::new(plan.fingerprint_concurrency));
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let mut pending: HashMap<tokio::task::Id, (ProbeResult, Option<Announced>)> = HashMap::new();
    let mut sweep_done = false;
    let mut direct_started = false;
    // Catalog candidates waiting for the sweep to end, and every address already probed
    // directly or queued (so no address is probed twice).
    let mut late: Vec<(SocketAddr, Announced)> = Vec::new();
    let mut queued: HashSet<SocketAddr> = gathered.candidates.keys().copied().collect();
    let mut from_catalogs = 0usize;
    let mut aborted = false;
    loop {
        // Announced addresses the sweep did not cover are probed directly once it is done.
        if sweep_done && (!direct_started || !late.is_empty()) {
            let mut rest: Vec<(SocketAddr, Announced)> = if direct_started {
                Vec::new()
            } else {
                gathered.candidates.drain().collect()
            };
            direct_started = true;
            rest.append(&mut late);
            rest.sort_by_key(|(a, _)| *a);
            for (addr, ann) in rest {
                if stop.is_cancelled() {
                    break;
                }
                let fp = fingerprinter.clone();
                let Some(permit) = permit_unless_stopped(&permits, &stop).await else {
                    break;
                };
                let placeholder = ProbeResult {
                    ip: addr.ip(),
                    port: addr.port(),
                    state: PortState::Open,
                    rtt: None,
                    attempts: 1,
                    seen_at: SystemTime::now(),
                };
                let ann2 = ann.clone();
                let handle = tasks.spawn(async move {
                    let _permit = permit;
                    let res = crate::discover::tcp::connect_once(addr, connect_timeout).await;
                    let fp = match (&fp, res.state) {
                        (Some(f), PortState::Open) => {
                            Some(f.fingerprint(&target_for(addr, Some(&ann2))).await)
                        }
                        _ => None,
                    };
                    Done {
                        res,
                        fp,
                        ann: Some(ann2),
                        swept: false,
                    }
                });
                pending.insert(handle.id(), (placeholder, Some(ann)));
            }
        }
        tokio::select! {
            res = rx.recv(), if !sweep_done => match res {
                Some(res) => {
                    let ann = gathered.candidates.remove(&SocketAddr::new(res.ip, res.port));
                    match (&fingerprinter, res.state) {
                        (Some(fp), PortState::Open) => {
                            let fp = fp.clone();
                            // Waiting for a permit must not outlast a stop: every permit may
                            // be held by a fingerprint that only the stop branch aborts.
                            let Some(permit) = permit_unless_stopped(&permits, &stop).await else {
                                let mut r = make_record(Done { res, fp: None, ann, swept: true });
                                r.evidence.push("interrupted before fingerprinting finished".into());
                                out.send(r).await;
                                continue;
                            };
                            let target = target_for(SocketAddr::new(res.ip, res.port), ann.as_ref());
                            let ann2 = ann.clone();
                            let handle = tasks.spawn(async move {
                                let _permit = permit;
                                let f = fp.fingerprint(&target).await;
                                Done { res, fp: Some(f), ann: ann2, swept: true }
                            });
                            pending.insert(handle.id(), (res, ann));
                        }
                        _ => out.send(make_record(Done { res, fp: None, ann, swept: true })).await,
                    }
                }
                None => sweep_done = true,
            },
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => match joined {
                Ok((id, done)) => {
                    pending.remove(&id);
                    for (addr, name, path) in catalog_candidates(&done) {
                        let swept = targets.index_of(addr.ip()).is_some()
                            && plan.ports.as_slice().contains(&addr.port());
                        if swept || queued.contains(&addr) {
                            continue;
                        }
                        if !discovery.srv_scope.allows(addr.ip()) {
                            let o = OutOfScope { ip: addr.ip(), port: addr.port(), origin: Origin::Catalog, name };
                            if !summary.out_of_scope.contains(&o) {
                                summary.out_of_scope.push(o);
                            }
                            continue;
                        }
                        if from_catalogs >= MAX_CATALOG_CANDIDATES {
                            tracing::warn!("more than {MAX_CATALOG_CANDIDATES} catalog entries: {addr} not probed");
                            continue;
                        }
                        queued.insert(addr);
                        from_catalogs += 1;
                        let hints = crate::discover::candidate::Hints { path, ..Default::default() };
                        late.push((addr, Announced { origins: vec![Origin::Catalog], names: vec![name], hints }));
                    }
                    if done.res.state == PortState::Open || report.contains(done.res.state) {
                        out.send(make_record(done)).await;
                    }
                }
                Err(e) => {
                    // Aborted on shutdown (or panicked): the port is still reported.
                    if let Some((res, ann)) = pending.remove(&e.id()) {
                        let mut r = make_record(Done { res, fp: None, ann, swept: true });
                        r.evidence.push("interrupted before fingerprinting finished".into());
                        out.send(r).await;
                    }
                }
            },
            // Once only: an always-ready branch would spin this task and starve the aborted
            // ones of the poll that lets them finish (tokio keeps a woken task in the
            // waking worker's LIFO slot).
            () = stop.cancelled(), if !aborted && !tasks.is_empty() => {
                aborted = true;
                tasks.abort_all();
            }
            else => {
                if sweep_done && direct_started {
                    break;
                }
            }
        }
        if out.gone && !aborted {
            aborted = true;
            stop.cancel();
            tasks.abort_all();
        }
    }
    let interrupted = match engine.await {
        Ok(r) => r?,
        Err(_) => true,
    };

    summary.finished_at = rfc3339(SystemTime::now());
    summary.duration_s = (clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    summary.probes_total = stats.total.load(Ordering::Relaxed);
    summary.probes_done = stats.done.load(Ordering::Relaxed);
    summary.open = stats.open.load(Ordering::Relaxed);
    summary.closed = stats.closed.load(Ordering::Relaxed);
    summary.filtered = stats.filtered.load(Ordering::Relaxed);
    summary.unreachable = stats.unreachable.load(Ordering::Relaxed);
    summary.skipped_host_down = stats.skipped.load(Ordering::Relaxed);
    summary.retries = stats.retries.load(Ordering::Relaxed);
    summary.interrupted = interrupted && shutdown.is_cancelled();
    let exhausted = stats.exhausted.load(Ordering::Relaxed);
    if exhausted > 0 {
        tracing::warn!(
            "ran short of file descriptors or ephemeral ports {exhausted} times; the sweep slowed down to cope (lower --concurrency to avoid it)"
        );
    }
    Ok(summary)
}

/// A fingerprinting permit, or `None` once `stop` fires (or the semaphore closes).
async fn permit_unless_stopped(
    permits: &Arc<tokio::sync::Semaphore>,
    stop: &CancellationToken,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    tokio::select! {
        p = permits.clone().acquire_owned() => p.ok(),
        () = stop.cancelled() => None,
    }
}

/// The consumer side of a run; notes when the consumer went away.
struct Out<'a> {
    events: &'a mpsc::Sender<Event>,
    gone: bool,
}

impl Out<'_> {
    async fn send(&mut self, r: Record) {
        if !self.gone && self.events.send(Event::Record(Box::new(r))).await.is_err() {
            self.gone = true;
        }
    }
}

/// A probed address: its sweep (or direct) result, fingerprint and announcements.
struct Done {
    res: ProbeResult,
    fp: Option<Fingerprint>,
    ann: Option<Announced>,
    /// Whether the sweep probed it (origin `sweep`).
    swept: bool,
}

fn make_record(d: Done) -> Record {
    let mut r = Record::from(&d.res);
    if !d.swept {
        r.origins.clear();
    }
    if let Some(a) = &d.ann {
        for o in &a.origins {
            if !r.origins.contains(o) {
                r.origins.push(*o);
            }
        }
        r.announced_as.clone_from(&a.names);
    }
    let mut r = match d.fp {
        Some(f) => r.with_fingerprint(f),
        None => r,
    };
    if let Some(v) = d.ann.as_ref().and_then(|a| a.hints.version.as_ref()) {
        r.evidence.push(format!("announced version {v:?}"));
    }
    r
}

fn target_for(addr: SocketAddr, ann: Option<&Announced>) -> ProbeTarget {
    ProbeTarget {
        addr,
        https: None,
        path: None,
        hint_path: ann.and_then(|a| a.hints.path.clone()),
        // Every address probed here was named (a sweep target) or admitted by the scope
        // wall (an announcement); those outside it are never contacted at all.
        credentials: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::server_card::{CatalogEntry, ServerCard};

    fn done(entries: &[&str], ann: Option<Announced>) -> Done {
        let card = ServerCard {
            catalog: entries
                .iter()
                .map(|u| CatalogEntry {
                    identifier: format!("urn:{u}"),
                    display_name: String::new(),
                    url: (*u).to_string(),
                })
                .collect(),
            ..ServerCard::default()
        };
        Done {
            res: ProbeResult {
                ip: "10.0.0.1".parse().unwrap(),
                port: 8000,
                state: PortState::Open,
                rtt: None,
                attempts: 1,
                seen_at: SystemTime::now(),
            },
            fp: Some(Fingerprint {
                verdict: Verdict::Mcp,
                confidence: 1.0,
                url: None,
                transport: None,
                mcp: None,
                auth: None,
                http: None,
                server_card: Some(card),
                evidence: Vec::new(),
                steps: Vec::new(),
            }),
            ann,
            swept: true,
        }
    }

    #[test]
    fn catalog_candidates_are_other_ip_literals_one_level_deep() {
        let d = done(
            &[
                "http://10.0.0.1:8000/mcp/server-card", // itself
                "http://10.0.0.2:9000/tools/server-card",
                "https://[fd00::5]/card.json",
                "https://cards.example.com/x/server-card", // a name: not resolved
                "not a url",
            ],
            None,
        );
        let got = catalog_candidates(&d);
        assert_eq!(
            got,
            [
                (
                    "10.0.0.2:9000".parse().unwrap(),
                    "urn:http://10.0.0.2:9000/tools/server-card".to_string(),
                    Some("/tools".to_string())
                ),
                (
                    "[fd00::5]:443".parse().unwrap(),
                    "urn:https://[fd00::5]/card.json".to_string(),
                    None
                ),
            ]
        );
        let from_catalog = Announced {
            origins: vec![Origin::Catalog],
            ..Announced::default()
        };
        assert!(
            catalog_candidates(&done(&["http://10.0.0.2:9000/x"], Some(from_catalog))).is_empty(),
            "a catalog candidate's own catalog is not followed"
        );
    }
}
