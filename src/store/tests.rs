//! Behaviour of the whole store, writer and readers together, on real SQLite files.

use std::time::{Duration, Instant};

use serde_json::json;

use super::testutil::{fast, mcp, open, other, run, tool, TempDir};
use super::*;
use crate::finding::Origin;
use crate::fingerprint::{AuthInfo, Transport, Verdict};

fn id_of(r: &Record) -> String {
    ServerId::from_url(r.url.as_deref().unwrap()).into_string()
}

#[tokio::test]
async fn appeared_then_tool_drift_is_updated_with_exact_detail_then_noise_is_not_news() {
    let dir = TempDir::new("flow");
    let (store, handle) = open(&dir.db(), 3);
    let a = mcp(
        "10.0.0.5",
        8000,
        vec![tool("echo", "aa"), tool("add", "bb")],
    );
    let id = id_of(&a);

    let s1 = run(&store, "lan", vec![a.clone()], RunEnd::Completed).await;
    assert_eq!((s1.appeared, s1.updated, s1.gone, s1.mcp), (1, 0, 0, 1));
    let c = &s1.changes[0];
    assert_eq!(c.kind, ChangeKind::Appeared);
    assert_eq!(c.server_id, id);
    assert_eq!(c.detail["reason"], "new");
    assert_eq!(c.detail["url"], "http://10.0.0.5:8000/mcp");
    assert_eq!(c.detail["tools"], json!(["echo", "add"]));
    assert_eq!(c.detail["kind"], "mcp");

    let mut b = a.clone();
    b.tools = vec![tool("add", "b2"), tool("zap", "cc")];
    b.rtt_ms = Some(9.9);
    b.seen_at = "2030-01-01T00:00:00.000Z".into();
    let s2 = run(&store, "lan", vec![b.clone()], RunEnd::Completed).await;
    assert_eq!((s2.appeared, s2.updated, s2.gone), (0, 1, 0));
    assert_eq!(
        s2.changes[0].detail,
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

    let mut c3 = b.clone();
    c3.rtt_ms = Some(1.1);
    c3.evidence = vec!["something else".into()];
    c3.confidence = Some(0.9);
    let s3 = run(&store, "lan", vec![c3], RunEnd::Completed).await;
    assert!(s3.changes.is_empty(), "{:?}", s3.changes);

    let reader = Reader::open(dir.db()).unwrap();
    let (server, changes) = reader.server(&id).unwrap().unwrap();
    assert_eq!(server.status, ServerStatus::Active);
    assert_eq!(server.jobs, ["lan"]);
    assert_eq!(server.record.rtt_ms, Some(1.1), "the record is the newest");
    assert_eq!(
        changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
        [ChangeKind::Updated, ChangeKind::Appeared],
        "newest first"
    );
    let runs = reader.runs(Some("lan"), 10).unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0].id, s3.run);
    assert_eq!(runs[1].updated, 1);
    assert_eq!(runs[2].appeared, 1);
    assert_eq!(runs[2].probes, 2);
    assert!(runs
        .iter()
        .all(|r| r.status == RunStatus::Completed && r.ended_at.is_some()));
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn misses_make_gone_after_three_completed_runs_and_interrupted_runs_do_not_count() {
    let dir = TempDir::new("misses");
    let (store, handle) = open(&dir.db(), 3);
    let a = mcp("10.0.0.1", 8000, vec![tool("echo", "aa")]);
    let keep = mcp("10.0.0.2", 8000, vec![]);
    let id = id_of(&a);
    run(
        &store,
        "lan",
        vec![a.clone(), keep.clone()],
        RunEnd::Completed,
    )
    .await;

    let s = run(&store, "lan", vec![keep.clone()], RunEnd::Completed).await;
    assert!(s.changes.is_empty());
    let s = run(&store, "lan", vec![keep.clone()], RunEnd::Interrupted).await;
    assert!(s.changes.is_empty());
    let s = run(&store, "lan", vec![], RunEnd::Failed("no route".into())).await;
    assert!(s.changes.is_empty());
    let s = run(&store, "lan", vec![keep.clone()], RunEnd::Completed).await;
    assert!(s.changes.is_empty(), "two misses only: {:?}", s.changes);
    let s = run(&store, "lan", vec![keep.clone()], RunEnd::Completed).await;
    assert_eq!(s.gone, 1);
    assert_eq!(s.changes[0].server_id, id);
    assert_eq!(
        s.changes[0].detail,
        json!({
            "reason": "missed 3 consecutive completed runs of job lan",
            "url": "http://10.0.0.1:8000/mcp",
            "misses": {"lan": 3}
        })
    );

    let reader = Reader::open(dir.db()).unwrap();
    let runs = reader.runs(None, 10).unwrap();
    assert_eq!(runs[2].status, RunStatus::Failed);
    assert_eq!(runs[2].error.as_deref(), Some("no route"));
    assert_eq!(runs[3].status, RunStatus::Interrupted);
    let (server, _) = reader.server(&id).unwrap().unwrap();
    assert_eq!(server.status, ServerStatus::Gone);
    assert_eq!(
        server.gone_reason.as_deref(),
        Some("missed 3 consecutive completed runs of job lan")
    );
    let v = serde_json::to_value(&server).unwrap();
    assert_eq!(v["status"], "gone");
    assert_eq!(
        v["gone_reason"],
        "missed 3 consecutive completed runs of job lan"
    );
    // Further runs do not mark it gone twice.
    let s = run(&store, "lan", vec![keep], RunEnd::Completed).await;
    assert!(s.changes.is_empty());

    // Seen again: appeared, reason back.
    let s = run(&store, "lan", vec![a], RunEnd::Completed).await;
    assert_eq!(s.appeared, 1);
    assert_eq!(s.changes[0].detail["reason"], "back");
    assert_eq!(
        s.changes[0].detail["gone_reason"],
        "missed 3 consecutive completed runs of job lan"
    );
    let (server, _) = reader.server(&id).unwrap().unwrap();
    assert_eq!(server.status, ServerStatus::Active);
    assert_eq!(server.gone_reason, None);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn a_server_two_jobs_found_is_gone_only_when_both_miss() {
    let dir = TempDir::new("twojobs");
    let (store, handle) = open(&dir.db(), 2);
    let a = mcp("10.0.0.1", 8000, vec![]);
    let id = id_of(&a);
    run(&store, "sweep", vec![a.clone()], RunEnd::Completed).await;
    run(&store, "srv", vec![a.clone()], RunEnd::Completed).await;

    for _ in 0..3 {
        let s = run(&store, "sweep", vec![], RunEnd::Completed).await;
        assert!(s.changes.is_empty(), "srv still sees it");
    }
    let s = run(&store, "srv", vec![], RunEnd::Completed).await;
    assert!(s.changes.is_empty(), "srv missed only once");
    let s = run(&store, "srv", vec![], RunEnd::Completed).await;
    assert_eq!(s.gone, 1);
    assert_eq!(
        s.changes[0].detail["reason"],
        "missed 2 or more consecutive completed runs of every job that found it (srv, sweep)"
    );
    assert_eq!(s.changes[0].detail["misses"], json!({"srv": 2, "sweep": 3}));
    let reader = Reader::open(dir.db()).unwrap();
    assert_eq!(
        reader.server(&id).unwrap().unwrap().0.jobs,
        ["srv", "sweep"]
    );
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn a_port_that_answers_as_something_else_marks_its_servers_gone() {
    let dir = TempDir::new("notmcp");
    let (store, handle) = open(&dir.db(), 3);
    let a = mcp("10.0.0.1", 8000, vec![]);
    let b = mcp("10.0.0.2", 8000, vec![]);
    run(
        &store,
        "lan",
        vec![a.clone(), b.clone()],
        RunEnd::Interrupted,
    )
    .await;
    // Even an interrupted run says what the port is now.
    let s = run(
        &store,
        "lan",
        vec![other("10.0.0.1", 8000, Verdict::Http), b.clone()],
        RunEnd::Interrupted,
    )
    .await;
    assert_eq!(s.gone, 1);
    assert_eq!(
        s.changes[0].detail,
        json!({
            "reason": "port answers but is no longer MCP",
            "url": "http://10.0.0.1:8000/mcp",
            "kind": "http"
        })
    );
    // A closed port is a miss, not a verdict.
    let mut closed = other("10.0.0.2", 8000, Verdict::Open);
    closed.kind = None;
    closed.state = crate::finding::PortState::Closed;
    let s = run(&store, "lan", vec![closed], RunEnd::Interrupted).await;
    assert!(s.changes.is_empty());
    // observe() applies the same rule.
    let c = store
        .observe("mdns", vec![other("10.0.0.2", 8000, Verdict::Open)])
        .await
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].server_id, id_of(&b));
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn observe_accumulates_origins_and_names_and_counts_no_misses() {
    let dir = TempDir::new("observe");
    let (store, handle) = open(&dir.db(), 1);
    let a = mcp("10.0.0.1", 8000, vec![]);
    let id = id_of(&a);
    run(&store, "lan", vec![a.clone()], RunEnd::Completed).await;
    let mut m = a.clone();
    m.origins = vec![Origin::Mdns];
    m.announced_as = vec!["demo._mcp._tcp.local.".into()];
    let c = store.observe("mdns", vec![m.clone()]).await.unwrap();
    assert!(c.is_empty(), "a new source is not news: {c:?}");
    let c = store.observe("mdns", vec![m]).await.unwrap();
    assert!(c.is_empty());

    let reader = Reader::open(dir.db()).unwrap();
    let (s, _) = reader.server(&id).unwrap().unwrap();
    assert_eq!(s.record.origins, [Origin::Sweep, Origin::Mdns]);
    assert_eq!(s.record.announced_as, ["demo._mcp._tcp.local."]);
    assert_eq!(s.jobs, ["lan", "mdns"]);
    // The sweep misses it once, but mdns (which never completes a run) still has it.
    let s = run(&store, "lan", vec![a.clone()], RunEnd::Completed).await;
    assert!(s.changes.is_empty());
    let s = run(&store, "lan", vec![], RunEnd::Completed).await;
    assert!(s.changes.is_empty());
    // The mDNS goodbye ends it; twice is a no-op; unknown ids are a no-op.
    let g = store
        .mark_gone(&id, "mDNS goodbye")
        .await
        .unwrap()
        .remove(0);
    assert_eq!(g.kind, ChangeKind::Gone);
    assert_eq!(g.detail["reason"], "mDNS goodbye");
    assert_eq!(store.mark_gone(&id, "mDNS goodbye").await.unwrap(), []);
    assert_eq!(store.mark_gone("nope", "x").await.unwrap(), []);
    // Back through mDNS: origins start again from what this record says.
    let mut m2 = a.clone();
    m2.origins = vec![Origin::Mdns];
    let c = store.observe("mdns", vec![m2]).await.unwrap();
    assert_eq!(c[0].detail["reason"], "back");
    let (s, _) = reader.server(&id).unwrap().unwrap();
    assert_eq!(s.record.origins, [Origin::Mdns]);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn updated_detail_covers_version_protocols_transport_auth_and_kind() {
    let dir = TempDir::new("fields");
    let (store, handle) = open(&dir.db(), 3);
    let a = mcp("10.0.0.1", 8000, vec![]);
    store.observe("lan", vec![a.clone()]).await.unwrap();
    let mut b = a.clone();
    b.server_version = Some("1.1.0".into());
    b.protocol_versions = vec!["2025-06-18".into(), "2025-11-25".into()];
    b.transport = Some(Transport::Sse);
    b.kind = Some(Verdict::McpAuthRequired);
    b.auth = Some(AuthInfo {
        required: true,
        scopes: vec!["mcp".into()],
        ..AuthInfo::default()
    });
    let c = store.observe("lan", vec![b]).await.unwrap();
    let d = &c[0].detail;
    assert_eq!(
        d["server_version"],
        json!({"before": "1.0.0", "after": "1.1.0"})
    );
    assert_eq!(
        d["transport"],
        json!({"before": "streamable-http", "after": "sse"})
    );
    assert_eq!(
        d["kind"],
        json!({"before": "mcp", "after": "mcp-auth-required"})
    );
    assert_eq!(d["auth"]["after"]["scopes"], json!(["mcp"]));
    assert_eq!(d["protocol_versions"]["before"], json!(["2025-06-18"]));
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn forget_records_gone_and_deletes_the_server_with_its_jobs_and_tools() {
    let dir = TempDir::new("forget");
    let (store, handle) = open(&dir.db(), 3);
    let a = mcp("10.0.0.1", 8000, vec![tool("echo", "aa")]);
    let id = id_of(&a);
    store.observe("lan", vec![a]).await.unwrap();
    let c = store.forget(&id).await.unwrap().remove(0);
    assert_eq!(c.kind, ChangeKind::Gone);
    assert_eq!(c.detail["reason"], "forgotten through the API");
    assert_eq!(store.forget(&id).await.unwrap(), []);

    let reader = Reader::open(dir.db()).unwrap();
    assert!(reader.server(&id).unwrap().is_none());
    let f = ServerFilter {
        capability: Some("echo".into()),
        status: StatusFilter::All,
        ..ServerFilter::default()
    };
    assert!(reader.servers(&f).unwrap().is_empty());
    let (changes, _) = reader.changes(0, 10).unwrap();
    assert_eq!(changes.len(), 2, "the history stays");
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let rows: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM server_jobs) + (SELECT count(*) FROM server_tools)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn seq_strictly_increases_across_reopen_and_after_retention_deletes() {
    let dir = TempDir::new("seq");
    let mut last = 0;
    let mut run_ids = Vec::new();
    for round in 0..3u16 {
        let opts = StoreOptions {
            // The last reopen deletes everything before it.
            retention: if round == 2 {
                Duration::from_millis(1)
            } else {
                DEFAULT_RETENTION
            },
            ..StoreOptions::new(dir.db())
        };
        std::thread::sleep(Duration::from_millis(5));
        let (store, handle) = Store::open_tuned(opts, fast()).unwrap();
        if round == 2 {
            let reader = Reader::open(dir.db()).unwrap();
            assert!(
                reader.changes(0, 100).unwrap().0.is_empty(),
                "retention ran at open"
            );
            assert!(reader.runs(None, 100).unwrap().is_empty());
            assert_eq!(reader.last_seq().unwrap(), last, "the sequence survives");
            // Gone servers past retention are deleted; active ones never are.
            let all = ServerFilter {
                status: StatusFilter::All,
                ..ServerFilter::default()
            };
            let left: Vec<String> = reader
                .servers(&all)
                .unwrap()
                .iter()
                .map(|s| s.record.ip.to_string())
                .collect();
            assert_eq!(left, ["10.0.0.2", "10.0.1.2"]);
        }
        let recs = (0..3)
            .map(|i| mcp(&format!("10.0.{round}.{i}"), 8000, vec![]))
            .collect();
        let s = run(&store, "lan", recs, RunEnd::Completed).await;
        run_ids.push(s.run.0);
        for c in &s.changes {
            assert!(c.seq > last, "{} after {last}", c.seq);
            last = c.seq;
        }
        let forgotten = ServerId::from_url(&format!("http://10.0.{round}.0:8000/mcp"));
        let c = store.forget(forgotten.as_str()).await.unwrap().remove(0);
        assert!(c.seq > last);
        last = c.seq;
        let gone = ServerId::from_url(&format!("http://10.0.{round}.1:8000/mcp"));
        let c = store
            .mark_gone(gone.as_str(), "test")
            .await
            .unwrap()
            .remove(0);
        assert!(c.seq > last);
        last = c.seq;
        drop(store);
        handle.wait().await.unwrap();
    }
    assert!(run_ids.windows(2).all(|w| w[0] < w[1]), "{run_ids:?}");
    let reader = Reader::open(dir.db()).unwrap();
    assert_eq!(reader.last_seq().unwrap(), last);
    let (page, next) = reader.changes(0, 2).unwrap();
    assert_eq!(page.len(), 2);
    let (rest, next2) = reader.changes(next, 100).unwrap();
    assert_eq!(next2, last);
    assert!(rest.iter().all(|c| c.seq > next));
    assert_eq!(reader.changes(last, 10).unwrap(), (vec![], last));
}

#[tokio::test]
async fn open_creates_missing_parent_directories() {
    let dir = TempDir::new("parents");
    let path = dir.join("a/b/c/inventory.db");
    let (store, handle) = open(&path, 3);
    store
        .observe("lan", vec![mcp("10.0.0.1", 8000, vec![])])
        .await
        .unwrap();
    drop(store);
    handle.wait().await.unwrap();
    assert!(path.is_file() && dir.join("a/b/c/inventory.db.lock").is_file());
    let e = Reader::open(dir.join("a/b/c/other.db")).unwrap_err();
    assert!(matches!(e, StoreError::Missing { .. }), "{e}");
}

#[tokio::test]
async fn runs_left_running_by_a_dead_process_are_interrupted_at_open() {
    let dir = TempDir::new("interrupt");
    let (store, handle) = open(&dir.db(), 3);
    let id = store.begin_run("lan").await.unwrap();
    drop(store);
    handle.wait().await.unwrap();
    let reader = Reader::open(dir.db()).unwrap();
    assert_eq!(reader.runs(None, 1).unwrap()[0].status, RunStatus::Running);

    let (store, handle) = open(&dir.db(), 3);
    let runs = reader.runs(None, 10).unwrap();
    assert_eq!(runs[0].id, id);
    assert_eq!(runs[0].status, RunStatus::Interrupted);
    assert_eq!(runs[0].error.as_deref(), Some(apply::REASON_INTERRUPTED));
    assert!(runs[0].ended_at.is_some());
    let next = store.begin_run("lan").await.unwrap();
    assert!(next > id);
    drop(store);
    handle.wait().await.unwrap();
}

fn refused_untouched(path: &std::path::Path) -> StoreError {
    let before = std::fs::read(path).unwrap();
    let hash = |b: &[u8]| {
        b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, x| {
            (h ^ u64::from(*x)).wrapping_mul(0x100_0000_01b3)
        })
    };
    let err = Store::open(StoreOptions::new(path)).unwrap_err();
    let after = std::fs::read(path).unwrap();
    assert_eq!(hash(&before), hash(&after), "the file changed");
    assert_eq!(before, after);
    err
}

#[test]
fn random_bytes_are_refused_and_left_untouched() {
    let dir = TempDir::new("random");
    let path = dir.db();
    let bytes: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = refused_untouched(&path);
    assert!(matches!(err, StoreError::NotSqlite { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("left untouched"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_truncated_store_is_refused_as_corrupt_and_left_untouched() {
    let dir = TempDir::new("truncated");
    let (store, handle) = open(&dir.db(), 3);
    let recs = (0..400)
        .map(|i| {
            mcp(
                &format!("10.1.{}.{}", i / 250, i % 250),
                8000,
                vec![tool("echo", "aa")],
            )
        })
        .collect();
    run(&store, "lan", recs, RunEnd::Completed).await;
    drop(store);
    handle.wait().await.unwrap();
    let full = std::fs::read(dir.db()).unwrap();
    assert!(full.len() > 64 * 1024, "{}", full.len());
    let cut = dir.join("cut.db");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let err = refused_untouched(&cut);
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("cut.db"), "{err}");
}

#[test]
fn someone_elses_sqlite_file_is_refused() {
    let dir = TempDir::new("foreign");
    let path = dir.db();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    drop(conn);
    let err = refused_untouched(&path);
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
}

#[tokio::test]
async fn a_second_daemon_is_refused_until_the_first_closes() {
    let dir = TempDir::new("lock");
    let (store, handle) = open(&dir.db(), 3);
    let err = Store::open(StoreOptions::new(dir.db())).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::InUse { holder: Some(p), .. } if p == std::process::id()),
        "{msg}"
    );
    assert!(msg.contains("inventory.db.lock"), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    assert!(msg.contains("stop that daemon"), "{msg}");
    // close() with a clone still alive: the clone's writes now fail.
    let clone = store.clone();
    handle.close().await.unwrap();
    assert!(matches!(
        clone.observe("x", vec![]).await,
        Err(StoreError::Closed)
    ));
    let (store2, handle2) = Store::open(StoreOptions::new(dir.db())).unwrap();
    drop((store, clone, store2));
    handle2.wait().await.unwrap();
}

#[tokio::test]
async fn every_filter_narrows_and_they_combine() {
    let dir = TempDir::new("filters");
    let (store, handle) = open(&dir.db(), 1);
    let mut a = mcp(
        "10.0.0.10",
        8000,
        vec![tool("get_weather", "1"), tool("echo", "2")],
    );
    a.server_name = Some("weather-mcp".into());
    let mut b = mcp("10.0.0.2", 8000, vec![tool("get_time", "3")]);
    b.server_name = Some("clock".into());
    b.transport = Some(Transport::Sse);
    let mut c = mcp("fd00::1", 9000, vec![tool("a?b[1]", "4")]);
    c.kind = Some(Verdict::McpAuthRequired);
    c.server_name = Some("weird[name]?".into());
    c.origins = vec![Origin::Mdns];
    let d = mcp("10.0.0.3", 8000, vec![tool("echo", "5")]);
    run(
        &store,
        "lan",
        vec![a.clone(), b.clone(), d.clone()],
        RunEnd::Completed,
    )
    .await;
    store.observe("mdns", vec![c.clone()]).await.unwrap();
    // d goes: the lan run misses it (gone_after = 1).
    run(&store, "lan", vec![a.clone(), b.clone()], RunEnd::Completed).await;

    let reader = Reader::open(dir.db()).unwrap();
    let ids = |f: ServerFilter| -> Vec<String> {
        reader
            .servers(&f)
            .unwrap()
            .into_iter()
            .map(|s| s.record.ip.to_string())
            .collect()
    };
    let f = ServerFilter::default;
    assert_eq!(
        ids(f()),
        ["10.0.0.2", "10.0.0.10", "fd00::1"],
        "numeric order, v4 first"
    );
    // The raw-JSON list is the serialized list, for every status (gone_reason included).
    for status in [StatusFilter::Active, StatusFilter::Gone, StatusFilter::All] {
        let filter = ServerFilter { status, ..f() };
        let servers = reader.servers(&filter).unwrap();
        // Through text, not `json!`: an f32 such as `confidence` must round-trip as printed.
        let typed: serde_json::Value = serde_json::from_str(&format!(
            "{{\"servers\":{},\"count\":{}}}",
            serde_json::to_string(&servers).unwrap(),
            servers.len()
        ))
        .unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&reader.servers_json(&filter).unwrap()).unwrap();
        assert_eq!(raw, typed, "{status:?}");
    }
    assert_eq!(
        ids(ServerFilter {
            status: StatusFilter::Gone,
            ..f()
        }),
        ["10.0.0.3"]
    );
    assert_eq!(
        ids(ServerFilter {
            status: StatusFilter::All,
            ..f()
        })
        .len(),
        4
    );
    assert_eq!(
        ids(ServerFilter {
            kind: Some(Verdict::McpAuthRequired),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            transport: Some(Transport::Sse),
            ..f()
        }),
        ["10.0.0.2"]
    );
    assert_eq!(
        ids(ServerFilter {
            origin: Some(Origin::Mdns),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            origin: Some(Origin::Sweep),
            ..f()
        }),
        ["10.0.0.2", "10.0.0.10"]
    );
    assert_eq!(
        ids(ServerFilter {
            job: Some("mdns".into()),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            job: Some("lan".into()),
            ..f()
        }),
        ["10.0.0.2", "10.0.0.10"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("echo".into()),
            ..f()
        }),
        ["10.0.0.10"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("echo".into()),
            status: StatusFilter::All,
            ..f()
        }),
        ["10.0.0.3", "10.0.0.10"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("get_*".into()),
            ..f()
        }),
        ["10.0.0.2", "10.0.0.10"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("*time".into()),
            ..f()
        }),
        ["10.0.0.2"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("get".into()),
            ..f()
        }),
        Vec::<String>::new()
    );
    // GLOB metacharacters other than * are literal.
    assert_eq!(
        ids(ServerFilter {
            capability: Some("a?b[1]".into()),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("a?b[1*".into()),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("a?b*".into()),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            capability: Some("axb*".into()),
            ..f()
        }),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(ServerFilter {
            server_name: Some("weather-mcp".into()),
            ..f()
        }),
        ["10.0.0.10"]
    );
    assert_eq!(
        ids(ServerFilter {
            server_name: Some("*eather*".into()),
            ..f()
        }),
        ["10.0.0.10"]
    );
    assert_eq!(
        ids(ServerFilter {
            server_name: Some("weird[name]?".into()),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            server_name: Some("weird[*".into()),
            ..f()
        }),
        ["fd00::1"]
    );
    assert_eq!(
        ids(ServerFilter {
            server_name: Some("weird?name*".into()),
            ..f()
        }),
        Vec::<String>::new()
    );
    // AND-ed.
    assert_eq!(
        ids(ServerFilter {
            capability: Some("get_*".into()),
            transport: Some(Transport::StreamableHttp),
            job: Some("lan".into()),
            ..f()
        }),
        ["10.0.0.10"]
    );

    // The API shape: every record field, flattened, plus the inventory's own.
    let s = &reader
        .servers(&ServerFilter {
            server_name: Some("clock".into()),
            ..f()
        })
        .unwrap()[0];
    let v = serde_json::to_value(s).unwrap();
    for k in [
        "id",
        "status",
        "first_seen",
        "last_seen",
        "jobs",
        "ip",
        "port",
        "url",
        "tools",
        "seen_at",
        "kind",
    ] {
        assert!(v.get(k).is_some(), "{k} missing from {v}");
    }
    assert!(v.get("gone_reason").is_none());
    assert_eq!(serde_json::from_value::<StoredServer>(v).unwrap(), *s);

    let counts = reader.server_counts().unwrap();
    let n = |k: Verdict, t: Option<Transport>, st: ServerStatus| {
        counts
            .iter()
            .find(|c| c.kind == k && c.transport == t && c.status == st)
            .map_or(0, |c| c.count)
    };
    assert_eq!(
        n(
            Verdict::Mcp,
            Some(Transport::StreamableHttp),
            ServerStatus::Active
        ),
        1
    );
    assert_eq!(
        n(Verdict::Mcp, Some(Transport::Sse), ServerStatus::Active),
        1
    );
    assert_eq!(
        n(
            Verdict::Mcp,
            Some(Transport::StreamableHttp),
            ServerStatus::Gone
        ),
        1
    );
    assert_eq!(
        n(
            Verdict::McpAuthRequired,
            Some(Transport::StreamableHttp),
            ServerStatus::Active
        ),
        1
    );
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn a_subscriber_sees_each_change_once_in_order_after_commit() {
    let dir = TempDir::new("broadcast");
    let (store, handle) = open(&dir.db(), 1);
    let mut rx = store.subscribe();
    let reader = Reader::open(dir.db()).unwrap();
    let follower = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Ok(c) = rx.recv().await {
            // Published after commit: a reader already sees it.
            let (rows, _) = reader.changes(c.seq - 1, 1).unwrap();
            assert_eq!(rows.first(), Some(&c));
            got.push(c);
        }
        got
    });
    let mut expected = Vec::new();
    for i in 0..20u8 {
        let recs = vec![mcp(&format!("10.9.0.{i}"), 8000, vec![])];
        expected.extend(run(&store, "lan", recs, RunEnd::Completed).await.changes);
        expected.extend(
            store
                .observe(
                    "x",
                    vec![mcp("10.9.1.1", 8000, vec![tool(&format!("t{i}"), "h")])],
                )
                .await
                .unwrap(),
        );
    }
    drop(store);
    handle.wait().await.unwrap();
    let got = follower.await.unwrap();
    assert!(expected.len() > 40, "{}", expected.len());
    assert_eq!(got, expected);
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[tokio::test]
async fn writes_that_fail_are_kept_in_order_and_commit_when_the_disk_works_again() {
    // A second connection holding an exclusive transaction makes every write of the
    // writer fail with SQLITE_BUSY, as a real lock, disk or I/O fault would.
    let dir = TempDir::new("fault");
    let (store, handle) = open(&dir.db(), 3);
    let mut status = store.watch_status();
    let mut rx = store.subscribe();
    let blocker = rusqlite::Connection::open(dir.db()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let a = mcp("10.0.0.1", 8000, vec![]);
    let b = mcp("10.0.0.2", 8000, vec![]);
    let err = store.observe("lan", vec![a.clone()]).await.unwrap_err();
    assert!(matches!(err, StoreError::Queued { .. }), "{err}");
    assert!(
        err.to_string().starts_with("queued: store not writable ("),
        "{err}"
    );
    let run_id = store
        .begin_run("lan")
        .await
        .expect("ids are handed out while queued");
    let err = store
        .finish_run(
            run_id,
            RunOutcome {
                job: "lan".into(),
                status: RunEnd::Completed,
                records: vec![b.clone()],
                probes: 1,
                open: 1,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Queued { .. }), "{err}");
    let st = store.status();
    assert!(!st.writable);
    assert!(
        st.last_error.as_deref().unwrap().contains("locked"),
        "{st:?}"
    );
    assert_eq!(st.queued, 3);
    // Nothing was published for writes that did not commit.
    assert!(rx.try_recv().is_err());
    let reader = Reader::open(dir.db()).unwrap();
    assert!(reader.changes(0, 10).unwrap().0.is_empty());

    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.writable && s.queued == 0),
    )
    .await
    .expect("the ticker retries the kept writes")
    .unwrap();
    assert_eq!(store.status().last_error, None);
    let first = rx.recv().await.unwrap();
    let second = rx.recv().await.unwrap();
    assert_eq!(first.server_id, id_of(&a));
    assert_eq!(second.server_id, id_of(&b));
    assert!(first.seq < second.seq);
    let runs = reader.runs(None, 5).unwrap();
    assert_eq!(runs[0].id, run_id);
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(runs[0].appeared, 1);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn the_heartbeat_notices_an_idle_store_that_cannot_write_and_its_recovery() {
    let dir = TempDir::new("heartbeat");
    let (store, handle) = open(&dir.db(), 3);
    let mut status = store.watch_status();
    let blocker = rusqlite::Connection::open(dir.db()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| !s.writable))
        .await
        .expect("the heartbeat fails")
        .unwrap();
    blocker.execute_batch("COMMIT").unwrap();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| s.writable))
        .await
        .expect("the heartbeat succeeds again")
        .unwrap();
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn close_commits_what_is_queued_or_reports_what_it_could_not() {
    let dir = TempDir::new("drain");
    let (store, handle) = open(&dir.db(), 3);
    let blocker = rusqlite::Connection::open(dir.db()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let _ = store
        .observe("lan", vec![mcp("10.0.0.1", 8000, vec![])])
        .await;
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        blocker.execute_batch("COMMIT").unwrap();
    });
    drop(store);
    handle.wait().await.expect("drained once the lock went");
    release.join().unwrap();
    assert_eq!(
        Reader::open(dir.db())
            .unwrap()
            .changes(0, 10)
            .unwrap()
            .0
            .len(),
        1
    );

    let (store, handle) = open(&dir.db(), 3);
    let blocker = rusqlite::Connection::open(dir.db()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let _ = store
        .observe("lan", vec![mcp("10.0.0.2", 8000, vec![])])
        .await;
    let err = handle.close().await.unwrap_err();
    assert!(matches!(err, StoreError::Unsaved { ops: 1, .. }), "{err}");
    drop(blocker);
    drop(store);
}

