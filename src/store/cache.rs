//! [`ReadModel`]: the inventory as the API reads it, in memory, kept coherent by the writer.
//!
//! **Why.** Profiled under 50 closed-loop clients on 2 cores, a lookup by id through
//! [`super::Reader`] spent its time in the hops around SQLite, not in SQLite: the handler
//! hands the work to the blocking pool (a thread wake-up and a context switch each way),
//! takes a pooled connection, runs two indexed queries (both plans are index seeks, the
//! `changes_by_server (server_id, seq)` index included), parses the stored record and the
//! changes into typed values and serializes them again. Each step is tens of microseconds;
//! together, with 32 blocking threads and 50 connections contending for 2 cores, they made
//! the service time ~0.3 ms (p50) and the queueing tail 27 ms. Here a lookup is a hash probe
//! and a copy of bytes that were serialized when the server last changed, done on the
//! runtime's worker without leaving it.
//!
//! **What it holds.** Every server row (active and gone), each as the exact bytes of its list
//! item (written by the same function as [`super::Reader::servers_json`], so both paths give
//! the same bytes), the fields the filters read (kind, transport, server name, origins, jobs,
//! tool names, status, taken from the same columns the SQL filters read), and, for the
//! by-id answer, its last [`super::read::RECENT_CHANGES`] changes serialized. Lists come out
//! in the SQL order (`ip_key`, `port`, `id`) from an ordered set; an exact `capability` uses
//! a tool-name index; every other filter is evaluated on the entries, with the same rules as
//! the SQL (`*` is the only wildcard, case-sensitive; see [`wildcard`]).
//!
//! **Coherence: per server, driven by the writer's own commits.** The writer's connection
//! has an SQLite update hook that notes the rowid of every `servers` row inserted, updated or
//! deleted and the seq of every `changes` row inserted or deleted, whatever statement did it
//! (upserts, `mark_gone`, `forget`, retention, and future writers such as the health
//! monitor's, as long as what they change is a `servers` column or a change). After each
//! transaction (committed or rolled back: re-reading is always right), the writer re-reads
//! just those servers from its own connection and swaps their entries in, *before* it
//! answers the command or publishes its changes, so a caller that was told "committed" (and
//! an SSE client that saw the change) reads what was committed. A transaction that touched
//! many servers (a rescan touches all of them) is swapped in [`SYNC_BATCH`] servers at a
//! time, so a list read during that swap may show some servers as of before the
//! transaction and the rest as of after it; each server is always whole. A health result written to
//! one server every 30 ms therefore costs one row read and one entry swap, never a reload.
//! The invariant writers must keep: a write that changes what a server's JSON shows touches
//! that server's `servers` row (tables `server_jobs` and `server_tools` are `WITHOUT ROWID`,
//! which the hook does not see; they only change together with the row).
//!
//! **Faults.** If a re-read fails, the model marks itself not ready, the API falls back to
//! the SQL path, and a later write (or the writer's heartbeat) reloads it whole, at most
//! once per [`RELOAD_EVERY`].
//!
//! **Memory, bounded.** One entry is its list JSON (1.4 KiB for the benchmark's FastMCP-like
//! records) plus its filter fields (~0.3 KiB), plus its changes JSON, which is kept only up
//! to [`MAX_CACHED_CHANGES_BYTES`] per server (a server with a longer history is answered
//! by id through SQLite). So N servers take at most N × (list JSON + 0.3 KiB + 4 KiB).
//! Measured with the benchmark's 10,000 servers (one `appeared` change each, see
//! [`ModelStats`]): 14.1 MiB of list JSON and 3.4 MiB of changes; the daemon's resident size
//! when ready went from 15 to 47 MiB (indexes, the load's transient buffers and allocator
//! slack included). A large list streamed to a slow client keeps the entries it has not sent
//! yet alive even if the writer replaces them meanwhile: at most one model's worth per
//! such client, bounded by `api.max_connections`.
//!
//! **Memory, steady.** A rescan replaces every entry (each list item holds `last_seen`). The
//! swap goes in batches of [`SYNC_BATCH`] so the new entries never coexist with a whole old
//! model: built all at once, a rescan's update would hold the new entries beside the whole
//! old model (the first run, with no old model, holds one), and glibc keeps such a peak's
//! pages resident afterwards. That is the reasoning; the benchmark measured the batches
//! together with two other changes (RSS drift +38 % before, +2.9 % after), not alone.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rusqlite::hooks::Action;
use rusqlite::{Connection, OptionalExtension, Row};

