//! The monitor's scheduler: when each known server is checked, how many checks run at once,
//! and what becomes of their results.
//!
//! ```text
//!  servers (watch: the inventory's active servers) ─┐
//!                                                   ▼
//!   due queue (server, check) ── semaphore (concurrency) ──▶ Prober::check ──┐
//!        ▲  next due = due + interval                                        │ results
//!        └──────────────── state::step (pure) ◀──────────────────────────────┘
//!                              │ Checked {health, transition, tools}
//!                              ▼
//!                           updates (mpsc) ──▶ the store, the metrics
//! ```
//!
//! Design, and why:
//! - **Spread, not bursts.** Each (server, check) pair is due at a stable phase of its
//!   interval: `start + hash(server id) mod interval + k × interval`, as Prometheus spreads
//!   its scrapes, so 1,000 servers checked every 30 s are about 33 checks a second, not a
//!   burst of 1,000. The hash is FNV-1a of the id, stable across restarts and builds.
//! - **No drift.** The next due time is the previous *due* time plus the interval, not the
//!   completion time plus the interval, so the period stays the interval however long a check
//!   takes. A check that overran its next slot skips it (the slot is counted as skipped).
//! - **Never twice at once.** A server is busy from the moment its batch is dispatched until
//!   its results are applied. Checks that fall due meanwhile wait and run as one batch when it
//!   ends. Checks of one server due at the same instant (the built-in one and the custom
//!   checks sharing its interval) run as one batch: one [`state::step`].
//! - **Bounded.** At most `concurrency` batches run at once (a semaphore; a batch waits for a
//!   permit after it is dispatched), each under its timeout (enforced by the prober, and here
//!   again with a grace as a safety net). A hung server costs one timeout; the others keep
//!   their period.
//! - **Pure decisions.** The scheduler owns each server's [`HealthState`] and applies
//!   [`state::step`] in its own loop: one owner, no locks. It never touches the store: it
//!   sends each [`Checked`] on a channel, so a slow or failing store never stalls checks.
//! - **Membership** comes from a `watch` channel of the active servers. A server that leaves
//!   the list is dropped (the store marks it gone); one that joins starts from the health the
//!   store kept for it, if any (a restart keeps statuses and counters).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::state::{self, CheckResult, Health, HealthState, Thresholds, Transition};
use crate::finding::Record;
use crate::fingerprint::Tool;

/// Grace added to a batch's timeout before the scheduler itself gives up on it.
pub const TIMEOUT_GRACE: Duration = Duration::from_secs(2);
/// Results waiting to be stored before new ones are dropped (and counted).
pub const UPDATE_QUEUE: usize = 1024;

/// One server the monitor watches, as the inventory knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    /// The store's id.
    pub id: String,
    /// The scan record (URL, kind, transport, tools, …).
    pub record: Arc<Record>,
    /// The jobs that found it.
    pub jobs: Vec<String>,
    /// The health the store kept for it, if it was ever checked.
    pub health: Option<Health>,
}

/// Which check of a server: the built-in one, or a custom check by its index in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The built-in check (`mcp`).
    Builtin,
    /// `health.checks[i]`.
    Custom(usize),
}

/// What one batch of checks observed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// One result per check run.
    pub results: Vec<CheckResult>,
    /// The tools the built-in check listed, for tool drift.
    pub tools: Option<Vec<Tool>>,
}

/// A boxed future, so [`Prober`] stays object-safe.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs checks. The daemon's prober speaks MCP ([`super::check`]); tests drive the
/// scheduler with scripted ones on a paused clock.
pub trait Prober: Send + Sync + 'static {
    /// The checks that apply to this server, with their intervals.
    fn slots(&self, server: &Watched) -> Vec<(Slot, Duration)>;
    /// The longest a batch of these checks may take.
    fn timeout(&self, server: &Watched, slots: &[Slot]) -> Duration;
    /// Run these checks of this server once.
    fn check(&self, server: Arc<Watched>, slots: Vec<Slot>) -> BoxFuture<Outcome>;
    /// The result of a check the scheduler gave up on after `after` (its safety net).
    fn timed_out(&self, slot: Slot, after: Duration) -> CheckResult;
}

