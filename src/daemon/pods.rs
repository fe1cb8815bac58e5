//! A job's pod source kept running between runs (`kubernetes: { pods: node }`), as the mDNS
//! browser is: [`PodWatch`] owns the watcher ([`crate::kube::pods::watch`]) and acts on each
//! of its events at once.
//!
//! - **Appeared** (a pod turned Running, or gained an MCP port): the candidate passes the
//!   scope wall, then is fingerprinted immediately (bounded by the job's fingerprint
//!   concurrency) and stored with `Store::observe`, so a new pod is a finding within about a
//!   second instead of at the next run.
//! - **Gone** (deleted, no longer Running, port removed): the server is marked gone at once
//!   (`Store::mark_gone`), without waiting for `gone_after` runs. A fingerprint still in
//!   flight for that candidate is discarded when it ends (a generation number per address).
//! - **Runs** fingerprint every known candidate again (with the job's other sources), so a
//!   pod whose server changed tools is rescanned on the job's interval, and misses count as
//!   usual for servers the watcher never reported gone.
//!
//! **Scope rule for pods.** The job's `scope:` when set. Otherwise, since the pod CIDRs are
//! not known to a pod, the default wall is: the `/16` (IPv4) or `/64` (IPv6) networks of
//! `$POD_IP` and `$HOST_IP` (the downward API values the manifests set), plus every network
//! attached to this host's interfaces (with hostNetwork these include the node's pod bridge),
//! plus loopback. A candidate outside is logged once ("out of scope, not probed") and never
//! contacted.
//!
//! **Faults.** The watcher's failures (API unreachable, 403) are put on `/readyz` under the
//! source's name and cleared by its first good answer; the watcher itself retries with
//! back-off. A client that cannot even be configured (no credentials) is reported the same
//! way and the source stays off until the config is fixed and reloaded.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnetwork::IpNetwork;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::jobs::{count_changes, Context};
use crate::config::Job;
use crate::finding::{Origin, Record};
use crate::fingerprint::Fingerprinter;
use crate::kube::pods::{self, PodCandidate, PodEvent, WatchOptions};
use crate::scope::Scope;
use crate::store::{ServerId, StoreError};

/// Events buffered between the watcher and the job.
const POD_EVENTS: usize = 1024;
/// Out-of-scope addresses remembered so each is logged once.
const MAX_OUT_OF_SCOPE_LOGGED: usize = 4096;
/// How long stopping waits for the watch task.
const STOP_DEADLINE: Duration = Duration::from_secs(2);

/// One known candidate.
struct Known {
    cand: PodCandidate,
    /// Bumped on every change, so a fingerprint of an older state is dropped.
    generation: u64,
    /// The server id it led to, once stored.
    id: Option<String>,
}

type KnownMap = Arc<Mutex<HashMap<SocketAddr, Known>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The default scope wall of a pod source (see the module doc).
pub fn default_scope() -> Scope {
    let mut nets: Vec<IpNetwork> = Vec::new();
    for var in ["POD_IP", "HOST_IP"] {
        let Some(ip) = std::env::var(var)
            .ok()
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
        else {
            continue;
        };
        let prefix = if ip.is_ipv4() { 16 } else { 64 };
        if let Ok(n) = IpNetwork::new(ip, prefix) {
            if let Ok(n) = IpNetwork::new(n.network(), prefix) {
                nets.push(n);
            }
        }
    }
    if let Ok(attached) = crate::discover::local::attached_networks() {
        nets.extend(attached.into_iter().map(|(_, n)| n));
    }
    let mut s = Scope::new(&nets);
    s.add_loopback();
    s
}

/// A job's pod watcher and what it knows.
pub(super) struct PodWatch {
    known: KnownMap,
    task: JoinHandle<()>,
}

