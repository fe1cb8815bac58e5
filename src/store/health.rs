//! Health history in the store: what [`super::Store::record_health`] does inside its one
//! transaction, the health side of a server going and coming back, and uptime.
//!
//! - **Results** go to `check_results`, one row per check result, kept for
//!   `store.retention` like changes. **Rollups** (`check_rollups`) fold each result into its
//!   (server, check, UTC hour) row as it is written, and are kept [`ROLLUP_RETENTION`].
//! - **The health object** is stored twice on purpose: in `servers.health` (the source of
//!   truth, and what [`super::Reader::health_states`] restores from) and in the record's
//!   `health` field, so every list and lookup writes it out with the record and no reader
//!   joins or parses anything for it. `servers.health_status` is its status for the filter.
//! - **Uptime** is the fraction of *critical* check results that passed, per window. It is
//!   computed here, once per write for that one server, and stored in `servers.uptime`, so a
//!   list of 10,000 servers reads it like any column: aggregating history per request would
//!   make the lists slower the longer the daemon runs. The `1h` window counts results
//!   (at most a few hundred rows through the `(server_id, at)` index); `24h`, `7d` and
//!   `30d` count the hourly rollups whose hour starts at or after the window's start, so
//!   they may include up to one hour more than the window. Windows are measured back from
//!   the update's time; a server no longer checked (gone) keeps the uptime of its last check.
//!   A window without a critical result is null.
//! - **Tool drift** found by a check is an `updated` change with the same `tools` detail as
//!   a scan's ([`super::diff`]), and the record's tools are replaced.

use std::time::{Duration, SystemTime};

use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::diff::diff;
use super::{Change, ChangeKind};
use crate::finding::{rfc3339, Record};
use crate::fingerprint::Tool;
use crate::monitor::state::{self, Health, Severity, Status};

/// How long hourly rollups are kept.
pub const ROLLUP_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);
/// The reason of a health object reset when a gone server is found again.
pub const REASON_FOUND_AGAIN: &str = "found again by discovery";

/// What the monitor hands the store after one check of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthUpdate {
    /// The server's id.
    pub server_id: String,
    /// When the check ran (every result of the batch).
    pub at: SystemTime,
    /// The results of the batch, each stored.
    pub results: Vec<state::CheckResult>,
    /// The server's health after the batch.
    pub health: Health,
    /// The change of published status, if any: a `health_changed` change.
    pub transition: Option<state::Transition>,
    /// The tools the check listed, when it listed them: a difference from the stored
    /// record is tool drift.
    pub tools: Option<Vec<Tool>>,
}

/// A server's uptime: the fraction (0 to 1) of critical check results that passed in each
/// window, null when the window has none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Uptime {
    /// The last hour.
    #[serde(rename = "1h")]
    pub h1: Option<f64>,
    /// The last day.
    #[serde(rename = "24h")]
    pub h24: Option<f64>,
    /// The last week.
    #[serde(rename = "7d")]
    pub d7: Option<f64>,
    /// The last 30 days.
    #[serde(rename = "30d")]
    pub d30: Option<f64>,
}

/// One stored check result, as `/api/v1/servers/{id}/checks` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRow {
    /// The check's name.
    pub check: String,
    /// When it ran (RFC 3339 UTC).
    pub at: String,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took, when measured.
    pub latency_ms: Option<f64>,
    /// Its message.
    pub message: String,
}

