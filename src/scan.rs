//! `mcp-scout scan`: flags → job plan → one pipeline run → the chosen writer.
//!
//! Glue only: the flags become a [`JobSpec`](crate::plan::JobSpec) (in [`crate::cli`]), the
//! plan validates it, [`crate::pipeline::run`] does the work, and this file decides what is
//! shown (MCP servers only unless `--all`), draws the progress line on a terminal and writes.

use std::io::IsTerminal;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::{OutputFormat, ScanArgs};
use crate::finding::Record;
use crate::fingerprint::Verdict;
use crate::output::{progress, ResultWriter, Summary, WriteError};
use crate::pipeline::{self, Event, Inputs, PipelineError};
use crate::plan::{JobPlan, PlanError};

pub use crate::plan::DEFAULT_TARGETS;

/// Events buffered between the pipeline and the writer.
const EVENT_CHANNEL: usize = 1024;

/// Why a scan could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Bad settings.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The run failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// Results could not be written.
    #[error(transparent)]
    Write(WriteError),
    /// A `--push` value is unusable (before scanning).
    #[error(transparent)]
    PushSpec(#[from] crate::sinks::push::PushSpecError),
    /// A push failed (after the results were written).
    #[error("{failed} of {total} push(es) failed: {detail}")]
    Push {
        /// Pushes that failed.
        failed: usize,
        /// Pushes tried.
        total: usize,
        /// Each failure: target and error.
        detail: String,
    },
}

/// How the scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutcome {
    /// At least one reported record.
    Found,
    /// Nothing matched.
    NothingFound,
}

/// Run `mcp-scout scan`.
pub async fn run(args: ScanArgs, shutdown: CancellationToken) -> Result<ScanOutcome, ScanError> {
    let plan = JobPlan::resolve(&args.job_spec())?;
    let pushes = args
        .push
        .iter()
        .map(|p| crate::sinks::push::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut found: Vec<Record> = Vec::new();
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL);
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { pipeline::run(&plan, Inputs::default(), tx, shutdown).await }
    });

    let mut writer = ResultWriter::new(args.output.into(), std::io::stdout().lock());
    let mut shown = Shown {
        all: args.all || args.no_fingerprint,
        ..Shown::default()
    };
    let mut bar: Option<(CancellationToken, JoinHandle<()>)> = None;
    let mut write_err = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Ping(stats) => {
                if show_progress {
                    stop_bar(bar.take()).await;
                    bar = Some(start_bar(progress::Phase::Ping(stats)));
                }
            }
            Event::Sweep(stats) => {
                if show_progress {
                    stop_bar(bar.take()).await;
                    bar = Some(start_bar(progress::Phase::Sweep(stats)));
                }
            }
            Event::Record(r) => {
                if let Some(r) = shown.admit(*r) {
                    if !pushes.is_empty() && r.kind.is_some_and(Verdict::is_mcp) {
                        found.push(r.clone());
                    }
                    if let Err(e) = writer.push(r) {
                        write_err = Some(e);
                        break; // dropping the receiver stops the run
                    }
                }
            }
        }
    }
    drop(rx);
    let result = run.await;
    stop_bar(bar.take()).await;
    let mut summary = match result {
        Ok(r) => r?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    summary.kinds = std::mem::take(&mut shown.summary.kinds);
    summary.not_listed = shown.summary.not_listed;
    summary.auth_walls = shown.summary.auth_walls;

    match write_err {
        Some(WriteError::Closed) => {}
        Some(e) => return Err(ScanError::Write(e)),
        None => match writer.finish(&summary) {
            Ok(()) | Err(WriteError::Closed) => {}
            Err(e) => return Err(ScanError::Write(e)),
        },
    }
    if std::io::stderr().is_terminal() && !matches!(args.output, OutputFormat::Table) {
        eprintln!("{}", crate::output::summary_line(&summary));
    }
    if summary.interrupted {
        tracing::warn!(
            "interrupted after {} of {} probes",
            summary.probes_done,
            summary.probes_total
        );
    }
    if !pushes.is_empty() {
        push(pushes, found).await?;
    }
    Ok(if shown.found > 0 {
        ScanOutcome::Found
    } else {
        ScanOutcome::NothingFound
    })
}

/// Push the scan's servers to every `--push` target; a line per target on stderr.
async fn push(plans: Vec<crate::sinks::SinkPlan>, records: Vec<Record>) -> Result<(), ScanError> {
    let servers: Vec<_> = records
        .into_iter()
        .filter_map(crate::store::StoredServer::from_scan)
        .collect();
    let total = plans.len();
    let mut failures = Vec::new();
    for plan in plans {
        let mesh = matches!(plan.kind, crate::sinks::SinkKind::Mesh { .. });
        let etcd = matches!(plan.kind, crate::sinks::SinkKind::Etcd { .. });
        let done = crate::sinks::push::push(plan, &servers).await;
        match &done.error {
            None => {
                eprintln!("push: {}: {} server(s) registered", done.to, done.servers);
                if mesh && done.servers > 0 {
                    eprintln!(
                        "push: note: MCP Mesh marks these servers unhealthy about 20 s from now and evicts them about a minute later, unless something heartbeats them: run the daemon with an mcp-mesh sink to keep them"
                    );
                }
                if etcd && done.servers > 0 {
                    eprintln!("push: note: etcd entries written by a push carry no lease and stay until deleted; the daemon's etcd sink keeps them on a lease instead");
                }
            }
            Some(e) => {
                eprintln!("push: {}: failed: {e}", done.to);
                failures.push(format!("{}: {e}", done.to));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ScanError::Push {
            failed: failures.len(),
            total,
            detail: failures.join("; "),
        })
    }
}

fn start_bar(phase: progress::Phase) -> (CancellationToken, JoinHandle<()>) {
    let stop = CancellationToken::new();
    let handle = tokio::spawn(progress::run(phase, stop.clone()));
    (stop, handle)
}

async fn stop_bar(bar: Option<(CancellationToken, JoinHandle<()>)>) {
    if let Some((stop, handle)) = bar {
        stop.cancel();
        let _ = handle.await;
    }
}

/// What is shown: non-MCP open ports are hidden unless `--all`, and counted either way.
#[derive(Default)]
struct Shown {
    all: bool,
    found: u64,
    summary: Summary,
}

impl Shown {
    fn admit(&mut self, r: Record) -> Option<Record> {
        if let (Some(kind), Some(_)) = (r.kind, r.confidence) {
            self.summary.kinds.add(kind);
            if kind == Verdict::Http && r.auth.as_ref().is_some_and(|a| a.required) {
                self.summary.auth_walls += 1;
            }
            // A record without a confidence (cut short by Ctrl-C) is always shown.
            if !self.all && !kind.is_mcp() {
                self.summary.not_listed += 1;
                return None;
            }
        }
        self.found += 1;
        Some(r)
    }
}
