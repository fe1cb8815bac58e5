//! What each writer command does, inside its one transaction.
//!
//! A run's result is applied whole or not at all (the transactional-outbox pattern of
//! SERVICE.md): upsert every MCP record, append a change per real difference, mark gone the
//! servers whose port now answers as something else, and, for a completed run only, count
//! misses per (server, job). A crash leaves all of it or none of it.
//!
//! A server that goes (missed runs, not MCP, goodbye, forget) also has its health set to
//! `gone`, and one that comes back starts over as `unknown`; [`super::health`] does that part
//! and stores the monitor's checks.
//!
//! Every function here takes the writer's connection and returns what was committed; the
//! writer publishes the changes only after `commit` returns. Nothing here keeps state
//! between calls, so a failed transaction can be retried as it was.

use std::collections::HashSet;
use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Map, Value};

use super::diff::diff;
use super::health::{self, HealthUpdate};
use super::schema::ip_key;
use super::{Change, ChangeKind, RunEnd, RunId, RunOutcome, RunSummary, ServerId, ServerStatus};
use crate::finding::{rfc3339, Record};

/// `gone_reason` of a server whose port answers as something other than MCP.
pub const REASON_NOT_MCP: &str = "port answers but is no longer MCP";
/// `gone_reason` of a server deleted with [`super::Store::forget`].
pub const REASON_FORGOTTEN: &str = "forgotten through the API";
/// `runs.error` of a run found `running` at open: its process died before it ended.
pub const REASON_INTERRUPTED: &str = "the daemon stopped before the run ended";

/// One write command, as queued (and, after a failure, retried).
#[derive(Debug, Clone)]
pub(crate) enum Op {
    BeginRun {
        run: RunId,
        job: String,
        at: String,
    },
    FinishRun {
        run: RunId,
        outcome: RunOutcome,
        at: String,
    },
    Observe {
        job: String,
        records: Vec<Record>,
        at: String,
    },
    MarkGone {
        id: String,
        reason: String,
        at: String,
    },
    Forget {
        id: String,
        at: String,
    },
    RecordHealth {
        update: Box<HealthUpdate>,
        at: String,
    },
    Sink {
        op: super::sinks::SinkOp,
        at: String,
    },
    /// The tiny write that keeps `writable` truthful when idle.
    Heartbeat {
        at: String,
    },
}

/// What a committed [`Op`] produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Applied {
    Run(RunId),
    Summary(RunSummary),
    Changes(Vec<Change>),
    Nothing,
}

impl Applied {
    /// The changes to publish, in seq order.
    pub(crate) fn changes(&self) -> &[Change] {
        match self {
            Self::Summary(s) => &s.changes,
            Self::Changes(c) => c,
            Self::Run(_) | Self::Nothing => &[],
        }
    }
}

/// Apply `op` in one immediate transaction and commit it.
pub(crate) fn apply(conn: &mut Connection, op: &Op, gone_after: u32) -> rusqlite::Result<Applied> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = match op {
        Op::BeginRun { run, job, at } => {
            tx.execute(
                "INSERT INTO runs (id, job, started_at, status) VALUES (?1, ?2, ?3, 'running')",
                params![run.0, job, at],
            )?;
            Applied::Run(*run)
        }
        Op::FinishRun { run, outcome, at } => {
            Applied::Summary(finish_run(&tx, *run, outcome, at, gone_after)?)
        }
        Op::Observe { job, records, at } => {
            let mut batch = Batch::new(&tx, job, at);
            batch.records(records)?;
            Applied::Changes(batch.changes)
        }
        Op::MarkGone { id, reason, at } => {
            Applied::Changes(mark_gone(&tx, id, reason, at, Map::new())?)
        }
        Op::Forget { id, at } => Applied::Changes(forget(&tx, id, at)?),
        Op::RecordHealth { update, at } => Applied::Changes(health::record(&tx, update, at)?),
        Op::Sink { op, at } => {
            super::sinks::apply(&tx, op, at)?;
            Applied::Nothing
        }
        Op::Heartbeat { at } => {
            tx.execute(
                "INSERT INTO meta (k, v) VALUES ('heartbeat', ?1)
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                [at],
            )?;
            Applied::Nothing
        }
    };
    tx.commit()?;
    Ok(out)
}