impl PodWatch {
    /// Start watching; `None` when the daemon has no `kubernetes:` section (the config
    /// refuses that, so only a hand-built context gets here).
    pub(super) fn start(job: &Job, ctx: &Context, stop: CancellationToken) -> Option<Self> {
        let spec = job.plan.discovery.kubernetes.clone()?;
        let plan = ctx.kube.clone()?;
        let node = plan.node.clone()?;
        let source = format!("kubernetes pods (job {})", job.name);
        let scope = if job.plan.discovery.scope.is_empty() {
            default_scope()
        } else {
            Scope::new(&job.plan.discovery.scope)
        };
        let fingerprinter = match job.plan.fingerprint.clone().map(Fingerprinter::new) {
            None => None,
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                ctx.ready.fail(&source, &e.to_string());
                return None;
            }
        };
        let known: KnownMap = Arc::default();
        let handler = Handler {
            job: job.name.clone(),
            source,
            ctx: ctx.clone(),
            known: known.clone(),
            scope,
            fingerprinter,
            permits: Arc::new(Semaphore::new(job.plan.fingerprint_concurrency)),
            logged: HashSet::new(),
            generation: 0,
            pending_gone: Vec::new(),
        };
        let opts = WatchOptions {
            node,
            spec,
            retry_initial: plan.retry_initial,
            retry_max: plan.retry_max,
        };
        let task = tokio::spawn(handler.run(plan, opts, stop));
        Some(Self { known, task })
    }

    /// The in-scope candidates known now, with their generations (a run fingerprints them
    /// again, then keeps only those [`PodWatch::still`] current).
    pub(super) fn snapshot(&self) -> Vec<(PodCandidate, u64)> {
        lock(&self.known)
            .values()
            .map(|k| (k.cand.clone(), k.generation))
            .collect()
    }

    /// Whether `addr` is still the candidate of `generation`: a run's record of a pod deleted
    /// or changed while the run fingerprinted it is dropped, so a run never brings back a
    /// server the watcher has just marked gone.
    pub(super) fn still(&self, addr: SocketAddr, generation: u64) -> bool {
        lock(&self.known)
            .get(&addr)
            .is_some_and(|k| k.generation == generation)
    }

    /// Note the servers a run stored for known candidates, so a later Gone finds them.
    pub(super) fn learn(&self, records: &[Record]) {
        let mut known = lock(&self.known);
        for r in records.iter().filter(|r| r.k8s.is_some()) {
            let (Some(url), true) = (r.url.as_deref(), r.kind.is_some_and(|k| k.is_mcp())) else {
                continue;
            };
            if let Some(k) = known.get_mut(&SocketAddr::new(r.ip, r.port)) {
                k.id = Some(ServerId::from_url(url).into_string());
            }
        }
    }

    pub(super) async fn stop(self) {
        let _ = tokio::time::timeout(STOP_DEADLINE, self.task).await;
    }
}

/// The watch task's state.
struct Handler {
    job: String,
    source: String,
    ctx: Context,
    known: KnownMap,
    scope: Scope,
    fingerprinter: Option<Fingerprinter>,
    permits: Arc<Semaphore>,
    logged: HashSet<SocketAddr>,
    generation: u64,
    /// (server id, reason) of candidates gone in the last event, marked gone right after it.
    pending_gone: Vec<(String, String)>,
}

