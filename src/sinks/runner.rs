//! One sink's task: deliver the change feed from its cursor, reconcile, tick, back off.
//!
//! ```text
//!        ┌────────────── wake: a committed change, a timer, or stop ──────────────┐
//!        ▼                                                                         │
//!  reconcile? (start, after an outage, every `resync`, cursor behind retention)    │
//!        ▼                                                                         │
//!  deliver: changes after the cursor, a batch at a time ─▶ flush ─▶ save cursor    │
//!        ▼                                                                         │
//!  tick? (heartbeats, keep-alives, refreshed timestamps) ─────────────────────────┘
//!  any transient error: state retrying/failing, wait out the back-off, try again
//! ```
//!
//! - **The cursor only moves past what was flushed.** A file sink writes at flush, so a
//!   delivery counts once its flush succeeded; a crash before the cursor write re-delivers
//!   the batch (at least once, never skipped).
//! - **Coalescing.** A state sink delivers a server's *current* state, so of several
//!   changes to one server in a batch only the last is delivered. An event sink (webhook)
//!   gets every change.
//! - **Only what is ours is removed.** A server that is not wanted is removed only when this
//!   sink lists it (`sink_entries`), or when the registry marks it as ours *and* this
//!   inventory knows the server (gone, or filtered out). A marked entry this inventory never
//!   heard of belongs to another daemon feeding the same registry, and is left alone: a new
//!   daemon's first reconciliation must not delete what the others registered.
//! - **Back-off** is capped, jittered and exponential (backon), from `retry.initial` to
//!   `retry.max`; while backing off the task waits only for the timer and stop, so a
//!   failing registry is not hammered by every new change. The first success after a
//!   failure reconciles: that is how a registry that came back empty converges.
//! - **Never blocking others.** Each sink is its own task reading the store through its
//!   own read-only connections; a slow or dead registry holds only this task.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::board::{SinkBoard, SinkState, SinkStatus, FAILING_AFTER};
use super::metrics::{SinkMetrics, SinkReason};
use super::plan::SinkPlan;
use super::{is_active, Sink, SinkError, Tick, Wanted};
use crate::finding::rfc3339;
use crate::store::sinks::SinkOp;
use crate::store::{Change, Reader, ServerFilter, StatusFilter, Store, StoreError, StoredServer};

/// Changes read from the store per batch.
pub const BATCH: usize = 256;

/// What the servers a sink lists are, by id: kept in memory for ticks.
pub type Listed = BTreeMap<String, StoredServer>;

/// What a runner needs from the daemon.
#[derive(Clone)]
pub struct Context {
    /// Where progress and dead letters are written.
    pub store: Store,
    /// Where changes and servers are read.
    pub reader: Reader,
    /// Where the status is shown.
    pub board: SinkBoard,
    /// The sink metrics.
    pub metrics: SinkMetrics,
}

/// Run `sink` under `plan` until `stop`.
pub async fn run<S: Sink>(sink: S, plan: SinkPlan, cx: Context, stop: CancellationToken) {
    let mut r = Runner::new(plan, cx);
    r.main(sink, stop).await;
}

struct Runner {
    plan: SinkPlan,
    cx: Context,
    status: SinkStatus,
    /// The last seq delivered and flushed.
    cursor: i64,
    listed: Listed,
    /// Ids listed or unlisted since the last save.
    newly_listed: HashSet<String>,
    newly_unlisted: HashSet<String>,
    need_resync: bool,
    next_resync: Instant,
    next_tick: Option<Instant>,
    backoff: Option<backon::ExponentialBackoff>,
    retry_at: Option<Instant>,
    /// Whether the current pass reconciled (so its success needs no second one).
    reconciled: bool,
    /// Skip reasons published so far (reset to 0 when they no longer apply).
    skip_reasons: HashSet<&'static str>,
}

impl Runner {
    fn new(plan: SinkPlan, cx: Context) -> Self {
        let status = SinkStatus::new(&plan.name, plan.kind.type_name(), plan.kind.target());
        cx.board.set(status.clone());
        let now = Instant::now();
        Self {
            next_resync: now + plan.resync,
            plan,
            cx,
            status,
            cursor: 0,
            listed: Listed::new(),
            newly_listed: HashSet::new(),
            newly_unlisted: HashSet::new(),
            need_resync: true,
            next_tick: None,
            backoff: None,
            retry_at: None,
            reconciled: false,
            skip_reasons: HashSet::new(),
        }
    }

