//! The daemon's jobs: one task per configured job that runs its plan through the same
//! [`pipeline`] as `scan`, on the [`super::schedule`], and hands each run's
//! records to the store in one transaction.
//!
//! A job with `mdns` also keeps an mDNS browser running between runs (`MdnsWatch`): a
//! newly announced server is fingerprinted and stored within seconds (`Store::observe`),
//! each run starts from what the browser knows instead of browsing again, and a goodbye
//! or TTL expiry marks a server known only from mDNS as gone.
//!
//! Each job keeps a [`Carry`] across its runs: a rescan of a server whose handshake shows
//! the same identity reuses its health endpoints, Server Card and `server/discover` answer
//! instead of asking again (bounded and aged; see [`crate::fingerprint::carry`]).
//!
//! [`Jobs`] is the registry the API reads (is a job running, when did it last run) and
//! triggers through, and what a reload diffs against: jobs added, removed or changed.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use futures_util::StreamExt;

use super::metrics::{JobLabel, JobResult, JobState, KindLabel, Metrics};
use super::pods::PodWatch;
use super::schedule::{self, Jitter, Reason, Schedule, Timing};
use crate::config::{Job, Owner};
use crate::discover::candidate::{Candidate, DiscoveryEvent};
use crate::discover::mdns::MdnsBrowser;
use crate::finding::{rfc3339, Origin, PortState, ProbeResult, Record};
use crate::fingerprint::carry::Carry;
use crate::fingerprint::{Fingerprinter, ProbeTarget};
use crate::pipeline::{self, Event, Inputs};
use crate::store::{Change, Reader, RunEnd, RunId, RunOutcome, Store, StoreError};

/// Events buffered between a run's pipeline and its collector.
const RUN_EVENTS: usize = 1024;
/// mDNS events buffered between the browser and the job.
const MDNS_EVENTS: usize = 1024;
/// Pending manual triggers per job (more answer 409 anyway).
const TRIGGER_QUEUE: usize = 4;

/// Why a manual run could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerError {
    /// No job of that name.
    Unknown,
    /// A run is in progress.
    Running(RunId),
    /// The store refused the run.
    Store(String),
}

/// What the API shows of a job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStatus {
    /// Job name.
    pub name: String,
    /// The run in progress.
    pub running: Option<RunId>,
    /// When the last run ended (RFC 3339).
    pub last_run_at: Option<String>,
    /// How it ended.
    pub last_result: Option<String>,
    /// When the next scheduled run is planned to start (RFC 3339), once the first run ended.
    pub next_run_at: Option<String>,
    /// Interval in seconds.
    pub interval_s: f64,
    /// What it scans.
    pub description: String,
    /// `node` (every pod runs it) or `leader` (only the Lease holder).
    pub owner: &'static str,
    /// Whether it runs on this daemon now: always for `node`; for `leader`, while this pod
    /// holds the Lease.
    pub active: bool,
}

type Trigger = oneshot::Sender<Result<RunId, TriggerError>>;

/// One job's task and the handles the API and reloads use.
struct Running {
    job: Arc<Job>,
    status: Arc<Mutex<JobStatus>>,
    trigger: mpsc::Sender<Trigger>,
    stop: CancellationToken,
    retire: CancellationToken,
    task: JoinHandle<()>,
}

/// What every job task shares.
#[derive(Clone)]
pub struct Context {
    /// Leadership and peers (`owner: leader`, `shard: auto`); `None` without `kubernetes:`.
    pub cluster: Option<Arc<super::cluster::Cluster>>,
    /// The writer.
    pub store: Store,
    /// A reader (for mDNS goodbyes: is the server known from anything else?).
    pub reader: Reader,
    /// Metrics.
    pub metrics: Metrics,
    /// The daemon's shutdown.
    pub shutdown: CancellationToken,
    /// The `kubernetes:` section, for pod sources (and `node` on every record).
    pub kube: Option<Arc<crate::kube::KubePlan>>,
    /// Where continuous sources report that they fail (`/readyz`).
    pub ready: Arc<super::api::Readiness>,
}

impl Context {
    /// This daemon's node (`kubernetes.node`), which every record it stores carries.
    pub fn node(&self) -> Option<String> {
        self.kube.as_ref().and_then(|k| k.node.clone())
    }
}

/// The registry of running jobs.
pub struct Jobs {
    ctx: Context,
    running: Mutex<BTreeMap<String, Running>>,
}

