//! The writer actor: [`Store`] (a cheap, cloneable handle) and [`WriterHandle`] (wait for it
//! to drain and exit).
//!
//! One OS thread owns the only read-write connection. It runs a current-thread tokio
//! runtime so that it can `select!` on the bounded command queue and its tickers, and calls
//! rusqlite inline: nothing else writes, so there are no lock races and no `SQLITE_BUSY`
//! storms. Each command is one transaction; its changes are published on the broadcast only
//! after `commit` returns, in seq order. Before that, and before the caller is answered, the
//! servers the transaction touched are re-read into the API's read model
//! ([`super::cache`]).
//!
//! **Faults.** A write that fails for a reason the disk can recover from (full, read-only,
//! I/O error, locked by someone else) is not lost: the command is kept in memory, in order,
//! its caller is told [`StoreError::Queued`], `writable` turns false with the error, and the
//! queue is retried every [`RETRY_EVERY`] and before every later command. When a write works
//! again, everything commits in the original order and `writable` turns true. While idle, a
//! heartbeat write every [`HEARTBEAT_EVERY`] keeps `writable` truthful. Past
//! [`MAX_PENDING`] kept commands the writer stops taking new ones, so callers wait on the
//! bounded queue instead of memory growing without end. A failure that no retry can fix (a
//! constraint or a bug) is reported to its caller and dropped, so one bad command cannot
//! wedge the queue.
//!
//! `begin_run` answers with the run's id even while the store is not writable: ids are
//! handed out here, above every id ever stored, and the `running` row is queued.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rusqlite::ffi::ErrorCode;
use rusqlite::Connection;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{interval_at, Instant, MissedTickBehavior};

use super::apply::{self, Applied, Op};
use super::cache::{self, ReadModel, Touched};
use super::health::HealthUpdate;
use super::lock::LockFile;
use super::{
    schema, Change, RunId, RunOutcome, RunSummary, StoreError, StoreOptions, WriterStatus,
};
use crate::finding::{rfc3339, Record};

/// How often kept (failed) writes are retried.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How long the writer may sit idle before a heartbeat write checks the disk still works.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// How often retention runs (it also runs at open).
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Changes a slow subscriber may fall behind before it lags (and must reload from the
/// store, as SERVICE.md's SSE handler does).
pub const BROADCAST_CAPACITY: usize = 4096;
/// Failed commands kept in memory before the writer stops taking new ones.
pub const MAX_PENDING: usize = 256;
/// How long the writer keeps retrying kept writes at shutdown before giving up.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// The writer thread's name, as `top` and panics show it.
const THREAD_NAME: &str = "mcp-scout-store";

/// Timings of the writer, all defaults except in tests that must not wait for them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    pub(crate) retry_every: Duration,
    pub(crate) heartbeat_every: Duration,
    pub(crate) retention_every: Duration,
    pub(crate) drain_deadline: Duration,
    pub(crate) busy_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            retry_every: RETRY_EVERY,
            heartbeat_every: HEARTBEAT_EVERY,
            retention_every: RETENTION_EVERY,
            drain_deadline: DRAIN_DEADLINE,
            busy_timeout: schema::BUSY_TIMEOUT,
        }
    }
}

/// What a caller asks of the writer.
#[derive(Debug)]
enum Request {
    BeginRun { job: String },
    FinishRun { run: RunId, outcome: RunOutcome },
    Observe { job: String, records: Vec<Record> },
    MarkGone { id: String, reason: String },
    Forget { id: String },
    RecordHealth { update: Box<HealthUpdate> },
    Sink { op: super::sinks::SinkOp },
}

type Reply = oneshot::Sender<Result<Applied, StoreError>>;

/// The handle every task writes through. Cloning is cheap; the writer exits when every
/// clone is dropped (or [`WriterHandle::close`] is called) and its queue is drained.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<(Request, Reply)>,
    changes: broadcast::Sender<Change>,
    status: watch::Receiver<WriterStatus>,
    path: Arc<PathBuf>,
    model: Arc<ReadModel>,
}

/// Waits for the writer to drain its queue, commit and exit.
#[derive(Debug)]
pub struct WriterHandle {
    close: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<Result<(), StoreError>>,
}

