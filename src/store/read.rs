//! [`Reader`]: read-only queries over the store, for the API and `servers --db`.
//!
//! Every query runs on a read-only connection (`SQLITE_OPEN_READ_ONLY`, `query_only`), so
//! it is safe while the daemon writes: WAL gives each query a consistent snapshot and never
//! blocks the writer. A [`Reader`] is a cheap `Clone` over a small pool of idle connections
//! (opening one costs a schema parse; reusing it keeps a lookup by id well under a
//! millisecond). The methods block: call them from async handlers through
//! `tokio::task::spawn_blocking`.
//!
//! Capability (tool name) and server-name filters accept `*` for any run of characters.
//! They become SQLite `GLOB` patterns with the other metacharacters (`?`, `[`) escaped, so
//! only `*` is special; matching is case-sensitive, as tool names are.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::{
    schema, Change, ChangeKind, CheckRow, RunId, RunInfo, RunStatus, ServerCount, ServerFilter,
    ServerId, ServerStatus, StatusFilter, StoreError, StoredServer, Uptime,
};
use crate::finding::{rfc3339, Record};
use crate::monitor::state::Health;

/// Idle connections a [`Reader`] keeps for reuse; more may be open at once under load. Sized
/// for an API under 50 concurrent clients: with 4, most requests opened (and prepared
/// statements on) a fresh connection, about a fifth of the CPU of a lookup by id.
pub const MAX_IDLE: usize = 32;
/// Changes [`Reader::server`] returns with a server, newest first.
pub const RECENT_CHANGES: usize = 20;

