//! The daemon's inventory: SQLite on disk, one writer, many readers.
//!
//! ```text
//!  jobs, mDNS, API ─▶ Store (cheap clone) ─▶ bounded mpsc ─▶ writer thread: the only
//!                                                             read-write connection,
//!                                                             one transaction per command
//!                                                                │
//!               broadcast<Change> ◀──────────────────────────────┘ after commit, in seq order
//!  API handlers, `servers --db` ─▶ Reader (read-only connections, WAL) ─▶ the same file
//! ```
//!
//! - [`id`] derives the [`ServerId`] every row and sink is keyed by;
//! - [`schema`] holds the migrations, the connection settings and the checks that refuse a
//!   file that is not ours or is corrupt (the user's data is theirs: never "repaired");
//! - [`lock`] is the `<store>.lock` file that keeps a second daemon out;
//! - [`writer`] is the actor ([`Store`], [`WriterHandle`]): commands, the fault queue that
//!   keeps failed writes in memory and retries them, the heartbeat, retention;
//! - [`apply`] is what each command does inside its one transaction;
//! - [`diff`] turns two scan records into the detail of an `updated` change;
//! - [`health`] is the monitor's history: check results, hourly rollups, the health object
//!   and uptime of each server, and the health side of a server going and coming back;
//! - [`read`] is [`Reader`], the read-only queries behind the API and `servers --db`.
//! - [`sinks`] is the sinks' side of the store: their cursors over the change feed (the
//!   outbox), the ids each lists, and their dead letters.
//! - [`cache`] is [`ReadModel`], the API's in-memory read model: the writer re-reads each
//!   server a transaction touched and swaps its entry in before answering.
//!
//! The types here leave the HTTP API as JSON unchanged, so their field names are the API's.

pub mod apply;
pub mod cache;
pub mod dashboard;
pub mod diff;
pub mod health;
pub mod id;
pub mod lock;
pub mod read;
pub mod schema;
pub mod sinks;
pub mod writer;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::finding::{Origin, Record};
use crate::fingerprint::{Transport, Verdict};

pub use self::cache::{Lookup, ModelStats, ReadModel, Selection};
pub use self::health::{CheckRow, HealthUpdate, Uptime};
pub use self::id::ServerId;
pub use self::read::Reader;

pub use self::writer::{Store, WriterHandle};

/// Default age after which changes, runs and gone servers are deleted.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default number of consecutive completed runs of every job that found a server that must
/// miss it before it is gone.
pub const DEFAULT_GONE_AFTER: u32 = 3;
/// Default capacity of the writer's command queue; callers wait when it is full.
pub const DEFAULT_QUEUE: usize = 64;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// The SQLite file; its directory is created if needed, and `<path>.lock` is the lock.
    pub path: PathBuf,
    /// Changes, finished runs and gone servers older than this are deleted (at open and
    /// hourly).
    pub retention: Duration,
    /// Consecutive completed-run misses, per job that found a server, before it is gone.
    pub gone_after: u32,
    /// Capacity of the command queue.
    pub queue: usize,
}

impl StoreOptions {
    /// Options for the store at `path`, with every other setting at its default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            retention: DEFAULT_RETENTION,
            gone_after: DEFAULT_GONE_AFTER,
            queue: DEFAULT_QUEUE,
        }
    }
}

/// What kind of difference a [`Change`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new server, or one back after it was gone (`detail.reason` is `new` or `back`).
    Appeared,
    /// A meaningful field changed (`detail` holds before and after of each).
    Updated,
    /// The server stopped answering as MCP (`detail.reason` says why).
    Gone,
    /// The monitor's published status changed (`detail`: `from`, `to`, `reason`, `check`);
    /// also when a server goes (to `gone`) or comes back (to `unknown`) with a health object.
    HealthChanged,
}

impl ChangeKind {
    /// The snake_case name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Appeared => "appeared",
            Self::Updated => "updated",
            Self::Gone => "gone",
            Self::HealthChanged => "health_changed",
        }
    }

    /// The kind named `s` (as stored).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "appeared" => Self::Appeared,
            "updated" => Self::Updated,
            "gone" => Self::Gone,
            "health_changed" => Self::HealthChanged,
            _ => return None,
        })
    }
}

/// One committed difference in the inventory: what sinks deliver and `/changes` lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Strictly increasing, never reused (even after retention deletes old rows).
    pub seq: i64,
    /// RFC 3339 UTC time of the command that made it.
    pub at: String,
    /// The server's [`ServerId`].
    pub server_id: String,
    /// What happened.
    pub kind: ChangeKind,
    /// Kind-specific facts (reason, before/after).
    pub detail: serde_json::Value,
}

