//! `mcp-scout scan`: turn what the user typed into validated settings, run host discovery
//! and the sweep, and stream results to the chosen writer.
//!
//! This is glue: it owns no network logic. Raw arguments ([`ScanArgs`]) become typed values
//! ([`ScanPlan`]) here, so the engines never see a string.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::ScanArgs;
use crate::discover::icmp::{self, PingOptions, PingStats};
use crate::discover::local;
use crate::discover::sweep::DEFAULT_MIN_TIMEOUT;
use crate::discover::sweep::{
    HostMask, StateFilter, Sweep, SweepError, SweepOptions, SweepStats, DEFAULT_LAN_RATE,
    FD_RESERVE, LOOPBACK_DEFAULT_CONCURRENCY, MAX_DEFAULT_CONCURRENCY,
};
use crate::finding::{rfc3339, PortState, ProbeResult, Record};
use crate::fingerprint::{Fingerprint, Fingerprinter, ProbeTarget};
use crate::gather::{Announced, Discovery};
use crate::output::{progress, ResultWriter, Summary, WriteError};
use crate::ports::{PortList, PortSpecError};
use crate::target::{self, TargetError, TargetSet, TargetSpec};

/// Targets swept when none are given: the local machine.
pub const DEFAULT_TARGETS: &[&str] = &["127.0.0.1", "::1"];
/// Results buffered between the engine and the writer; bounded so a slow stdout slows the
/// sweep instead of growing memory.
const RESULT_CHANNEL: usize = 4096;

/// Why a scan could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A bad target or exclusion.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A bad `-p`.
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
        min: std::time::Duration,
        /// --timeout.
        max: std::time::Duration,
    },
    /// Too many probes without --force.
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
    /// Interfaces could not be listed for `--local`.
    #[error("cannot list network interfaces for --local: {0}")]
    Interfaces(#[source] std::io::Error),
    /// The engine failed.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    /// Results could not be written.
    #[error(transparent)]
    Write(WriteError),
    /// Bad fingerprinting options, or the HTTP client could not be built.
    #[error(transparent)]
    Fingerprint(#[from] crate::probe::ProbeError),
    /// Bad discovery options, or mDNS/DNS could not start.
    #[error(transparent)]
    Gather(#[from] crate::gather::GatherError),
}

/// How the scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutcome {
    /// At least one reported record.
    Found,
    /// Nothing matched.
    NothingFound,
}

fn announce_requested(args: &ScanArgs) -> bool {
    let d = &args.discovery;
    d.mdns.is_some() || d.mdns_all || !d.srv.is_empty()
}

fn parse_report(s: &str) -> Result<StateFilter, ScanError> {
    let mut f = StateFilter::OPEN;
    for tok in s.split(',').map(str::trim) {
        f = match tok {
            "open" => f,
            "all" => StateFilter::ALL,
            "closed" => f.with(PortState::Closed),
            "filtered" => f.with(PortState::Filtered),
            "unreachable" => f.with(PortState::Unreachable),
            _ => return Err(ScanError::Report(s.to_string())),
        };
    }
    Ok(f)
}

/// Everything resolved: targets expanded, limits computed.
struct ScanPlan {
    discovery: Discovery,
    labels: Vec<String>,
    targets: Arc<TargetSet>,
    ports: PortList,
    sweep: SweepOptions,
    ping: Option<PingOptions>,
}

async fn plan(args: &ScanArgs) -> Result<ScanPlan, ScanError> {
    let ports = PortList::parse(&args.ports)?;
    let report = parse_report(&args.report)?;
    // An explicit floor above the ceiling is a contradiction; the default floor simply
    // follows a low --timeout down.
    let min_timeout = match args.min_timeout {
        Some(min) if min > args.timeout => {
            return Err(ScanError::TimeoutOrder {
                min,
                max: args.timeout,
            })
        }
        Some(min) => min,
        None => DEFAULT_MIN_TIMEOUT.min(args.timeout),
    };
    let mut specs = args
        .targets
        .iter()
        .map(|t| TargetSpec::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    if args.local {
        let (nets, skipped) = local::local_subnets().map_err(ScanError::Interfaces)?;
        for s in skipped {
            tracing::warn!("--local: {s}");
        }
        if nets.is_empty() {
            tracing::warn!("--local: no IPv4 or narrow IPv6 subnet is attached to any interface");
        }
        for n in nets {
            tracing::info!("--local: {} {}", n.interface, n.net);
            specs.push(TargetSpec::Net(n.net));
        }
    } else if specs.is_empty() && !announce_requested(args) {
        specs = DEFAULT_TARGETS
            .iter()
            .map(|t| TargetSpec::parse(t))
            .collect::<Result<_, _>>()?;
    }
    let excludes = args
        .exclude
        .iter()
        .flat_map(|e| e.split(','))
        .filter(|e| !e.trim().is_empty())
        .map(TargetSpec::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let (include, warn_in) = target::expand(&specs).await?;
    let (exclude, warn_ex) = target::expand(&excludes).await?;
    for w in warn_in.iter().chain(&warn_ex) {
        tracing::warn!("{w}");
    }
    let targets = TargetSet::new(include, exclude);
    let total = targets.len().saturating_mul(ports.len() as u64);
    if total > args.max_targets && !args.force {
        return Err(ScanError::TooLarge {
            total,
            addresses: targets.len(),
            ports: ports.len(),
            max: args.max_targets,
        });
    }
    let nofile = crate::sys::raise_nofile_limit();
    let loopback_only = targets.all_loopback();
    let concurrency = match args.concurrency {
        Some(c) => c as usize,
        None => {
            let by_fds =
                (nofile.saturating_sub(FD_RESERVE).max(16) as usize).min(MAX_DEFAULT_CONCURRENCY);
            if loopback_only {
                by_fds.min(LOOPBACK_DEFAULT_CONCURRENCY)
            } else {
                by_fds
            }
        }
    };
    let rate = args.rate.or((!loopback_only).then_some(DEFAULT_LAN_RATE));
    let shards = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let seed = args.seed.unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()).rotate_left(32)
    });
    // Discovery pays off only when there is more than one non-loopback host to skip.
    let ping = (!args.no_ping && !loopback_only && targets.len() > 1).then(|| PingOptions {
        attempts: icmp::DEFAULT_PING_ATTEMPTS,
        spacing: icmp::DEFAULT_PING_SPACING,
        timeout: args.timeout,
        concurrency: icmp::DEFAULT_PING_CONCURRENCY.min(concurrency.max(1)),
        rate,
    });
    tracing::debug!(concurrency, ?rate, shards, nofile, "sweep limits");
    let discovery = crate::gather::discovery(&args.discovery, targets.ranges())?;
    Ok(ScanPlan {
        discovery,
        labels: specs.iter().map(ToString::to_string).collect(),
        targets: Arc::new(targets),
        ports,
        sweep: SweepOptions {
            concurrency,
            shards,
            rate,
            timeout: args.timeout,
            min_timeout,
            retries: args.retries,
            max_retries: args.max_retries,
            report,
            seed,
            initial_rtt: None,
        },
        ping,
    })
}

