//! The read model against the SQL path: the same bytes for every filter on a generated
//! inventory, and coherence after every kind of write (runs, observe, mark_gone, forget,
//! reuse of a deleted rowid, retention, long histories).

use super::apply::{self, Op};
use super::cache::{self, Lookup, ReadModel, MAX_CACHED_CHANGES_BYTES};
use super::testutil::{mcp, open, other, run, tool, TempDir};
use super::*;
use crate::finding::Origin;
use crate::fingerprint::{Transport, Verdict};
use crate::monitor::state::{self, CheckResult, HealthState, Status, Thresholds};
use std::time::SystemTime;

fn id_of(r: &Record) -> String {
    ServerId::from_url(r.url.as_deref().unwrap()).into_string()
}

/// The by-id body as the SQL path writes it (`api.rs`'s `OneServer`).
fn sql_one(reader: &Reader, id: &str) -> Option<Vec<u8>> {
    #[derive(serde::Serialize)]
    struct OneServer<'a> {
        #[serde(flatten)]
        server: &'a StoredServer,
        changes: &'a [Change],
    }
    reader.server(id).unwrap().map(|(server, changes)| {
        serde_json::to_vec(&OneServer {
            server: &server,
            changes: &changes,
        })
        .unwrap()
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every list status and every id (known now or before) give the SQL path's exact bytes.
fn assert_coherent(model: &ReadModel, reader: &Reader, ids: &[String], when: &str) {
    assert!(model.is_ready(), "{when}: not ready");
    for status in [StatusFilter::Active, StatusFilter::Gone, StatusFilter::All] {
        let f = ServerFilter {
            status,
            ..ServerFilter::default()
        };
        assert_eq!(
            text(&model.servers(&f).unwrap().into_json()),
            text(&reader.servers_json(&f).unwrap()),
            "{when}: list {status:?}"
        );
    }
    for id in ids {
        match (model.server_json(id), sql_one(reader, id)) {
            (Lookup::Found(m), Some(s)) => assert_eq!(text(&m), text(&s), "{when}: {id}"),
            (Lookup::NotFound, None) | (Lookup::Uncached, Some(_)) => {}
            (m, s) => panic!("{when}: {id}: model {m:?}, sql {:?}", s.map(|b| text(&b))),
        }
    }
}

/// A small deterministic generator (no dependency, same inventory every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.next() as usize % from.len()]
    }
}

const TOOLS: &[&str] = &[
    "echo",
    "get_weather",
    "get_time",
    "a?b[1]",
    "wetter_ü",
    "x*y",
    "rare_audit_log",
    "Echo",
];
const NAMES: &[Option<&str>] = &[
    None,
    Some("weather-mcp"),
    Some("clock"),
    Some("weird[name]?"),
    Some("Clock"),
    Some("ünï"),
];

fn generated(rng: &mut Lcg, i: u32) -> Record {
    let ip = if i % 7 == 3 {
        format!("fd00::{:x}", i + 1)
    } else {
        format!("10.{}.{}.{}", i % 3, i / 256, i % 256)
    };
    let n = (rng.next() % 4) as usize;
    let mut tools: Vec<_> = (0..n)
        .map(|k| {
            let name = *rng.pick::<&str>(TOOLS);
            tool(name, &format!("{i}-{k}"))
        })
        .collect();
    tools.dedup_by(|a, b| a.name == b.name);
    let mut r = mcp(&ip, [8000, 9000, 80][i as usize % 3], tools);
    r.server_name = rng.pick(NAMES).map(str::to_string);
    r.kind = Some(*rng.pick(&[Verdict::Mcp, Verdict::McpAuthRequired, Verdict::McpLikely]));
    r.transport = *rng.pick(&[Some(Transport::StreamableHttp), Some(Transport::Sse), None]);
    r.origins = vec![*rng.pick(&[Origin::Sweep, Origin::Mdns, Origin::Srv, Origin::Static])];
    r
}

