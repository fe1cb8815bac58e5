//! The health monitor as a user runs it: the real daemon with a `health:` section, checking
//! real MCP servers from the official SDKs on loopback addresses (127.0.0.0/8 only), which
//! the tests really stop and start again; results read back through the API, the CLI, the
//! metrics and the SQLite file, across a `kill -9` and a restart.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::daemon::{free_port, get_json, http, job, write_config, Daemon, Scratch};
use common::{require_peers, start_peers};
use serde_json::Value;

/// Checks every 2 s; two failures make a server unhealthy, two passes bring it back.
const FAST_HEALTH: &str =
    "health:\n  interval: 2s\n  timeout: 2s\n  unhealthy_threshold: 2\n  healthy_threshold: 2\n";

fn server<'a>(list: &'a Value, ip: &str) -> &'a Value {
    list["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ip"] == ip)
        .unwrap_or_else(|| panic!("no server on {ip}: {list}"))
}

fn status_of(d: &Daemon, id: &str) -> String {
    let (_, v) = d.get_json(&format!("/api/v1/servers/{id}"));
    v["health"]["status"].as_str().unwrap_or("none").to_owned()
}

fn wait_status(d: &Daemon, id: &str, want: &str, limit: Duration) -> Value {
    d.wait_for(&format!("/api/v1/servers/{id}"), limit, |v| {
        v["health"]["status"] == want
    })
}