use super::read::{self, RawServer, SERVER_COLUMNS};
use super::{ServerFilter, StatusFilter};

/// Largest serialized recent-changes list kept per server; a longer one is read from SQLite
/// when the server is asked for by id. Bounds the model at about 4 KiB a server on top of
/// its list JSON.
pub const MAX_CACHED_CHANGES_BYTES: usize = 4096;

/// How often a model that is not ready tries to reload itself (at a write or the writer's
/// heartbeat): a row that cannot be decoded keeps it not ready, and a full reload on each of
/// the health monitor's writes would cost far more than the SQL path it falls back to.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// Prepared statements the writer's connection keeps: the writer's own and the model's
/// (rusqlite's default of 16 would evict and re-parse some on every run).
const STATEMENT_CACHE: usize = 64;
/// Servers re-read and swapped in at a time after a transaction: bounds the entries built
/// ahead of their swap (a rescan touches every server) to this many, not a second model.
const SYNC_BATCH: usize = 64;

/// The extra columns the model reads after [`SERVER_COLUMNS`], by name (so columns added to
/// `SERVER_COLUMNS` do not move them).
const MODEL_COLUMNS: &str = "s.rowid AS m_rowid, s.ip_key AS m_ip_key, s.port AS m_port,
    s.kind AS m_kind, s.transport AS m_transport, s.server_name AS m_server_name,
    s.origins AS m_origins, s.health_status AS m_health_status,
    (SELECT json_group_array(name) FROM server_tools WHERE server_id = s.id) AS m_tools";

/// The in-memory read model (see the module doc). Shared as `Arc<ReadModel>`: the writer
/// updates it, API handlers read it without blocking on SQLite.
#[derive(Debug)]
pub struct ReadModel {
    model: RwLock<Model>,
    /// False after a failed refresh, until a reload succeeds: readers use SQL meanwhile.
    ready: AtomicBool,
    /// When the last reload was tried (see [`RELOAD_EVERY`]).
    last_reload: Mutex<Option<Instant>>,
}

/// The sizes of the model, for logs, tests and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Servers held (active and gone).
    pub servers: usize,
    /// Bytes of list JSON held.
    pub json_bytes: usize,
    /// Bytes of recent-changes JSON held.
    pub changes_bytes: usize,
    /// Servers whose changes are too long to keep (answered by id through SQLite).
    pub changes_uncached: usize,
}

/// What a lookup by id found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The whole `GET /api/v1/servers/{id}` body: the server and its recent changes.
    Found(Vec<u8>),
    /// No server has this id.
    NotFound,
    /// The model cannot answer (not ready, or the server's changes are not kept): use SQL.
    Uncached,
}

/// The servers a filter selected, in list order; [`Self::into_json`] writes the document.
#[derive(Debug)]
pub struct Selection {
    entries: Vec<Arc<Entry>>,
    bytes: usize,
}

impl Selection {
    /// Servers selected.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of the servers' JSON (about the size of the document).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// `{"servers":[...],"count":N}`, byte for byte what [`super::Reader::servers_json`]
    /// writes for the same filter.
    pub fn into_json(self) -> Vec<u8> {
        let count = self.entries.len();
        let mut out = Vec::with_capacity(self.bytes + count + 32);
        out.extend_from_slice(b"{\"servers\":[");
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&e.json);
        }
        out.extend_from_slice(format!("],\"count\":{count}}}").as_bytes());
        out
    }
}

impl Selection {
    /// The same document as [`Self::into_json`], as a lazy sequence of chunks of about
    /// `chunk` bytes each (never splitting a server): a large list then never exists whole in
    /// memory, only the shared entries and one chunk at a time.
    pub fn into_chunks(self, chunk: usize) -> impl Iterator<Item = Vec<u8>> + Send + 'static {
        let count = self.entries.len();
        let mut entries = self.entries.into_iter().enumerate().peekable();
        let mut started = false;
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let mut out = Vec::with_capacity(chunk + 4096);
            if !started {
                started = true;
                out.extend_from_slice(b"{\"servers\":[");
            }
            while out.len() < chunk {
                let Some((i, e)) = entries.next() else {
                    break;
                };
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&e.json);
            }
            if entries.peek().is_none() {
                done = true;
                out.extend_from_slice(format!("],\"count\":{count}}}").as_bytes());
            }
            Some(out)
        })
    }
}

