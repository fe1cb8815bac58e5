//! Health history in the whole store, writer and readers together, on real SQLite files:
//! `record_health`'s one transaction, rollups, retention, uptime, tool drift, and the health
//! side of a server going and coming back.

use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use serde_json::json;

use super::testutil::{fast, mcp, open, run, tool, TempDir};
use super::*;
use crate::finding::Record;
use crate::monitor::state::{self, CheckResult, HealthState, Status, Thresholds};

fn id_of(r: &Record) -> String {
    ServerId::from_url(r.url.as_deref().unwrap()).into_string()
}

/// One check of `id` at `at` through the real state machine: the update to store, and the
/// state after it.
fn check(
    id: &str,
    prev: &HealthState,
    at: SystemTime,
    results: Vec<CheckResult>,
) -> (HealthUpdate, HealthState) {
    let (next, transition) = state::step(prev, &results, &Thresholds::default(), at);
    let u = HealthUpdate {
        server_id: id.into(),
        at,
        results,
        health: next.health().clone(),
        transition,
        tools: None,
    };
    (u, next)
}

/// Now, to the millisecond: the store keeps times as RFC 3339 with milliseconds.
fn now_ms() -> SystemTime {
    let d = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::time::UNIX_EPOCH + Duration::from_millis(d.as_millis() as u64)
}