/// One applied batch: what the store records and the metrics count.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The server's id.
    pub server_id: String,
    /// Its `serverInfo.name`, for the metrics' `server_name` label.
    pub server_name: Option<String>,
    /// When the batch ended.
    pub at: SystemTime,
    /// How long the batch took.
    pub took: Duration,
    /// Its results.
    pub results: Vec<CheckResult>,
    /// The health after them.
    pub health: Health,
    /// The status change, if there was one.
    pub transition: Option<Transition>,
    /// The tools listed, for tool drift.
    pub tools: Option<Vec<Tool>>,
}

/// The scheduler's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Batches in flight at most.
    pub concurrency: usize,
    /// The state machine's thresholds.
    pub thresholds: Thresholds,
}

/// What the scheduler counted, for tests and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Batches run to the end.
    pub batches: u64,
    /// Slots skipped because the server's previous batch overran them.
    pub skipped: u64,
    /// Updates dropped because the store fell behind.
    pub dropped: u64,
    /// The most batches seen in flight at once.
    pub peak_in_flight: usize,
}

/// The stable phase of a server within an interval.
pub fn phase(id: &str, interval: Duration) -> Duration {
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(crate::hash::fnv1a(id.as_bytes()) % ms)
}

/// The first due time at or after `now` for a pair with this phase, on a grid that started
/// at `origin`.
fn first_due(origin: Instant, phase: Duration, interval: Duration, now: Instant) -> Instant {
    let first = origin + phase;
    if first >= now {
        return first;
    }
    let behind = now - first;
    let steps = behind.as_nanos().div_ceil(interval.as_nanos().max(1));
    first + interval * u32::try_from(steps).unwrap_or(u32::MAX)
}

/// One watched server's scheduling state.
struct Entry {
    server: Arc<Watched>,
    state: HealthState,
    /// Each slot's interval and next due time.
    slots: BTreeMap<Slot, (Duration, Instant)>,
    /// Slots that fell due while busy.
    pending: Vec<Slot>,
    busy: bool,
    /// Bumped when the server is replaced, so a late result of the old one is ignored.
    generation: u64,
}

/// A finished batch, back in the loop.
struct Done {
    id: String,
    generation: u64,
    slots: Vec<Slot>,
    started: Instant,
    outcome: Outcome,
}

