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
    FD_RESERVE, MAX_DEFAULT_CONCURRENCY,
};
use crate::finding::{rfc3339, PortState, ProbeResult, Record};
use crate::fingerprint::{Fingerprint, Fingerprinter, ProbeTarget};
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
}

/// How the scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutcome {
    /// At least one reported record.
    Found,
    /// Nothing matched.
    NothingFound,
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
    } else if specs.is_empty() {
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
    let concurrency = match args.concurrency {
        Some(c) => c as usize,
        None => (nofile.saturating_sub(FD_RESERVE).max(16) as usize).min(MAX_DEFAULT_CONCURRENCY),
    };
    let loopback_only = targets.all_loopback();
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
    Ok(ScanPlan {
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

    if targets.is_empty() {
        tracing::warn!("nothing to scan: every target was excluded or did not resolve");
    }

    // Host discovery.
    let mut alive: Option<Arc<HostMask>> = None;
    if let Some(popts) = ping.filter(|_| !targets.is_empty()) {
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
        match res {
            Err(e) => tracing::warn!("{e}"),
            Ok(d) if d.answered == 0 && d.pinged > 0 => tracing::warn!(
                "no host answered ICMP echo ({} pinged); sweeping every host (pass --no-ping to skip discovery)",
                d.pinged
            ),
            Ok(d) => {
                tracing::info!("host discovery: {} of {} hosts answered ICMP echo", d.answered, d.pinged);
                summary.hosts_up = Some(d.mask.count());
                alive = Some(Arc::new(d.mask));
            }
        }
    }

    // Sweep.
    let stats = Arc::new(SweepStats::default());
    let (tx, mut rx) = mpsc::channel(RESULT_CHANNEL);
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
    let mut tasks: JoinSet<(ProbeResult, Fingerprint)> = JoinSet::new();
    let mut pending: HashMap<tokio::task::Id, ProbeResult> = HashMap::new();
    let mut sweep_done = false;
    loop {
        tokio::select! {
            res = rx.recv(), if !sweep_done => match res {
                Some(res) if res.state == PortState::Open && fingerprinter.is_some() => {
                    let fp = fingerprinter.clone().expect("checked above");
                    let Ok(permit) = permits.clone().acquire_owned().await else { break };
                    let target = ProbeTarget { addr: SocketAddr::new(res.ip, res.port), https: None, path: None };
                    let handle = tasks.spawn(async move {
                        let _permit = permit;
                        let f = fp.fingerprint(&target).await;
                        (res, f)
                    });
                    pending.insert(handle.id(), res);
                }
                Some(res) => emit.record(Record::from(&res)),
                None => sweep_done = true,
            },
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => match joined {
                Ok((id, (res, f))) => {
                    pending.remove(&id);
                    emit.record(Record::from(&res).with_fingerprint(f));
                }
                Err(e) => {
                    // Aborted on shutdown (or panicked): the open port is still reported.
                    if let Some(res) = pending.remove(&e.id()) {
                        let mut r = Record::from(&res);
                        r.evidence.push("interrupted before fingerprinting finished".into());
                        emit.record_unfiltered(r);
                    }
                }
            },
            () = shutdown.cancelled(), if !tasks.is_empty() => tasks.abort_all(),
            else => break,
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
