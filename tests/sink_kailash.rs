//! The `kailash-file` sink as a user runs it: the real daemon with a `sinks:` section finds
//! real MCP servers (py1 streamable HTTP and legacy SSE, on 127.0.0.191-192) and keeps a
//! Kailash registry file; the file is read back with the REAL reader (PyPI kailash-mcp's
//! `FileBasedDiscovery`, scripts/peers/kailash_read.py), which must return every server with
//! the right URL, transport and health and keep a hand-written foreign entry. Then: a server
//! stops (unhealthy, then gone and removed); the file is made non-JSON (never overwritten,
//! the sink says why) while the server comes back, so that change is undelivered when the
//! daemon is killed with -9; after a restart it is delivered, with no duplicate.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{free_port, job, write_config, Daemon, Scratch};
use common::{must_run_all, peers_dir, require_peers, root, start_peers, wait_with_deadline};
use serde_json::{json, Value};

const FAST_HEALTH: &str =
    "health:\n  interval: 2s\n  timeout: 2s\n  unhealthy_threshold: 2\n  healthy_threshold: 1\n";
/// How long the real reader may take on a loaded machine.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// What the real reader sees in `path`.
fn read(path: &Path) -> Value {
    let child = Command::new(peers_dir().join("kailash/bin/python"))
        .arg(root().join("scripts/peers/kailash_read.py"))
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kailash_read.py");
    let out = wait_with_deadline(child, READ_LIMIT);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the real reader rejected {}: {}\n{text}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Read with the real reader until `cond` holds, at most `limit`.
fn wait_read(path: &Path, limit: Duration, d: &Daemon, cond: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if path.exists() {
            let v = read(path);
            if cond(&v) {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "the file never matched within {limit:?}; last {v:#}\n{}",
                d.logs()
            );
        } else {
            assert!(
                start.elapsed() < limit,
                "no file within {limit:?}\n{}",
                d.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn by_url<'a>(v: &'a Value, url: &str) -> Option<&'a Value> {
    v["servers"].as_array()?.iter().find(|s| s["url"] == url)
}

fn ours(v: &Value) -> Vec<&Value> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["metadata"]["source"] == "mcp-scout")
        .collect()
}

const STREAMABLE: &str = "http://127.0.0.191:8000/mcp";
const SSE: &str = "http://127.0.0.192:8000/sse";