/// The scheduler. Build it, then [`Scheduler::run`] it until `shutdown`.
pub struct Scheduler<P: Prober> {
    prober: Arc<P>,
    settings: Settings,
    servers: watch::Receiver<Arc<Vec<Watched>>>,
    updates: mpsc::Sender<Checked>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl<P: Prober> Scheduler<P> {
    /// A scheduler over this membership feed, sending each applied batch to `updates`.
    pub fn new(
        prober: Arc<P>,
        settings: Settings,
        servers: watch::Receiver<Arc<Vec<Watched>>>,
        updates: mpsc::Sender<Checked>,
    ) -> Self {
        Self {
            prober,
            settings,
            servers,
            updates,
            in_flight: Arc::default(),
        }
    }

    /// Count the batches running now in this counter (the `mcp_scout_checks_in_flight`
    /// gauge reads it).
    #[must_use]
    pub fn with_in_flight(mut self, counter: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        self.in_flight = counter;
        self
    }

    /// Check until `shutdown`; running batches are abandoned then. Returns what it counted.
    pub async fn run(mut self, shutdown: CancellationToken) -> Counters {
        let origin = Instant::now();
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut entries: HashMap<String, Entry> = HashMap::new();
        let mut queue: BinaryHeap<Reverse<(Instant, String, Slot, u64)>> = BinaryHeap::new();
        let mut running: JoinSet<Option<Done>> = JoinSet::new();
        let mut counters = Counters::default();
        let mut generation = 0u64;
        let mut membership_open = true;

        let list = self.servers.borrow_and_update().clone();
        self.sync(&list, &mut entries, &mut queue, &mut generation, origin);

        loop {
            let next = queue.peek().map(|Reverse((at, ..))| *at);
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(joined) = running.join_next() => {
                    self.in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let Ok(Some(done)) = joined else { continue };
                    let id = done.id.clone();
                    let pending = self.finish(done, &mut entries, &mut queue, &mut counters);
                    if let (false, Some(e)) = (pending.is_empty(), entries.get_mut(&id)) {
                        self.dispatch(e, pending, &permits, &mut running, &mut counters);
                    }
                }
                changed = self.servers.changed(), if membership_open => {
                    if changed.is_err() {
                        membership_open = false;
                        continue;
                    }
                    let list = self.servers.borrow_and_update().clone();
                    self.sync(&list, &mut entries, &mut queue, &mut generation, Instant::now());
                }
                () = sleep_until(next) => {}
            }
            // Dispatch everything due: each server's due slots as one batch.
            let now = Instant::now();
            let mut due: BTreeMap<String, Vec<Slot>> = BTreeMap::new();
            while let Some(Reverse((at, _, _, _))) = queue.peek() {
                if *at > now {
                    break;
                }
                let Some(Reverse((at, id, slot, gen))) = queue.pop() else {
                    break;
                };
                let Some(e) = entries.get_mut(&id) else {
                    continue;
                };
                // A stale queue item: the server was replaced, or the slot was rescheduled.
                if e.generation != gen || e.slots.get(&slot).map(|s| s.1) != Some(at) {
                    continue;
                }
                if e.busy {
                    if !e.pending.contains(&slot) {
                        e.pending.push(slot);
                    }
                } else {
                    due.entry(id).or_default().push(slot);
                }
            }
            for (id, slots) in due {
                if let Some(e) = entries.get_mut(&id) {
                    self.dispatch(e, slots, &permits, &mut running, &mut counters);
                }
            }
        }
        running.shutdown().await;
        self.in_flight
            .store(0, std::sync::atomic::Ordering::Relaxed);
        counters
    }

    /// Bring the entries in line with the membership list.
    fn sync(
        &self,
        list: &[Watched],
        entries: &mut HashMap<String, Entry>,
        queue: &mut BinaryHeap<Reverse<(Instant, String, Slot, u64)>>,
        generation: &mut u64,
        now: Instant,
    ) {
        let origin_now = now;
        let keep: std::collections::HashSet<&str> = list.iter().map(|w| w.id.as_str()).collect();
        entries.retain(|id, _| keep.contains(id.as_str()));
        for w in list {
            if let Some(e) = entries.get_mut(&w.id) {
                if *e.server == *w || (e.server.record == w.record && e.server.jobs == w.jobs) {
                    continue;
                }
                // The server changed (a rescan updated its record): keep its health and
                // schedule, refresh what the checks see and which checks apply.
                let slots = self.prober.slots(w);
                let mut kept = BTreeMap::new();
                for (slot, interval) in slots {
                    let due = match e.slots.get(&slot) {
                        Some((i, d)) if *i == interval => *d,
                        _ => {
                            let d = first_due(origin_now, phase(&w.id, interval), interval, now);
                            queue.push(Reverse((d, w.id.clone(), slot, e.generation)));
                            d
                        }
                    };
                    kept.insert(slot, (interval, due));
                }
                e.slots = kept;
                e.server = Arc::new(w.clone());
                continue;
            }
            *generation += 1;
            let state = match &w.health {
                Some(h) if h.status != state::Status::Gone => HealthState::restore(h.clone()),
                _ => HealthState::new(SystemTime::now()),
            };
            let mut slots = BTreeMap::new();
            for (slot, interval) in self.prober.slots(w) {
                let due = first_due(origin_now, phase(&w.id, interval), interval, now);
                queue.push(Reverse((due, w.id.clone(), slot, *generation)));
                slots.insert(slot, (interval, due));
            }
            entries.insert(
                w.id.clone(),
                Entry {
                    server: Arc::new(w.clone()),
                    state,
                    slots,
                    pending: Vec::new(),
                    busy: false,
                    generation: *generation,
                },
            );
        }
    }