#[test]
fn checks_real_servers_follows_one_down_and_back_and_keeps_health_across_kill_9() {
    if !require_peers("checks_real_servers") {
        return;
    }
    let dir = Scratch::new("health");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut peers = start_peers(&[
        ("py1-streamable", "127.0.0.161", 8000),
        ("ts-streamable", "127.0.0.162", 8000),
    ]);
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.161-162", "1h"), FAST_HEALTH);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let v = d.wait_for(
        "/api/v1/servers?health_status=healthy",
        Duration::from_secs(60),
        |v| v["count"] == 2,
    );
    let py1 = server(&v, "127.0.0.161");
    let id = py1["id"].as_str().unwrap().to_owned();
    let h = &py1["health"];
    assert_eq!(h["status"], "healthy", "{h}");
    assert_eq!(h["flapping"], false);
    assert_eq!(h["consecutive_failures"], 0);
    assert!(h["consecutive_successes"].as_u64().unwrap() >= 1, "{h}");
    assert!(h["latency_ms"].as_f64().unwrap() > 0.0, "{h}");
    assert!(h["last_check_at"].as_str().unwrap().ends_with('Z'), "{h}");
    let checks = h["checks"].as_array().unwrap();
    assert_eq!(checks[0]["name"], "mcp", "{h}");
    assert_eq!(checks[0]["ok"], true, "{h}");
    for w in ["1h", "24h", "7d", "30d"] {
        let u = py1["uptime"][w]
            .as_f64()
            .unwrap_or_else(|| panic!("uptime {w}: {py1}"));
        assert!((0.99..=1.0).contains(&u), "uptime {w} = {u}");
    }
    // The renamed field: MCP Mesh health endpoints are `health_endpoints`.
    assert!(py1["health_endpoints"].is_array(), "{py1}");

    // Each result is kept.
    let (code, c) = get_json(addr, &format!("/api/v1/servers/{id}/checks?check=mcp"));
    assert_eq!(code, 200, "{c}");
    let rows = c["checks"].as_array().unwrap();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r["check"] == "mcp"),
        "{c}"
    );
    assert!(rows.iter().all(|r| r["ok"] == true), "{c}");
    assert!(rows[0]["latency_ms"].as_f64().unwrap() > 0.0, "{c}");
    let (code, e) = get_json(addr, "/api/v1/servers?health_status=poorly");
    assert_eq!(code, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("healthy, degraded, unhealthy"),
        "{e}"
    );

    // The py1 server stops: unhealthy after two failed checks, with the reason.
    drop(peers.remove(0));
    let s = wait_status(&d, &id, "unhealthy", Duration::from_secs(30));
    let reason = s["health"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("mcp: "), "{reason}");
    assert_eq!(s["status"], "active", "unhealthy is not gone: {s}");
    let (_, feed) = get_json(addr, "/api/v1/changes?since=0&limit=1000");
    let moves: Vec<(String, String)> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "health_changed" && c["server_id"] == id.as_str())
        .map(|c| {
            (
                c["detail"]["from"].as_str().unwrap().to_owned(),
                c["detail"]["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            ("unknown".to_owned(), "healthy".to_owned()),
            ("healthy".to_owned(), "unhealthy".to_owned())
        ],
        "{feed}"
    );
    // The CLI filters on health, from the file and through the API.
    let db = dir.path("inventory.db").display().to_string();
    let api = format!("http://{addr}");
    for src in [["--db", db.as_str()], ["--api", api.as_str()]] {
        let out = common::scout(&[
            "servers",
            "--health-status",
            "unhealthy",
            "-o",
            "json",
            src[0],
            src[1],
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["count"], 1, "{src:?}: {v}");
        assert_eq!(v["servers"][0]["id"], id.as_str());
    }

    // Metrics: one up series per server, the check counters, checks in flight.
    let (_, text) = http(addr, "GET", "/metrics", &[], "");
    assert!(
        text.contains(&format!(
            "mcp_scout_server_health{{server_id=\"{id}\",status=\"unhealthy\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("mcp_scout_server_up{{server_id=\"{id}\",")),
        "{text}"
    );
    assert!(
        text.contains("mcp_scout_check_runs_total{check=\"mcp\",result=\"fail\"}"),
        "{text}"
    );
    assert!(
        text.contains("mcp_scout_check_duration_seconds_count{check=\"mcp\"}"),
        "{text}"
    );
    assert!(text.contains("mcp_scout_checks_in_flight "));

    // Back up: two passes in a row.
    peers.extend(start_peers(&[("py1-streamable", "127.0.0.161", 8000)]));
    let s = wait_status(&d, &id, "healthy", Duration::from_secs(30));
    assert!(
        s["health"]["reason"]
            .as_str()
            .unwrap()
            .contains("recovered"),
        "{s}"
    );

    // kill -9 and restart: the health the store kept is served before any new check.
    d.kill9();
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    let (_, s) = d.get_json(&format!("/api/v1/servers/{id}"));
    assert_eq!(s["health"]["status"], "healthy", "{s}");
    assert_eq!(
        common::daemon::sqlite(&dir.path("inventory.db"), "PRAGMA integrity_check"),
        "ok"
    );
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn an_auth_wall_is_up_until_configured_credentials_are_rejected() {
    if !require_peers("an_auth_wall_is_up") {
        return;
    }
    let dir = Scratch::new("health-auth");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _peers = start_peers(&[
        ("py1-auth", "127.0.0.163", 8000),
        ("py1-auth", "127.0.0.164", 8000),
    ]);
    // The server on .84 is checked with a token it accepts, the one on .83 with a bad one.
    let health = format!(
        "{FAST_HEALTH}  credentials:\n    - match: {{ url: \"http://127.0.0.164:8000/*\" }}\n      bearer: scout-test-token\n    - match: {{ url: \"http://127.0.0.163:8000/*\" }}\n      bearer: wrong-token\n"
    );
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.163-164", "1h"), &health);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(60), |v| {
        v["count"] == 2
    });
    let bad = server(&v, "127.0.0.163")["id"].as_str().unwrap().to_owned();
    let good = server(&v, "127.0.0.164")["id"].as_str().unwrap().to_owned();
    assert_eq!(server(&v, "127.0.0.164")["kind"], "mcp-auth-required");
    let s = wait_status(&d, &bad, "unhealthy", Duration::from_secs(30));
    assert!(
        s["health"]["reason"]
            .as_str()
            .unwrap()
            .contains("credentials rejected"),
        "{s}"
    );
    let s = wait_status(&d, &good, "healthy", Duration::from_secs(30));
    assert_eq!(s["health"]["checks"][0]["ok"], true, "{s}");
    assert_eq!(status_of(&d, &good), "healthy");
    drop(d);
}

#[test]
fn without_credentials_the_same_auth_challenge_means_up() {
    if !require_peers("without_credentials_the_same_auth_challenge") {
        return;
    }
    let dir = Scratch::new("health-auth-none");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut peers = start_peers(&[("py1-auth", "127.0.0.165", 8000)]);
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.165", "1h"), FAST_HEALTH);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let v = d.wait_for(
        "/api/v1/servers?health_status=healthy",
        Duration::from_secs(60),
        |v| v["count"] == 1,
    );
    let s = &v["servers"][0];
    let id = s["id"].as_str().unwrap().to_owned();
    let msg = s["health"]["checks"][0]["message"].as_str().unwrap();
    assert!(msg.contains("auth: required"), "{s}");
    drop(peers.remove(0));
    wait_status(&d, &id, "unhealthy", Duration::from_secs(30));
    drop(d);
}

#[test]
fn a_controllable_server_degrades_drifts_fails_and_recovers_as_its_checks_say() {
    if !require_peers("a_controllable_server_degrades_drifts_fails_and_recovers") {
        return;
    }
    let dir = Scratch::new("health-control");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let peer: SocketAddr = "127.0.0.166:8000".parse().unwrap();
    let _peers = start_peers(&[("py1-control", "127.0.0.166", 8000)]);
    let control = |mode: &str| {
        let (code, body) = http(peer, "POST", &format!("/control/{mode}"), &[], "");
        assert_eq!(code, 200, "{mode}: {body}");
    };
    // A critical tool call and a warning check of the server's /health.
    let health = format!(
        "{FAST_HEALTH}  checks:\n    - name: echo\n      match: {{ tool: echo }}\n      mcp_call: {{ tool: echo, arguments: {{ text: hi }} }}\n    - name: health-endpoint\n      match: {{ tool: echo }}\n      http: {{ path: /health }}\n      severity: warning\n"
    );
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.166", "1h"), &health);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let v = d.wait_for(
        "/api/v1/servers?health_status=healthy",
        Duration::from_secs(60),
        |v| v["count"] == 1,
    );
    let id = v["servers"][0]["id"].as_str().unwrap().to_owned();
    let names: Vec<&str> = v["servers"][0]["health"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mcp", "echo", "health-endpoint"], "{v}");

    // A failing warning check: degraded, naming it.
    control("health-503");
    let s = wait_status(&d, &id, "degraded", Duration::from_secs(30));
    assert!(
        s["health"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("health-endpoint"),
        "{s}"
    );
    control("health-200");
    wait_status(&d, &id, "healthy", Duration::from_secs(30));

    // A deploy drops a tool: an `updated` change naming it (tool drift).
    control("drop-tool");
    let feed = d.wait_for(
        "/api/v1/changes?since=0&limit=1000",
        Duration::from_secs(30),
        |f| {
            f["changes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["kind"] == "updated" && c["detail"]["tools"]["removed"].is_array())
        },
    );
    let drift = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "updated")
        .unwrap();
    let removed: Vec<&str> = drift["detail"]["tools"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["get_status"], "{drift}");
    let (_, s) = d.get_json(&format!("/api/v1/servers/{id}"));
    assert_eq!(s["tools"].as_array().unwrap().len(), 1, "{s}");

    // Its tool starts returning isError: the critical check fails, unhealthy after two.
    control("fail");
    let s = wait_status(&d, &id, "unhealthy", Duration::from_secs(30));
    assert!(
        s["health"]["reason"].as_str().unwrap().starts_with("echo"),
        "{s}"
    );
    control("ok");
    wait_status(&d, &id, "healthy", Duration::from_secs(30));

    // It hangs: each check costs one timeout, and it goes unhealthy.
    control("hang");
    let s = wait_status(&d, &id, "unhealthy", Duration::from_secs(30));
    assert!(
        s["health"]["reason"].as_str().unwrap().contains("mcp"),
        "{s}"
    );
    // The built-in check never called a tool: every call was the echo check's.
    let (_, stats) = get_json(peer, "/control/stats");
    let (_, rows) = get_json(
        addr,
        &format!("/api/v1/servers/{id}/checks?check=echo&limit=10000"),
    );
    let calls = stats["tools_call"].as_u64().unwrap();
    let echo_runs = rows["count"].as_u64().unwrap();
    assert!(
        calls <= echo_runs + 1,
        "{calls} tools/call for {echo_runs} echo checks: {stats}"
    );
    drop(d);
}