/// The changes of one command, and the servers it saw.
struct Batch<'a, 't> {
    tx: &'a Transaction<'t>,
    job: &'a str,
    at: &'a str,
    changes: Vec<Change>,
    seen: HashSet<String>,
    mcp: u64,
}

impl<'a, 't> Batch<'a, 't> {
    fn new(tx: &'a Transaction<'t>, job: &'a str, at: &'a str) -> Self {
        Self {
            tx,
            job,
            at,
            changes: Vec::new(),
            seen: HashSet::new(),
            mcp: 0,
        }
    }

    /// Upsert the MCP records, then mark gone the servers whose port answered as
    /// something else.
    fn records(&mut self, records: &[Record]) -> rusqlite::Result<()> {
        let mut mcp_addrs: HashSet<(IpAddr, u16)> = HashSet::new();
        for r in records {
            if r.kind.is_some_and(|k| k.is_mcp()) {
                match r.url.as_deref() {
                    Some(url) => {
                        mcp_addrs.insert((r.ip, r.port));
                        self.upsert(url, r)?;
                    }
                    None => {
                        tracing::debug!(
                            ip = %r.ip,
                            port = r.port,
                            "MCP record without a URL has no identity; not stored"
                        )
                    }
                }
            }
        }
        for r in records {
            let Some(kind) = r.kind.filter(|k| !k.is_mcp()) else {
                continue;
            };
            if mcp_addrs.contains(&(r.ip, r.port)) {
                continue;
            }
            let ids: Vec<String> = self
                .tx
                .prepare_cached(
                    "SELECT id FROM servers WHERE ip = ?1 AND port = ?2 AND status = 'active'",
                )?
                .query_map(params![r.ip.to_string(), r.port], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            for id in ids {
                let mut extra = Map::new();
                extra.insert("kind".into(), json!(kind));
                let gone = mark_gone(self.tx, &id, REASON_NOT_MCP, self.at, extra)?;
                self.changes.extend(gone);
            }
        }
        Ok(())
    }

    fn upsert(&mut self, url: &str, new: &Record) -> rusqlite::Result<()> {
        let id = ServerId::from_url(url).into_string();
        if !self.seen.insert(id.clone()) {
            tracing::debug!(%id, "server seen twice in one batch; the later record wins");
        } else {
            self.mcp += 1;
        }
        let existing: Option<(String, String, Option<String>)> = self
            .tx
            .prepare_cached("SELECT status, record, gone_reason FROM servers WHERE id = ?1")?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let mut rec = new.clone();
        // The monitor's health is the store's, not the scan's: an active server keeps it,
        // one back from gone starts over as unknown.
        let mut health_change = None;
        rec.health = match &existing {
            None => None,
            Some((status, _, _)) if status == ServerStatus::Gone.as_str() => {
                let (h, c) = health::back(self.tx, &id, self.at)?;
                health_change = c;
                self.tx
                    .prepare_cached("UPDATE servers SET health_status = 'unknown' WHERE id = ?1")?
                    .execute([&id])?;
                h
            }
            // Carried over from the stored record below (no extra query per rescanned server).
            Some(_) => None,
        };
        let (change, tools_changed) = match existing {
            None => (
                Some((ChangeKind::Appeared, appeared_detail("new", &rec, None))),
                true,
            ),
            Some((status, _, gone_reason)) if status == ServerStatus::Gone.as_str() => {
                self.tx
                    .prepare_cached("UPDATE server_jobs SET misses = 0 WHERE server_id = ?1")?
                    .execute([&id])?;
                (
                    Some((
                        ChangeKind::Appeared,
                        appeared_detail("back", &rec, gone_reason),
                    )),
                    true,
                )
            }
            Some((_, old_json, _)) => match serde_json::from_str::<Record>(&old_json) {
                Ok(old) => {
                    rec.health = old.health.clone();
                    merge_seen(&old, &mut rec);
                    let tools_changed = old.tools != rec.tools;
                    (
                        diff(&old, &rec).map(|d| (ChangeKind::Updated, d)),
                        tools_changed,
                    )
                }
                Err(e) => {
                    rec.health = health::current(self.tx, &id)?;
                    tracing::warn!(
                        %id,
                        error = %e,
                        "stored record unreadable; replaced without a diff"
                    );
                    (None, true)
                }
            },
        };
        let record_json = to_json(&rec)?;
        let origins = to_json(&rec.origins)?;
        self.tx
            .prepare_cached(
                "INSERT INTO servers (id, url, ip, ip_key, port, kind, transport, server_name,
                                      status, first_seen, last_seen, origins, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?9, ?10, ?11)
                 ON CONFLICT (id) DO UPDATE SET
                     url = excluded.url, ip = excluded.ip, ip_key = excluded.ip_key,
                     port = excluded.port, kind = excluded.kind, transport = excluded.transport,
                     server_name = excluded.server_name, status = 'active',
                     last_seen = excluded.last_seen, gone_at = NULL, gone_reason = NULL,
                     origins = excluded.origins, record = excluded.record",
            )?
            .execute(params![
                id,
                url,
                rec.ip.to_string(),
                &ip_key(rec.ip)[..],
                rec.port,
                rec.kind.map(|k| k.as_str()),
                rec.transport.map(|t| t.as_str()),
                rec.server_name,
                self.at,
                origins,
                record_json,
            ])?;
        if tools_changed {
            self.tx
                .prepare_cached("DELETE FROM server_tools WHERE server_id = ?1")?
                .execute([&id])?;
            let mut ins = self.tx.prepare_cached(
                "INSERT OR IGNORE INTO server_tools (server_id, name) VALUES (?1, ?2)",
            )?;
            for t in &rec.tools {
                ins.execute(params![id, t.name])?;
            }
        }
        self.tx
            .prepare_cached(
                "INSERT INTO server_jobs (server_id, job, misses, last_seen) VALUES (?1, ?2, 0, ?3)
                 ON CONFLICT (server_id, job) DO UPDATE SET misses = 0, last_seen = excluded.last_seen",
            )?
            .execute(params![id, self.job, self.at])?;
        if let Some((kind, detail)) = change {
            self.changes
                .push(append(self.tx, self.at, &id, kind, detail)?);
        }
        self.changes.extend(health_change);
        Ok(())
    }