/// Run `mcp-scout scan`.
pub async fn run(args: ScanArgs, shutdown: CancellationToken) -> Result<ScanOutcome, ScanError> {
    let plan = plan(&args).await?;
    let fingerprinter = if args.no_fingerprint {
        None
    } else {
        let opts = crate::probe::fingerprint_options(&args.fingerprint)?;
        Some(Fingerprinter::new(opts).map_err(crate::probe::ProbeError::from)?)
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let ScanPlan {
        discovery,
        labels,
        targets,
        ports,
        sweep: sweep_opts,
        ping,
    } = plan;
    let mut summary = Summary {
        started_at: rfc3339(started),
        targets: labels,
        ports: ports.to_string(),
        addresses: targets.len(),
        ..Summary::default()
    };

    if targets.is_empty() && !discovery.any() {
        tracing::warn!("nothing to scan: every target was excluded or did not resolve");
    }

    // Host discovery (ICMP) and announce-based discovery (mDNS, SRV) run side by side.
    let mut alive: Option<Arc<HostMask>> = None;
    let mut initial_rtt = None;
    let ping_fut = async {
        let popts = ping.clone().filter(|_| !targets.is_empty())?;
        let stats = Arc::new(PingStats::default());
        let stop = CancellationToken::new();
        let bar = show_progress.then(|| {
            tokio::spawn(progress::run(
                progress::Phase::Ping(stats.clone()),
                stop.clone(),
            ))
        });
        let res = icmp::discover(&targets, &popts, stats, shutdown.clone()).await;
        stop.cancel();
        if let Some(b) = bar {
            let _ = b.await;
        }
        Some(res)
    };
    let gather_fut = async {
        if discovery.any() {
            crate::gather::gather(&discovery, &shutdown).await.map(Some)
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
    let sweep_report = sweep_opts.report;
    let sweep_timeout_val = sweep_opts.timeout;
    let stats = Arc::new(SweepStats::default());
    let (tx, mut rx) = mpsc::channel(RESULT_CHANNEL);
    let sweep_opts = SweepOptions {
        initial_rtt,
        ..sweep_opts
    };
    let sweep = Sweep::new(targets.clone(), ports, alive, sweep_opts);
    let stop_bar = CancellationToken::new();
    let bar = show_progress.then(|| {
        tokio::spawn(progress::run(
            progress::Phase::Sweep(stats.clone()),
            stop_bar.clone(),
        ))
    });
    let engine_stop = shutdown.child_token();
    let engine = tokio::spawn(sweep.run(tx, stats.clone(), engine_stop.clone()));

    let mut writer = ResultWriter::new(args.output, std::io::stdout().lock());
    let sweep_filter = sweep_report;
    let sweep_timeout = sweep_timeout_val;
    summary.fingerprinted = fingerprinter.is_some();
    let mut emit = Emitter {
        writer: &mut writer,
        all: args.all || fingerprinter.is_none(),
        found: 0,
        error: None,
        summary: &mut summary,
    };
    // Fingerprints run beside the sweep, at most `fingerprint_concurrency` at once; waiting
    // for a permit stops reading results, which backs pressure up into the sweep.
    let permits = Arc::new(tokio::sync::Semaphore::new(usize::from(
        args.fingerprint_concurrency,
    )));
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let mut pending: HashMap<tokio::task::Id, (ProbeResult, Option<Announced>)> = HashMap::new();
    let mut sweep_done = false;
    let mut direct_started = false;
    let connect_timeout = sweep_timeout;
    loop {
        // Announced addresses the sweep did not cover are probed directly once it is done.
        if sweep_done && !direct_started {
            direct_started = true;
            let mut rest: Vec<(SocketAddr, Announced)> = gathered.candidates.drain().collect();
            rest.sort_by_key(|(a, _)| *a);
            for (addr, ann) in rest {
                let fp = fingerprinter.clone();
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let placeholder = ProbeResult {
                    ip: addr.ip(),
                    port: addr.port(),
                    state: PortState::Open,
                    rtt: None,
                    attempts: 1,
                    seen_at: std::time::SystemTime::now(),
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
                            let Ok(permit) = permits.clone().acquire_owned().await else { break };
                            let target = target_for(SocketAddr::new(res.ip, res.port), ann.as_ref());
                            let ann2 = ann.clone();
                            let handle = tasks.spawn(async move {
                                let _permit = permit;
                                let f = fp.fingerprint(&target).await;
                                Done { res, fp: Some(f), ann: ann2, swept: true }
                            });
                            pending.insert(handle.id(), (res, ann));
                        }
                        _ => emit.record(make_record(Done { res, fp: None, ann, swept: true })),
                    }
                }
                None => sweep_done = true,
            },
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => match joined {
                Ok((id, done)) => {
                    pending.remove(&id);
                    if done.res.state == PortState::Open || sweep_filter.contains(done.res.state) {
                        emit.record(make_record(done));
                    }
                }
                Err(e) => {
                    // Aborted on shutdown (or panicked): the port is still reported.
                    if let Some((res, ann)) = pending.remove(&e.id()) {
                        let mut r = make_record(Done { res, fp: None, ann, swept: true });
                        r.evidence.push("interrupted before fingerprinting finished".into());
                        emit.record_unfiltered(r);
                    }
                }
            },
            () = shutdown.cancelled(), if !tasks.is_empty() => tasks.abort_all(),
            else => {
                if sweep_done && direct_started {
                    break;
                }
            }
        }
        if emit.error.is_some() {
            engine_stop.cancel();
            tasks.abort_all();
        }
    }
    let found = emit.found;
    let write_err = emit.error.take();
    let interrupted = match engine.await {
        Ok(r) => r?,
        Err(_) => true,
    };
    stop_bar.cancel();
    if let Some(b) = bar {
        let _ = b.await;
    }

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

    match write_err {
        Some(WriteError::Closed) => {}
        Some(e) => return Err(ScanError::Write(e)),
        None => match writer.finish(&summary) {
            Ok(()) | Err(WriteError::Closed) => {}
            Err(e) => return Err(ScanError::Write(e)),
        },
    }
    if std::io::stderr().is_terminal() && !matches!(args.output, crate::cli::OutputFormat::Table) {
        eprintln!("{}", crate::output::summary_line(&summary));
    }
    if summary.interrupted {
        tracing::warn!(
            "interrupted after {} of {} probes",
            summary.probes_done,
            summary.probes_total
        );
    }
    Ok(if found > 0 {
        ScanOutcome::Found
    } else {
        ScanOutcome::NothingFound
    })
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
    }
}

/// Sends records to the writer, hiding non-MCP open ports unless `--all`, and counting.
struct Emitter<'a, W: std::io::Write> {
    writer: &'a mut ResultWriter<W>,
    all: bool,
    found: u64,
    error: Option<WriteError>,
    summary: &'a mut Summary,
}

impl<W: std::io::Write> Emitter<'_, W> {
    fn record(&mut self, r: Record) {
        if let (Some(kind), Some(_)) = (r.kind, r.confidence) {
            self.summary.kinds.add(kind);
            if !self.all && !kind.is_mcp() {
                self.summary.not_listed += 1;
                return;
            }
        }
        self.record_unfiltered(r);
    }

    fn record_unfiltered(&mut self, r: Record) {
        self.found += 1;
        if self.error.is_none() {
            if let Err(e) = self.writer.push(r) {
                self.error = Some(e);
            }
        }
    }
}