fn raw(path: &std::path::Path) -> Connection {
    Connection::open(path).unwrap()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A store with one active server found by a run of `lan`; its id.
async fn one_server(store: &Store) -> (Record, String) {
    let a = mcp(
        "10.0.0.5",
        8000,
        vec![tool("echo", "aa"), tool("add", "bb")],
    );
    run(store, "lan", vec![a.clone()], RunEnd::Completed).await;
    let id = id_of(&a);
    (a, id)
}

#[tokio::test]
async fn record_health_stores_results_rollup_health_and_one_health_changed_in_one_commit() {
    let dir = TempDir::new("health-record");
    let (store, handle) = open(&dir.db(), 3);
    let (_, id) = one_server(&store).await;
    let mut feed = store.subscribe();
    // A minute into the current hour, so both checks share one rollup row.
    let secs = now_ms()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t0 = std::time::UNIX_EPOCH + Duration::from_secs(secs - secs % 3600 + 60);
    let (u, s1) = check(
        &id,
        &HealthState::new(t0),
        t0,
        vec![
            CheckResult::pass("mcp").with_latency(Duration::from_millis(20)),
            CheckResult::fail("db", "503").warning(),
        ],
    );
    let changes = store.record_health(u.clone()).await.unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let c = &changes[0];
    assert_eq!(c.kind, ChangeKind::HealthChanged);
    assert_eq!(c.server_id, id);
    assert_eq!(
        c.detail,
        json!({"from": "unknown", "to": "degraded", "reason": "db: 503", "check": "db"})
    );
    assert_eq!(feed.recv().await.unwrap(), *c, "published after commit");

    // A second check, same status: no change, but the results and the rollup grow.
    let t1 = t0 + Duration::from_secs(30);
    let (u2, _) = check(
        &id,
        &s1,
        t1,
        vec![
            CheckResult::pass("mcp").with_latency(Duration::from_millis(40)),
            CheckResult::fail("db", "503").warning(),
        ],
    );
    assert_eq!(store.record_health(u2.clone()).await.unwrap(), []);

    let reader = Reader::open(dir.db()).unwrap();
    let (server, recent) = reader.server(&id).unwrap().unwrap();
    assert_eq!(server.record.health.as_ref(), Some(&u2.health));
    assert_eq!(
        server.record.health.as_ref().unwrap().status,
        Status::Degraded
    );
    assert_eq!(
        server.uptime.h1,
        Some(1.0),
        "the warning failure is not downtime"
    );
    assert_eq!(recent[0].kind, ChangeKind::HealthChanged);
    assert_eq!(
        reader.health_states().unwrap(),
        [(id.clone(), u2.health.clone())]
    );

    let all = reader.checks(&id, None, None, 100).unwrap();
    assert_eq!(all.len(), 4);
    let t1_text = crate::finding::rfc3339(t1);
    assert!(
        all[..2].iter().all(|r| r.at == t1_text),
        "newest first: {all:?}"
    );
    let mcp1 = all[..2].iter().find(|r| r.check == "mcp").unwrap();
    assert!(mcp1.ok && mcp1.latency_ms.is_some_and(|l| (l - 40.0).abs() < 1e-9));
    let db = reader.checks(&id, None, Some("db"), 100).unwrap();
    assert_eq!(db.len(), 2);
    assert!(db
        .iter()
        .all(|r| r.check == "db" && !r.ok && r.message == "503"));
    assert_eq!(reader.checks(&id, Some(t1), None, 100).unwrap().len(), 2);
    assert_eq!(reader.checks(&id, None, None, 1).unwrap().len(), 1);
    assert_eq!(reader.checks("nope", None, None, 100).unwrap(), []);
    assert!(reader.has_server(&id).unwrap() && !reader.has_server("nope").unwrap());

    let conn = raw(&dir.db());
    let (total, ok, sum, n, max): (i64, i64, f64, i64, f64) = conn
        .query_row(
            "SELECT total, ok, latency_sum, latency_count, latency_max FROM check_rollups
             WHERE server_id = ?1 AND check_name = 'mcp'",
            [&id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((total, ok, n), (2, 2, 2));
    assert!(
        (sum - 60.0).abs() < 1e-9 && (max - 40.0).abs() < 1e-9,
        "{sum} {max}"
    );
    let db_ok: i64 = count(
        &conn,
        "SELECT sum(ok) FROM check_rollups WHERE check_name = 'db'",
    );
    assert_eq!(db_ok, 0);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn updates_for_unknown_or_gone_servers_are_ignored_without_error() {
    let dir = TempDir::new("health-ignored");
    let (store, handle) = open(&dir.db(), 3);
    let (_, id) = one_server(&store).await;
    let now = now_ms();
    let (u, _) = check(
        "nope-1",
        &HealthState::new(now),
        now,
        vec![CheckResult::pass("mcp")],
    );
    assert_eq!(store.record_health(u).await.unwrap(), []);
    store.mark_gone(&id, "test").await.unwrap();
    let (u, _) = check(
        &id,
        &HealthState::new(now),
        now,
        vec![CheckResult::pass("mcp")],
    );
    assert_eq!(store.record_health(u).await.unwrap(), []);
    let conn = raw(&dir.db());
    assert_eq!(count(&conn, "SELECT count(*) FROM check_results"), 0);
    assert_eq!(count(&conn, "SELECT count(*) FROM check_rollups"), 0);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn uptime_counts_critical_results_per_window_and_is_null_without_data() {
    let dir = TempDir::new("health-uptime");
    let (store, handle) = open(&dir.db(), 3);
    let (_, id) = one_server(&store).await;
    let reader = Reader::open(dir.db()).unwrap();
    assert_eq!(
        reader.server(&id).unwrap().unwrap().0.uptime,
        Uptime::default(),
        "never checked: every window null"
    );
    let now = now_ms();
    let ago = |s: u64| now - Duration::from_secs(s);
    let mut s = HealthState::new(ago(3 * 86_400));
    // A warning alone is no data; then 3 days ago: fail; 2 h ago: fail; 30 min ago and
    // now: pass (plus a failing warning, which is not downtime).
    let batches = [
        (
            ago(4 * 86_400),
            vec![CheckResult::fail("slow", "x").warning()],
        ),
        (ago(3 * 86_400), vec![CheckResult::fail("mcp", "refused")]),
        (ago(2 * 3600), vec![CheckResult::fail("mcp", "refused")]),
        (ago(1800), vec![CheckResult::pass("mcp")]),
        (
            now,
            vec![
                CheckResult::pass("mcp"),
                CheckResult::fail("slow", "x").warning(),
            ],
        ),
    ];
    let mut seen = Vec::new();
    for (at, results) in batches {
        let (u, next) = check(&id, &s, at, results);
        s = next;
        store.record_health(u).await.unwrap();
        seen.push(reader.server(&id).unwrap().unwrap().0.uptime);
    }
    assert_eq!(seen[0], Uptime::default(), "no critical result: no data");
    // Windows are measured back from the check's time: 3 days ago, all saw one failure.
    assert_eq!(
        seen[1],
        Uptime {
            h1: Some(0.0),
            h24: Some(0.0),
            d7: Some(0.0),
            d30: Some(0.0)
        }
    );
    assert_eq!(
        seen[4],
        Uptime {
            h1: Some(1.0),
            h24: Some(2.0 / 3.0),
            d7: Some(0.5),
            d30: Some(0.5)
        }
    );
    // The list writes the same uptime as the typed server.
    let doc: serde_json::Value =
        serde_json::from_slice(&reader.servers_json(&ServerFilter::default()).unwrap()).unwrap();
    assert_eq!(
        doc["servers"][0]["uptime"],
        json!({"1h": 1.0, "24h": 2.0 / 3.0, "7d": 0.5, "30d": 0.5})
    );
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn tool_drift_from_a_check_is_an_updated_change_naming_added_removed_and_changed() {
    let dir = TempDir::new("health-drift");
    let (store, handle) = open(&dir.db(), 3);
    let (_, id) = one_server(&store).await;
    let now = now_ms();
    let (mut u, s1) = check(
        &id,
        &HealthState::new(now),
        now,
        vec![CheckResult::pass("mcp")],
    );
    // The same tools in another order are not drift.
    u.tools = Some(vec![tool("add", "bb"), tool("echo", "aa")]);
    let c = store.record_health(u).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::HealthChanged]
    );
    let later = now + Duration::from_secs(30);
    let (mut u, _) = check(&id, &s1, later, vec![CheckResult::pass("mcp")]);
    u.tools = Some(vec![tool("add", "b2"), tool("zap", "cc")]);
    let c = store.record_health(u.clone()).await.unwrap();
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].kind, ChangeKind::Updated);
    assert_eq!(
        c[0].detail,
        json!({"tools": {
            "added": [{"name": "zap", "description": "zap things", "input_schema_hash": "cc"}],
            "removed": [{"name": "echo", "description": "echo things", "input_schema_hash": "aa"}],
            "changed": [{
                "name": "add",
                "before": {"description": "add things", "input_schema_hash": "bb"},
                "after": {"description": "add things", "input_schema_hash": "b2"}
            }]
        }})
    );
    let reader = Reader::open(dir.db()).unwrap();
    let (server, _) = reader.server(&id).unwrap().unwrap();
    assert_eq!(
        server
            .record
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["add", "zap"]
    );
    assert_eq!(server.record.health.as_ref(), Some(&u.health));
    let by_tool = |t: &str| {
        reader
            .servers(&ServerFilter {
                capability: Some(t.into()),
                ..ServerFilter::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(
        (by_tool("zap"), by_tool("echo")),
        (1, 0),
        "the tool index follows"
    );
    drop(store);
    handle.wait().await.unwrap();
}

/// A server checked healthy at `now`; its state.
async fn healthy(store: &Store, id: &str, now: SystemTime) -> HealthState {
    let (u, s) = check(
        id,
        &HealthState::new(now),
        now,
        vec![CheckResult::pass("mcp")],
    );
    store.record_health(u).await.unwrap();
    s
}

fn health_of(reader: &Reader, id: &str) -> Option<state::Health> {
    reader.server(id).unwrap().unwrap().0.record.health
}

#[tokio::test]
async fn every_way_of_going_sets_health_gone_and_coming_back_restarts_it_unknown() {
    let dir = TempDir::new("health-gone");
    let (store, handle) = open(&dir.db(), 1);
    let reader = Reader::open(dir.db()).unwrap();
    let now = now_ms();
    let a = mcp("10.0.0.1", 8000, vec![tool("echo", "aa")]);
    let b = mcp("10.0.0.2", 8000, vec![tool("echo", "aa")]);
    let never = mcp("10.0.0.3", 8000, vec![]);
    let (ia, ib, inever) = (id_of(&a), id_of(&b), id_of(&never));
    run(
        &store,
        "lan",
        vec![a.clone(), b.clone(), never.clone()],
        RunEnd::Completed,
    )
    .await;
    healthy(&store, &ia, now).await;
    healthy(&store, &ib, now).await;

    // An mDNS goodbye (mark_gone): gone, then health_changed to gone.
    let c = store.mark_gone(&ia, "mDNS goodbye").await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::Gone, ChangeKind::HealthChanged]
    );
    assert_eq!(
        c[1].detail,
        json!({"from": "healthy", "to": "gone", "reason": "mDNS goodbye", "check": null})
    );
    let h = health_of(&reader, &ia).unwrap();
    assert_eq!(
        (h.status, h.reason.as_deref()),
        (Status::Gone, Some("mDNS goodbye"))
    );
    assert!(h.since >= now, "since is when it went");

    // Missed runs (gone_after 1): b goes with a health change; the never-checked server
    // goes with none, yet its health status is gone for the filter.
    let s = run(&store, "lan", vec![], RunEnd::Completed).await;
    let kinds: Vec<(String, ChangeKind)> = s
        .changes
        .iter()
        .map(|c| (c.server_id.clone(), c.kind))
        .collect();
    assert!(
        kinds.contains(&(ib.clone(), ChangeKind::HealthChanged)),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&(inever.clone(), ChangeKind::HealthChanged)),
        "{kinds:?}"
    );
    assert_eq!(health_of(&reader, &ib).unwrap().status, Status::Gone);
    assert_eq!(health_of(&reader, &inever), None);
    let gone_health = |h: Status| -> Vec<String> {
        let mut v: Vec<String> = reader
            .servers(&ServerFilter {
                status: StatusFilter::All,
                health_status: Some(h),
                ..ServerFilter::default()
            })
            .unwrap()
            .into_iter()
            .map(|s| s.id.into_string())
            .collect();
        v.sort();
        v
    };
    let mut all_three = vec![ia.clone(), ib.clone(), inever.clone()];
    all_three.sort();
    assert_eq!(gone_health(Status::Gone), all_three);

    // Back: appeared (back), then health_changed gone -> unknown; health starts over.
    let s = run(
        &store,
        "lan",
        vec![a.clone(), never.clone()],
        RunEnd::Completed,
    )
    .await;
    let back: Vec<&Change> = s.changes.iter().filter(|c| c.server_id == ia).collect();
    assert_eq!(
        back.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::Appeared, ChangeKind::HealthChanged]
    );
    assert_eq!(back[1].detail["from"], "gone");
    assert_eq!(back[1].detail["to"], "unknown");
    let h = health_of(&reader, &ia).unwrap();
    assert_eq!(h.status, Status::Unknown);
    assert_eq!((h.consecutive_successes, h.last_check_at), (0, None));
    assert_eq!(
        health_of(&reader, &inever),
        None,
        "never checked stays null"
    );
    let mut back_ids = vec![ia.clone(), inever.clone()];
    back_ids.sort();
    assert_eq!(gone_health(Status::Unknown), back_ids);
    // A rescan of an active server keeps its health.
    let s2 = healthy(&store, &ia, now + Duration::from_secs(60)).await;
    run(&store, "lan", vec![a.clone()], RunEnd::Completed).await;
    assert_eq!(health_of(&reader, &ia).as_ref(), Some(s2.health()));

    // Forget: gone, then health_changed to gone; the history goes with the server.
    let c = store.forget(&ia).await.unwrap();
    assert_eq!(
        c.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::Gone, ChangeKind::HealthChanged]
    );
    assert_eq!(c[1].detail["to"], "gone");
    let conn = raw(&dir.db());
    let left: i64 = conn
        .query_row(
            "SELECT count(*) FROM check_results WHERE server_id = ?1",
            [&ia],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn the_health_status_filter_matches_the_stored_status_and_unknown_matches_never_checked() {
    let dir = TempDir::new("health-filter");
    let (store, handle) = open(&dir.db(), 3);
    let a = mcp("10.0.0.1", 8000, vec![]);
    let b = mcp("10.0.0.2", 8000, vec![]);
    let c = mcp("10.0.0.3", 8000, vec![]);
    run(
        &store,
        "lan",
        vec![a.clone(), b.clone(), c.clone()],
        RunEnd::Completed,
    )
    .await;
    let now = now_ms();
    healthy(&store, &id_of(&a), now).await;
    let mut s = HealthState::new(now);
    for i in 0..3 {
        let (u, next) = check(
            &id_of(&b),
            &s,
            now + Duration::from_secs(i),
            vec![CheckResult::fail("mcp", "timeout")],
        );
        s = next;
        store.record_health(u).await.unwrap();
    }
    assert_eq!(s.status(), Status::Unhealthy);
    let reader = Reader::open(dir.db()).unwrap();
    let ips = |h: Status| -> Vec<String> {
        reader
            .servers(&ServerFilter {
                health_status: Some(h),
                ..ServerFilter::default()
            })
            .unwrap()
            .into_iter()
            .map(|s| s.record.ip.to_string())
            .collect()
    };
    assert_eq!(ips(Status::Healthy), ["10.0.0.1"]);
    assert_eq!(ips(Status::Unhealthy), ["10.0.0.2"]);
    assert_eq!(ips(Status::Unknown), ["10.0.0.3"]);
    assert!(ips(Status::Degraded).is_empty() && ips(Status::Gone).is_empty());
    // The raw-JSON list is still exactly the serialized list, health and uptime included.
    let filter = ServerFilter::default();
    let servers = reader.servers(&filter).unwrap();
    let typed: serde_json::Value = serde_json::from_str(&format!(
        "{{\"servers\":{},\"count\":{}}}",
        serde_json::to_string(&servers).unwrap(),
        servers.len()
    ))
    .unwrap();
    let raw_list: serde_json::Value =
        serde_json::from_slice(&reader.servers_json(&filter).unwrap()).unwrap();
    assert_eq!(raw_list, typed);
    assert_eq!(raw_list["servers"][1]["health"]["status"], "unhealthy");
    assert_eq!(raw_list["servers"][1]["health"]["reason"], "mcp: timeout");
    assert!(raw_list["servers"][2]["health"].is_null());
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn retention_deletes_old_results_and_rollups_older_than_90_days() {
    let dir = TempDir::new("health-retention");
    let (store, handle) = open(&dir.db(), 3);
    let (_, id) = one_server(&store).await;
    let now = now_ms();
    let day = Duration::from_secs(86_400);
    for age in [100 * 24, 2 * 24, 0] {
        let at = now - Duration::from_secs(age * 3600);
        let (u, _) = check(
            &id,
            &HealthState::new(at),
            at,
            vec![CheckResult::pass("mcp")],
        );
        store.record_health(u).await.unwrap();
    }
    drop(store);
    handle.wait().await.unwrap();
    let conn = raw(&dir.db());
    assert_eq!(count(&conn, "SELECT count(*) FROM check_results"), 3);
    assert_eq!(count(&conn, "SELECT count(*) FROM check_rollups"), 3);
    drop(conn);

    // Reopening runs retention: results older than a day go, rollups older than 90 days.
    let opts = StoreOptions {
        retention: day,
        ..StoreOptions::new(dir.db())
    };
    let (store, handle) = Store::open_tuned(opts, fast()).unwrap();
    let conn = raw(&dir.db());
    assert_eq!(count(&conn, "SELECT count(*) FROM check_results"), 1);
    assert_eq!(count(&conn, "SELECT count(*) FROM check_rollups"), 2);
    drop(store);
    handle.wait().await.unwrap();
}
