//! The sinks' side of the store (schema 3).
//!
//! The change feed is the outbox: a change commits in the same transaction as the run that
//! made it, so a sink can never deliver a change that did not commit, nor miss one that
//! did. What a sink keeps here is small and written through the one writer like everything
//! else ([`SinkOp`]):
//! - `sink_state`: its cursor (the last seq it delivered), its last success, error and
//!   reconciliation;
//! - `sink_entries`: the ids it lists in its registry, so that what it registered and is
//!   now gone can be removed even after the server left the inventory;
//! - `sink_dead_letters`: deliveries its registry refused for good, for the API; deleted
//!   after `store.retention`.
//!
//! Retention deletes changes older than `store.retention` whether or not every sink
//! delivered them. A sink whose cursor falls behind the oldest kept change reconciles
//! instead (see [`super::Reader::oldest_seq`]), which gives the registry the same state.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use super::read::{raw_server, SERVER_COLUMNS};
use super::{ChangeKind, Reader, StoreError, StoredServer};

/// Dead letters the API lists per sink, newest first.
pub const DEAD_LETTERS_SHOWN: usize = 50;

/// A write about a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkOp {
    /// Save a sink's progress: its cursor and state, and the ids it started or stopped
    /// listing since the last save.
    Progress {
        /// The sink's name.
        sink: String,
        /// Its type.
        kind: String,
        /// The last seq delivered.
        cursor: i64,
        /// RFC 3339 time of its last success.
        last_success: Option<String>,
        /// Its last error (none after a success).
        last_error: Option<String>,
        /// RFC 3339 time of its last completed reconciliation.
        last_resync: Option<String>,
        /// Ids it lists now that it did not.
        listed: Vec<String>,
        /// Ids it no longer lists.
        unlisted: Vec<String>,
    },
    /// A delivery the registry refused for good.
    DeadLetter {
        /// The sink's name.
        sink: String,
        /// The change's seq.
        seq: i64,
        /// The change's server.
        server_id: String,
        /// The change's kind.
        kind: ChangeKind,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the registry said.
        error: String,
    },
}

/// A sink's saved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSink {
    /// The last seq delivered.
    pub cursor: i64,
    /// RFC 3339 time of its last success.
    pub last_success: Option<String>,
    /// Its last error.
    pub last_error: Option<String>,
    /// RFC 3339 time of its last completed reconciliation.
    pub last_resync: Option<String>,
}

/// A delivery a registry refused for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The change's seq.
    pub seq: i64,
    /// The change's server.
    pub server_id: String,
    /// The change's kind.
    pub kind: ChangeKind,
    /// When it was refused (RFC 3339).
    pub at: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// What the registry said.
    pub error: String,
}

/// Apply `op` inside the writer's transaction.
pub(crate) fn apply(tx: &Transaction<'_>, op: &SinkOp, at: &str) -> rusqlite::Result<()> {
    match op {
        SinkOp::Progress {
            sink,
            kind,
            cursor,
            last_success,
            last_error,
            last_resync,
            listed,
            unlisted,
        } => {
            tx.execute(
                "INSERT INTO sink_state (sink, type, cursor, last_success, last_error, last_resync, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (sink) DO UPDATE SET type = excluded.type, cursor = excluded.cursor,
                    last_success = excluded.last_success, last_error = excluded.last_error,
                    last_resync = excluded.last_resync, updated_at = excluded.updated_at",
                params![sink, kind, cursor, last_success, last_error, last_resync, at],
            )?;
            let mut add = tx.prepare_cached(
                "INSERT INTO sink_entries (sink, server_id, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            for id in listed {
                add.execute(params![sink, id, at])?;
            }
            let mut del =
                tx.prepare_cached("DELETE FROM sink_entries WHERE sink = ?1 AND server_id = ?2")?;
            for id in unlisted {
                del.execute(params![sink, id])?;
            }
        }
        SinkOp::DeadLetter {
            sink,
            seq,
            server_id,
            kind,
            status,
            error,
        } => {
            tx.execute(
                "INSERT INTO sink_dead_letters (sink, seq, server_id, kind, at, status, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![sink, seq, server_id, kind.as_str(), at, status, error],
            )?;
        }
    }
    Ok(())
}

impl Reader {
    /// A sink's saved state (`None` before its first save).
    pub fn sink_state(&self, sink: &str) -> Result<Option<SavedSink>, StoreError> {
        self.with(|conn| {
            conn.prepare_cached(
                "SELECT cursor, last_success, last_error, last_resync FROM sink_state WHERE sink = ?1",
            )
            .and_then(|mut st| {
                st.query_row([sink], |r| {
                    Ok(SavedSink {
                        cursor: r.get(0)?,
                        last_success: r.get(1)?,
                        last_error: r.get(2)?,
                        last_resync: r.get(3)?,
                    })
                })
                .optional()
            })
            .map_err(self.sqlite("reading a sink's state"))
        })
    }