/// 10,000 servers in one run, then the API's queries over them. Prints the timings.
#[tokio::test]
async fn ten_thousand_records_commit_in_one_run_and_stay_fast_to_query() {
    let dir = TempDir::new("10k");
    let (store, handle) = open(&dir.db(), 3);
    let recs: Vec<Record> = (0..10_000u32)
        .map(|i| {
            let mut tools = (0..5)
                .map(|t| tool(&format!("tool_{t}"), &format!("{i:x}{t}")))
                .collect::<Vec<_>>();
            if i % 100 == 0 {
                tools.push(tool("rare_capability", "r"));
            }
            let mut r = mcp(
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                8000,
                tools,
            );
            r.server_name = Some(format!("server-{}", i % 50));
            r
        })
        .collect();
    let mut others = recs.clone();
    others.extend(
        (0..2_000u32).map(|i| other(&format!("10.200.{}.{}", i >> 8, i & 255), 22, Verdict::Open)),
    );

    let t = Instant::now();
    let s = run(&store, "lan", others.clone(), RunEnd::Completed).await;
    let first = t.elapsed();
    assert_eq!(s.appeared, 10_000);
    let t = Instant::now();
    let s = run(&store, "lan", others, RunEnd::Completed).await;
    let second = t.elapsed();
    assert!(s.changes.is_empty());
    eprintln!(
        "finish_run, 10,000 MCP + 2,000 other records: first (all new) {first:?}, \
         again (no changes) {second:?}"
    );
    assert!(first < Duration::from_secs(20) && second < Duration::from_secs(20));

    let reader = Reader::open(dir.db()).unwrap();
    let ids: Vec<String> = recs.iter().step_by(37).map(id_of).collect();
    let mut one = Vec::new();
    for id in &ids {
        let t = Instant::now();
        assert!(reader.server(id).unwrap().is_some());
        one.push(t.elapsed());
    }
    let p = |mut v: Vec<Duration>, q: f64| {
        v.sort();
        v[((v.len() as f64 - 1.0) * q) as usize]
    };
    let time = |f: &ServerFilter, n: usize| {
        let mut v = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            assert_eq!(reader.servers(f).unwrap().len(), n);
            v.push(t.elapsed());
        }
        v
    };
    let rare = time(
        &ServerFilter {
            capability: Some("rare_capability".into()),
            ..ServerFilter::default()
        },
        100,
    );
    let rare_glob = time(
        &ServerFilter {
            capability: Some("rare_*".into()),
            ..ServerFilter::default()
        },
        100,
    );
    let named = time(
        &ServerFilter {
            server_name: Some("server-7".into()),
            ..ServerFilter::default()
        },
        200,
    );
    let t = Instant::now();
    assert_eq!(
        reader.servers(&ServerFilter::default()).unwrap().len(),
        10_000
    );
    let all = t.elapsed();
    let t = Instant::now();
    let counts = reader.server_counts().unwrap();
    let count_time = t.elapsed();
    assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), 10_000);
    eprintln!(
        "with 10,000 servers: server(id) p50 {:?} p99 {:?}; \
         capability=rare_capability (100 rows) p50 {:?} p99 {:?}; capability=rare_* p99 {:?}; \
         server_name=server-7 (200 rows) p99 {:?}; unfiltered (10,000 rows) {all:?}; \
         server_counts {count_time:?}",
        p(one.clone(), 0.5),
        p(one, 0.99),
        p(rare.clone(), 0.5),
        p(rare, 0.99),
        p(rare_glob, 0.99),
        p(named, 0.99),
    );
    drop(store);
    handle.wait().await.unwrap();
}