/// Whether a server is in the inventory's present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    /// Seen by its latest runs.
    Active,
    /// Missed, no longer MCP, or said goodbye; kept until retention deletes it.
    Gone,
}

impl ServerStatus {
    /// The snake_case name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Gone => "gone",
        }
    }

    /// The status named `s` (as stored).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "gone" => Some(Self::Gone),
            _ => None,
        }
    }
}

/// A server as the inventory holds it: every field of its latest scan record, plus its
/// identity and history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredServer {
    /// Stable identity, from the endpoint URL.
    pub id: ServerId,
    /// `active` or `gone`.
    pub status: ServerStatus,
    /// When it first appeared (RFC 3339 UTC).
    pub first_seen: String,
    /// When a run or observation last saw it.
    pub last_seen: String,
    /// The jobs that found it, sorted.
    pub jobs: Vec<String>,
    /// Why it is gone (only when gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gone_reason: Option<String>,
    /// The fraction of critical check results that passed per window (null without data).
    #[serde(default)]
    pub uptime: Uptime,
    /// The latest record, with `origins` and `announced_as` accumulated while active.
    #[serde(flatten)]
    pub record: Record,
}

impl StoredServer {
    /// A server as one scan found it, outside any inventory (`scan --push`): active, first
    /// and last seen when the record was, found by no job. `None` without an endpoint URL.
    pub fn from_scan(record: Record) -> Option<Self> {
        let id = ServerId::from_url(record.url.as_deref()?);
        Some(Self {
            id,
            status: ServerStatus::Active,
            first_seen: record.seen_at.clone(),
            last_seen: record.seen_at.clone(),
            jobs: Vec::new(),
            gone_reason: None,
            uptime: Uptime::default(),
            record,
        })
    }
}

/// A job run's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Begun, not finished.
    Running,
    /// Finished and saw everything it was asked to: misses count.
    Completed,
    /// Cancelled or killed: misses do not count.
    Interrupted,
    /// The job could not work (the error says why): misses do not count.
    Failed,
}

impl RunStatus {
    /// The snake_case name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Interrupted => "interrupted",
            Self::Failed => "failed",
        }
    }

    /// The status named `s` (as stored).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "interrupted" => Self::Interrupted,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One job run as `/runs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Row id.
    pub id: RunId,
    /// Job name.
    pub job: String,
    /// RFC 3339 UTC start.
    pub started_at: String,
    /// RFC 3339 UTC end (none while running).
    pub ended_at: Option<String>,
    /// Where it is.
    pub status: RunStatus,
    /// Why it failed, or why it was interrupted.
    pub error: Option<String>,
    /// Probes sent.
    pub probes: u64,
    /// Open ports found.
    pub open: u64,
    /// MCP records (with a URL) found.
    pub mcp: u64,
    /// `appeared` changes it made.
    pub appeared: u64,
    /// `updated` changes it made.
    pub updated: u64,
    /// `gone` changes it made.
    pub gone: u64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// Saw everything: servers it did not see count a miss.
    Completed,
    /// Cancelled (shutdown, reload): no misses.
    Interrupted,
    /// Could not work: no misses; the text is stored as the run's error.
    Failed(String),
}

impl RunEnd {
    fn status(&self) -> RunStatus {
        match self {
            Self::Completed => RunStatus::Completed,
            Self::Interrupted => RunStatus::Interrupted,
            Self::Failed(_) => RunStatus::Failed,
        }
    }
}

/// What a finished run hands the store.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The job (as given to [`Store::begin_run`]).
    pub job: String,
    /// How it ended.
    pub status: RunEnd,
    /// Every record of the run, MCP or not: non-MCP ones mark servers gone at their port.
    pub records: Vec<Record>,
    /// Probes sent.
    pub probes: u64,
    /// Open ports found.
    pub open: u64,
}

/// What [`Store::finish_run`] committed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run.
    pub run: RunId,
    /// How it ended.
    pub status: RunStatus,
    /// Every change, in seq order (also published on the broadcast).
    pub changes: Vec<Change>,
    /// MCP records (with a URL) upserted.
    pub mcp: u64,
    /// `appeared` changes.
    pub appeared: u64,
    /// `updated` changes.
    pub updated: u64,
    /// `gone` changes.
    pub gone: u64,
}