/// The rows one transaction touched, noted by the update hook.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    servers: HashSet<i64>,
    changes_written: HashSet<i64>,
    changes_deleted: HashSet<i64>,
}

impl Touched {
    fn is_empty(&self) -> bool {
        self.servers.is_empty()
            && self.changes_written.is_empty()
            && self.changes_deleted.is_empty()
    }
}

/// Install the hook that notes touched rows on the writer's connection; the writer passes
/// what it collects to [`ReadModel::sync`] after each transaction.
pub(crate) fn watch(conn: &Connection) -> rusqlite::Result<Arc<Mutex<Touched>>> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let touched = Arc::new(Mutex::new(Touched::default()));
    let sink = touched.clone();
    conn.update_hook(Some(
        move |action: Action, _db: &str, table: &str, rowid: i64| {
            let mut t = sink.lock().unwrap_or_else(PoisonError::into_inner);
            match (table, action) {
                ("servers", _) => {
                    t.servers.insert(rowid);
                }
                ("changes", Action::SQLITE_DELETE) => {
                    t.changes_deleted.insert(rowid);
                }
                ("changes", _) => {
                    t.changes_written.insert(rowid);
                }
                _ => {}
            }
        },
    ))?;
    Ok(touched)
}

/// One server as the model holds it.
#[derive(Debug)]
struct Entry {
    key: SortKey,
    rowid: i64,
    status: String,
    kind: String,
    transport: Option<String>,
    server_name: Option<String>,
    /// The `origins` column (a JSON array of names), matched as the SQL does.
    origins: String,
    /// The `health_status` column (`unknown` until the monitor checks it).
    health_status: String,
    jobs: Vec<String>,
    tools: Vec<String>,
    /// The list item, exactly as `Reader::servers_json` writes it.
    json: Box<[u8]>,
    /// The recent changes, or `None` when longer than [`MAX_CACHED_CHANGES_BYTES`].
    changes: Option<Arc<Changes>>,
}

#[derive(Debug)]
struct Changes {
    seqs: Vec<i64>,
    json: Box<[u8]>,
}

/// The list order of the SQL: `ORDER BY s.ip_key, s.port, s.id` (BLOB and BINARY text
/// compare as bytes, as `Vec<u8>` and `String` do).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    ip_key: Vec<u8>,
    port: i64,
    id: String,
}

/// An entry ordered by its key, for the ordered sets.
#[derive(Debug, Clone)]
struct ByKey(Arc<Entry>);

impl PartialEq for ByKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for ByKey {}
impl PartialOrd for ByKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

#[derive(Debug, Default)]
struct Model {
    by_id: HashMap<String, Arc<Entry>>,
    by_rowid: HashMap<i64, String>,
    ordered: BTreeSet<ByKey>,
    /// Exact tool name → the servers offering it, in list order.
    by_tool: HashMap<String, BTreeSet<ByKey>>,
    stats: ModelStats,
}

impl Model {
    fn remove(&mut self, id: &str) -> Option<Arc<Entry>> {
        let e = self.by_id.remove(id)?;
        self.by_rowid.remove(&e.rowid);
        let k = ByKey(e.clone());
        self.ordered.remove(&k);
        for t in &e.tools {
            if let Some(set) = self.by_tool.get_mut(t) {
                set.remove(&k);
                if set.is_empty() {
                    self.by_tool.remove(t);
                }
            }
        }
        self.count(&e, false);
        Some(e)
    }

    fn insert(&mut self, e: Entry) {
        self.remove(&e.key.id);
        let e = Arc::new(e);
        if let Some(old) = self.by_rowid.insert(e.rowid, e.key.id.clone()) {
            // A rowid SQLite reused for another server: the old one was deleted.
            if old != e.key.id {
                self.remove(&old);
                self.by_rowid.insert(e.rowid, e.key.id.clone());
            }
        }
        self.by_id.insert(e.key.id.clone(), e.clone());
        self.ordered.insert(ByKey(e.clone()));
        for t in &e.tools {
            self.by_tool
                .entry(t.clone())
                .or_default()
                .insert(ByKey(e.clone()));
        }
        self.count(&e, true);
    }