    /// Start one batch of a server.
    fn dispatch(
        &self,
        e: &mut Entry,
        mut slots: Vec<Slot>,
        permits: &Arc<Semaphore>,
        running: &mut JoinSet<Option<Done>>,
        counters: &mut Counters,
    ) {
        slots.sort();
        slots.dedup();
        e.busy = true;
        let server = e.server.clone();
        let id = server.id.clone();
        let generation = e.generation;
        let limit = self.prober.timeout(&server, &slots) + TIMEOUT_GRACE;
        let prober = self.prober.clone();
        let permits = permits.clone();
        let in_flight = self.in_flight.clone();
        let now_in_flight = in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        counters.peak_in_flight = counters.peak_in_flight.max(now_in_flight);
        running.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return None;
            };
            let started = Instant::now();
            let check = prober.check(server, slots.clone());
            let outcome = match tokio::time::timeout(limit, check).await {
                Ok(o) => o,
                Err(_) => Outcome {
                    results: slots.iter().map(|s| prober.timed_out(*s, limit)).collect(),
                    tools: None,
                },
            };
            Some(Done {
                id,
                generation,
                slots,
                started,
                outcome,
            })
        });
    }

    /// Apply a finished batch and schedule what comes next. Returns the slots that fell
    /// due while it ran, to be dispatched at once (their due times stand, so their phase
    /// holds).
    fn finish(
        &self,
        done: Done,
        entries: &mut HashMap<String, Entry>,
        queue: &mut BinaryHeap<Reverse<(Instant, String, Slot, u64)>>,
        counters: &mut Counters,
    ) -> Vec<Slot> {
        let Some(e) = entries.get_mut(&done.id) else {
            return Vec::new();
        };
        if e.generation != done.generation {
            return Vec::new();
        }
        counters.batches += 1;
        e.busy = false;
        let now = Instant::now();
        let at = SystemTime::now();
        let (next, transition) = state::step(
            &e.state,
            &done.outcome.results,
            &self.settings.thresholds,
            at,
        );
        e.state = next;
        // Each slot that ran is next due one interval after its due time; past slots skipped.
        for slot in &done.slots {
            if let Some((interval, due)) = e.slots.get_mut(slot) {
                let mut d = *due + *interval;
                while d <= now {
                    d += *interval;
                    counters.skipped += 1;
                }
                *due = d;
                queue.push(Reverse((d, done.id.clone(), *slot, e.generation)));
            }
        }
        let update = Checked {
            server_id: done.id.clone(),
            server_name: e.server.record.server_name.clone(),
            at,
            took: now - done.started,
            results: done.outcome.results,
            health: e.state.health().clone(),
            transition,
            tools: done.outcome.tools,
        };
        if self.updates.try_send(update).is_err() {
            counters.dropped += 1;
        }
        // Slots that fell due while it ran: the ones not just rescheduled run now.
        std::mem::take(&mut e.pending)
            .into_iter()
            .filter(|s| !done.slots.contains(s) && e.slots.contains_key(s))
            .collect()
    }
}