impl Jobs {
    /// An empty registry.
    pub fn new(ctx: Context) -> Self {
        Self {
            ctx,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Start, stop or restart jobs so the running set equals `jobs`. A changed job finishes
    /// its current run before its new settings take over; a removed job is interrupted.
    pub fn apply(&self, jobs: &[Job]) -> (usize, usize, usize) {
        let mut map = self.lock();
        let (mut added, mut removed, mut changed) = (0, 0, 0);
        let wanted: HashMap<&str, &Job> = jobs.iter().map(|j| (j.name.as_str(), j)).collect();
        let names: Vec<String> = map.keys().cloned().collect();
        for name in names {
            match wanted.get(name.as_str()) {
                None => {
                    if let Some(r) = map.remove(&name) {
                        tracing::info!(job = %name, "job removed");
                        r.stop.cancel();
                        removed += 1;
                    }
                }
                Some(j) if !same_job(&map[&name].job, j) => {
                    let old = map.remove(&name).expect("present");
                    tracing::info!(job = %name, "job changed; it restarts after its current run");
                    old.retire.cancel();
                    map.insert(name.clone(), self.spawn((*j).clone(), Some(old.task)));
                    changed += 1;
                }
                Some(_) => {}
            }
        }
        for j in jobs {
            if !map.contains_key(&j.name) {
                map.insert(j.name.clone(), self.spawn(j.clone(), None));
                added += 1;
            }
        }
        (added, removed, changed)
    }

    /// Every job's status, by name.
    pub fn statuses(&self) -> Vec<JobStatus> {
        self.lock()
            .values()
            .map(|r| {
                r.status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }

    /// Run job `name` now; answers with the new run's id.
    pub async fn trigger(&self, name: &str) -> Result<RunId, TriggerError> {
        let (tx, status) = {
            let map = self.lock();
            let r = map.get(name).ok_or(TriggerError::Unknown)?;
            (r.trigger.clone(), r.status.clone())
        };
        let running = status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .running;
        if let Some(id) = running {
            return Err(TriggerError::Running(id));
        }
        let (reply, rx) = oneshot::channel();
        tx.try_send(reply).map_err(|_| {
            let id = status
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .running;
            TriggerError::Running(id.unwrap_or(RunId(0)))
        })?;
        rx.await
            .unwrap_or_else(|_| Err(TriggerError::Store("the job stopped".into())))
    }

    /// Stop every job (their runs are interrupted) and wait for the tasks, at most `limit`.
    pub async fn shutdown(&self, limit: Duration) {
        let tasks: Vec<JoinHandle<()>> = {
            let mut map = self.lock();
            std::mem::take(&mut *map)
                .into_values()
                .map(|r| {
                    r.stop.cancel();
                    r.task
                })
                .collect()
        };
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("jobs did not stop within {limit:?}");
        }
    }

    fn spawn(&self, job: Job, after: Option<JoinHandle<()>>) -> Running {
        let job = Arc::new(job);
        let status = Arc::new(Mutex::new(JobStatus {
            name: job.name.clone(),
            interval_s: job.interval.as_secs_f64(),
            description: job.describe(),
            owner: job.owner.as_str(),
            active: job.owner == Owner::Node,
            ..JobStatus::default()
        }));
        let (trigger, triggers) = mpsc::channel(TRIGGER_QUEUE);
        let stop = self.ctx.shutdown.child_token();
        let retire = CancellationToken::new();
        let runner = Runner {
            job: job.clone(),
            ctx: self.ctx.clone(),
            status: status.clone(),
            mdns: None,
            pods: None,
            carry: Arc::default(),
        };
        let (s, r) = (stop.clone(), retire.clone());
        let task = tokio::spawn(async move {
            if let Some(prev) = after {
                let _ = prev.await;
            }
            runner.run(triggers, s, r).await;
        });
        Running {
            job,
            status,
            trigger,
            stop,
            retire,
            task,
        }
    }
}

fn same_job(a: &Job, b: &Job) -> bool {
    a.spec == b.spec
        && a.interval == b.interval
        && (a.jitter - b.jitter).abs() < 1e-9
        && a.owner == b.owner
}

/// One job's loop.
struct Runner {
    job: Arc<Job>,
    ctx: Context,
    status: Arc<Mutex<JobStatus>>,
    mdns: Option<MdnsWatch>,
    /// The pod watcher of a `kubernetes:` source, kept between runs.
    pods: Option<PodWatch>,
    /// Health endpoints and Server Cards kept from this job's earlier runs, so a rescan of
    /// an unchanged server skips those five GETs (bounded and aged: see
    /// [`crate::fingerprint::carry`]). Per runner: a changed job starts afresh.
    carry: Arc<Carry>,
}

impl Runner {
    async fn run(
        mut self,
        triggers: mpsc::Receiver<Trigger>,
        stop: CancellationToken,
        retire: CancellationToken,
    ) {
        let name = self.job.name.clone();
        if let Some(opts) = self.job.plan.discovery.mdns.clone() {
            match MdnsWatch::start(&self.job, &self.ctx, opts, stop.clone()) {
                Ok(w) => self.mdns = Some(w),
                Err(e) => tracing::warn!(job = %name, "mDNS browser: {e}"),
            }
        }
        self.pods = PodWatch::start(&self.job, &self.ctx, stop.clone());
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let seed = h.finish()
            ^ SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        let overruns = self.ctx.metrics.job_runs.clone();
        let planned_status = self.status.clone();
        let label = JobResult {
            job: name.clone(),
            result: "overrun".into(),
        };
        let timing = Timing {
            interval: self.job.interval,
            jitter: self.job.jitter,
        };
        // A leader job starts a schedule afresh at each term.
        let sched_for = move || {
            let (overruns, label) = (overruns.clone(), label.clone());
            let planned_status = planned_status.clone();
            Schedule {
                timing,
                jitter: Jitter::new(seed),
                on_overrun: Box::new(move || {
                    overruns.get_or_create(&label).inc();
                }),
                on_planned: Box::new(move |at: tokio::time::Instant| {
                    let wall = SystemTime::now()
                        + at.saturating_duration_since(tokio::time::Instant::now());
                    planned_status
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .next_run_at = Some(rfc3339(wall));
                }),
            }
        };
        let mut triggers = triggers;
        if self.job.owner == Owner::Leader {
            self.lead(sched_for, &mut triggers, &stop, &retire).await;
        } else {
            let this = &self;
            schedule::drive(
                sched_for(),
                &mut triggers,
                (stop.clone(), retire),
                |reason, trigger| this.once(reason, trigger, stop.clone()),
            )
            .await;
        }
        if let Some(w) = self.mdns.take() {
            w.stop().await;
        }
        if let Some(w) = self.pods.take() {
            w.stop().await;
        }
    }

    /// An `owner: leader` job: run its schedule only while this pod holds the Lease. A lost
    /// Lease interrupts the current run at once; manual triggers on a follower are refused.
    async fn lead(
        &self,
        sched_for: impl Fn() -> Schedule,
        triggers: &mut mpsc::Receiver<Trigger>,
        stop: &CancellationToken,
        retire: &CancellationToken,
    ) {
        let (mut leader, lease, me) = match &self.ctx.cluster {
            Some(c) => (c.leader(), c.lease_name(), c.me().to_string()),
            // Validation requires `kubernetes:` for owner: leader; without it, never lead.
            None => (watch::channel(false).1, String::new(), String::new()),
        };
        let name = self.job.name.clone();
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = retire.cancelled() => return,
                t = triggers.recv() => {
                    match t {
                        Some(t) => {
                            let _ = t.send(Err(TriggerError::Store(format!(
                                "job {name:?} is owner: leader and this pod ({me}) does not hold the Lease {lease}; trigger it on the leader"
                            ))));
                        }
                        None => {
                            stop.cancelled().await;
                            return;
                        }
                    }
                    continue;
                }
                open = async { leader.wait_for(|l| *l).await.is_ok() } => if !open {
                    stop.cancelled().await;
                    return;
                },
            }
            tracing::info!(job = %name, "this pod leads: the job starts");
            self.set_status(|s| s.active = true);
            let term = stop.child_token();
            let lost = {
                let (term, mut leader) = (term.clone(), leader.clone());
                tokio::spawn(async move {
                    let _ = leader.wait_for(|l| !*l).await;
                    term.cancel();
                })
            };
            let this = self;
            schedule::drive(
                sched_for(),
                &mut *triggers,
                (term.clone(), retire.clone()),
                |reason, trigger| this.once(reason, trigger, term.clone()),
            )
            .await;
            lost.abort();
            self.set_status(|s| s.active = false);
            if stop.is_cancelled() || retire.is_cancelled() {
                return;
            }
            tracing::info!(job = %name, "this pod no longer leads: the job stops");
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    #[tracing::instrument(skip_all, fields(job = %self.job.name, run))]
    async fn once(&self, reason: Reason, trigger: Option<Trigger>, stop: CancellationToken) {
        let job = &self.job;
        let run = match self.ctx.store.begin_run(&job.name).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!("cannot record the run's start: {e}");
                if let Some(t) = trigger {
                    let _ = t.send(Err(TriggerError::Store(e.to_string())));
                }
                return;
            }
        };
        tracing::Span::current().record("run", run.0);
        self.set_status(|s| s.running = Some(run));
        if let Some(t) = trigger {
            let _ = t.send(Ok(run));
        }
        tracing::info!(?reason, "run started");
        let clock = tokio::time::Instant::now();
        if let Some(w) = &self.mdns {
            w.settle(&stop).await;
        }
        let mdns_known = self.mdns.as_ref().map(MdnsWatch::snapshot);
        let (tx, mut rx) = mpsc::channel(RUN_EVENTS);
        let plan = job.plan.clone();
        let members = match (&self.ctx.cluster, plan.shard_auto) {
            (Some(c), true) => match c.members().await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!("{e}");
                    None
                }
            },
            _ => None,
        };
        let inputs = Inputs {
            mdns_known,
            carry: Some(self.carry.clone()),
            members,
        };
        // A job with only a pod source has nothing for the pipeline to do.
        let pipe = async {
            let d = &plan.discovery;
            if self.pods.is_some() && plan.targets.is_empty() && !plan.local && !d.any() {
                drop(tx);
                Ok(pipeline::Summary::default())
            } else {
                pipeline::run(&plan, inputs, tx, stop.clone()).await
            }
        };
        let collect = async {
            let mut records = Vec::new();
            while let Some(ev) = rx.recv().await {
                if let Event::Record(r) = ev {
                    records.push(*r);
                }
            }
            records
        };
        let pod_records = async {
            match (&self.pods, &plan.fingerprint) {
                (Some(w), Some(opts)) => {
                    fingerprint_pods(w, opts, plan.fingerprint_concurrency, &stop).await
                }
                _ => Vec::new(),
            }
        };
        let (result, mut records, pod_records) = tokio::join!(pipe, collect, pod_records);
        records.extend(pod_records);
        let node = self.ctx.node();
        for r in &mut records {
            r.node.clone_from(&node);
        }
        if let Some(w) = &self.mdns {
            w.learn(&records);
        }
        if let Some(w) = &self.pods {
            w.learn(&records);
        }
        let (end, probes, open) = match &result {
            Ok(_) if stop.is_cancelled() => (RunEnd::Interrupted, 0, 0),
            Ok(s) => (RunEnd::Completed, s.probes_done, s.open),
            Err(e) => (RunEnd::Failed(e.to_string()), 0, 0),
        };
        if let Ok(s) = &result {
            for (state, n) in [
                (PortState::Open, s.open),
                (PortState::Closed, s.closed),
                (PortState::Filtered, s.filtered),
                (PortState::Unreachable, s.unreachable),
            ] {
                self.ctx
                    .metrics
                    .probes
                    .get_or_create(&JobState {
                        job: job.name.clone(),
                        state: state.as_str().into(),
                    })
                    .inc_by(n);
            }
        }
        let result_label = match &end {
            RunEnd::Completed => "completed",
            RunEnd::Interrupted => "interrupted",
            RunEnd::Failed(_) => "failed",
        };
        if let RunEnd::Failed(e) = &end {
            tracing::error!("run failed: {e}");
        }
        let n_records = records.len();
        let outcome = RunOutcome {
            job: job.name.clone(),
            status: end.clone(),
            records,
            probes,
            open,
        };
        match self.ctx.store.finish_run(run, outcome).await {
            Ok(summary) => {
                count_changes(&self.ctx.metrics, &summary.changes);
                tracing::info!(
                    result = result_label,
                    records = n_records,
                    mcp = summary.mcp,
                    appeared = summary.appeared,
                    updated = summary.updated,
                    gone = summary.gone,
                    "run finished in {:.2} s",
                    clock.elapsed().as_secs_f64()
                );
            }
            Err(e) => tracing::error!("cannot record the run's result: {e}"),
        }
        let m = &self.ctx.metrics;
        let jl = JobLabel {
            job: job.name.clone(),
        };
        m.job_runs
            .get_or_create(&JobResult {
                job: job.name.clone(),
                result: result_label.into(),
            })
            .inc();
        m.job_run_duration
            .get_or_create(&jl)
            .observe(clock.elapsed().as_secs_f64());
        if end == RunEnd::Completed {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            m.job_last_success.get_or_create(&jl).set(now);
        }
        self.set_status(|s| {
            s.running = None;
            s.last_run_at = Some(rfc3339(SystemTime::now()));
            s.last_result = Some(result_label.into());
        });
        // The run's buffers are freed by now but kept by the allocator's per-thread arenas.
        crate::sys::release_free_memory();
    }
}

