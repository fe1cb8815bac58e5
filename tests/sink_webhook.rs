//! The `webhook` sink as a user runs it: the real daemon sending CloudEvents to the
//! HMAC-verifying receiver peer (`scripts/peers/run.sh webhook-receiver`) for the changes a
//! real MCP server (the FastMCP 1.x peer) makes as it appears, goes and comes back; what the
//! receiver got (`GET /received`) is compared with the daemon's own change feed. Everything
//! on 127.0.0.186-189.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::daemon::{free_port, get_json, http, job, write_config, Daemon, Scratch};
use common::{require_peers, start_peers, start_peers_with};
use serde_json::Value;

const SECRET: &str = "hook-5ecret-hmac-key";
const HOOK: &str = "127.0.0.186:9000";
const SLOW: &str = "127.0.0.187:9000";
const MCP_IP: &str = "127.0.0.188";

fn addr(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

/// What the receiver at `at` recorded.
fn received(at: &str) -> Vec<Value> {
    let (code, v) = get_json(addr(at), "/received");
    assert_eq!(code, 200, "{v}");
    v.as_array().unwrap().clone()
}

fn control(at: &str, mode: &str) {
    let (code, body) = http(addr(at), "POST", &format!("/control/{mode}"), &[], "");
    assert_eq!(code, 200, "{mode}: {body}");
}

/// The event ids (seqs) the receiver answered with `status`, in arrival order.
fn ids_answered(recs: &[Value], status: u64) -> Vec<i64> {
    recs.iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["body"]["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Wait until `cond` holds on what the receiver at `at` recorded, at most `limit`.
fn wait_received(
    d: &Daemon,
    at: &str,
    limit: Duration,
    cond: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let r = received(at);
        if cond(&r) {
            return r;
        }
        assert!(
            start.elapsed() < limit,
            "the receiver never matched within {limit:?}: {}\n{}",
            serde_json::to_string(&r).unwrap(),
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every change seq of the daemon's feed.
fn change_seqs(d: &Daemon) -> Vec<i64> {
    let (_, v) = d.get_json("/api/v1/changes?since=0&limit=1000");
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect()
}

fn hook_sink(d: &Daemon) -> Value {
    let (_, v) = d.get_json("/api/v1/sinks");
    v["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "hook")
        .unwrap()
        .clone()
}

/// Go (two runs: gone_after 2) after stopping the server.
fn two_runs(d: &Daemon) {
    d.run_once_more("lo");
    d.run_once_more("lo");
}

#[test]
fn events_are_signed_ordered_retried_dead_lettered_and_survive_kill_9() {
    if !require_peers("sink_webhook") {
        return;
    }
    let dir = Scratch::new("sink-webhook");
    let hook_ip = HOOK.split(':').next().unwrap();
    let slow_ip = SLOW.split(':').next().unwrap();
    let _receivers = start_peers_with(&[
        ("webhook-receiver", hook_ip, 9000, &["--secret", SECRET]),
        ("webhook-receiver", slow_ip, 9000, &["--secret", SECRET]),
    ]);
    control(SLOW, "slow?ms=10000");
    let mut mcp = Some(start_peers(&[("py1-streamable", MCP_IP, 8000)]));
    let files = dir.path("server-json");
    let port = free_port();
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sinks = format!(
        "sinks:\n  - name: hook\n    type: webhook\n    url: http://{HOOK}/events\n    secret: {SECRET}\n    headers: {{x-team: net}}\n    timeout: 3s\n    retry: {{initial: 200ms, max: 1s}}\n  - name: slow\n    type: webhook\n    url: http://{SLOW}/events\n    secret: {SECRET}\n    timeout: 15s\n  - name: files\n    type: server-json\n    dir: {}\n",
        files.display()
    );
    let cfg = write_config(&dir, port, &job("lo", MCP_IP, "1h"), &sinks);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), api);
    d.run_once_more("lo");

    // 1. The appeared event arrives, well-formed and signed, with the extra header.
    let recs = wait_received(&d, HOOK, Duration::from_secs(20), |r| !r.is_empty());
    let started = Instant::now();
    let e = &recs[0];
    assert_eq!(e["problems"], Value::Array(vec![]), "{e}");
    assert_eq!(e["verified"], true, "{e}");
    assert_eq!(e["headers"]["x-team"], "net", "{e}");
    assert_eq!(
        e["headers"]["content-type"], "application/cloudevents+json",
        "{e}"
    );
    let body = &e["body"];
    assert_eq!(body["specversion"], "1.0");
    assert_eq!(body["type"], "io.mcp-scout.server.appeared", "{body}");
    assert_eq!(body["datacontenttype"], "application/json");
    assert!(
        body["source"].as_str().unwrap().starts_with("mcp-scout/"),
        "{body}"
    );
    let id = body["subject"].as_str().unwrap().to_string();
    assert_eq!(body["data"]["id"], id.as_str());
    assert_eq!(body["data"]["url"], format!("http://{MCP_IP}:8000/mcp"));
    assert_eq!(body["data"]["change"]["kind"], "appeared");
    assert_eq!(body["data"]["change"]["detail"]["reason"], "new", "{body}");
    assert_eq!(
        change_seqs(&d),
        vec![body["id"].as_str().unwrap().parse::<i64>().unwrap()]
    );
    // The slow receiver (10 s per request) holds only its own sink: server.json is current.
    let file = files.join(format!("{id}.server.json"));
    let start = Instant::now();
    while !file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no {}: {}",
            file.display(),
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "server.json waited on the slow sink"
    );

    // 2. The receiver fails for a while: retried, then all delivered in order, no gap.
    control(HOOK, "fail");
    drop(mcp.take());
    two_runs(&d);
    wait_received(&d, HOOK, Duration::from_secs(20), |r| {
        r.iter().filter(|x| x["status"] == 500).count() >= 3
    });
    assert_ne!(hook_sink(&d)["state"], "ok");
    control(HOOK, "ok");
    let all = change_seqs(&d);
    assert!(all.len() >= 2, "{all:?}");
    let recs = wait_received(&d, HOOK, Duration::from_secs(20), |r| {
        ids_answered(r, 200).last() == all.last()
    });
    let ok = ids_answered(&recs, 200);
    assert_eq!(
        ok, all,
        "delivered in seq order, none missing, none doubled"
    );
    let kinds: Vec<&str> = recs
        .iter()
        .filter(|r| r["status"] == 200)
        .map(|r| r["body"]["type"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"io.mcp-scout.server.gone"), "{kinds:?}");
    assert!(recs
        .iter()
        .all(|r| r["verified"] == true && r["problems"] == Value::Array(vec![])));

    // 2b. A receiver that never answers costs one timeout (3 s) per try, then a retry.
    control(HOOK, "hang");
    mcp = Some(start_peers(&[("py1-streamable", MCP_IP, 8000)]));
    d.run_once_more("lo");
    let start = Instant::now();
    loop {
        let s = hook_sink(&d);
        if s["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within") || e.contains("timed out"))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no timeout: {s}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    control(HOOK, "ok");
    let appeared = *change_seqs(&d).last().unwrap();
    wait_received(&d, HOOK, Duration::from_secs(20), |r| {
        ids_answered(r, 200).contains(&appeared)
    });
    drop(mcp.take());
    two_runs(&d);

    // 3. 422: a dead letter per refused event, shown in /api/v1/sinks; the sink moves on.
    control(HOOK, "status?code=422");
    mcp = Some(start_peers(&[("py1-streamable", MCP_IP, 8000)]));
    d.run_once_more("lo");
    let back = *change_seqs(&d).last().unwrap();
    let start = Instant::now();
    let s = loop {
        let s = hook_sink(&d);
        if s["dead_letter_count"].as_u64().unwrap_or(0) >= 1 {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no dead letter: {s}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let letters = s["dead_letters"].as_array().unwrap();
    assert!(letters.iter().any(|l| l["seq"] == back), "{s}");
    assert!(letters.iter().all(|l| l["status"] == 422), "{s}");
    let dead: BTreeSet<i64> = letters.iter().map(|l| l["seq"].as_i64().unwrap()).collect();

    // 4. kill -9 with undelivered events (the receiver failing): after a restart every
    // event is delivered (at least once), none missing.
    control(HOOK, "fail");
    drop(mcp.take());
    two_runs(&d);
    let last = *change_seqs(&d).last().unwrap();
    assert!(last > back);
    wait_received(&d, HOOK, Duration::from_secs(20), |r| {
        r.iter().any(|x| {
            x["status"] == 500 && x["body"]["id"].as_str().unwrap().parse::<i64>().unwrap() > back
        })
    });
    d.kill9();
    control(HOOK, "ok");
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), api);
    let all = change_seqs(&d);
    let recs = wait_received(&d, HOOK, Duration::from_secs(30), |r| {
        let ok: BTreeSet<i64> = ids_answered(r, 200).into_iter().collect();
        all.iter().all(|s| ok.contains(s) || dead.contains(s))
    });
    let ok = ids_answered(&recs, 200);
    let mut sorted = ok.clone();
    sorted.sort_unstable();
    assert_eq!(ok, sorted, "in seq order even across the restart: {ok:?}");
    assert!(
        recs.iter().all(|r| r["verified"] == true),
        "every event signed"
    );

    // 4b. A server forgotten (deleted from the inventory) has no record left: its gone
    // event carries the id, `status: gone` and the change.
    let _mcp = start_peers(&[("py1-streamable", MCP_IP, 8000)]);
    d.run_once_more("lo");
    let (code, body) = d.http(
        "DELETE",
        &format!("/api/v1/servers/{id}"),
        &[("Authorization", &common::daemon::auth())],
        "",
    );
    assert_eq!(code, 200, "{body}");
    let forgot: Value = serde_json::from_str(&body).unwrap();
    let gone_seq = forgot["change"]["seq"].as_i64().unwrap();
    let recs = wait_received(&d, HOOK, Duration::from_secs(20), |r| {
        ids_answered(r, 200).contains(&gone_seq)
    });
    let e = recs
        .iter()
        .rev()
        .find(|r| {
            r["status"] == 200 && r["body"]["id"].as_str() == Some(gone_seq.to_string().as_str())
        })
        .unwrap();
    assert_eq!(e["body"]["type"], "io.mcp-scout.server.gone", "{e}");
    assert_eq!(e["body"]["data"]["id"], id.as_str(), "{e}");
    assert_eq!(e["body"]["data"]["status"], "gone", "{e}");
    assert_eq!(e["body"]["data"]["change"]["kind"], "gone", "{e}");
    assert!(e["body"]["data"]["url"].is_null(), "{e}");

    // 5. The secret is never shown.
    let out = common::scout(&["config", "check", cfg.to_str().unwrap(), "--print"]);
    let printed = common::stdout(&out);
    assert!(printed.contains("secret"), "{printed}");
    assert!(!printed.contains(SECRET), "{printed}");
    d.stop();
    for log in ["daemon.log", "daemon2.log"] {
        let text = std::fs::read_to_string(dir.path(log)).unwrap();
        assert!(!text.contains(SECRET), "{log}: {text}");
    }
}