    fn count(&mut self, e: &Entry, add: bool) {
        let s = &mut self.stats;
        let (json, changes, uncached) = (
            e.json.len(),
            e.changes.as_ref().map_or(0, |c| c.json.len()),
            usize::from(e.changes.is_none()),
        );
        if add {
            s.servers += 1;
            s.json_bytes += json;
            s.changes_bytes += changes;
            s.changes_uncached += uncached;
        } else {
            s.servers -= 1;
            s.json_bytes -= json;
            s.changes_bytes -= changes;
            s.changes_uncached -= uncached;
        }
    }
}

/// Why the model could not be (re)built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ModelError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored {0} is unreadable: {1}")]
    Decode(&'static str, String),
}

impl ReadModel {
    /// The model of every server in the store `conn` reads (the writer's connection, at open).
    pub(crate) fn load(conn: &Connection) -> Result<Self, ModelError> {
        Ok(Self {
            model: RwLock::new(build(conn)?),
            ready: AtomicBool::new(true),
            last_reload: Mutex::new(None),
        })
    }

    /// A model that is not ready: every read falls back to SQL until a reload works.
    pub(crate) fn unready() -> Self {
        Self {
            model: RwLock::new(Model::default()),
            ready: AtomicBool::new(false),
            last_reload: Mutex::new(None),
        }
    }