/// Fingerprint every candidate the pod watcher knows, for a run.
async fn fingerprint_pods(
    w: &PodWatch,
    opts: &crate::fingerprint::FingerprintOptions,
    concurrency: usize,
    stop: &CancellationToken,
) -> Vec<Record> {
    let Ok(fp) = Fingerprinter::new(opts.clone()) else {
        return Vec::new();
    };
    let cands = w.snapshot();
    let all = futures_util::stream::iter(cands)
        .map(|(c, generation)| {
            let fp = fp.clone();
            async move {
                (
                    super::pods::fingerprint_pod(&fp, &c).await,
                    c.addr,
                    generation,
                )
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>();
    let done = tokio::select! {
        v = all => v,
        () = stop.cancelled() => Vec::new(),
    };
    done.into_iter()
        .filter(|(_, addr, generation)| w.still(*addr, *generation))
        .map(|(r, _, _)| r)
        .collect()
}

/// Count committed changes by kind.
pub fn count_changes(m: &Metrics, changes: &[Change]) {
    for c in changes {
        m.changes
            .get_or_create(&KindLabel {
                kind: c.kind.as_str().into(),
            })
            .inc();
    }
}

/// Instance name → the id of the MCP server it led to.
type InstanceIds = Arc<Mutex<HashMap<String, String>>>;

/// A job's mDNS browser, kept running between runs.
struct MdnsWatch {
    known: Arc<Mutex<HashMap<String, Candidate>>>,
    /// Filled by the browser's own fingerprints and by runs ([`MdnsWatch::learn`]), so that a
    /// goodbye finds the server whichever of them stored it.
    ids: InstanceIds,
    started: tokio::time::Instant,
    wait: Duration,
    task: JoinHandle<()>,
}

impl MdnsWatch {
    fn start(
        job: &Job,
        ctx: &Context,
        opts: crate::discover::mdns::MdnsOptions,
        stop: CancellationToken,
    ) -> Result<Self, crate::gather::GatherError> {
        let browser = MdnsBrowser::new(&opts)?;
        let scope = crate::gather::discovery(&job.plan.discovery, &[])?.mdns_scope;
        let fingerprinter = job
            .plan
            .fingerprint
            .clone()
            .map(Fingerprinter::new)
            .transpose()
            .map_err(|e| {
                crate::gather::GatherError::Interfaces(std::io::Error::other(e.to_string()))
            })?;
        let known: Arc<Mutex<HashMap<String, Candidate>>> = Arc::default();
        let ids: InstanceIds = Arc::default();
        let ids2 = ids.clone();
        let (tx, mut rx) = mpsc::channel(MDNS_EVENTS);
        let k2 = known.clone();
        let ctx = ctx.clone();
        let name = job.name.clone();
        let permits = Arc::new(Semaphore::new(job.plan.fingerprint_concurrency));
        let wait = opts.wait;
        let task = tokio::spawn(async move {
            let browse = browser.watch(&opts, tx, stop.clone());
            let ids = ids2;
            let (done_tx, mut done_rx) = mpsc::channel::<(String, Record)>(MDNS_EVENTS);
            let handle = async {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        Some((inst, rec)) = done_rx.recv() => {
                            if let Some(url) = rec.url.as_deref().filter(|_| rec.kind.is_some_and(|k| k.is_mcp())) {
                                lock(&ids).insert(inst, crate::store::ServerId::from_url(url).into_string());
                                let mut rec = rec;
                                rec.node = ctx.node();
                                match ctx.store.observe(&name, vec![rec]).await {
                                    Ok(changes) => count_changes(&ctx.metrics, &changes),
                                    Err(e) => tracing::warn!(job = %name, "cannot store an announced server: {e}"),
                                }
                            }
                        }
                        ev = rx.recv() => match ev {
                            None => break,
                            Some(DiscoveryEvent::Appeared(c)) => {
                                if !scope.allows(c.addr.ip()) {
                                    tracing::info!(job = %name, "mDNS {} at {} is out of scope ({}), not probed", c.name, c.addr, scope.describe());
                                    continue;
                                }
                                k2.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(c.name.clone(), c.clone());
                                if let Some(fp) = fingerprinter.clone() {
                                    let (permits, done) = (permits.clone(), done_tx.clone());
                                    tokio::spawn(async move {
                                        let Ok(_p) = permits.acquire_owned().await else { return };
                                        let rec = fingerprint_announced(&fp, &c).await;
                                        let _ = done.send((c.name.clone(), rec)).await;
                                    });
                                }
                            }
                            Some(DiscoveryEvent::Gone { name: inst, .. }) => {
                                k2.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&inst);
                                let id = lock(&ids).remove(&inst);
                                if let Some(id) = id {
                                    mdns_gone(&ctx, &name, &id, &inst).await;
                                }
                            }
                        },
                    }
                }
            };
            let (res, ()) = tokio::join!(browse, handle);
            if let Err(e) = res {
                tracing::warn!(job = %name, "mDNS browser stopped: {e}");
            }
        });
        Ok(Self {
            known,
            ids,
            started: tokio::time::Instant::now(),
            wait,
            task,
        })
    }

    /// Wait, on the first run only, until the browser has listened for `wait`.
    async fn settle(&self, stop: &CancellationToken) {
        let until = self.started + self.wait;
        tokio::select! {
            () = tokio::time::sleep_until(until) => {}
            () = stop.cancelled() => {}
        }
    }

    /// Note which servers a run found through mDNS instances. A server announced before it
    /// answered is missed by the browser's own probe and stored by the next run instead; its
    /// goodbye must still find it.
    fn learn(&self, records: &[Record]) {
        let mut ids = lock(&self.ids);
        for r in records {
            let Some(url) = r.url.as_deref() else {
                continue;
            };
            if !r.kind.is_some_and(|k| k.is_mcp()) || !r.origins.contains(&Origin::Mdns) {
                continue;
            }
            let id = crate::store::ServerId::from_url(url).into_string();
            for name in &r.announced_as {
                ids.insert(name.clone(), id.clone());
            }
        }
    }

    fn snapshot(&self) -> Vec<Candidate> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn fingerprint_announced(fp: &Fingerprinter, c: &Candidate) -> Record {
    let mut r = fingerprint_at(fp, c.addr, None, c.hints.path.clone(), Origin::Mdns).await;
    r.announced_as = vec![c.name.clone()];
    r
}

/// Fingerprint one announced endpoint (an mDNS instance, a pod) outside a sweep, as an open
/// port found by `origin`: the record a sweep would have made, without its probe timing.
pub(super) async fn fingerprint_at(
    fp: &Fingerprinter,
    addr: std::net::SocketAddr,
    path: Option<String>,
    hint_path: Option<String>,
    origin: Origin,
) -> Record {
    let target = ProbeTarget {
        addr,
        https: None,
        path,
        hint_path,
        // The daemon's jobs configure no fingerprint credentials.
        credentials: false,
    };
    let f = fp.fingerprint(&target).await;
    let mut r = Record::from(&ProbeResult {
        ip: addr.ip(),
        port: addr.port(),
        state: PortState::Open,
        rtt: None,
        attempts: 1,
        seen_at: SystemTime::now(),
    })
    .with_fingerprint(f);
    r.origins = vec![origin];
    r
}

/// A goodbye or TTL expiry: gone only when mDNS was the server's only source.
async fn mdns_gone(ctx: &Context, job: &str, id: &str, instance: &str) {
    let reader = ctx.reader.clone();
    let owned = id.to_string();
    let only_mdns = tokio::task::spawn_blocking(move || reader.server(&owned))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .is_some_and(|(s, _)| s.record.origins.iter().all(|o| *o == Origin::Mdns));
    if !only_mdns {
        return;
    }
    let reason = format!("mDNS instance {instance} said goodbye or expired");
    match ctx.store.mark_gone(id, &reason).await {
        Ok(changes) => count_changes(&ctx.metrics, &changes),
        Err(e @ StoreError::Closed) => tracing::debug!(job, "{e}"),
        Err(e) => tracing::warn!(job, "cannot mark {id} gone: {e}"),
    }
}