#[tokio::test]
async fn the_model_lists_what_sql_lists_for_every_filter_on_a_generated_inventory() {
    let dir = TempDir::new("model-filters");
    let (store, handle) = open(&dir.db(), 1);
    let mut rng = Lcg(7);
    let recs: Vec<Record> = (0..240).map(|i| generated(&mut rng, i)).collect();
    // Two jobs see overlapping halves; observe adds more origins; the second run of `a`
    // misses a third of its servers, which makes those found only by `a` gone.
    run(&store, "a", recs[..160].to_vec(), RunEnd::Completed).await;
    run(&store, "b", recs[100..].to_vec(), RunEnd::Completed).await;
    let mut seen = recs[200..220].to_vec();
    for r in &mut seen {
        r.origins = vec![Origin::Mdns];
    }
    store.observe("mdns", seen).await.unwrap();
    let again: Vec<Record> = recs[..160]
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, r)| r.clone())
        .collect();
    run(&store, "a", again, RunEnd::Completed).await;

    let reader = Reader::open(dir.db()).unwrap();
    let model = store.read_model();
    let gone = reader
        .servers(&ServerFilter {
            status: StatusFilter::Gone,
            ..ServerFilter::default()
        })
        .unwrap();
    assert!(gone.len() > 10, "the inventory has gone servers");

    let kinds = [
        None,
        Some(Verdict::Mcp),
        Some(Verdict::McpAuthRequired),
        Some(Verdict::McpLikely),
    ];
    let transports = [None, Some(Transport::StreamableHttp), Some(Transport::Sse)];
    let origins = [
        None,
        Some(Origin::Sweep),
        Some(Origin::Mdns),
        Some(Origin::Srv),
        Some(Origin::Static),
    ];
    let jobs = [None, Some("a"), Some("b"), Some("mdns"), Some("nope")];
    let caps = [
        None,
        Some("echo"),
        Some("Echo"),
        Some("e*"),
        Some("*o"),
        Some("*"),
        Some("a?b[1]"),
        Some("a?*"),
        Some("*[1]"),
        Some("x*y"),
        Some("x**y"),
        Some("wetter_*"),
        Some("get_*e*"),
        Some("rare_audit_log"),
        Some("missing"),
    ];
    let names = [
        None,
        Some("clock"),
        Some("*lock"),
        Some("weird[name]?"),
        Some("weird*?"),
        Some("ü*"),
        Some("*ï"),
        Some("*"),
        Some("c"),
    ];
    let statuses = [StatusFilter::Active, StatusFilter::Gone, StatusFilter::All];
    let healths = [
        None,
        None,
        Some(Status::Unknown),
        Some(Status::Healthy),
        Some(Status::Gone),
    ];
    let mut filters = Vec::new();
    // Every value of every filter alone, under every status ...
    for status in statuses {
        let base = ServerFilter {
            status,
            ..ServerFilter::default()
        };
        filters.extend(kinds.iter().map(|&kind| ServerFilter {
            kind,
            ..base.clone()
        }));
        filters.extend(transports.iter().map(|&transport| ServerFilter {
            transport,
            ..base.clone()
        }));
        filters.extend(origins.iter().map(|&origin| ServerFilter {
            origin,
            ..base.clone()
        }));
        filters.extend(jobs.iter().map(|j| ServerFilter {
            job: j.map(Into::into),
            ..base.clone()
        }));
        filters.extend(caps.iter().map(|c| ServerFilter {
            capability: c.map(Into::into),
            ..base.clone()
        }));
        filters.extend(names.iter().map(|n| ServerFilter {
            server_name: n.map(Into::into),
            ..base.clone()
        }));
    }
    // ... and 600 random combinations.
    for _ in 0..600 {
        filters.push(ServerFilter {
            kind: *rng.pick(&kinds),
            transport: *rng.pick(&transports),
            origin: *rng.pick(&origins),
            job: rng.pick(&jobs).map(Into::into),
            capability: rng.pick(&caps).map(Into::into),
            server_name: rng.pick(&names).map(Into::into),
            status: *rng.pick(&statuses),
            health_status: *rng.pick(&healths),
        });
    }
    let mut nonempty = 0;
    for f in &filters {
        let sel = model.servers(f).unwrap();
        nonempty += usize::from(!sel.is_empty());
        assert_eq!(
            text(&sel.into_json()),
            text(&reader.servers_json(f).unwrap()),
            "{f:?}"
        );
    }
    assert!(
        nonempty > filters.len() / 4,
        "{nonempty} of {} filters matched something",
        filters.len()
    );
    // Streamed in chunks, the document is the same bytes, whatever the chunk size.
    for status in [StatusFilter::Active, StatusFilter::All] {
        let f = ServerFilter {
            status,
            ..ServerFilter::default()
        };
        let whole = model.servers(&f).unwrap().into_json();
        for chunk in [1, 700, 4096, 1 << 20] {
            let parts: Vec<Vec<u8>> = model.servers(&f).unwrap().into_chunks(chunk).collect();
            assert!(
                chunk > whole.len() || parts.len() > 1,
                "{chunk}: {} parts",
                parts.len()
            );
            assert_eq!(text(&parts.concat()), text(&whole), "chunks of {chunk}");
        }
    }
    let none = ServerFilter {
        job: Some("nope".into()),
        ..ServerFilter::default()
    };
    let empty: Vec<Vec<u8>> = model.servers(&none).unwrap().into_chunks(10).collect();
    assert_eq!(
        text(&empty.concat()),
        text(&reader.servers_json(&none).unwrap())
    );
    let ids: Vec<String> = recs.iter().map(id_of).collect();
    assert_coherent(model, &reader, &ids, "generated");
    assert!(ids
        .iter()
        .all(|id| matches!(model.server_json(id), Lookup::Found(_))));
    let stats = model.stats();
    assert_eq!(stats.servers, 240);
    assert_eq!(stats.changes_uncached, 0);
    drop(store);
    handle.wait().await.unwrap();
}