    /// The ids a sink lists, sorted.
    pub fn sink_entries(&self, sink: &str) -> Result<Vec<String>, StoreError> {
        self.with(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT server_id FROM sink_entries WHERE sink = ?1 ORDER BY server_id",
                )
                .map_err(self.sqlite("reading a sink's entries"))?;
            let rows = st
                .query_map([sink], |r| r.get(0))
                .map_err(self.sqlite("reading a sink's entries"))?;
            rows.collect::<Result<_, _>>()
                .map_err(self.sqlite("reading a sink's entries"))
        })
    }

    /// A sink's dead letters, newest first, at most `limit`, and how many it has in all.
    pub fn dead_letters(
        &self,
        sink: &str,
        limit: usize,
    ) -> Result<(Vec<DeadLetter>, u64), StoreError> {
        self.with(|conn| {
            let what = "reading a sink's dead letters";
            let total: i64 = conn
                .prepare_cached("SELECT count(*) FROM sink_dead_letters WHERE sink = ?1")
                .and_then(|mut st| st.query_row([sink], |r| r.get(0)))
                .map_err(self.sqlite(what))?;
            let total = total.max(0) as u64;
            let mut st = conn
                .prepare_cached(
                    "SELECT seq, server_id, kind, at, status, error FROM sink_dead_letters
                     WHERE sink = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(self.sqlite(what))?;
            let rows = st
                .query_map(params![sink, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<u16>>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(self.sqlite(what))?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, server_id, kind, at, status, error) = row.map_err(self.sqlite(what))?;
                let kind = ChangeKind::parse(&kind)
                    .ok_or_else(|| self.decode("dead letter kind", format!("{kind:?}")))?;
                out.push(DeadLetter {
                    seq,
                    server_id,
                    kind,
                    at,
                    status,
                    error,
                });
            }
            Ok((out, total))
        })
    }

    /// Changes with `seq > cursor`: a sink's queue depth.
    pub fn changes_after(&self, cursor: i64) -> Result<u64, StoreError> {
        self.with(|conn| {
            conn.prepare_cached("SELECT count(*) FROM changes WHERE seq > ?1")
                .and_then(|mut st| st.query_row([cursor], |r| r.get::<_, i64>(0)))
                .map(|n| n.max(0) as u64)
                .map_err(self.sqlite("counting undelivered changes"))
        })
    }

    /// The oldest seq retention kept (`None` when the feed is empty).
    pub fn oldest_seq(&self) -> Result<Option<i64>, StoreError> {
        self.with(|conn| {
            conn.query_row("SELECT min(seq) FROM changes", [], |r| r.get(0))
                .map_err(self.sqlite("reading the oldest seq"))
        })
    }

    /// One server without its changes (`None` when the inventory has no such id).
    pub fn stored(&self, id: &str) -> Result<Option<StoredServer>, StoreError> {
        self.with(|conn| {
            let raw = conn
                .prepare_cached(&format!(
                    "SELECT {SERVER_COLUMNS} FROM servers s WHERE s.id = ?1"
                ))
                .and_then(|mut st| st.query_row([id], raw_server).optional())
                .map_err(self.sqlite("reading a server"))?;
            raw.map(|r| self.server_from(r)).transpose()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testutil::{self, TempDir};
    use crate::store::RunEnd;

    #[tokio::test]
    async fn progress_entries_and_dead_letters_round_trip() {
        let dir = TempDir::new("sinks");
        let (store, writer) = testutil::open(&dir.db(), 3);
        let s = testutil::run(
            &store,
            "lan",
            vec![testutil::mcp("127.0.0.1", 8000, vec![])],
            RunEnd::Completed,
        )
        .await;
        let seq = s.changes[0].seq;
        let reader = Reader::open(dir.db()).unwrap();
        assert_eq!(reader.sink_state("mesh").unwrap(), None);
        assert_eq!(reader.changes_after(0).unwrap(), 1);
        assert_eq!(reader.oldest_seq().unwrap(), Some(seq));
        let id = s.changes[0].server_id.clone();
        let progress = |cursor, listed: Vec<String>, unlisted: Vec<String>| SinkOp::Progress {
            sink: "mesh".into(),
            kind: "mcp-mesh".into(),
            cursor,
            last_success: Some("2026-12-02T00:00:00Z".into()),
            last_error: None,
            last_resync: None,
            listed,
            unlisted,
        };
        store
            .sink(progress(seq, vec![id.clone(), "other".into()], vec![]))
            .await
            .unwrap();
        store
            .sink(progress(seq, vec![id.clone()], vec!["other".into()]))
            .await
            .unwrap();
        let saved = reader.sink_state("mesh").unwrap().unwrap();
        assert_eq!(saved.cursor, seq);
        assert_eq!(reader.sink_entries("mesh").unwrap(), vec![id.clone()]);
        assert_eq!(reader.changes_after(saved.cursor).unwrap(), 0);
        store
            .sink(SinkOp::DeadLetter {
                sink: "hook".into(),
                seq,
                server_id: id.clone(),
                kind: ChangeKind::Appeared,
                status: Some(422),
                error: "rejected with HTTP 422".into(),
            })
            .await
            .unwrap();
        let (letters, total) = reader.dead_letters("hook", 10).unwrap();
        assert_eq!(total, 1);
        assert_eq!(letters[0].status, Some(422));
        assert_eq!(letters[0].kind, ChangeKind::Appeared);
        assert_eq!(reader.dead_letters("mesh", 10).unwrap().1, 0);
        assert_eq!(reader.stored(&id).unwrap().unwrap().id.as_str(), id);
        assert!(reader.stored("nope").unwrap().is_none());
        drop(store);
        writer.wait().await.unwrap();
    }
}
