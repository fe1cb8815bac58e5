//! The `mcp-mesh` sink as a user runs it: the real daemon feeding the real MCP Mesh registry
//! (npm `@mcpmesh/cli-linux-x64` 3.7.1, `scripts/peers/run.sh mesh-registry`) with real MCP
//! servers from the official SDKs, on 127.0.0.171-179 only. Everything is asserted on the
//! registry's own view (`GET /agents`): listed with the tools, kept healthy by heartbeats
//! past the registry's 20 s expiry, re-registered after a 410, deregistered when unhealthy or
//! gone, nothing doubled across a `kill -9`, everything back after the registry restarts
//! with an empty database; a server without tools is skipped and counted; registries that
//! answer HTML, a 50 MiB body or nothing are bounded and logged while the daemon and the
//! real sink carry on. One registry and one test function with steps, to keep the wall time
//! small; the long-running figures are in scripts/bench-sinks.sh.

mod common;

use common::wait_until;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::{auth, free_port, write_config, Daemon, Scratch};
use common::{must_run_all, peers_dir, require_peers, start_peers, Reaped};
use serde_json::Value;

const REGISTRY: &str = "127.0.0.171:18000";
/// py1-streamable: tools get_forecast + add, path /mcp.
const IP_STREAMABLE: &str = "127.0.0.172";
/// py1-control, started in `no-tools` mode.
const IP_CONTROL: &str = "127.0.0.173";
/// py1-sse: path /sse, so listed with a warning.
const IP_SSE: &str = "127.0.0.174";
const HTML: &str = "127.0.0.175";
const HUGE: &str = "127.0.0.176";
const HANG: &str = "127.0.0.177";
const DECOY_PORT: u16 = 18000;

/// Longest wait for anything the sink does (a heartbeat is 2 s, a back-off at most 2 s).
const SOON: Duration = Duration::from_secs(30);

fn registry_addr() -> SocketAddr {
    REGISTRY.parse().unwrap()
}

/// One HTTP/1.0 request (no chunked answers) to `addr`: (status, body).
fn http10(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (code, body)
}