#[test]
fn the_real_kailash_reader_sees_our_servers_their_health_and_keeps_a_foreign_entry() {
    if !require_peers("kailash_file") {
        return;
    }
    if !peers_dir().join("kailash/bin/python").exists() {
        assert!(
            !must_run_all(),
            "kailash venv missing: run scripts/peers/setup.sh"
        );
        eprintln!("SKIPPED kailash_file: the kailash venv is missing; run scripts/peers/setup.sh");
        return;
    }
    let dir = Scratch::new("sink-kailash");
    let file = dir.path("registry/servers.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // Someone else's entry, hand-written with the 16 keys.
    let foreign = json!({"servers": {"ops-files": {
        "name": "ops-files", "transport": "stdio", "capabilities": ["read_file"],
        "metadata": {"owner": "ops"}, "id": "ops-files", "endpoint": "", "command": "mcp-files",
        "args": ["--root", "/srv"], "url": null, "health_endpoint": null, "health_status": "unknown",
        "health": null, "last_seen": 1796185000.0, "response_time": null, "version": "1.0.0",
        "auth_required": false}}, "last_updated": 1796185000.0, "version": "1.0"});
    std::fs::write(&file, serde_json::to_vec_pretty(&foreign).unwrap()).unwrap();

    let mut peers = start_peers(&[
        ("py1-streamable", "127.0.0.191", 8000),
        ("py1-sse", "127.0.0.192", 8000),
    ]);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sinks = format!(
        "sinks:\n  - name: kf\n    type: kailash-file\n    path: {}\n    refresh: 2s\n    retry: {{initial: 200ms, max: 1s}}\n{FAST_HEALTH}",
        file.display()
    );
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.191-192", "1h"), &sinks);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);

    // Both servers appear, healthy, with the right URL and transport; the foreign entry stays.
    let v = wait_read(&file, Duration::from_secs(60), &d, |v| {
        [STREAMABLE, SSE]
            .iter()
            .all(|u| by_url(v, u).is_some_and(|s| s["is_healthy"] == true))
    });
    assert_eq!(v["count"], 3, "{v:#}");
    assert_eq!(v["names_unique"], true, "{v:#}");
    let s = by_url(&v, STREAMABLE).unwrap();
    assert_eq!(s["transport"], "http");
    assert_eq!(s["endpoint"], STREAMABLE);
    assert_eq!(s["health_status"], "healthy");
    assert_eq!(s["capabilities"], json!(["get_forecast", "add"]), "{s}");
    assert_eq!(s["metadata"]["kind"], "mcp");
    let e = by_url(&v, SSE).unwrap();
    assert_eq!(e["transport"], "sse");
    assert_eq!(e["health_status"], "healthy");
    let f = v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "ops-files")
        .expect("the foreign entry is kept");
    assert_eq!(f["command"], "mcp-files");
    assert_eq!(f["args"], json!(["--root", "/srv"]));
    let healthy: Vec<&str> = v["healthy_only"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(healthy.len(), 2, "{v:#}");
    // last_seen is refreshed (every 2 s here) while the servers are up.
    let seen = s["last_seen"].as_f64().unwrap();
    wait_read(&file, Duration::from_secs(20), &d, |v| {
        by_url(v, STREAMABLE).is_some_and(|s| s["last_seen"].as_f64().unwrap() > seen)
    });

    // The SSE server stops: unhealthy in the file, then gone after two runs and removed.
    drop(peers.remove(1));
    let v = wait_read(&file, Duration::from_secs(40), &d, |v| {
        by_url(v, SSE).is_some_and(|s| s["health_status"] == "unhealthy")
    });
    assert_eq!(by_url(&v, SSE).unwrap()["is_healthy"], false);
    assert_eq!(by_url(&v, STREAMABLE).unwrap()["is_healthy"], true);
    d.run_now("lo");
    d.run_now("lo");
    let v = wait_read(&file, Duration::from_secs(30), &d, |v| {
        by_url(v, SSE).is_none()
    });
    assert_eq!(v["count"], 2, "{v:#}");

    // A file that is not JSON is left as it is, and the sink says why. Meanwhile the SSE
    // server comes back (a change the sink cannot deliver) and the daemon is killed with -9.
    std::fs::write(&file, b"{ this is not json").unwrap();
    let st = d.wait_for("/api/v1/sinks", Duration::from_secs(30), |v| {
        v["sinks"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("is not a registry file (not JSON"))
    });
    let err = st["sinks"][0]["last_error"].as_str().unwrap();
    assert!(err.contains("servers.json"), "{err}");
    assert_ne!(st["sinks"][0]["state"], "ok", "{st}");
    peers.extend(start_peers(&[("py1-sse", "127.0.0.192", 8000)]));
    d.run_now("lo");
    d.wait_for("/api/v1/sinks", Duration::from_secs(30), |v| {
        v["sinks"][0]["queue_depth"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(std::fs::read(&file).unwrap(), b"{ this is not json");
    d.kill9();

    // Someone puts their file back (their entry only). A new daemon on the same store
    // delivers what was pending: ours once each, theirs kept.
    std::fs::write(&file, serde_json::to_vec_pretty(&foreign).unwrap()).unwrap();
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    let v = wait_read(&file, Duration::from_secs(60), &d, |v| {
        by_url(v, SSE).is_some_and(|s| s["is_healthy"] == true) && by_url(v, STREAMABLE).is_some()
    });
    assert_eq!(v["count"], 3, "{v:#}");
    assert_eq!(v["file_entries"], 3, "{v:#}");
    assert_eq!(v["names_unique"], true, "{v:#}");
    assert_eq!(ours(&v).len(), 2, "{v:#}");
    d.wait_for("/api/v1/sinks", Duration::from_secs(10), |v| {
        v["sinks"][0]["state"] == "ok" && v["sinks"][0]["queue_depth"] == 0
    });
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}