impl Store {
    /// Open (or create) the store and start its writer.
    ///
    /// Creates the parent directory, takes `<path>.lock`, refuses a file that is not a
    /// healthy mcp-scout store (leaving it untouched), migrates, marks runs left `running`
    /// by a dead process as interrupted, and applies retention. Blocking: call it once at
    /// start-up, before serving.
    pub fn open(opts: StoreOptions) -> Result<(Self, WriterHandle), StoreError> {
        Self::open_tuned(opts, Tuning::default())
    }

    pub(crate) fn open_tuned(
        opts: StoreOptions,
        tuning: Tuning,
    ) -> Result<(Self, WriterHandle), StoreError> {
        let path = opts.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let lock = LockFile::acquire(&path)?;
        schema::validate_existing(&path)?;
        let mut conn = schema::open_writer(&path)?;
        let sqlite = |what: &'static str| {
            let path = path.clone();
            move |source| StoreError::Sqlite { what, path, source }
        };
        conn.busy_timeout(tuning.busy_timeout)
            .map_err(sqlite("setting busy_timeout"))?;
        let interrupted = apply::interrupt_running(&conn, &now())
            .map_err(sqlite("marking unfinished runs interrupted"))?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                path = %path.display(),
                "runs left running by a previous process marked interrupted"
            );
        }
        prune(&mut conn, &path, opts.retention);
        let next_run = apply::next_run_id(&conn).map_err(sqlite("reading the next run id"))?;
        let model = Arc::new(ReadModel::load(&conn).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the API's read model could not be built; the API reads SQLite until it is");
            ReadModel::unready()
        }));
        let touched = cache::watch(&conn).map_err(sqlite("watching writes for the read model"))?;

        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let (changes, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (status_tx, status) = watch::channel(WriterStatus {
            writable: true,
            last_error: None,
            queued: 0,
        });
        let (close_tx, close_rx) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(StoreError::Spawn)?;
        let writer = Writer {
            conn,
            path: path.clone(),
            gone_after: opts.gone_after,
            retention: opts.retention,
            tuning,
            pending: VecDeque::new(),
            next_run,
            changes: changes.clone(),
            status: status_tx,
            last_write: Instant::now(),
            model: model.clone(),
            touched,
            _lock: lock,
        };
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                // `run` consumes the writer, so the connection and the lock are released
                // before anyone waiting on `done` hears of it.
                let result = rt.block_on(writer.run(rx, close_rx));
                drop(rt);
                let _ = done_tx.send(result);
            })
            .map_err(StoreError::Spawn)?;
        let store = Self {
            tx,
            changes,
            status,
            path: Arc::new(path),
            model,
        };
        let handle = WriterHandle {
            close: Some(close_tx),
            done,
        };
        Ok((store, handle))
    }

    async fn ask(&self, req: Request) -> Result<Applied, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((req, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Record that a run of `job` started (a `running` row). Answers with the id even when
    /// the store is not writable: the row is queued then.
    pub async fn begin_run(&self, job: &str) -> Result<RunId, StoreError> {
        match self.ask(Request::BeginRun { job: job.into() }).await? {
            Applied::Run(id) => Ok(id),
            other => unreachable!("begin_run answered {other:?}"),
        }
    }

    /// Apply a run's records in one transaction (see [`super::apply`]) and end the run.
    pub async fn finish_run(
        &self,
        run: RunId,
        outcome: RunOutcome,
    ) -> Result<RunSummary, StoreError> {
        match self.ask(Request::FinishRun { run, outcome }).await? {
            Applied::Summary(s) => Ok(s),
            other => unreachable!("finish_run answered {other:?}"),
        }
    }

    /// Upsert and diff records seen outside a run (an mDNS announcement fingerprinted
    /// between runs); counts no misses.
    pub async fn observe(
        &self,
        job: &str,
        records: Vec<Record>,
    ) -> Result<Vec<Change>, StoreError> {
        match self
            .ask(Request::Observe {
                job: job.into(),
                records,
            })
            .await?
        {
            Applied::Changes(c) => Ok(c),
            other => unreachable!("observe answered {other:?}"),
        }
    }

    /// Mark an active server gone (an mDNS goodbye or TTL expiry): its `gone` change, then a
    /// `health_changed` to gone when it had a health object. Empty when it is unknown or
    /// already gone.
    pub async fn mark_gone(&self, id: &str, reason: &str) -> Result<Vec<Change>, StoreError> {
        match self
            .ask(Request::MarkGone {
                id: id.into(),
                reason: reason.into(),
            })
            .await?
        {
            Applied::Changes(c) => Ok(c),
            other => unreachable!("mark_gone answered {other:?}"),
        }
    }

    /// Delete a server, its jobs, tools and check history (the API's DELETE), after
    /// recording a `gone` change (first) and, for an active server with a health object, a
    /// `health_changed` to gone. Empty when it is unknown.
    pub async fn forget(&self, id: &str) -> Result<Vec<Change>, StoreError> {
        match self.ask(Request::Forget { id: id.into() }).await? {
            Applied::Changes(c) => Ok(c),
            other => unreachable!("forget answered {other:?}"),
        }
    }

    /// Store one check of a server in one transaction: its results, their hourly rollups,
    /// its health object and uptime, a `health_changed` change for the transition, and an
    /// `updated` change for tool drift (see [`super::health`]). A server that is unknown or
    /// gone is ignored: no changes, no error.
    pub async fn record_health(&self, u: HealthUpdate) -> Result<Vec<Change>, StoreError> {
        match self
            .ask(Request::RecordHealth {
                update: Box::new(u),
            })
            .await?
        {
            Applied::Changes(c) => Ok(c),
            other => unreachable!("record_health answered {other:?}"),
        }
    }

    /// Save a sink's progress or a dead letter (see [`super::sinks`]). While the store is
    /// not writable the write is kept and retried like any other: the answer is then
    /// [`StoreError::Queued`], which a sink treats as saved.
    pub async fn sink(&self, op: super::sinks::SinkOp) -> Result<(), StoreError> {
        match self.ask(Request::Sink { op }).await {
            Ok(_) | Err(StoreError::Queued { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every change committed from now on, once each, in seq order.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Whether the writer can commit right now.
    pub fn status(&self) -> WriterStatus {
        self.status.borrow().clone()
    }

    /// Follow [`Self::status`] as it changes.
    pub fn watch_status(&self) -> watch::Receiver<WriterStatus> {
        self.status.clone()
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The in-memory read model the writer keeps coherent with every commit (see
    /// [`super::cache`]); the API answers from it.
    pub fn read_model(&self) -> &Arc<ReadModel> {
        &self.model
    }
}

impl WriterHandle {
    /// Stop taking commands, commit everything queued, and wait for the writer to exit.
    /// Later calls on any [`Store`] clone fail with [`StoreError::Closed`].
    pub async fn close(mut self) -> Result<(), StoreError> {
        if let Some(c) = self.close.take() {
            let _ = c.send(());
        }
        self.wait().await
    }

    /// Wait for the writer to exit, which it does once every [`Store`] clone is dropped and
    /// its queue is committed.
    pub async fn wait(self) -> Result<(), StoreError> {
        // Dropping `close` unsent does not close the store.
        self.done.await.map_err(|_| StoreError::Closed)?
    }
}

struct Writer {
    conn: Connection,
    path: PathBuf,
    gone_after: u32,
    retention: Duration,
    tuning: Tuning,
    /// Commands whose transaction failed, oldest first; retried before anything newer.
    pending: VecDeque<Op>,
    next_run: i64,
    changes: broadcast::Sender<Change>,
    status: watch::Sender<WriterStatus>,
    last_write: Instant,
    /// Updated after every transaction, before its caller hears of it.
    model: Arc<ReadModel>,
    /// The rows the current transaction touched (the update hook's notes).
    touched: Arc<Mutex<Touched>>,
    /// Held for the writer's life: dropping it lets another daemon in.
    _lock: LockFile,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<(Request, Reply)>,
        mut close: oneshot::Receiver<()>,
    ) -> Result<(), StoreError> {
        let start = Instant::now();
        let mut retry = interval_at(start + self.tuning.retry_every, self.tuning.retry_every);
        retry.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let every = self.tuning.retention_every;
        let mut retention = interval_at(start + every, every);
        retention.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut close_heard = false;
        let mut closing = false;
        loop {
            tokio::select! {
                biased;
                asked = &mut close, if !close_heard => {
                    close_heard = true;
                    // An error means the handle was dropped without asking to close.
                    if asked.is_ok() {
                        closing = true;
                        rx.close();
                    }
                }
                cmd = rx.recv(), if closing || self.pending.len() < MAX_PENDING => match cmd {
                    Some((req, reply)) => self.handle(req, reply),
                    None => break,
                },
                _ = retry.tick() => self.tick(),
                _ = retention.tick() => {
                    prune(&mut self.conn, &self.path, self.retention);
                    self.model.sync(&self.conn, &self.touched);
                    // Keeps the planner's statistics current as the inventory grows.
                    if let Err(e) = self.conn.execute_batch("PRAGMA optimize") {
                        tracing::debug!(error = %e, "PRAGMA optimize failed");
                    }
                }
            }
        }
        self.drain().await
    }

    fn handle(&mut self, req: Request, reply: Reply) {
        let at = now();
        let (op, what, early) = match req {
            Request::BeginRun { job } => {
                let run = RunId(self.next_run);
                self.next_run += 1;
                (Op::BeginRun { run, job, at }, "beginning a run", Some(run))
            }
            Request::FinishRun { run, outcome } => {
                (Op::FinishRun { run, outcome, at }, "finishing a run", None)
            }
            Request::Observe { job, records } => (
                Op::Observe { job, records, at },
                "storing observed records",
                None,
            ),
            Request::MarkGone { id, reason } => (
                Op::MarkGone { id, reason, at },
                "marking a server gone",
                None,
            ),
            Request::Forget { id } => (Op::Forget { id, at }, "forgetting a server", None),
            Request::RecordHealth { update } => (
                Op::RecordHealth { update, at },
                "recording a health check",
                None,
            ),
            Request::Sink { op } => (Op::Sink { op, at }, "saving a sink's progress", None),
        };
        let queued = |reason: String| match early {
            Some(run) => Ok(Applied::Run(run)),
            None => Err(StoreError::Queued { reason }),
        };
        if !self.pending.is_empty() && !self.flush() {
            self.pending.push_back(op);
            self.publish_status();
            let _ = reply.send(queued(self.last_error()));
            return;
        }
        match self.commit(&op) {
            Ok(applied) => {
                let _ = reply.send(Ok(applied));
            }
            Err(e) if is_transient(&e) => {
                self.failed(&e);
                self.pending.push_back(op);
                self.publish_status();
                let _ = reply.send(queued(e.to_string()));
            }
            Err(source) => {
                tracing::error!(
                    error = %source,
                    what,
                    path = %self.path.display(),
                    "store write refused; it cannot succeed on retry, so it is not kept"
                );
                let _ = reply.send(Err(StoreError::Sqlite {
                    what,
                    path: self.path.clone(),
                    source,
                }));
            }
        }
    }

    /// Apply one op; on success publish its changes and note the store writable.
    fn commit(&mut self, op: &Op) -> rusqlite::Result<Applied> {
        let applied = apply::apply(&mut self.conn, op, self.gone_after);
        // Before the caller is answered and the changes are published (rolled back or not:
        // re-reading the touched rows is always right).
        self.model.sync(&self.conn, &self.touched);
        let applied = applied?;
        self.last_write = Instant::now();
        for c in applied.changes() {
            // No subscriber is fine: the change is in the table.
            let _ = self.changes.send(c.clone());
        }
        self.recovered();
        Ok(applied)
    }

    /// Retry kept ops in order; true when none is left.
    fn flush(&mut self) -> bool {
        while let Some(op) = self.pending.pop_front() {
            match self.commit(&op) {
                Ok(_) => {}
                Err(e) if is_transient(&e) => {
                    self.pending.push_front(op);
                    self.failed(&e);
                    return false;
                }
                Err(e) => {
                    tracing::error!(
                        error = %e,
                        path = %self.path.display(),
                        "a kept store write can never commit; dropping it"
                    );
                }
            }
        }
        self.publish_status();
        true
    }

    fn tick(&mut self) {
        if !self.pending.is_empty() {
            self.flush();
            return;
        }
        let idle = self.last_write.elapsed() >= self.tuning.heartbeat_every;
        if idle || !self.status.borrow().writable {
            let op = Op::Heartbeat { at: now() };
            if let Err(e) = self.commit(&op) {
                self.failed(&e);
            }
        }
    }

    async fn drain(mut self) -> Result<(), StoreError> {
        let deadline = Instant::now() + self.tuning.drain_deadline;
        while !self.flush() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let ops = self.pending.len();
                let reason = self.last_error();
                tracing::error!(
                    ops,
                    %reason,
                    path = %self.path.display(),
                    "store writer exits with writes it could not commit"
                );
                return Err(StoreError::Unsaved {
                    path: self.path.clone(),
                    ops,
                    reason,
                });
            }
            tokio::time::sleep(self.tuning.retry_every.min(left)).await;
        }
        Ok(())
    }

    fn failed(&mut self, e: &rusqlite::Error) {
        let msg = e.to_string();
        let was_writable = self.status.borrow().writable;
        if was_writable {
            tracing::error!(
                error = %msg,
                path = %self.path.display(),
                queued = self.pending.len(),
                "store not writable; keeping writes in memory and retrying"
            );
        } else {
            tracing::debug!(error = %msg, "store still not writable");
        }
        let queued = self.pending.len();
        self.status.send_if_modified(|s| {
            let new = WriterStatus {
                writable: false,
                last_error: Some(msg),
                queued,
            };
            let changed = *s != new;
            *s = new;
            changed
        });
    }

    fn recovered(&mut self) {
        if !self.status.borrow().writable {
            tracing::info!(path = %self.path.display(), "store writable again");
        }
        self.publish_status_with(true);
    }

    fn publish_status(&mut self) {
        let writable = self.status.borrow().writable;
        self.publish_status_with(writable);
    }

    fn publish_status_with(&mut self, writable: bool) {
        let queued = self.pending.len();
        self.status.send_if_modified(|s| {
            let last_error = if writable { None } else { s.last_error.take() };
            let new = WriterStatus {
                writable,
                last_error,
                queued,
            };
            let changed = *s != new;
            *s = new;
            changed
        });
    }

    fn last_error(&self) -> String {
        self.status
            .borrow()
            .last_error
            .clone()
            .unwrap_or_else(|| "earlier writes are still queued".into())
    }
}

/// One retention pass; a failure is logged and left for the next pass.
fn prune(conn: &mut Connection, path: &Path, retention: Duration) {
    // Zero keeps everything (a cutoff of "now" would delete the whole history).
    if retention.is_zero() {
        return;
    }
    let rollups = apply::cutoff(super::health::ROLLUP_RETENTION);
    match apply::prune(conn, &apply::cutoff(retention), &rollups) {
        Ok(p) if p != apply::Pruned::default() => {
            tracing::info!(
                changes = p.changes,
                runs = p.runs,
                servers = p.servers,
                checks = p.checks,
                rollups = p.rollups,
                dead_letters = p.dead_letters,
                path = %path.display(),
                "retention deleted old history"
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(
                error = %e,
                path = %path.display(),
                "retention pass failed; trying again at the next one"
            )
        }
    }
}

/// Whether a failed write may succeed later, unchanged: the disk, not the command, failed.
pub(crate) fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
                | ErrorCode::PermissionDenied
                | ErrorCode::FileLockingProtocolFailed
        )
    )
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn err(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn disk_and_lock_failures_are_retried_logic_failures_are_not() {
        for code in [
            ffi::SQLITE_FULL,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_CANTOPEN,
            ffi::SQLITE_NOMEM,
            ffi::SQLITE_PERM,
        ] {
            assert!(is_transient(&err(code)), "{code}");
        }
        for code in [
            ffi::SQLITE_CONSTRAINT,
            ffi::SQLITE_MISUSE,
            ffi::SQLITE_ERROR,
        ] {
            assert!(!is_transient(&err(code)), "{code}");
        }
        assert!(!is_transient(&rusqlite::Error::QueryReturnedNoRows));
    }
}