/// The UTC hour (`YYYY-MM-DDTHH`) of an RFC 3339 time: the rollup key.
pub(crate) fn hour_of(at: &str) -> &str {
    at.get(..13).unwrap_or(at)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn to_json<T: Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Apply one [`HealthUpdate`]; `at` is the writer's time for the changes. A server that is
/// unknown or gone is left alone (no changes).
pub(crate) fn record(
    tx: &Transaction<'_>,
    u: &HealthUpdate,
    at: &str,
) -> rusqlite::Result<Vec<Change>> {
    let row: Option<(String, String)> = tx
        .prepare_cached("SELECT status, record FROM servers WHERE id = ?1")?
        .query_row([&u.server_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((status, record_json)) = row else {
        tracing::debug!(id = %u.server_id, "health update for an unknown server ignored");
        return Ok(Vec::new());
    };
    if status != "active" {
        tracing::debug!(id = %u.server_id, "health update for a gone server ignored");
        return Ok(Vec::new());
    }
    let checked_at = rfc3339(u.at);
    let hour = hour_of(&checked_at);
    let mut insert = tx.prepare_cached(
        "INSERT INTO check_results (server_id, check_name, at, ok, critical, latency_ms, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut fold = tx.prepare_cached(
        "INSERT INTO check_rollups (server_id, check_name, hour, critical, total, ok,
                                    latency_sum, latency_count, latency_max)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, coalesce(?6, 0), ?6 IS NOT NULL, ?6)
         ON CONFLICT (server_id, check_name, hour) DO UPDATE SET
             critical = excluded.critical,
             total = total + 1,
             ok = ok + excluded.ok,
             latency_sum = latency_sum + excluded.latency_sum,
             latency_count = latency_count + excluded.latency_count,
             latency_max = CASE
                 WHEN excluded.latency_max IS NULL THEN latency_max
                 WHEN latency_max IS NULL OR excluded.latency_max > latency_max
                     THEN excluded.latency_max
                 ELSE latency_max END",
    )?;
    for r in &u.results {
        let critical = r.severity == Severity::Critical;
        let latency = r.latency.map(ms);
        insert.execute(params![
            u.server_id,
            r.name,
            checked_at,
            r.ok,
            critical,
            latency,
            r.message
        ])?;
        fold.execute(params![u.server_id, r.name, hour, critical, r.ok, latency])?;
    }
    let uptime = uptime(tx, &u.server_id, u.at)?;

    let mut changes = Vec::new();
    let health_json = to_json(&u.health)?;
    // Tool drift needs the whole record; without tools only its `health` is set.
    let drift = match &u.tools {
        Some(tools) => match serde_json::from_str::<Record>(&record_json) {
            Ok(old) => {
                let mut new = old.clone();
                new.tools = tools.clone();
                diff(&old, &new).map(|d| (new, d))
            }
            Err(e) => {
                tracing::warn!(id = %u.server_id, error = %e, "stored record unreadable; tool drift not compared");
                None
            }
        },
        None => None,
    };
    match &drift {
        Some((new, _)) => {
            let mut new = new.clone();
            new.health = Some(u.health.clone());
            tx.prepare_cached(
                "UPDATE servers SET record = ?2, health = ?3, health_status = ?4, uptime = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                u.server_id,
                to_json(&new)?,
                health_json,
                u.health.status.as_str(),
                to_json(&uptime)?
            ])?;
            tx.prepare_cached("DELETE FROM server_tools WHERE server_id = ?1")?
                .execute([&u.server_id])?;
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO server_tools (server_id, name) VALUES (?1, ?2)",
            )?;
            for t in &new.tools {
                ins.execute(params![u.server_id, t.name])?;
            }
        }
        None => {
            tx.prepare_cached(
                "UPDATE servers SET record = json_set(record, '$.health', json(?2)), health = ?2,
                                    health_status = ?3, uptime = ?4
                 WHERE id = ?1",
            )?
            .execute(params![
                u.server_id,
                health_json,
                u.health.status.as_str(),
                to_json(&uptime)?
            ])?;
        }
    }
    if let Some(t) = &u.transition {
        let detail = json!({
            "from": t.from,
            "to": t.to,
            "reason": t.reason,
            "check": t.check,
        });
        changes.push(super::apply::append(
            tx,
            at,
            &u.server_id,
            ChangeKind::HealthChanged,
            detail,
        )?);
    }
    if let Some((_, d)) = drift {
        changes.push(super::apply::append(
            tx,
            at,
            &u.server_id,
            ChangeKind::Updated,
            d,
        )?);
    }
    Ok(changes)
}