impl Handler {
    async fn run(
        mut self,
        plan: Arc<crate::kube::KubePlan>,
        opts: WatchOptions,
        stop: CancellationToken,
    ) {
        let client = match crate::kube::client(&plan).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(job = %self.job, "{e}");
                self.ctx.ready.fail(&self.source, &e.to_string());
                return;
            }
        };
        let (tx, mut rx) = mpsc::channel(POD_EVENTS);
        let (done_tx, mut done_rx) = mpsc::channel::<(SocketAddr, u64, Record)>(POD_EVENTS);
        let watch = pods::watch(client, opts, tx, stop.clone());
        let handle = async {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    Some((addr, generation, rec)) = done_rx.recv() => self.fingerprinted(addr, generation, rec).await,
                    ev = rx.recv() => match ev {
                        None => break,
                        Some(ev) => self.event(ev, &done_tx),
                    },
                }
                // Gone events are handled in `event` synchronously up to the store call.
                self.flush_gone().await;
            }
        };
        let ((), ()) = tokio::join!(watch, handle);
        self.ctx.ready.recover(&self.source);
    }

    fn event(&mut self, ev: PodEvent, done: &mpsc::Sender<(SocketAddr, u64, Record)>) {
        match ev {
            PodEvent::Failing(why) => self.ctx.ready.fail(&self.source, &why),
            PodEvent::Healthy => self.ctx.ready.recover(&self.source),
            PodEvent::Appeared(c) => {
                if !self.scope.allows(c.addr.ip()) {
                    if self.logged.len() >= MAX_OUT_OF_SCOPE_LOGGED {
                        self.logged.clear();
                    }
                    if self.logged.insert(c.addr) {
                        tracing::warn!(job = %self.job, "pod {} offers {}: out of scope ({}), not probed", c.key, c.addr, self.scope.describe());
                    }
                    return;
                }
                self.generation += 1;
                let generation = self.generation;
                let previous = lock(&self.known).insert(
                    c.addr,
                    Known {
                        cand: c.clone(),
                        generation,
                        id: None,
                    },
                );
                if let Some(p) = previous {
                    // Keep the id: the same address usually leads to the same server.
                    if let Some(k) = lock(&self.known).get_mut(&c.addr) {
                        k.id = p.id;
                    }
                }
                let Some(fp) = self.fingerprinter.clone() else {
                    return;
                };
                let (permits, done) = (self.permits.clone(), done.clone());
                tokio::spawn(async move {
                    let Ok(_p) = permits.acquire_owned().await else {
                        return;
                    };
                    let rec = fingerprint_pod(&fp, &c).await;
                    let _ = done.send((c.addr, generation, rec)).await;
                });
            }
            PodEvent::Gone { candidate, reason } => {
                let removed = lock(&self.known).remove(&candidate.addr);
                if let Some(id) = removed.and_then(|k| k.id) {
                    self.pending_gone.push((id, reason));
                }
            }
        }
    }

    async fn flush_gone(&mut self) {
        for (id, reason) in std::mem::take(&mut self.pending_gone) {
            match self.ctx.store.mark_gone(&id, &reason).await {
                Ok(changes) => count_changes(&self.ctx.metrics, &changes),
                Err(e @ StoreError::Closed) => tracing::debug!(job = %self.job, "{e}"),
                Err(e) => tracing::warn!(job = %self.job, "cannot mark {id} gone: {e}"),
            }
        }
    }

    async fn fingerprinted(&mut self, addr: SocketAddr, generation: u64, mut rec: Record) {
        let current = lock(&self.known)
            .get(&addr)
            .is_some_and(|k| k.generation == generation);
        if !current {
            return; // the pod changed or went while it was fingerprinted
        }
        let Some(url) = rec
            .url
            .clone()
            .filter(|_| rec.kind.is_some_and(|k| k.is_mcp()))
        else {
            return;
        };
        let id = ServerId::from_url(&url).into_string();
        if let Some(k) = lock(&self.known).get_mut(&addr) {
            k.id = Some(id);
        }
        rec.node.clone_from(&self.ctx.node());
        match self.ctx.store.observe(&self.job, vec![rec]).await {
            Ok(changes) => count_changes(&self.ctx.metrics, &changes),
            Err(e) => tracing::warn!(job = %self.job, "cannot store a pod's server: {e}"),
        }
    }
}

/// Fingerprint one pod candidate into a record carrying its `k8s` object.
pub(super) async fn fingerprint_pod(fp: &Fingerprinter, c: &PodCandidate) -> Record {
    let mut r =
        super::jobs::fingerprint_at(fp, c.addr, c.path.clone(), None, Origin::Kubernetes).await;
    r.announced_as = vec![format!("pod {}", c.key)];
    r.k8s = Some(c.k8s.clone());
    r
}