    /// For a completed run: a miss for each active server this job found before and did
    /// not see now; gone when every job that found it has missed `gone_after` in a row.
    fn count_misses(&mut self, gone_after: u32) -> rusqlite::Result<()> {
        let gone_after = i64::from(gone_after.max(1));
        let known: Vec<String> = self
            .tx
            .prepare_cached(
                "SELECT j.server_id FROM server_jobs j JOIN servers s ON s.id = j.server_id
                 WHERE j.job = ?1 AND s.status = 'active'",
            )?
            .query_map([self.job], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut bump = self.tx.prepare_cached(
            "UPDATE server_jobs SET misses = misses + 1 WHERE server_id = ?1 AND job = ?2",
        )?;
        let mut per_job = self.tx.prepare_cached(
            "SELECT job, misses FROM server_jobs WHERE server_id = ?1 ORDER BY job",
        )?;
        for id in known.iter().filter(|id| !self.seen.contains(*id)) {
            bump.execute(params![id, self.job])?;
            let misses: Vec<(String, i64)> = per_job
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if misses.iter().all(|(_, m)| *m >= gone_after) {
                let reason =
                    match misses.as_slice() {
                        [(job, n)] => format!("missed {n} consecutive completed runs of job {job}"),
                        _ => {
                            format!(
                        "missed {gone_after} or more consecutive completed runs of every job \
                         that found it ({})",
                        misses.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>().join(", ")
                    )
                        }
                    };
                let mut extra = Map::new();
                extra.insert(
                    "misses".into(),
                    Value::Object(misses.iter().map(|(j, m)| (j.clone(), json!(m))).collect()),
                );
                let gone = mark_gone(self.tx, id, &reason, self.at, extra)?;
                self.changes.extend(gone);
            }
        }
        Ok(())
    }
}

fn finish_run(
    tx: &Transaction<'_>,
    run: RunId,
    outcome: &RunOutcome,
    at: &str,
    gone_after: u32,
) -> rusqlite::Result<RunSummary> {
    let mut batch = Batch::new(tx, &outcome.job, at);
    batch.records(&outcome.records)?;
    if outcome.status == RunEnd::Completed {
        batch.count_misses(gone_after)?;
    }
    let count = |k: ChangeKind| batch.changes.iter().filter(|c| c.kind == k).count() as u64;
    let summary = RunSummary {
        run,
        status: outcome.status.status(),
        mcp: batch.mcp,
        appeared: count(ChangeKind::Appeared),
        updated: count(ChangeKind::Updated),
        gone: count(ChangeKind::Gone),
        changes: Vec::new(),
    };
    let error = match &outcome.status {
        RunEnd::Failed(e) => Some(e.as_str()),
        RunEnd::Completed | RunEnd::Interrupted => None,
    };
    let n = tx.execute(
        "UPDATE runs SET ended_at = ?2, status = ?3, error = ?4, probes = ?5, open = ?6,
                         mcp = ?7, appeared = ?8, updated = ?9, gone = ?10
         WHERE id = ?1",
        params![
            run.0,
            at,
            summary.status.as_str(),
            error,
            to_i64(outcome.probes),
            to_i64(outcome.open),
            to_i64(summary.mcp),
            to_i64(summary.appeared),
            to_i64(summary.updated),
            to_i64(summary.gone),
        ],
    )?;
    if n == 0 {
        tracing::warn!(
            run = run.0,
            job = %outcome.job,
            "finish_run for a run the store does not know; its records were applied, no run row was updated"
        );
    }
    Ok(RunSummary {
        changes: batch.changes,
        ..summary
    })
}

/// Mark an active server gone: its `gone` change, then the `health_changed` to gone when
/// it had a health object; none when it is unknown or already gone.
fn mark_gone(
    tx: &Transaction<'_>,
    id: &str,
    reason: &str,
    at: &str,
    mut extra: Map<String, Value>,
) -> rusqlite::Result<Vec<Change>> {
    let url: Option<String> = tx
        .prepare_cached(
            "UPDATE servers SET status = 'gone', gone_at = ?2, gone_reason = ?3
             WHERE id = ?1 AND status = 'active' RETURNING url",
        )?
        .query_row(params![id, at, reason], |r| r.get(0))
        .optional()?;
    let Some(url) = url else {
        return Ok(Vec::new());
    };
    let mut detail = Map::new();
    detail.insert("reason".into(), json!(reason));
    detail.insert("url".into(), json!(url));
    detail.append(&mut extra);
    let mut out = vec![append(tx, at, id, ChangeKind::Gone, Value::Object(detail))?];
    out.extend(health::gone(tx, id, reason, at)?);
    Ok(out)
}

/// Delete a server (and its jobs, tools and check history), recording a `gone` change
/// first (and a `health_changed` to gone when it was active and had a health object).
fn forget(tx: &Transaction<'_>, id: &str, at: &str) -> rusqlite::Result<Vec<Change>> {
    let row: Option<(String, String)> = tx
        .query_row("SELECT url, status FROM servers WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((url, status)) = row else {
        return Ok(Vec::new());
    };
    let mut out = vec![append(
        tx,
        at,
        id,
        ChangeKind::Gone,
        json!({ "reason": REASON_FORGOTTEN, "url": url }),
    )?];
    if status == ServerStatus::Active.as_str() {
        out.extend(health::gone(tx, id, REASON_FORGOTTEN, at)?);
    }
    tx.execute("DELETE FROM servers WHERE id = ?1", [id])?;
    Ok(out)
}

pub(crate) fn append(
    tx: &Transaction<'_>,
    at: &str,
    id: &str,
    kind: ChangeKind,
    detail: Value,
) -> rusqlite::Result<Change> {
    tx.prepare_cached("INSERT INTO changes (at, server_id, kind, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![at, id, kind.as_str(), detail.to_string()])?;
    Ok(Change {
        seq: tx.last_insert_rowid(),
        at: at.to_string(),
        server_id: id.to_string(),
        kind,
        detail,
    })
}

fn appeared_detail(reason: &str, r: &Record, gone_reason: Option<String>) -> Value {
    let mut d = json!({
        "reason": reason,
        "url": r.url,
        "ip": r.ip,
        "port": r.port,
        "kind": r.kind,
        "transport": r.transport,
        "server_name": r.server_name,
        "server_version": r.server_version,
        "tools": r.tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
    });
    if let Some(g) = gone_reason {
        d["gone_reason"] = json!(g);
    }
    d
}

/// Sources and announced names accumulate while a server stays active.
fn merge_seen(old: &Record, new: &mut Record) {
    let mut origins = old.origins.clone();
    for o in &new.origins {
        if !origins.contains(o) {
            origins.push(*o);
        }
    }
    new.origins = origins;
    let mut names = old.announced_as.clone();
    for n in &new.announced_as {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    new.announced_as = names;
}

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Mark every run still `running` as interrupted (its process died); returns how many.
pub(crate) fn interrupt_running(conn: &Connection, at: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE runs SET status = 'interrupted', ended_at = ?1, error = ?2 WHERE status = 'running'",
        params![at, REASON_INTERRUPTED],
    )
}

/// The next run id: above every id ever handed out, even ones retention deleted.
pub(crate) fn next_run_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0),
                    coalesce((SELECT max(id) FROM runs), 0)) + 1",
        [],
        |r| r.get(0),
    )
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub(crate) changes: usize,
    pub(crate) runs: usize,
    pub(crate) servers: usize,
    pub(crate) checks: usize,
    pub(crate) rollups: usize,
    pub(crate) dead_letters: usize,
}