/// Sleep until `at`, or forever when nothing is due.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;
    use crate::finding::ProbeResult;
    use crate::monitor::state::Status;
    use crate::vocab::PortState;

    const INTERVAL: Duration = Duration::from_secs(30);
    const TIMEOUT: Duration = Duration::from_secs(10);

    /// What the scripted prober saw: each batch's start, and how many ran at once.
    #[derive(Default)]
    struct Seen {
        origin: Option<Instant>,
        starts: Vec<(String, Duration, Vec<Slot>)>,
        running: usize,
        peak: usize,
        per_server: HashMap<String, usize>,
        peak_per_server: usize,
    }

    /// A scripted prober: each server passes after its delay (10 ms unless set), fails when
    /// listed in `failing`, never answers when listed in `hung`.
    #[derive(Default)]
    struct Script {
        delay: Mutex<HashMap<String, Duration>>,
        failing: Mutex<HashSet<String>>,
        hung: Mutex<HashSet<String>>,
        custom_every: Option<Duration>,
        timeout: Option<Duration>,
        seen: Arc<Mutex<Seen>>,
    }

    impl Script {
        fn starts(&self, id: &str) -> Vec<Duration> {
            let seen = self.seen.lock().unwrap();
            seen.starts
                .iter()
                .filter(|l| l.0 == id)
                .map(|l| l.1)
                .collect()
        }
    }

    impl Prober for Script {
        fn slots(&self, _: &Watched) -> Vec<(Slot, Duration)> {
            let mut v = vec![(Slot::Builtin, INTERVAL)];
            if let Some(i) = self.custom_every {
                v.push((Slot::Custom(0), i));
            }
            v
        }
        fn timeout(&self, _: &Watched, _: &[Slot]) -> Duration {
            self.timeout.unwrap_or(TIMEOUT)
        }
        fn timed_out(&self, slot: Slot, after: Duration) -> CheckResult {
            CheckResult::fail(format!("{slot:?}"), format!("timed out after {after:?}"))
        }
        fn check(&self, server: Arc<Watched>, slots: Vec<Slot>) -> BoxFuture<Outcome> {
            let id = server.id.clone();
            {
                let mut seen = self.seen.lock().unwrap();
                let origin = *seen.origin.get_or_insert_with(Instant::now);
                seen.starts
                    .push((id.clone(), Instant::now() - origin, slots.clone()));
                seen.running += 1;
                seen.peak = seen.peak.max(seen.running);
                let n = {
                    let n = seen.per_server.entry(id.clone()).or_default();
                    *n += 1;
                    *n
                };
                seen.peak_per_server = seen.peak_per_server.max(n);
            }
            let delay = self.delay.lock().unwrap().get(&id).copied();
            let delay = delay.unwrap_or(Duration::from_millis(10));
            let fail = self.failing.lock().unwrap().contains(&id);
            let hung = self.hung.lock().unwrap().contains(&id);
            let seen = self.seen.clone();
            // Counts the batch as ended when dropped too (a timed-out batch is dropped).
            struct End(Arc<Mutex<Seen>>, String);
            impl Drop for End {
                fn drop(&mut self) {
                    let mut s = self.0.lock().unwrap();
                    s.running -= 1;
                    if let Some(n) = s.per_server.get_mut(&self.1) {
                        *n -= 1;
                    }
                }
            }
            Box::pin(async move {
                let _end = End(seen, id);
                if hung {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(delay).await;
                let results = slots
                    .iter()
                    .map(|s| {
                        let name = format!("{s:?}");
                        if fail {
                            CheckResult::fail(name, "scripted failure")
                        } else {
                            CheckResult::pass(name).with_latency(delay)
                        }
                    })
                    .collect();
                Outcome {
                    results,
                    tools: None,
                }
            })
        }
    }

    fn watched(i: usize) -> Watched {
        let probe = ProbeResult {
            ip: std::net::IpAddr::from([127, 0, 0, 1]),
            port: 8000 + i as u16,
            state: PortState::Open,
            rtt: None,
            attempts: 1,
            seen_at: SystemTime::UNIX_EPOCH,
        };
        let mut record = Record::from(&probe);
        record.server_name = Some(format!("server-{i}"));
        Watched {
            id: format!("server-{i}"),
            record: Arc::new(record),
            jobs: vec!["lan".into()],
            health: None,
        }
    }

    struct Running {
        membership: watch::Sender<Arc<Vec<Watched>>>,
        updates: mpsc::Receiver<Checked>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<Counters>,
    }

    impl Running {
        async fn stop(self) -> (Counters, Vec<Checked>) {
            self.stop.cancel();
            let counters = self.task.await.unwrap();
            let mut updates = self.updates;
            let mut all = Vec::new();
            while let Ok(u) = updates.try_recv() {
                all.push(u);
            }
            drop(self.membership);
            (counters, all)
        }
    }

    fn start(script: Arc<Script>, servers: Vec<Watched>, concurrency: usize) -> Running {
        let (membership, rx) = watch::channel(Arc::new(servers));
        let (tx, updates) = mpsc::channel(100_000);
        let settings = Settings {
            concurrency,
            thresholds: Thresholds::default(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(Scheduler::new(script, settings, rx, tx).run(stop.clone()));
        Running {
            membership,
            updates,
            stop,
            task,
        }
    }

    fn periods(starts: &[Duration]) -> Vec<Duration> {
        starts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn each_server_keeps_its_period_and_phases_spread_over_the_interval() {
        let script = Arc::new(Script::default());
        let servers: Vec<Watched> = (0..200).map(watched).collect();
        let run = start(script.clone(), servers, 16);
        tokio::time::sleep(Duration::from_secs(5 * 60)).await;
        let (counters, updates) = run.stop().await;
        let mut firsts = Vec::new();
        for i in 0..200 {
            let starts = script.starts(&format!("server-{i}"));
            assert!(
                starts.len() >= 9,
                "server-{i} checked {} times",
                starts.len()
            );
            for p in periods(&starts) {
                assert_eq!(p, INTERVAL, "server-{i}: {starts:?}");
            }
            firsts.push(starts[0]);
        }
        firsts.sort();
        // 200 phases spread over 30 s: no second holds more than a small share.
        let spread = firsts[firsts.len() - 1] - firsts[0];
        assert!(
            spread > Duration::from_secs(25),
            "first checks within {spread:?}"
        );
        let per_second =
            firsts
                .iter()
                .map(|f| f.as_secs())
                .fold(HashMap::<u64, usize>::new(), |mut m, s| {
                    *m.entry(s).or_default() += 1;
                    m
                });
        assert!(per_second.values().all(|n| *n <= 20), "{per_second:?}");
        assert_eq!(counters.skipped, 0);
        assert_eq!(counters.dropped, 0);
        assert_eq!(updates.len() as u64, counters.batches);
        assert!(updates
            .iter()
            .all(|u| u.health.status == Status::Healthy || u.health.status == Status::Unknown));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_is_never_checked_twice_at_once_and_overrun_slots_are_skipped() {
        let script = Arc::new(Script {
            timeout: Some(Duration::from_secs(60)),
            ..Script::default()
        });
        // 45 s per check on a 30 s interval: every other slot is overrun.
        script
            .delay
            .lock()
            .unwrap()
            .insert("server-0".into(), Duration::from_secs(45));
        let run = start(script.clone(), vec![watched(0), watched(1)], 16);
        tokio::time::sleep(Duration::from_secs(300)).await;
        let (counters, _) = run.stop().await;
        assert_eq!(script.seen.lock().unwrap().peak_per_server, 1);
        let slow = script.starts("server-0");
        assert!(slow.len() >= 4, "{slow:?}");
        for p in periods(&slow) {
            assert_eq!(p, Duration::from_secs(60), "{slow:?}");
        }
        assert!(counters.skipped >= 3, "{counters:?}");
        // The other server kept its period.
        for p in periods(&script.starts("server-1")) {
            assert_eq!(p, INTERVAL);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_concurrency_checks_run_at_once() {
        let script = Arc::new(Script::default());
        for i in 0..40 {
            script
                .delay
                .lock()
                .unwrap()
                .insert(format!("server-{i}"), Duration::from_secs(8));
        }
        let run = start(script.clone(), (0..40).map(watched).collect(), 4);
        tokio::time::sleep(Duration::from_secs(120)).await;
        let (counters, _) = run.stop().await;
        let seen = script.seen.lock().unwrap();
        assert_eq!(seen.peak, 4, "peak {}", seen.peak);
        assert!(counters.batches >= 40, "{counters:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_server_costs_one_timeout_and_becomes_unhealthy_while_others_keep_their_period()
    {
        let script = Arc::new(Script::default());
        script.hung.lock().unwrap().insert("server-3".into());
        let run = start(script.clone(), (0..10).map(watched).collect(), 2);
        tokio::time::sleep(Duration::from_secs(200)).await;
        let (_, updates) = run.stop().await;
        for i in (0..10).filter(|i| *i != 3) {
            for p in periods(&script.starts(&format!("server-{i}"))) {
                assert_eq!(p, INTERVAL, "server-{i}");
            }
        }
        let hung: Vec<&Checked> = updates
            .iter()
            .filter(|u| u.server_id == "server-3")
            .collect();
        assert!(hung.len() >= 4, "{}", hung.len());
        assert!(
            hung.iter().all(|u| u.took == TIMEOUT + TIMEOUT_GRACE),
            "{:?}",
            hung[0].took
        );
        assert!(hung[0].results[0].message.contains("timed out"));
        // The third failure in a row makes it unhealthy (default threshold), once.
        let transitions: Vec<&Transition> =
            hung.iter().filter_map(|u| u.transition.as_ref()).collect();
        assert_eq!(transitions.len(), 1, "{transitions:?}");
        assert_eq!(transitions[0].to, Status::Unhealthy);
        assert_eq!(hung[2].health.status, Status::Unhealthy);
        assert_eq!(hung[1].health.status, Status::Unknown);
    }

    #[tokio::test(start_paused = true)]
    async fn custom_checks_with_their_own_interval_join_the_batch_when_due_together() {
        let script = Arc::new(Script {
            custom_every: Some(Duration::from_secs(60)),
            ..Script::default()
        });
        let run = start(script.clone(), vec![watched(7)], 4);
        tokio::time::sleep(Duration::from_secs(181)).await;
        let _ = run.stop().await;
        let seen = script.seen.lock().unwrap();
        let batches: Vec<&Vec<Slot>> = seen.starts.iter().map(|s| &s.2).collect();
        let with_custom = batches
            .iter()
            .filter(|b| b.contains(&Slot::Custom(0)))
            .count();
        let builtin = batches
            .iter()
            .filter(|b| b.contains(&Slot::Builtin))
            .count();
        assert!(builtin >= 6, "{batches:?}");
        assert!((3..=4).contains(&with_custom), "{batches:?}");
        assert_eq!(seen.peak_per_server, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn servers_that_join_are_checked_and_servers_that_leave_are_not() {
        let script = Arc::new(Script::default());
        let run = start(script.clone(), vec![watched(0)], 4);
        tokio::time::sleep(Duration::from_secs(65)).await;
        run.membership.send(Arc::new(vec![watched(1)])).unwrap();
        tokio::time::sleep(Duration::from_secs(95)).await;
        let (_, updates) = run.stop().await;
        let zero = script.starts("server-0");
        let one = script.starts("server-1");
        assert!(
            zero.iter().all(|t| *t < Duration::from_secs(66)),
            "{zero:?}"
        );
        assert!(one.len() >= 3, "{one:?}");
        assert!(one.iter().all(|t| *t >= Duration::from_secs(65)), "{one:?}");
        assert!(updates.iter().any(|u| u.server_id == "server-1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restored_unhealthy_server_needs_the_recovery_threshold() {
        let script = Arc::new(Script::default());
        let mut w = watched(0);
        let mut h = HealthState::new(SystemTime::UNIX_EPOCH).health().clone();
        h.status = Status::Unhealthy;
        h.consecutive_failures = 5;
        w.health = Some(h);
        let run = start(script.clone(), vec![w], 4);
        tokio::time::sleep(Duration::from_secs(70)).await;
        let (_, updates) = run.stop().await;
        assert!(updates.len() >= 2, "{}", updates.len());
        assert_eq!(updates[0].health.status, Status::Unhealthy);
        assert_eq!(updates[1].health.status, Status::Healthy);
        assert_eq!(
            updates[1].transition.as_ref().map(|t| t.from),
            Some(Status::Unhealthy)
        );
    }

    #[test]
    fn phases_are_stable_and_within_the_interval() {
        let a = phase("127-0-0-41-8000-97bdbc78", INTERVAL);
        assert_eq!(a, phase("127-0-0-41-8000-97bdbc78", INTERVAL));
        assert!(a < INTERVAL);
        assert_ne!(a, phase("127-0-0-42-8000-97bdbc78", INTERVAL));
        let origin = Instant::now();
        let d = first_due(
            origin,
            Duration::from_secs(7),
            INTERVAL,
            origin + Duration::from_secs(100),
        );
        assert_eq!(d, origin + Duration::from_secs(127));
        assert_eq!(
            first_due(origin, Duration::from_secs(7), INTERVAL, origin),
            origin + Duration::from_secs(7)
        );
    }
}