/// The registry's agents (`GET /agents?query`), by id.
fn agents(query: &str) -> Vec<Value> {
    let (code, body) = http10(registry_addr(), "GET", &format!("/agents{query}"), "");
    if code != 200 {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["agents"].as_array().cloned().unwrap_or_default()
}

fn healthy_ids() -> BTreeSet<String> {
    agents("?status=healthy")
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

fn agent(id: &str) -> Option<Value> {
    agents("").into_iter().find(|a| a["id"] == id)
}

/// Poll `cond` every 100 ms until it holds, at most `limit`; panics with `what`.
fn server_id(d: &Daemon, ip: &str) -> String {
    let v = d.wait_for("/api/v1/servers", SOON, |v| {
        v["servers"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["ip"] == ip))
    });
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == ip)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sink_status(d: &Daemon, name: &str) -> Value {
    let (_, v) = d.get_json("/api/v1/sinks");
    v["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

fn metrics(d: &Daemon) -> String {
    d.http("GET", "/metrics", &[], "").1
}

fn start_registry() -> Reaped {
    start_peers(&[("mesh-registry", "127.0.0.171", 18000)])
        .pop()
        .unwrap()
}

/// SIGTERM, so the registry peer removes its data directory (the restart is empty).
fn stop_gracefully(mut peer: Reaped) {
    let _ = Command::new("kill")
        .args(["-TERM", &peer.0.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if peer.0.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config(dir: &Scratch, port: u16) -> std::path::PathBuf {
    let jobs = format!(
        "  - name: lo\n    targets: [{IP_STREAMABLE}-{}]\n    ports: \"8000\"\n    interval: 1h\n    jitter: 0%\n",
        IP_SSE.rsplit('.').next().unwrap()
    );
    let decoy = |name: &str, ip: &str| {
        format!(
            "  - name: {name}\n    type: mcp-mesh\n    url: http://{ip}:{DECOY_PORT}\n    timeout: 2s\n    retry: {{initial: 500ms, max: 2s}}\n"
        )
    };
    let extra = format!(
        "health:\n  interval: 2s\n  timeout: 2s\n  unhealthy_threshold: 2\n  healthy_threshold: 2\n\
         sinks:\n  - name: mesh\n    type: mcp-mesh\n    url: http://{REGISTRY}\n    heartbeat: 2s\n    resync: 10s\n    timeout: 3s\n    retry: {{initial: 200ms, max: 2s}}\n{}{}{}",
        decoy("html", HTML),
        decoy("huge", HUGE),
        decoy("hang", HANG)
    );
    write_config(dir, port, &jobs, &extra)
}

/// A run of `lo` after the one the daemon starts with has ended.
fn run_now(d: &Daemon) {
    d.wait_for("/api/v1/runs?job=lo&limit=100", SOON, |v| {
        v["runs"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["status"] != "running"))
    });
    d.run_now("lo");
}

#[test]
fn mesh_registry_follows_the_inventory_through_heartbeats_outages_kill_9_and_bad_registries() {
    if !require_peers("sink_mesh") {
        return;
    }
    let mesh_bin = peers_dir().join("mesh/package/bin/mcp-mesh-registry");
    if !mesh_bin.exists() {
        assert!(
            !must_run_all(),
            "sink_mesh: {} missing; run scripts/peers/setup.sh",
            mesh_bin.display()
        );
        eprintln!(
            "SKIPPED sink_mesh: the MCP Mesh registry is not installed (scripts/peers/setup.sh)"
        );
        return;
    }
    let t0 = Instant::now();
    let mut registry = Some(start_registry());
    let mut peers = start_peers(&[
        ("py1-streamable", IP_STREAMABLE, 8000),
        ("py1-control", IP_CONTROL, 8000),
        ("py1-sse", IP_SSE, 8000),
        ("registry-html", HTML, DECOY_PORT),
        ("registry-huge", HUGE, DECOY_PORT),
        ("registry-hang", HANG, DECOY_PORT),
    ]);
    let control: SocketAddr = format!("{IP_CONTROL}:8000").parse().unwrap();
    assert_eq!(http10(control, "POST", "/control/no-tools", "").0, 200);
    // Someone else's agent, registered once and never heartbeated: the registry's own clock
    // turns it unhealthy, and the sink never touches it.
    let theirs = r#"{"agent_id":"someone-else","name":"someone-else","agent_type":"mcp_agent","runtime":"python","version":"1.0.0","http_host":"127.0.0.171","http_port":9,"namespace":"default","tools":[{"function_name":"theirs","capability":"theirs","description":"","version":"1.0.0","tags":["theirs"]}]}"#;
    let (code, body) = http10(registry_addr(), "POST", "/heartbeat", theirs);
    assert!(code == 200 && body.contains("success"), "{code} {body}");

    let dir = Scratch::new("sink-mesh");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = config(&dir, port);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let id_streamable = server_id(&d, IP_STREAMABLE);
    let id_control = server_id(&d, IP_CONTROL);
    let id_sse = server_id(&d, IP_SSE);

    // 1. Appear: listed by capability, with the endpoint and every tool, tagged ours.
    wait_until("both servers with tools listed healthy", SOON, || {
        let ids = healthy_ids();
        ids.contains(&id_streamable) && ids.contains(&id_sse)
    });
    let registered_at = Instant::now();
    let by_cap = agents("?capabilities=get_forecast&status=healthy");
    let a = by_cap
        .iter()
        .find(|a| a["id"] == id_streamable.as_str())
        .unwrap_or_else(|| panic!("not listed by capability: {by_cap:?}"));
    assert_eq!(a["endpoint"], format!("http://{IP_STREAMABLE}:8000"), "{a}");
    assert_eq!(a["name"], id_streamable.as_str());
    assert_eq!(a["agent_type"], "mcp_agent");
    let caps: BTreeSet<&str> = a["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["tags"], serde_json::json!(["mcp-scout"]), "{c}");
            assert_eq!(c["function_name"], c["name"], "{c}");
            c["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(caps, BTreeSet::from(["add", "get_forecast"]));
    assert!(
        !healthy_ids().contains(&id_control),
        "a server without tools is never registered"
    );

    // 2. Bad registries: each bounded and logged, the daemon ready, the real sink fine.
    wait_until("the decoy sinks report their errors", SOON, || {
        ["html", "huge", "hang"].iter().all(|n| {
            let s = sink_status(&d, n);
            s["state"] != "ok" && s["last_error"].is_string()
        })
    });
    let err = |n: &str| {
        sink_status(&d, n)["last_error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let html = err("html");
    assert!(
        html.contains("not the expected JSON") && html.contains("text/html"),
        "{html}"
    );
    let huge = err("huge");
    assert!(
        huge.contains("cap") || huge.contains("no answer within 2s"),
        "{huge}"
    );
    let hang = err("hang");
    assert!(hang.contains("no answer within 2s"), "{hang}");
    assert_eq!(d.http("GET", "/readyz", &[], "").0, 200);
    let mesh = sink_status(&d, "mesh");
    assert_eq!(mesh["state"], "ok", "{mesh}");
    let logs = d.logs();
    for said in [html.as_str(), hang.as_str()] {
        assert!(logs.contains(said), "not logged: {said}\n{logs}");
    }

    // 3. A 410 (entry gone from the registry behind our back): POSTed again.
    let (code, _) = http10(
        registry_addr(),
        "DELETE",
        &format!("/agents/{id_streamable}"),
        "",
    );
    assert_eq!(code, 204);
    assert!(!healthy_ids().contains(&id_streamable));
    let back = wait_until("re-registered after HEAD answered 410", SOON, || {
        healthy_ids().contains(&id_streamable)
    });
    eprintln!("re-registered {back:?} after a DELETE behind the sink's back");

    // 4. Heartbeats keep it healthy past the registry's 20 s expiry; theirs expires.
    let seen_before = agent(&id_streamable).unwrap()["last_seen"].clone();
    let left = Duration::from_secs(26).saturating_sub(registered_at.elapsed());
    wait_until("26 s of heartbeats", left + SOON, || {
        registered_at.elapsed() >= Duration::from_secs(26)
            && agent("someone-else").is_some_and(|a| a["status"] == "unhealthy")
    });
    let a = agent(&id_streamable).unwrap();
    assert_eq!(a["status"], "healthy", "{a}");
    assert_ne!(a["last_seen"], seen_before, "heartbeats refresh last_seen");
    assert_eq!(agent(&id_sse).unwrap()["status"], "healthy");
    assert_eq!(
        agent("someone-else").unwrap()["status"],
        "unhealthy",
        "the registry's expiry works"
    );
    let m = metrics(&d);
    assert!(
        m.contains("mcp_scout_sink_skipped_servers{sink=\"mesh\",reason=\"no_tools\"} 1"),
        "{m}"
    );
    let heartbeats: u64 = m
        .lines()
        .find(|l| {
            l.starts_with("mcp_scout_sink_requests_total{sink=\"mesh\",request=\"heartbeat\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(heartbeats >= 10, "{m}");
    let warnings = d
        .logs()
        .lines()
        .filter(|l| l.contains("Mesh clients call the endpoint + /mcp, not /sse"))
        .count();
    assert_eq!(
        warnings,
        1,
        "one warning for the /sse server:\n{}",
        d.logs()
    );

    // 5. Unhealthy: the SSE server stops; the monitor says unhealthy, the sink DELETEs.
    drop(peers.remove(2));
    wait_until("the stopped server leaves the healthy list", SOON, || {
        !healthy_ids().contains(&id_sse)
    });
    let (_, s) = d.get_json(&format!("/api/v1/servers/{id_sse}"));
    assert_eq!(s["status"], "active", "{s}");

    // 6. kill -9, a server stops meanwhile: after the restart its removal is delivered,
    //    the other one comes back when it gains tools, and nothing is doubled.
    let before: BTreeSet<String> = agents("")
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    d.kill9();
    drop(peers.remove(0));
    assert_eq!(http10(control, "POST", "/control/ok", "").0, 200);
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    run_now(&d);
    run_now(&d);
    wait_until("gone removed, tools gained listed", SOON, || {
        let ids = healthy_ids();
        !ids.contains(&id_streamable) && ids.contains(&id_control)
    });
    let all = agents("");
    let ids: BTreeSet<&str> = all.iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "an id listed twice: {all:?}");
    let mut expected = before.clone();
    expected.insert(id_control.clone());
    let now: BTreeSet<String> = ids.iter().map(|i| (*i).to_string()).collect();
    assert!(
        now.is_subset(&expected),
        "only the control server is new: {all:?}"
    );
    let ours: BTreeSet<String> = healthy_ids()
        .into_iter()
        .filter(|i| i != "someone-else")
        .collect();
    assert_eq!(ours, BTreeSet::from([id_control.clone()]));

    // 7. The registry restarts with an EMPTY database: the sink registers what is up again.
    stop_gracefully(registry.take().unwrap());
    let _registry = start_registry();
    let restarted = Instant::now();
    assert!(
        agent("someone-else").is_none(),
        "the new registry starts empty"
    );
    wait_until("re-registered in the empty registry", SOON, || {
        healthy_ids() == BTreeSet::from([id_control.clone()])
    });
    eprintln!(
        "registry equals the inventory {:?} after it restarted empty; whole test {:?}",
        restarted.elapsed(),
        t0.elapsed()
    );
    let (code, body) = d.http("GET", "/api/v1/sinks", &[("Authorization", &auth())], "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(sink_status(&d, "mesh")["state"], "ok");
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}