    /// Whether reads can be answered from memory.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Sizes held now.
    pub fn stats(&self) -> ModelStats {
        self.read().stats
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Model> {
        self.model.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The servers matching every set field of `filter`, in list order; `None` when the
    /// model is not ready (use [`super::Reader::servers_json`]).
    pub fn servers(&self, filter: &ServerFilter) -> Option<Selection> {
        if !self.is_ready() {
            return None;
        }
        let m = self.read();
        let candidates: Box<dyn Iterator<Item = &ByKey>> = match &filter.capability {
            Some(c) if !c.contains('*') => match m.by_tool.get(c) {
                Some(set) => Box::new(set.iter()),
                None => Box::new(std::iter::empty()),
            },
            _ => Box::new(m.ordered.iter()),
        };
        let mut bytes = 0;
        let entries: Vec<Arc<Entry>> = candidates
            .filter(|k| matches(&k.0, filter))
            .map(|k| {
                bytes += k.0.json.len();
                k.0.clone()
            })
            .collect();
        Some(Selection { entries, bytes })
    }

    /// The `GET /api/v1/servers/{id}` body for `id` (see [`Lookup`]).
    pub fn server_json(&self, id: &str) -> Lookup {
        if !self.is_ready() {
            return Lookup::Uncached;
        }
        let m = self.read();
        let Some(e) = m.by_id.get(id) else {
            return Lookup::NotFound;
        };
        let Some(changes) = &e.changes else {
            return Lookup::Uncached;
        };
        // The server's list item with `"changes"` as its last field: what serializing the
        // server flattened with its changes gives.
        let mut out = Vec::with_capacity(e.json.len() + changes.json.len() + 12);
        out.extend_from_slice(&e.json[..e.json.len() - 1]);
        out.extend_from_slice(b",\"changes\":");
        out.extend_from_slice(&changes.json);
        out.push(b'}');
        Lookup::Found(out)
    }

    /// Bring the model up to date with the rows one transaction touched (the writer calls
    /// this after every transaction, before answering it). A failure leaves the model not
    /// ready until a later call reloads it whole.
    pub(crate) fn sync(&self, conn: &Connection, touched: &Mutex<Touched>) {
        let t = std::mem::take(&mut *touched.lock().unwrap_or_else(PoisonError::into_inner));
        if !self.is_ready() {
            {
                let mut last = self
                    .last_reload
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if last.is_some_and(|t| t.elapsed() < RELOAD_EVERY) {
                    return;
                }
                *last = Some(Instant::now());
            }
            match build(conn) {
                Ok(m) => {
                    *self.write() = m;
                    self.ready.store(true, Ordering::Release);
                    tracing::info!("the API's read model was reloaded");
                }
                Err(e) => tracing::debug!(error = %e, "the API's read model is still not ready"),
            }
            return;
        }
        if t.is_empty() {
            return;
        }
        if let Err(e) = self.apply(conn, &t) {
            self.ready.store(false, Ordering::Release);
            tracing::warn!(
                error = %e,
                "the API's read model could not follow a write; the API reads SQLite until it \
                 is reloaded at the next write"
            );
        }
    }

    fn apply(&self, conn: &Connection, t: &Touched) -> Result<(), ModelError> {
        // Servers whose recent changes must be read again.
        let mut with_changes: HashSet<String> = HashSet::new();
        let mut seq_owner = conn.prepare_cached("SELECT server_id FROM changes WHERE seq = ?1")?;
        for seq in &t.changes_written {
            if let Some(id) = seq_owner
                .query_row([seq], |r| r.get::<_, String>(0))
                .optional()?
            {
                with_changes.insert(id);
            }
        }
        if !t.changes_deleted.is_empty() {
            let m = self.read();
            for e in m.by_id.values() {
                let hit = e
                    .changes
                    .as_ref()
                    .is_none_or(|c| c.seqs.iter().any(|s| t.changes_deleted.contains(s)));
                if hit {
                    with_changes.insert(e.key.id.clone());
                }
            }
        }
        // Swapped in batches: a rescan touches every server, and building all the new
        // entries before dropping any old one would hold two models at once (see the module
        // doc's memory note). Each batch is read first, then locked only for its swap.
        let rowids: Vec<i64> = t.servers.iter().copied().collect();
        let mut by_rowid = conn.prepare_cached(&format!(
            "SELECT {SERVER_COLUMNS}, {MODEL_COLUMNS} FROM servers s WHERE s.rowid = ?1"
        ))?;
        for batch in rowids.chunks(SYNC_BATCH) {
            let mut rows = Vec::with_capacity(batch.len());
            for rowid in batch {
                if let Some(e) = by_rowid.query_row([rowid], entry).optional()? {
                    rows.push(e?);
                }
            }
            let mut fresh = Vec::with_capacity(rows.len());
            {
                let m = self.read();
                for mut e in rows {
                    let id = &e.key.id;
                    e.changes = match m.by_id.get(id) {
                        Some(old) if !with_changes.contains(id) => old.changes.clone(),
                        _ => changes(conn, id)?,
                    };
                    with_changes.remove(&e.key.id);
                    fresh.push(e);
                }
            }
            let mut m = self.write();
            for rowid in batch {
                if let Some(id) = m.by_rowid.get(rowid).cloned() {
                    m.remove(&id);
                }
            }
            for e in fresh {
                m.insert(e);
            }
        }
        // Changes of servers whose row this transaction left alone.
        let mut fresh = Vec::new();
        {
            let m = self.read();
            for id in &with_changes {
                // (A touched row was swapped above, or was deleted: never revive it.)
                if let Some(old) = m.by_id.get(id).filter(|o| !t.servers.contains(&o.rowid)) {
                    fresh.push(Entry {
                        changes: changes(conn, id)?,
                        ..clone_entry(old)
                    });
                }
            }
        }
        let mut m = self.write();
        for e in fresh {
            m.insert(e);
        }
        Ok(())
    }
}

fn clone_entry(e: &Entry) -> Entry {
    Entry {
        key: e.key.clone(),
        rowid: e.rowid,
        status: e.status.clone(),
        kind: e.kind.clone(),
        transport: e.transport.clone(),
        server_name: e.server_name.clone(),
        origins: e.origins.clone(),
        health_status: e.health_status.clone(),
        jobs: e.jobs.clone(),
        tools: e.tools.clone(),
        json: e.json.clone(),
        changes: e.changes.clone(),
    }
}

/// The whole model, from every row.
fn build(conn: &Connection) -> Result<Model, ModelError> {
    let mut m = Model::default();
    let mut st = conn.prepare(&format!(
        "SELECT {SERVER_COLUMNS}, {MODEL_COLUMNS} FROM servers s"
    ))?;
    let rows = st.query_map([], entry)?;
    for row in rows {
        let mut e = row??;
        e.changes = changes(conn, &e.key.id)?;
        m.insert(e);
    }
    Ok(m)
}

/// One entry (without its changes) from a row of `SERVER_COLUMNS, MODEL_COLUMNS`.
fn entry(r: &Row<'_>) -> rusqlite::Result<Result<Entry, ModelError>> {
    let raw: RawServer = read::raw_server(r)?;
    let rowid: i64 = r.get("m_rowid")?;
    let ip_key: Vec<u8> = r.get("m_ip_key")?;
    let port: i64 = r.get("m_port")?;
    let kind: String = r.get("m_kind")?;
    let transport: Option<String> = r.get("m_transport")?;
    let server_name: Option<String> = r.get("m_server_name")?;
    let origins: String = r.get("m_origins")?;
    let health_status: String = r.get("m_health_status")?;
    let tools: String = r.get("m_tools")?;
    Ok((|| {
        let mut json = Vec::with_capacity(raw.record.len() + 160);
        read::server_json_into(&mut json, &raw).map_err(|d| ModelError::Decode("record", d))?;
        let jobs: Vec<String> = serde_json::from_str(&raw.jobs)
            .map_err(|e| ModelError::Decode("jobs", format!("server {}: {e}", raw.id)))?;
        let tools: Vec<String> = serde_json::from_str(&tools)
            .map_err(|e| ModelError::Decode("tools", format!("server {}: {e}", raw.id)))?;
        Ok(Entry {
            key: SortKey {
                ip_key,
                port,
                id: raw.id.clone(),
            },
            rowid,
            status: raw.status.clone(),
            kind,
            transport,
            server_name,
            origins,
            health_status,
            jobs,
            tools,
            json: json.into_boxed_slice(),
            changes: None,
        })
    })())
}

/// The recent changes of `id`, serialized as the by-id answer has them; `None` when longer
/// than [`MAX_CACHED_CHANGES_BYTES`].
fn changes(conn: &Connection, id: &str) -> Result<Option<Arc<Changes>>, ModelError> {
    let list = read::recent_raw_changes(conn, id)?
        .into_iter()
        .map(read::change_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(what, detail)| ModelError::Decode(what, detail))?;
    let json =
        serde_json::to_vec(&list).map_err(|e| ModelError::Decode("changes", e.to_string()))?;
    if json.len() > MAX_CACHED_CHANGES_BYTES {
        return Ok(None);
    }
    Ok(Some(Arc::new(Changes {
        seqs: list.iter().map(|c| c.seq).collect(),
        json: json.into_boxed_slice(),
    })))
}

/// Whether `e` passes every set field of `f`, with the SQL's rules (`read::servers_query`).
fn matches(e: &Entry, f: &ServerFilter) -> bool {
    // Destructured, so a filter added to `ServerFilter` fails to compile here until the
    // model evaluates it too.
    let ServerFilter {
        kind,
        transport,
        origin,
        job,
        capability,
        server_name,
        status,
        health_status,
    } = f;
    let status_ok = match status {
        StatusFilter::Active => e.status == "active",
        StatusFilter::Gone => e.status == "gone",
        StatusFilter::All => true,
    };
    status_ok
        && kind.is_none_or(|k| e.kind == k.as_str())
        && transport.is_none_or(|t| e.transport.as_deref() == Some(t.as_str()))
        // `instr(s.origins, '"name"') > 0`
        && origin.is_none_or(|o| e.origins.contains(&format!("\"{}\"", o.as_str())))
        && job.as_ref().is_none_or(|j| e.jobs.iter().any(|x| x == j))
        && capability
            .as_ref()
            .is_none_or(|c| e.tools.iter().any(|t| wildcard(c, t)))
        && server_name
            .as_ref()
            .is_none_or(|n| e.server_name.as_deref().is_some_and(|s| wildcard(n, s)))
        // `s.health_status = ?`
        && health_status.is_none_or(|h| e.health_status == h.as_str())
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (none
/// included) and everything else matches itself, case-sensitively: what the SQL does with
/// `=` (no `*`) or with the `GLOB` pattern `read::glob` escapes (`?` and `[` literal).
/// Matching bytes is matching characters here: a UTF-8 literal can only match at a
/// character boundary.
pub(crate) fn wildcard(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        return rest.is_empty(); // no `*`: exact
    };
    let mut rest = rest;
    for m in middle {
        match rest.find(m) {
            Some(i) => rest = &rest[i + m.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn only_the_star_is_a_wildcard_and_case_counts() {
        for (p, t, want) in [
            ("echo", "echo", true),
            ("echo", "Echo", false),
            ("echo", "echo2", false),
            ("e*", "echo", true),
            ("e*", "e", true),
            ("*o", "echo", true),
            ("*", "", true),
            ("e*h*o", "echo", true),
            ("a*b*b", "ab", false),
            ("ab*b", "ab", false),
            ("x**y", "xy", true),
            ("a?b*", "a?b[1]", true),
            ("a?b*", "axb", false),
            ("[x]*", "[x]y", true),
            ("[x]*", "x", false),
            ("ü*", "ünï", true),
            ("*ï", "ünï", true),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(wildcard(p, t), want, "{p:?} on {t:?}");
        }
    }
}