/// Delete changes, finished runs, check results and gone servers older than `cutoff` (an
/// RFC 3339 time), and rollups of hours before `rollup_cutoff`'s.
pub(crate) fn prune(
    conn: &mut Connection,
    cutoff: &str,
    rollup_cutoff: &str,
) -> rusqlite::Result<Pruned> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = Pruned {
        changes: tx.execute("DELETE FROM changes WHERE at < ?1", [cutoff])?,
        runs: tx.execute(
            "DELETE FROM runs WHERE status <> 'running' AND coalesce(ended_at, started_at) < ?1",
            [cutoff],
        )?,
        servers: tx.execute(
            "DELETE FROM servers WHERE status = 'gone' AND gone_at < ?1",
            [cutoff],
        )?,
        checks: tx.execute("DELETE FROM check_results WHERE at < ?1", [cutoff])?,
        rollups: tx.execute(
            "DELETE FROM check_rollups WHERE hour < ?1",
            [health::hour_of(rollup_cutoff)],
        )?,
        dead_letters: tx.execute("DELETE FROM sink_dead_letters WHERE at < ?1", [cutoff])?,
    };
    tx.commit()?;
    Ok(out)
}

/// The RFC 3339 time `age` ago (the epoch when `age` reaches before it).
pub(crate) fn cutoff(age: std::time::Duration) -> String {
    let now = std::time::SystemTime::now();
    rfc3339(now.checked_sub(age).unwrap_or(std::time::UNIX_EPOCH))
}