/// Read-only access to a store (see the module doc).
#[derive(Debug, Clone)]
pub struct Reader {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

pub(super) const SERVER_COLUMNS: &str =
    "s.id, s.status, s.first_seen, s.last_seen, s.gone_reason, s.record,
    (SELECT json_group_array(job) FROM
        (SELECT job FROM server_jobs WHERE server_id = s.id ORDER BY job)), s.uptime";

/// `uptime` of a server never checked.
const NO_UPTIME: &str = r#"{"1h":null,"24h":null,"7d":null,"30d":null}"#;

/// Check results [`Reader::checks`] returns at most, whatever the limit asked.
pub const MAX_CHECKS: usize = 10_000;

impl Reader {
    /// A reader of the store at `path`; fails when it is missing or not an mcp-scout store.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let first = connect(&path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                idle: Mutex::new(vec![first]),
            }),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` on a pooled connection; a connection that failed is not reused.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.inner.path)?,
        };
        let out = f(&conn);
        if out.is_ok() {
            let mut idle = self
                .inner
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        out
    }

    pub(super) fn sqlite(&self, what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sqlite {
            what,
            path: self.inner.path.clone(),
            source,
        }
    }

    /// The servers matching every set field of `filter`, by address then port.
    pub fn servers(&self, filter: &ServerFilter) -> Result<Vec<StoredServer>, StoreError> {
        let (sql, args) = servers_query(filter);
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(&sql)
                .map_err(self.sqlite("preparing the server list"))?;
            let rows = st
                .query_map(params_from_iter(args.iter()), raw_server)
                .map_err(self.sqlite("listing servers"))?;
            let mut out = Vec::new();
            for row in rows {
                out.push(self.server_from(row.map_err(self.sqlite("listing servers"))?)?);
            }
            Ok(out)
        })
    }

    /// The servers matching `filter` as the API's document, `{"servers":[...],"count":N}`,
    /// written straight from the stored JSON: each server is its inventory fields followed
    /// by its stored record, exactly what serializing [`StoredServer`]s gives, without
    /// parsing every record and serializing it again (most of a large list's cost).
    pub fn servers_json(&self, filter: &ServerFilter) -> Result<Vec<u8>, StoreError> {
        let (sql, args) = servers_query(filter);
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(&sql)
                .map_err(self.sqlite("preparing the server list"))?;
            let rows = st
                .query_map(params_from_iter(args.iter()), raw_server)
                .map_err(self.sqlite("listing servers"))?;
            let mut out = Vec::with_capacity(4096);
            out.extend_from_slice(b"{\"servers\":[");
            let mut count = 0usize;
            for row in rows {
                let raw = row.map_err(self.sqlite("listing servers"))?;
                if count > 0 {
                    out.push(b',');
                }
                self.write_server_json(&mut out, &raw)?;
                count += 1;
            }
            out.extend_from_slice(format!("],\"count\":{count}}}").as_bytes());
            Ok(out)
        })
    }

    fn write_server_json(&self, out: &mut Vec<u8>, raw: &RawServer) -> Result<(), StoreError> {
        server_json_into(out, raw).map_err(|detail| self.decode("record", detail))
    }

    /// One server and its last [`RECENT_CHANGES`] changes, newest first.
    pub fn server(&self, id: &str) -> Result<Option<(StoredServer, Vec<Change>)>, StoreError> {
        self.with(|conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "SELECT {SERVER_COLUMNS} FROM servers s WHERE s.id = ?1"
                ))
                .and_then(|mut st| st.query_row([id], raw_server).optional())
                .map_err(self.sqlite("reading a server"))?;
            let Some(raw) = raw else {
                return Ok(None);
            };
            let server = self.server_from(raw)?;
            let changes = self.collect_changes(
                recent_raw_changes(conn, id)
                    .map_err(self.sqlite("reading a server's changes"))?
                    .into_iter()
                    .map(Ok),
            )?;
            Ok(Some((server, changes)))
        })
    }

    /// Whether the store holds a server with this id (active or gone).
    pub fn has_server(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|conn| {
            conn.prepare_cached("SELECT 1 FROM servers WHERE id = ?1")
                .and_then(|mut st| st.exists([id]))
                .map_err(self.sqlite("looking a server up"))
        })
    }

    /// Up to `limit` (at most [`MAX_CHECKS`]) stored check results of a server, newest
    /// first: those at or after `since`, of the check named `check`, when given. Empty for
    /// an unknown server (see [`Self::has_server`]).
    pub fn checks(
        &self,
        server_id: &str,
        since: Option<std::time::SystemTime>,
        check: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CheckRow>, StoreError> {
        // Two statements rather than `?3 IS NULL OR ...`, so each uses its index.
        let sql = if check.is_some() {
            "SELECT check_name, at, ok, latency_ms, message FROM check_results
             WHERE server_id = ?1 AND check_name = ?3 AND at >= ?2
             ORDER BY at DESC, id DESC LIMIT ?4"
        } else {
            "SELECT check_name, at, ok, latency_ms, message FROM check_results
             WHERE server_id = ?1 AND at >= ?2 AND (?3 IS NULL)
             ORDER BY at DESC, id DESC LIMIT ?4"
        };
        let since = since.map_or_else(String::new, rfc3339);
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(sql)
                .map_err(self.sqlite("listing check results"))?;
            let rows = st
                .query_map(
                    params![server_id, since, check, clamp(limit.min(MAX_CHECKS))],
                    |r| {
                        Ok(CheckRow {
                            check: r.get(0)?,
                            at: r.get(1)?,
                            ok: r.get(2)?,
                            latency_ms: r.get(3)?,
                            message: r.get(4)?,
                        })
                    },
                )
                .map_err(self.sqlite("listing check results"))?;
            rows.collect::<Result<_, _>>()
                .map_err(self.sqlite("listing check results"))
        })
    }

    /// The stored health object of every server that has one (active or gone: a gone
    /// one's status is `gone`), by id: what the monitor restores its state from at start.
    pub fn health_states(&self) -> Result<Vec<(String, Health)>, StoreError> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT id, health FROM servers WHERE health IS NOT NULL ORDER BY id",
                )
                .map_err(self.sqlite("reading health states"))?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(self.sqlite("reading health states"))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, text) = row.map_err(self.sqlite("reading health states"))?;
                let h = serde_json::from_str(&text)
                    .map_err(|e| self.decode("health", format!("server {id}: {e}")))?;
                out.push((id, h));
            }
            Ok(out)
        })
    }

    /// Up to `limit` changes with `seq > since`, oldest first, and the cursor to pass next
    /// time (the last seq returned, or `since` when there was none).
    pub fn changes(&self, since: i64, limit: usize) -> Result<(Vec<Change>, i64), StoreError> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, at, server_id, kind, detail FROM changes
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(self.sqlite("listing changes"))?;
            let changes = self.collect_changes(
                st.query_map(params![since, clamp(limit)], raw_change)
                    .map_err(self.sqlite("listing changes"))?,
            )?;
            let next = changes.last().map_or(since, |c| c.seq);
            Ok((changes, next))
        })
    }

    /// Up to `limit` runs (of `job`, or of every job), newest first.
    pub fn runs(&self, job: Option<&str>, limit: usize) -> Result<Vec<RunInfo>, StoreError> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT id, job, started_at, ended_at, status, error, probes, open, mcp,
                            appeared, updated, gone
                     FROM runs WHERE ?1 IS NULL OR job = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(self.sqlite("listing runs"))?;
            let rows = st
                .query_map(params![job, clamp(limit)], |r| {
                    Ok((
                        RunInfo {
                            id: RunId(r.get(0)?),
                            job: r.get(1)?,
                            started_at: r.get(2)?,
                            ended_at: r.get(3)?,
                            status: RunStatus::Running,
                            error: r.get(5)?,
                            probes: count(r, 6)?,
                            open: count(r, 7)?,
                            mcp: count(r, 8)?,
                            appeared: count(r, 9)?,
                            updated: count(r, 10)?,
                            gone: count(r, 11)?,
                        },
                        r.get::<_, String>(4)?,
                    ))
                })
                .map_err(self.sqlite("listing runs"))?;
            let mut out = Vec::new();
            for row in rows {
                let (mut info, status) = row.map_err(self.sqlite("listing runs"))?;
                info.status = RunStatus::parse(&status)
                    .ok_or_else(|| self.decode("run status", format!("{status:?}")))?;
                out.push(info);
            }
            Ok(out)
        })
    }

    /// Servers per (kind, transport, status), for the `mcp_scout_servers` gauge.
    pub fn server_counts(&self) -> Result<Vec<ServerCount>, StoreError> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT kind, transport, status, count(*) FROM servers
                     GROUP BY kind, transport, status ORDER BY kind, transport, status",
                )
                .map_err(self.sqlite("counting servers"))?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        count(r, 3)?,
                    ))
                })
                .map_err(self.sqlite("counting servers"))?;
            let mut out = Vec::new();
            for row in rows {
                let (kind, transport, status, n) = row.map_err(self.sqlite("counting servers"))?;
                out.push(ServerCount {
                    kind: from_name(&kind).ok_or_else(|| self.decode("kind", kind.clone()))?,
                    transport: match transport {
                        Some(t) => Some(from_name(&t).ok_or_else(|| self.decode("transport", t))?),
                        None => None,
                    },
                    status: ServerStatus::parse(&status)
                        .ok_or_else(|| self.decode("server status", status))?,
                    count: n,
                });
            }
            Ok(out)
        })
    }

    /// The newest seq ever assigned (0 before the first change); retention does not lower
    /// it, so a client resuming from it never sees an old seq again.
    pub fn last_seq(&self) -> Result<i64, StoreError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0),
                            coalesce((SELECT max(seq) FROM changes), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(self.sqlite("reading the last seq"))
        })
    }

    pub(super) fn decode(&self, what: &'static str, detail: String) -> StoreError {
        StoreError::Decode {
            what,
            path: self.inner.path.clone(),
            detail,
        }
    }

    pub(super) fn server_from(&self, raw: RawServer) -> Result<StoredServer, StoreError> {
        let record: Record = serde_json::from_str(&raw.record)
            .map_err(|e| self.decode("record", format!("server {}: {e}", raw.id)))?;
        let jobs: Vec<String> = serde_json::from_str(&raw.jobs)
            .map_err(|e| self.decode("jobs", format!("server {}: {e}", raw.id)))?;
        let status = ServerStatus::parse(&raw.status)
            .ok_or_else(|| self.decode("server status", format!("{:?}", raw.status)))?;
        let uptime = match &raw.uptime {
            Some(u) => serde_json::from_str(u)
                .map_err(|e| self.decode("uptime", format!("server {}: {e}", raw.id)))?,
            None => Uptime::default(),
        };
        Ok(StoredServer {
            uptime,
            id: ServerId::from_stored(raw.id),
            status,
            first_seen: raw.first_seen,
            last_seen: raw.last_seen,
            jobs,
            gone_reason: raw.gone_reason,
            record,
        })
    }

    fn collect_changes(
        &self,
        rows: impl Iterator<Item = rusqlite::Result<RawChange>>,
    ) -> Result<Vec<Change>, StoreError> {
        let mut out = Vec::new();
        for row in rows {
            let raw = row.map_err(self.sqlite("reading changes"))?;
            out.push(change_from(raw).map_err(|(what, detail)| self.decode(what, detail))?);
        }
        Ok(out)
    }
}

/// Append one server's list JSON to `out`: its inventory fields, then its stored record's
/// fields (shared by [`Reader::servers_json`] and the read model, so both write the same
/// bytes). The error is the decode detail.
pub(super) fn server_json_into(out: &mut Vec<u8>, raw: &RawServer) -> Result<(), String> {
    let body = raw
        .record
        .trim()
        .strip_prefix('{')
        .filter(|b| b.ends_with('}'))
        .ok_or_else(|| format!("server {}: not a JSON object", raw.id))?;
    let text = |v: &str| serde_json::to_string(v).unwrap_or_default();
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(text(&raw.id).as_bytes());
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(text(&raw.status).as_bytes());
    out.extend_from_slice(b",\"first_seen\":");
    out.extend_from_slice(text(&raw.first_seen).as_bytes());
    out.extend_from_slice(b",\"last_seen\":");
    out.extend_from_slice(text(&raw.last_seen).as_bytes());
    out.extend_from_slice(b",\"jobs\":");
    out.extend_from_slice(raw.jobs.as_bytes());
    if let Some(g) = &raw.gone_reason {
        out.extend_from_slice(b",\"gone_reason\":");
        out.extend_from_slice(text(g).as_bytes());
    }
    // Written by the store itself (serde_json of `Uptime`), so copied as it is.
    out.extend_from_slice(b",\"uptime\":");
    out.extend_from_slice(raw.uptime.as_deref().unwrap_or(NO_UPTIME).as_bytes());
    if body.trim() != "}" {
        out.push(b',');
    }
    out.extend_from_slice(body.as_bytes());
    Ok(())
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = schema::open_reader(path)?;
    conn.execute_batch("PRAGMA query_only = ON")
        .map_err(|source| StoreError::Sqlite {
            what: "making a reader query-only",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(conn)
}

pub(super) struct RawServer {
    pub(super) id: String,
    pub(super) status: String,
    pub(super) first_seen: String,
    pub(super) last_seen: String,
    pub(super) gone_reason: Option<String>,
    pub(super) record: String,
    pub(super) jobs: String,
    pub(super) uptime: Option<String>,
}

pub(super) fn raw_server(r: &Row<'_>) -> rusqlite::Result<RawServer> {
    Ok(RawServer {
        id: r.get(0)?,
        status: r.get(1)?,
        first_seen: r.get(2)?,
        last_seen: r.get(3)?,
        gone_reason: r.get(4)?,
        record: r.get(5)?,
        jobs: r.get(6)?,
        uptime: r.get(7)?,
    })
}

pub(super) struct RawChange {
    seq: i64,
    at: String,
    server_id: String,
    kind: String,
    detail: String,
}

fn raw_change(r: &Row<'_>) -> rusqlite::Result<RawChange> {
    Ok(RawChange {
        seq: r.get(0)?,
        at: r.get(1)?,
        server_id: r.get(2)?,
        kind: r.get(3)?,
        detail: r.get(4)?,
    })
}

/// The last [`RECENT_CHANGES`] changes of server `id`, newest first, as stored.
pub(super) fn recent_raw_changes(conn: &Connection, id: &str) -> rusqlite::Result<Vec<RawChange>> {
    conn.prepare_cached(
        "SELECT seq, at, server_id, kind, detail FROM changes
         WHERE server_id = ?1 ORDER BY seq DESC LIMIT ?2",
    )?
    .query_map(params![id, RECENT_CHANGES as i64], raw_change)?
    .collect()
}

/// A stored change decoded; the error names the value and why.
pub(super) fn change_from(raw: RawChange) -> Result<Change, (&'static str, String)> {
    let kind =
        ChangeKind::parse(&raw.kind).ok_or_else(|| ("change kind", format!("{:?}", raw.kind)))?;
    let detail = serde_json::from_str(&raw.detail)
        .map_err(|e| ("change detail", format!("seq {}: {e}", raw.seq)))?;
    Ok(Change {
        seq: raw.seq,
        at: raw.at,
        server_id: raw.server_id,
        kind,
        detail,
    })
}

fn count(r: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
}

fn clamp(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A serde enum from its wire name (`mcp-auth-required`, `streamable-http`).
fn from_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// The SQL and its text arguments for `filter`.
fn servers_query(filter: &ServerFilter) -> (String, Vec<String>) {
    let (mut sql, args) = servers_where(
        format!("SELECT {SERVER_COLUMNS} FROM servers s WHERE 1 = 1"),
        filter,
    );
    sql.push_str(" ORDER BY s.ip_key, s.port, s.id");
    (sql, args)
}

/// `head` (a `SELECT ... FROM servers s WHERE 1 = 1`) with `filter`'s conditions appended
/// (placeholders `?1`, `?2`... in order), and their text arguments; no `ORDER BY`.
pub(super) fn servers_where(head: String, filter: &ServerFilter) -> (String, Vec<String>) {
    let mut sql = head;
    let mut args = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, value: String| {
        args.push(value);
        sql.push_str(&clause.replace("?", &format!("?{}", args.len())));
    };
    // With a tool or name filter, those indexes find the few rows; the unary `+` keeps the
    // planner from walking every active server in address order instead (measured: 16 ms
    // against well under 1 ms for 100 of 10,000 rows).
    let status = if filter.capability.is_some() || filter.server_name.is_some() {
        " AND +s.status = ?"
    } else {
        " AND s.status = ?"
    };
    match filter.status {
        StatusFilter::Active => arg(&mut sql, status, "active".into()),
        StatusFilter::Gone => arg(&mut sql, status, "gone".into()),
        StatusFilter::All => {}
    }
    if let Some(k) = filter.kind {
        arg(&mut sql, " AND s.kind = ?", k.as_str().into());
    }
    if let Some(t) = filter.transport {
        arg(&mut sql, " AND s.transport = ?", t.as_str().into());
    }
    if let Some(o) = filter.origin {
        // `origins` is a JSON array of these names, so the quoted name matches exactly.
        arg(
            &mut sql,
            " AND instr(s.origins, ?) > 0",
            format!("\"{}\"", o.as_str()),
        );
    }
    if let Some(j) = &filter.job {
        arg(
            &mut sql,
            " AND s.id IN (SELECT server_id FROM server_jobs WHERE job = ?)",
            j.clone(),
        );
    }
    if let Some(c) = &filter.capability {
        match glob(c) {
            Some(g) => arg(
                &mut sql,
                " AND s.id IN (SELECT server_id FROM server_tools WHERE name GLOB ?)",
                g,
            ),
            None => arg(
                &mut sql,
                " AND s.id IN (SELECT server_id FROM server_tools WHERE name = ?)",
                c.clone(),
            ),
        }
    }
    if let Some(h) = filter.health_status {
        arg(&mut sql, " AND s.health_status = ?", h.as_str().into());
    }
    if let Some(n) = &filter.server_name {
        match glob(n) {
            Some(g) => arg(&mut sql, " AND s.server_name GLOB ?", g),
            None => arg(&mut sql, " AND s.server_name = ?", n.clone()),
        }
    }
    (sql, args)
}

/// The GLOB pattern for a user pattern where only `*` is special; `None` when it has no
/// `*` (then equality is exact and uses the index directly).
pub(crate) fn glob(pattern: &str) -> Option<String> {
    if !pattern.contains('*') {
        return None;
    }
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_star_is_a_wildcard() {
        assert_eq!(glob("echo"), None);
        assert_eq!(glob("get_*").as_deref(), Some("get_*"));
        assert_eq!(glob("a?b*").as_deref(), Some("a[?]b*"));
        assert_eq!(glob("[x]*").as_deref(), Some("[[]x]*"));
    }

    #[test]
    fn the_status_index_is_used_only_without_a_selective_filter() {
        let (sql, _) = servers_query(&ServerFilter::default());
        assert!(sql.contains(" s.status = ?1"), "{sql}");
        let (sql, _) = servers_query(&ServerFilter {
            server_name: Some("x*".into()),
            ..ServerFilter::default()
        });
        assert!(sql.contains("+s.status = ?1"), "{sql}");
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let (sql, args) = servers_query(&ServerFilter {
            job: Some("lan".into()),
            capability: Some("echo".into()),
            ..ServerFilter::default()
        });
        assert!(sql.contains("+s.status = ?1"), "{sql}");
        assert!(sql.contains("job = ?2"), "{sql}");
        assert!(sql.contains("name = ?3"), "{sql}");
        assert_eq!(args, ["active", "lan", "echo"]);
    }
}