#[tokio::test]
async fn every_write_is_visible_in_the_model_before_its_caller_hears_of_it() {
    let dir = TempDir::new("model-coherence");
    let (store, handle) = open(&dir.db(), 2);
    let reader = Reader::open(dir.db()).unwrap();
    let model = store.read_model().clone();
    let a = mcp("10.0.0.1", 8000, vec![tool("echo", "1")]);
    let b = mcp("10.0.0.2", 8000, vec![tool("get_time", "2")]);
    let c = mcp("10.0.0.3", 8000, vec![tool("echo", "3")]);
    let mut ids: Vec<String> = [&a, &b, &c].iter().map(|r| id_of(r)).collect();
    ids.push("no-such-server-1".into());
    assert_coherent(&model, &reader, &ids, "empty");

    run(
        &store,
        "lan",
        vec![a.clone(), b.clone(), c.clone()],
        RunEnd::Completed,
    )
    .await;
    assert_coherent(&model, &reader, &ids, "first run");

    // observe: origins and names accumulate, no miss counted.
    let mut a2 = a.clone();
    a2.origins = vec![Origin::Mdns];
    a2.announced_as = vec!["a._mcp._tcp.local.".into()];
    store.observe("mdns", vec![a2]).await.unwrap();
    assert_coherent(&model, &reader, &ids, "observe");
    let echo = ServerFilter {
        capability: Some("echo".into()),
        origin: Some(Origin::Mdns),
        ..ServerFilter::default()
    };
    assert_eq!(model.servers(&echo).unwrap().len(), 1);

    // mark_gone, then a tool change (updated) on another server.
    let gone = store.mark_gone(&ids[1], "mdns goodbye").await.unwrap();
    assert!(!gone.is_empty());
    assert!(text(&match model.server_json(&ids[1]) {
        Lookup::Found(b) => b,
        other => panic!("{other:?}"),
    })
    .contains("\"status\":\"gone\""));
    assert_coherent(&model, &reader, &ids, "mark_gone");
    let mut c2 = c.clone();
    c2.tools = vec![tool("get_time", "9")];
    run(
        &store,
        "lan",
        vec![a.clone(), c2.clone()],
        RunEnd::Completed,
    )
    .await;
    assert_coherent(&model, &reader, &ids, "tools changed");

    // A health check of one server: its JSON and the health filter follow at once.
    let (next, transition) = state::step(
        &HealthState::new(SystemTime::now()),
        &[CheckResult::pass("mcp")],
        &Thresholds::default(),
        SystemTime::now(),
    );
    store
        .record_health(HealthUpdate {
            server_id: ids[0].clone(),
            at: SystemTime::now(),
            results: vec![CheckResult::pass("mcp")],
            health: next.health().clone(),
            transition,
            tools: None,
        })
        .await
        .unwrap();
    assert_coherent(&model, &reader, &ids, "health recorded");
    let healthy = ServerFilter {
        health_status: Some(Status::Healthy),
        ..ServerFilter::default()
    };
    assert_eq!(model.servers(&healthy).unwrap().len(), 1);
    assert_eq!(
        text(&model.servers(&healthy).unwrap().into_json()),
        text(&reader.servers_json(&healthy).unwrap())
    );
    match model.server_json(&ids[0]) {
        Lookup::Found(b) => assert!(text(&b).contains("\"status\":\"healthy\""), "{}", text(&b)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        model
            .servers(&ServerFilter {
                capability: Some("echo".into()),
                ..ServerFilter::default()
            })
            .unwrap()
            .len(),
        1
    );

    // forget the newest row, then a new server takes its rowid (SQLite reuses the largest).
    assert!(!store.forget(&ids[2]).await.unwrap().is_empty());
    assert_eq!(model.server_json(&ids[2]), Lookup::NotFound);
    assert_coherent(&model, &reader, &ids, "forget");
    let d = mcp("10.0.0.4", 8000, vec![tool("echo", "4")]);
    ids.push(id_of(&d));
    run(&store, "lan", vec![a.clone(), d.clone()], RunEnd::Completed).await;
    assert_coherent(&model, &reader, &ids, "rowid reused");
    // and the forgotten one comes back under a new rowid.
    run(
        &store,
        "lan",
        vec![a.clone(), c2.clone(), d.clone()],
        RunEnd::Completed,
    )
    .await;
    assert_coherent(&model, &reader, &ids, "back after forget");

    // A long history is not kept: the by-id answer falls back to SQL.
    for n in 0..40 {
        let mut v = a.clone();
        v.server_version = Some(format!("1.0.{n}-{}", "x".repeat(40)));
        store.observe("mdns", vec![v]).await.unwrap();
    }
    assert_eq!(model.server_json(&ids[0]), Lookup::Uncached);
    assert!(model.stats().changes_uncached >= 1);
    assert_coherent(&model, &reader, &ids, "long history");
    assert!(MAX_CACHED_CHANGES_BYTES < sql_one(&reader, &ids[0]).unwrap().len());

    drop(store);
    handle.wait().await.unwrap();
}

/// Retention (and any write) through the writer's connection with the hook, step by step.
#[test]
fn retention_deletes_follow_into_the_model_and_a_failed_model_reloads() {
    let dir = TempDir::new("model-retention");
    let mut conn = schema::open_writer(&dir.db()).unwrap();
    let model = ReadModel::load(&conn).unwrap();
    let touched = cache::watch(&conn).unwrap();
    let reader = Reader::open(dir.db()).unwrap();
    let at = |s: &str| format!("2026-01-0{s}T00:00:00.000Z");
    let recs = vec![
        mcp("10.0.0.1", 8000, vec![tool("echo", "1")]),
        mcp("10.0.0.2", 8000, vec![tool("echo", "2")]),
        other("10.0.0.9", 8000, Verdict::Http),
    ];
    let ids: Vec<String> = recs[..2].iter().map(id_of).collect();
    let op = Op::Observe {
        job: "lan".into(),
        records: recs.clone(),
        at: at("1"),
    };
    apply::apply(&mut conn, &op, 1).unwrap();
    model.sync(&conn, &touched);
    assert_coherent(&model, &reader, &ids, "observed");
    let gone = Op::MarkGone {
        id: ids[0].clone(),
        reason: "test".into(),
        at: at("2"),
    };
    apply::apply(&mut conn, &gone, 1).unwrap();
    model.sync(&conn, &touched);
    assert_coherent(&model, &reader, &ids, "gone");
    // Everything before day 2 goes: the appeared changes and nothing else; then the gone
    // server too, with its gone change.
    apply::prune(&mut conn, &at("2"), &at("2")).unwrap();
    model.sync(&conn, &touched);
    assert_coherent(&model, &reader, &ids, "changes pruned");
    apply::prune(&mut conn, &at("3"), &at("3")).unwrap();
    model.sync(&conn, &touched);
    assert_eq!(model.server_json(&ids[0]), Lookup::NotFound);
    assert_coherent(&model, &reader, &ids, "gone server pruned");

    // A model that could not be built is not used, and reloads at the next write.
    let unready = ReadModel::unready();
    assert!(unready.servers(&ServerFilter::default()).is_none());
    assert_eq!(unready.server_json(&ids[1]), Lookup::Uncached);
    let again = Op::Observe {
        job: "lan".into(),
        records: recs,
        at: at("4"),
    };
    apply::apply(&mut conn, &again, 1).unwrap();
    unready.sync(&conn, &touched);
    assert_coherent(&unready, &reader, &ids, "reloaded");
}