/// The uptime of `id` as of `now` (see the module doc).
fn uptime(tx: &Transaction<'_>, id: &str, now: SystemTime) -> rusqlite::Result<Uptime> {
    let since = |d: Duration| rfc3339(now.checked_sub(d).unwrap_or(std::time::UNIX_EPOCH));
    let fraction = |ok: i64, total: i64| (total > 0).then(|| ok as f64 / total as f64);
    let (ok, total): (i64, i64) = tx
        .prepare_cached(
            "SELECT coalesce(sum(ok), 0), count(*) FROM check_results
             WHERE server_id = ?1 AND at >= ?2 AND critical",
        )?
        .query_row(params![id, since(Duration::from_secs(3600))], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let h1 = fraction(ok, total);
    let mut rolled = tx.prepare_cached(
        "SELECT coalesce(sum(ok), 0), coalesce(sum(total), 0) FROM check_rollups
         WHERE server_id = ?1 AND hour >= ?2 AND critical",
    )?;
    let mut window = |hours: u64| -> rusqlite::Result<Option<f64>> {
        let start = since(Duration::from_secs(hours * 3600));
        let (ok, total): (i64, i64) =
            rolled.query_row(params![id, hour_of(&start)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(fraction(ok, total))
    };
    Ok(Uptime {
        h1,
        h24: window(24)?,
        d7: window(7 * 24)?,
        d30: window(30 * 24)?,
    })
}

/// `at` as a time (the writer's own RFC 3339 strings always parse).
fn time_of(at: &str) -> SystemTime {
    state::rfc3339_serde::parse(at).unwrap_or_else(SystemTime::now)
}

fn stored_health(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<Health>> {
    let text: Option<Option<String>> = tx
        .prepare_cached("SELECT health FROM servers WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(text.flatten().and_then(|t| match serde_json::from_str(&t) {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(%id, error = %e, "stored health unreadable; treated as never checked");
            None
        }
    }))
}

/// The server just became gone (any path): its health status is `gone` from `at`, and a
/// `health_changed` change records it when it had a health object.
pub(crate) fn gone(
    tx: &Transaction<'_>,
    id: &str,
    reason: &str,
    at: &str,
) -> rusqlite::Result<Option<Change>> {
    let Some(mut h) = stored_health(tx, id)? else {
        tx.prepare_cached("UPDATE servers SET health_status = 'gone' WHERE id = ?1")?
            .execute([id])?;
        return Ok(None);
    };
    if h.status == Status::Gone {
        return Ok(None);
    }
    let from = h.status;
    h.status = Status::Gone;
    h.since = time_of(at);
    h.reason = Some(reason.to_owned());
    h.flapping = false;
    h.consecutive_failures = 0;
    h.consecutive_successes = 0;
    let text = to_json(&h)?;
    tx.prepare_cached(
        "UPDATE servers SET record = json_set(record, '$.health', json(?2)), health = ?2,
                            health_status = 'gone'
         WHERE id = ?1",
    )?
    .execute(params![id, text])?;
    let detail =
        json!({ "from": from, "to": Status::Gone, "reason": reason, "check": Value::Null });
    super::apply::append(tx, at, id, ChangeKind::HealthChanged, detail).map(Some)
}

/// A gone server was found again: its health restarts as unknown. Returns the health to
/// put in its new record (none when it was never checked) and the `health_changed`.
pub(crate) fn back(
    tx: &Transaction<'_>,
    id: &str,
    at: &str,
) -> rusqlite::Result<(Option<Health>, Option<Change>)> {
    let Some(old) = stored_health(tx, id)? else {
        return Ok((None, None));
    };
    let mut h = state::HealthState::new(time_of(at)).health().clone();
    h.reason = Some(REASON_FOUND_AGAIN.to_owned());
    tx.prepare_cached("UPDATE servers SET health = ?2 WHERE id = ?1")?
        .execute(params![id, to_json(&h)?])?;
    let detail = json!({
        "from": old.status,
        "to": Status::Unknown,
        "reason": REASON_FOUND_AGAIN,
        "check": Value::Null,
    });
    let c = super::apply::append(tx, at, id, ChangeKind::HealthChanged, detail)?;
    Ok((Some(h), Some(c)))
}

/// The health to carry into an active server's new record.
pub(crate) fn current(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<Health>> {
    stored_health(tx, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollup_hour_is_the_utc_hour_prefix() {
        assert_eq!(hour_of("2026-12-02T01:59:59.999Z"), "2026-12-02T01");
    }

    #[test]
    fn uptime_serializes_with_window_names_and_nulls() {
        let u = Uptime {
            h1: Some(0.5),
            ..Uptime::default()
        };
        assert_eq!(
            serde_json::to_value(u).unwrap(),
            json!({"1h": 0.5, "24h": null, "7d": null, "30d": null})
        );
    }
}