/// Whether the writer can commit, for `/readyz` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterStatus {
    /// The last write (command, retry or heartbeat) committed.
    pub writable: bool,
    /// The error of the last failed write, until one succeeds again.
    pub last_error: Option<String>,
    /// Commands kept in memory for retry.
    pub queued: usize,
}

/// Which servers [`Reader::servers`] returns; every set field must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFilter {
    /// This verdict.
    pub kind: Option<Verdict>,
    /// This transport.
    pub transport: Option<Transport>,
    /// Found (at least once while active) by this source.
    pub origin: Option<Origin>,
    /// Found by this job.
    pub job: Option<String>,
    /// Offers a tool of this name; `*` matches any run of characters.
    pub capability: Option<String>,
    /// `serverInfo.name` is this; `*` matches any run of characters.
    pub server_name: Option<String>,
    /// Active (default), gone, or both.
    pub status: StatusFilter,
    /// The stored health status; `unknown` also matches servers never checked.
    pub health_status: Option<crate::monitor::state::Status>,
}

/// The status part of a [`ServerFilter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    /// Only active servers.
    #[default]
    Active,
    /// Only gone servers.
    Gone,
    /// Both.
    All,
}

/// One cell of the `mcp_scout_servers{kind,transport,status}` gauge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerCount {
    /// Verdict.
    pub kind: Verdict,
    /// Transport, when known.
    pub transport: Option<Transport>,
    /// Active or gone.
    pub status: ServerStatus,
    /// Servers with these three values.
    pub count: u64,
}

/// What went wrong in the store. Messages name the file or value and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's directory could not be created.
    #[error(
        "cannot create the store directory {dir}: {source}; create it or choose another store path"
    )]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The lock file could not be opened or written.
    #[error("cannot use the lock file {path}: {source}; check the directory's permissions")]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the lock.
    #[error(
        "the store is in use by another mcp-scout daemon: {lock} is locked by {}; stop that \
         daemon, or give this one another store path",
        holder.map_or_else(|| "another process".to_string(), |p| format!("pid {p}"))
    )]
    InUse {
        /// The lock file.
        lock: PathBuf,
        /// The pid written in it, if readable.
        holder: Option<u32>,
    },
    /// The file exists but is not an SQLite database.
    #[error(
        "{path} is not an SQLite database (its first 16 bytes are not \"SQLite format 3\\0\"); \
         it was left untouched: move it away or choose another store path"
    )]
    NotSqlite {
        /// The file.
        path: PathBuf,
    },
    /// The file is an SQLite database that fails its integrity check.
    #[error(
        "{path} is corrupt ({detail}); it was left untouched: restore it from a backup, or \
         move it away to start an empty inventory"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What `PRAGMA quick_check` or the open said.
        detail: String,
    },
    /// The file is someone else's SQLite database.
    #[error(
        "{path} is an SQLite database but not an mcp-scout store (it has tables and no schema \
         version); it was left untouched: choose another store path"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer mcp-scout.
    #[error(
        "{path} has schema version {found}, newer than this mcp-scout knows ({known}); \
         upgrade mcp-scout or choose another store path"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A reader was pointed at a file that does not exist.
    #[error(
        "no inventory at {path}; start the daemon with this store path first, or pass the \
         right --db"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The migrations could not be applied.
    #[error("cannot migrate {path} to the current schema: {source}; check the file is writable")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite_migration::Error,
    },
    /// SQLite failed.
    #[error("sqlite failed while {what} ({path}): {source}")]
    Sqlite {
        /// What we were doing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value could not be read back.
    #[error(
        "stored {what} in {path} is unreadable: {detail}; the row was written by a different \
         mcp-scout, or edited by hand"
    )]
    Decode {
        /// Which value.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The write could not commit now; it is kept in memory and retried.
    #[error(
        "queued: store not writable ({reason}); the write is kept in memory and retried every \
         {}s until the disk accepts it", writer::RETRY_EVERY.as_secs()
    )]
    Queued {
        /// The error of the failed write.
        reason: String,
    },
    /// Queued writes could not be committed before the writer exited.
    #[error(
        "{ops} queued writes to {path} could not be committed before shutdown: {reason}; free \
         disk space or fix permissions before the next start"
    )]
    Unsaved {
        /// The file.
        path: PathBuf,
        /// Commands lost.
        ops: usize,
        /// The last write error.
        reason: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The writer has exited (closed, or all handles dropped).
    #[error("the store writer has stopped; the store was closed, reopen it to write")]
    Closed,
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