    fn name(&self) -> &str {
        &self.plan.name
    }

    async fn main<S: Sink>(&mut self, mut sink: S, stop: CancellationToken) {
        let mut changes = self.cx.store.subscribe();
        if let Err(e) = self.load(&sink).await {
            tracing::error!(sink = %self.name(), "cannot read the sink's state: {e}; it does not run");
            self.status.last_error = Some(e.to_string());
            self.status.state = SinkState::Failing;
            self.publish();
            return;
        }
        self.next_tick = sink.tick_every().map(|d| Instant::now() + d);
        loop {
            if stop.is_cancelled() {
                break;
            }
            let result = self.step(&mut sink).await;
            match result {
                Ok(()) => self.succeeded(),
                Err(e) => self.failed(e),
            }
            self.publish();
            let wake = self.next_wake();
            if self.retry_at.is_some() {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep_until(wake) => {}
                }
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(wake) => {}
                r = changes.recv() => match r {
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => { stop.cancelled().await; break }
                },
            }
        }
        self.save_progress().await;
    }

    /// Read the saved cursor and entries; a new sink starts at the feed's end and
    /// reconciles (which gives its registry everything).
    async fn load<S: Sink>(&mut self, sink: &S) -> Result<(), StoreError> {
        let reader = self.cx.reader.clone();
        let name = self.plan.name.clone();
        let (saved, entries, last, oldest, dead) = blocking(move || {
            Ok((
                reader.sink_state(&name)?,
                reader.sink_entries(&name)?,
                reader.last_seq()?,
                reader.oldest_seq()?,
                reader.dead_letters(&name, 0)?.1,
            ))
        })
        .await?;
        self.status.dead_letter_count = dead;
        match saved {
            Some(s) => {
                self.cursor = s.cursor;
                self.status.last_success = s.last_success;
                self.status.last_error = s.last_error;
                self.status.last_resync = s.last_resync;
                if oldest.is_some_and(|o| o > s.cursor + 1) {
                    if sink.reconciles() {
                        tracing::info!(sink = %self.name(), "the changes after its cursor were deleted by retention; it reconciles instead");
                    } else {
                        tracing::warn!(sink = %self.name(), cursor = s.cursor, oldest = oldest.unwrap_or_default(), "changes after the sink's cursor were deleted by retention before it delivered them; they are lost to this sink");
                    }
                    self.cursor = self.cursor.max(oldest.unwrap_or(0) - 1);
                }
            }
            None => self.cursor = last,
        }
        // What it listed before is read back from the store (current state); ids no longer
        // in the inventory are kept with no record, to be removed by the reconciliation.
        for id in entries {
            let reader = self.cx.reader.clone();
            let lookup = id.clone();
            if let Some(s) = blocking(move || reader.stored(&lookup)).await? {
                self.listed.insert(id, s);
            } else {
                self.newly_unlisted.insert(id);
            }
        }
        self.need_resync = sink.reconciles();
        self.status.cursor = self.cursor;
        self.status.listed = self.listed.len() as u64;
        Ok(())
    }

    /// One pass: reconcile if due, deliver what is pending, tick if due.
    async fn step<S: Sink>(&mut self, sink: &mut S) -> Result<(), SinkError> {
        self.reconciled = false;
        if self.need_resync || (sink.reconciles() && Instant::now() >= self.next_resync) {
            self.reconcile(sink).await?;
        }
        self.deliver(sink).await?;
        if let (Some(at), Some(every)) = (self.next_tick, sink.tick_every()) {
            if Instant::now() >= at {
                let tick = sink.tick(&self.listed).await?;
                self.next_tick = Some(next_slot(at, every, Instant::now()));
                self.status.last_success = Some(rfc3339(SystemTime::now()));
                if tick == Tick::Resync {
                    tracing::info!(sink = %self.name(), "the registry lost entries; reconciling");
                    self.reconcile(sink).await?;
                }
            }
        }
        Ok(())
    }

    /// Make the registry equal the inventory: put every wanted server, remove what is ours
    /// and not wanted.
    async fn reconcile<S: Sink>(&mut self, sink: &mut S) -> Result<(), SinkError> {
        if !sink.reconciles() {
            self.need_resync = false;
            return Ok(());
        }
        let reader = self.cx.reader.clone();
        let (upto, servers) = blocking(move || {
            let upto = reader.last_seq()?;
            let servers = reader.servers(&ServerFilter {
                status: StatusFilter::Active,
                ..ServerFilter::default()
            })?;
            Ok((upto, servers))
        })
        .await
        .map_err(|e| SinkError::transient(format!("reading the inventory: {e}")))?;
        let mut skipped: HashMap<&'static str, i64> = HashMap::new();
        let mut desired = Vec::new();
        for s in servers {
            if !self.plan.only.matches(&s) {
                continue;
            }
            match sink.wants(&s) {
                Wanted::Yes => desired.push(s),
                Wanted::No => {}
                Wanted::Skip(reason) => *skipped.entry(reason).or_default() += 1,
            }
        }
        self.publish_skipped(&skipped);
        let tagged: HashSet<String> = sink.list_ours().await?.into_iter().collect();
        sink.put_all(&desired).await?;
        let wanted: HashSet<&str> = desired.iter().map(|s| s.id.as_str()).collect();
        // What to remove: what this sink listed (its `sink_entries`) and no longer wants,
        // and entries marked as ours whose server this inventory knows and does not want.
        // An entry marked as ours that this inventory never heard of is another daemon's
        // (a second node, or this one with a fresh store before its first run): left alone,
        // or a new daemon would delete every entry the others registered.
        let mut stale: Vec<String> = self
            .listed
            .keys()
            .chain(self.newly_unlisted.iter())
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        let unknown: Vec<String> = tagged
            .into_iter()
            .filter(|id| {
                !wanted.contains(id.as_str())
                    && !self.listed.contains_key(id)
                    && !self.newly_unlisted.contains(id)
            })
            .collect();
        if !unknown.is_empty() {
            let reader = self.cx.reader.clone();
            let known = blocking(move || {
                let mut known = Vec::new();
                for id in unknown {
                    if reader.has_server(&id)? {
                        known.push(id);
                    }
                }
                Ok(known)
            })
            .await
            .map_err(|e| SinkError::transient(format!("reading the inventory: {e}")))?;
            stale.extend(known);
        }
        stale.sort();
        stale.dedup();
        for id in &stale {
            sink.remove(id).await?;
        }
        sink.flush().await?;
        for id in stale {
            self.unlist(&id);
        }
        for s in desired {
            self.list(s);
        }
        self.cursor = self.cursor.max(upto);
        self.need_resync = false;
        self.reconciled = true;
        self.next_resync = Instant::now() + self.plan.resync;
        let now = rfc3339(SystemTime::now());
        self.status.last_resync = Some(now.clone());
        self.status.last_success = Some(now);
        self.cx
            .metrics
            .resyncs
            .get_or_create(&SinkMetrics::label(&self.plan.name))
            .inc();
        tracing::debug!(sink = %self.name(), listed = self.listed.len(), "reconciled");
        self.save_progress().await;
        Ok(())
    }

    /// Deliver the changes after the cursor, a batch at a time.
    async fn deliver<S: Sink>(&mut self, sink: &mut S) -> Result<(), SinkError> {
        loop {
            let reader = self.cx.reader.clone();
            let from = self.cursor;
            let (batch, _) = blocking(move || reader.changes(from, BATCH))
                .await
                .map_err(|e| SinkError::transient(format!("reading the change feed: {e}")))?;
            if batch.is_empty() {
                return Ok(());
            }
            let full = batch.len() == BATCH;
            let result = self.deliver_batch(sink, &batch).await;
            self.save_progress().await;
            result?;
            if !full {
                return Ok(());
            }
        }
    }

    async fn deliver_batch<S: Sink>(
        &mut self,
        sink: &mut S,
        batch: &[Change],
    ) -> Result<(), SinkError> {
        let state_sink = sink.reconciles();
        let last_of: HashMap<&str, i64> = batch
            .iter()
            .map(|c| (c.server_id.as_str(), c.seq))
            .collect();
        let mut done = self.cursor;
        let mut outcome = Ok(());
        let mut delivered: Vec<(String, Option<StoredServer>, bool)> = Vec::new();
        for change in batch {
            if state_sink && last_of.get(change.server_id.as_str()) != Some(&change.seq) {
                done = change.seq;
                continue;
            }
            let reader = self.cx.reader.clone();
            let id = change.server_id.clone();
            let server = match blocking(move || reader.stored(&id)).await {
                Ok(s) => s,
                Err(e) => {
                    outcome = Err(SinkError::transient(format!("reading a server: {e}")));
                    break;
                }
            };
            let wanted = match &server {
                Some(s) if state_sink => {
                    is_active(s) && self.plan.only.matches(s) && sink.wants(s) == Wanted::Yes
                }
                Some(s) => self.plan.only.matches(s),
                None => false,
            };
            if !state_sink && !wanted && server.is_some() {
                // An event sink sends only the changes of servers its filter selects.
                done = change.seq;
                continue;
            }
            if state_sink && !wanted && !self.listed.contains_key(&change.server_id) {
                // Not ours to remove, and not wanted: nothing to do.
                done = change.seq;
                continue;
            }
            match sink.deliver(change, server.as_ref(), wanted).await {
                Ok(()) => {
                    self.cx.metrics.delivered(&self.plan.name, "ok");
                    delivered.push((change.server_id.clone(), server, wanted));
                    done = change.seq;
                }
                Err(SinkError::Rejected { status, message }) => {
                    self.cx.metrics.delivered(&self.plan.name, "dead_letter");
                    tracing::warn!(sink = %self.name(), seq = change.seq, server = %change.server_id, "delivery refused, kept as a dead letter: {message}");
                    let op = SinkOp::DeadLetter {
                        sink: self.plan.name.clone(),
                        seq: change.seq,
                        server_id: change.server_id.clone(),
                        kind: change.kind,
                        status,
                        error: message,
                    };
                    if let Err(e) = self.cx.store.sink(op).await {
                        tracing::error!(sink = %self.name(), "cannot store a dead letter: {e}");
                    }
                    self.status.dead_letter_count += 1;
                    done = change.seq;
                }
                Err(e) => {
                    self.cx.metrics.delivered(&self.plan.name, "retry");
                    outcome = Err(e);
                    break;
                }
            }
        }
        // What was delivered counts once it is flushed.
        sink.flush().await?;
        for (id, server, wanted) in delivered.into_iter().filter(|_| state_sink) {
            match server {
                Some(s) if wanted => self.list(s),
                _ => self.unlist(&id),
            }
        }
        self.cursor = done;
        outcome
    }

    fn list(&mut self, s: StoredServer) {
        let id = s.id.as_str().to_string();
        self.newly_unlisted.remove(&id);
        if self.listed.insert(id.clone(), s).is_none() {
            self.newly_listed.insert(id);
        }
    }

    fn unlist(&mut self, id: &str) {
        self.newly_listed.remove(id);
        self.listed.remove(id);
        self.newly_unlisted.insert(id.to_string());
    }

    /// Write the cursor, state and entry changes through the writer.
    async fn save_progress(&mut self) {
        let op = SinkOp::Progress {
            sink: self.plan.name.clone(),
            kind: self.plan.kind.type_name().into(),
            cursor: self.cursor,
            last_success: self.status.last_success.clone(),
            last_error: self.status.last_error.clone(),
            last_resync: self.status.last_resync.clone(),
            listed: self.newly_listed.drain().collect(),
            unlisted: self.newly_unlisted.drain().collect(),
        };
        if let Err(e) = self.cx.store.sink(op).await {
            tracing::error!(sink = %self.name(), "cannot save the sink's progress: {e}");
        }
    }

    fn succeeded(&mut self) {
        if self.status.consecutive_failures > 0 {
            tracing::info!(sink = %self.name(), after = self.status.consecutive_failures, "the registry answers again");
        }
        if self.status.consecutive_failures > 0 && !self.reconciled {
            // After an outage the registry may have lost what it had: reconcile next.
            self.need_resync = true;
        }
        self.status.consecutive_failures = 0;
        self.status.state = SinkState::Ok;
        self.status.last_error = None;
        self.backoff = None;
        self.retry_at = None;
        let now = SystemTime::now();
        self.status.last_success = Some(rfc3339(now));
        let unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.cx
            .metrics
            .last_success
            .get_or_create(&SinkMetrics::label(&self.plan.name))
            .set(unix);
    }

    fn failed(&mut self, e: SinkError) {
        self.status.consecutive_failures += 1;
        let n = self.status.consecutive_failures;
        self.status.state = if n >= FAILING_AFTER {
            SinkState::Failing
        } else {
            SinkState::Retrying
        };
        let backoff = self.backoff.get_or_insert_with(|| {
            ExponentialBuilder::default()
                .with_min_delay(self.plan.retry_initial)
                .with_max_delay(self.plan.retry_max)
                .with_jitter()
                .without_max_times()
                .build()
        });
        // backon's jitter adds up to the whole delay again; `retry.max` is the longest wait
        // the user asked for, so it caps the jittered value too (a registry that comes back
        // is noticed within it).
        let wait = backoff
            .next()
            .unwrap_or(self.plan.retry_max)
            .min(self.plan.retry_max);
        self.retry_at = Some(Instant::now() + wait);
        let message = e.to_string();
        if n == 1 || n == FAILING_AFTER || self.status.last_error.as_deref() != Some(&message) {
            tracing::warn!(sink = %self.name(), attempt = n, retry_in_ms = wait.as_millis() as u64, "{message}");
        }
        self.status.last_error = Some(message);
    }

    fn next_wake(&self) -> Instant {
        if let Some(at) = self.retry_at {
            return at;
        }
        let mut wake = self.next_resync;
        if let Some(t) = self.next_tick {
            wake = wake.min(t);
        }
        if self.need_resync {
            wake = Instant::now();
        }
        wake.min(Instant::now() + MAX_IDLE)
    }

    fn publish_skipped(&mut self, skipped: &HashMap<&'static str, i64>) {
        // A reason no server has any more goes back to 0 rather than keeping its last count.
        for reason in self
            .skip_reasons
            .iter()
            .filter(|r| !skipped.contains_key(*r))
        {
            self.cx
                .metrics
                .skipped
                .get_or_create(&SinkReason {
                    sink: self.plan.name.clone(),
                    reason: (*reason).into(),
                })
                .set(0);
        }
        self.skip_reasons.extend(skipped.keys().copied());
        for (reason, n) in skipped {
            self.cx
                .metrics
                .skipped
                .get_or_create(&SinkReason {
                    sink: self.plan.name.clone(),
                    reason: (*reason).into(),
                })
                .set(*n);
        }
    }

    /// Show the status on the board and the queue depth in the metrics.
    fn publish(&mut self) {
        self.status.cursor = self.cursor;
        self.status.listed = self.listed.len() as u64;
        // The queue depth costs one indexed count; read it here, where the loop already
        // paid for a pass, rather than on every scrape.
        if let Ok(n) = self.cx.reader.changes_after(self.cursor) {
            self.status.queue_depth = n;
            self.cx
                .metrics
                .queue_depth
                .get_or_create(&SinkMetrics::label(&self.plan.name))
                .set(n as i64);
        }
        self.cx.board.set(self.status.clone());
    }
}

/// Run a blocking store read off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(StoreError::Closed))
}

/// How long a sink waits at most between two passes when nothing happens (bounds every
/// wait, whatever the timers say).
pub const MAX_IDLE: Duration = Duration::from_secs(60);

/// The next tick after the one planned at `at`: planned from the previous plan, not from the
/// end of the round, so a round's own duration does not stretch the period (a 5 s heartbeat
/// stays 5 s while a round takes 2 s). A round that overran whole periods skips the missed
/// slots (like a cron) rather than ticking back to back: a registry too slow for the period
/// is not hammered, and the phase is kept.
fn next_slot(at: Instant, every: Duration, now: Instant) -> Instant {
    let every = every.max(Duration::from_millis(1));
    let mut next = at + every;
    if next <= now {
        let behind = now.duration_since(next).as_nanos() / every.as_nanos();
        next += every * u32::try_from(behind + 1).unwrap_or(u32::MAX);
    }
    next
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
