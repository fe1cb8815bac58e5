//! The daemon as a user runs it: the real binary with a real config file, waited on through
//! `/readyz` (never a fixed sleep), driven through its API and signals, killed with `-9`,
//! restarted, and its SQLite file read back. It scans real MCP servers from the official SDKs
//! on loopback addresses (127.0.0.0/8 only).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{
    auth, free_port, get_json, http, job, slow_job, sqlite, write_config, Daemon, Scratch,
};
use common::{require_peers, root, start_peers, wait_with_deadline};
use serde_json::Value;

#[test]
fn finds_stores_and_serves_real_mcp_servers_then_notices_them_go_and_come_back() {
    if !require_peers("finds_stores_and_serves_real_mcp_servers") {
        return;
    }
    let dir = Scratch::new("flow");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut peers = start_peers(&[
        ("py1-streamable", "127.0.0.71", 8000),
        ("ts-streamable", "127.0.0.72", 8000),
    ]);
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.71-72", "1h"), "");
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);

    // The first run happens at start.
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(60), |v| {
        v["count"] == 2
    });
    let servers = v["servers"].as_array().unwrap();
    for s in servers {
        let id = s["id"].as_str().unwrap();
        assert!(
            id.len() <= 63
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{id}"
        );
        assert!(
            id.starts_with(&s["ip"].as_str().unwrap().replace('.', "-")),
            "{id} reads as the address"
        );
        assert_eq!(s["status"], "active");
        assert_eq!(s["jobs"], serde_json::json!(["lo"]));
        assert_eq!(s["kind"], "mcp");
        for key in [
            "first_seen",
            "last_seen",
            "url",
            "transport",
            "tools",
            "origins",
            "seen_at",
            "evidence",
        ] {
            assert!(s.get(key).is_some(), "{key} missing from {s}");
        }
    }
    // Filters.
    let count = |q: &str| {
        get_json(addr, &format!("/api/v1/servers{q}")).1["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("?capability=get_forecast"), 2);
    assert_eq!(count("?capability=get_*"), 2);
    assert_eq!(count("?capability=no_such_tool"), 0);
    assert_eq!(
        count("?server_name=weather-demo-*"),
        1,
        "only the TypeScript server is weather-demo-ts"
    );
    assert_eq!(
        count("?transport=streamable-http&origin=sweep&job=lo&kind=mcp"),
        2
    );
    assert_eq!(count("?status=gone"), 0);
    for (q, want) in [
        ("?kind=bogus", "invalid kind \"bogus\"; accepted values: mcp, mcp-auth-required, mcp-likely"),
        ("?colour=red", "unknown parameter \"colour\"; accepted: kind, transport, origin, job, capability, server_name, status, health_status"),
        ("?status=maybe", "invalid status \"maybe\"; accepted values: active, gone, all"),
    ] {
        let (code, v) = get_json(addr, &format!("/api/v1/servers{q}"));
        assert_eq!((code, v["error"].as_str().unwrap()), (400, want));
    }
    // One server, with its changes; unknown ids are a JSON 404.
    let id = servers[0]["id"].as_str().unwrap().to_string();
    let (code, one) = get_json(addr, &format!("/api/v1/servers/{id}"));
    assert_eq!(code, 200);
    assert_eq!(one["changes"][0]["kind"], "appeared");
    assert_eq!(one["changes"][0]["detail"]["reason"], "new");
    let (code, v) = get_json(addr, "/api/v1/servers/nope-1");
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (404, "no server with id \"nope-1\"")
    );

    // The py1 server stops: gone after gone_after (2) completed runs that miss it.
    let py1_id = servers.iter().find(|s| s["ip"] == "127.0.0.71").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    drop(peers.remove(0));
    let r = d.run_now("lo");
    assert_eq!(r["status"], "completed");
    assert_eq!(
        get_json(addr, &format!("/api/v1/servers/{py1_id}")).1["status"],
        "active",
        "one miss is not gone"
    );
    d.run_now("lo");
    let s = get_json(addr, &format!("/api/v1/servers/{py1_id}")).1;
    assert_eq!(s["status"], "gone", "{s}");
    assert_eq!(s["changes"][0]["kind"], "gone");
    assert!(
        s["changes"][0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("missed 2 consecutive"),
        "{s}"
    );
    assert_eq!(count(""), 1);
    assert_eq!(count("?status=all"), 2);

    // It comes back: appeared again, with reason back.
    peers.extend(start_peers(&[("py1-streamable", "127.0.0.71", 8000)]));
    d.run_now("lo");
    let s = get_json(addr, &format!("/api/v1/servers/{py1_id}")).1;
    assert_eq!(
        (s["status"].as_str(), s["changes"][0]["kind"].as_str()),
        (Some("active"), Some("appeared"))
    );
    assert_eq!(s["changes"][0]["detail"]["reason"], "back");

    // The change feed: strictly increasing seq, cursor in `next`.
    let (_, feed) = get_json(addr, "/api/v1/changes?since=0&limit=100");
    let seqs: Vec<i64> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs.len() == 4,
        "{seqs:?}"
    );
    assert_eq!(feed["next"].as_i64(), seqs.last().copied());
    let (_, tail) = get_json(addr, &format!("/api/v1/changes?since={}", seqs[1]));
    assert_eq!(tail["changes"].as_array().unwrap().len(), 2);

    // servers and changes read the same inventory, through the API and from the file.
    for src in [
        vec!["--api".to_string(), format!("http://{addr}")],
        vec![
            "--db".to_string(),
            dir.path("inventory.db").display().to_string(),
        ],
    ] {
        let mut args = vec!["servers".to_string(), "-o".into(), "json".into()];
        args.extend(src.clone());
        let out = common::scout(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["count"], 2, "{src:?}");
        let mut args = vec![
            "servers".to_string(),
            "--capability".into(),
            "nothing*".into(),
        ];
        args.extend(src.clone());
        let out = common::scout(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(1), "nothing matched: exit 1");
        let mut args = vec!["changes".to_string(), "--since".into(), "1".into()];
        args.extend(src);
        let out = common::scout(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(common::stdout(&out).lines().count(), 3);
    }

    let (code, took) = d.stop();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        sqlite(&dir.path("inventory.db"), "PRAGMA integrity_check"),
        "ok"
    );
}

#[test]
fn writes_need_the_token_and_a_running_job_answers_409() {
    if !require_peers("writes_need_the_token") {
        return;
    }
    let dir = Scratch::new("auth");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _peers = start_peers(&[("py1-streamable", "127.0.0.73", 8000)]);
    // A slow job (a paced sweep of 4,096 loopback probes) so a second trigger meets it running.
    let slow = slow_job("127.0.16.0/20", 1000);
    let cfg = write_config(
        &dir,
        port,
        &format!("{}{slow}", job("lo", "127.0.0.73", "1h")),
        "",
    );
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(60), |v| {
        v["count"] == 1
    });
    let id = v["servers"][0]["id"].as_str().unwrap().to_string();

    let post = |path: &str, h: &[(&str, &str)]| http(addr, "POST", path, h, "");
    assert_eq!(post("/api/v1/jobs/lo/run", &[]).0, 401);
    assert_eq!(
        post("/api/v1/jobs/lo/run", &[("Authorization", "Bearer wrong")]).0,
        401
    );
    let (code, body) = post("/api/v1/jobs/nope/run", &[("Authorization", &auth())]);
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains("no job named \\\"nope\\\"; jobs: lo, slow"),
        "{body}"
    );
    // The slow job is still on its first run, or is triggered now; either way the next answers 409.
    let _ = d.wait_for("/api/v1/jobs", Duration::from_secs(30), |v| {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["last_result"].is_string())
    });
    let (c1, _) = post("/api/v1/jobs/slow/run", &[("Authorization", &auth())]);
    let (c2, b2) = post("/api/v1/jobs/slow/run", &[("Authorization", &auth())]);
    assert_eq!((c1, c2), (202, 409), "{b2}");
    assert!(b2.contains("is already running"), "{b2}");

    // DELETE forgets a server and records a gone change.
    assert_eq!(
        http(addr, "DELETE", &format!("/api/v1/servers/{id}"), &[], "").0,
        401
    );
    let (code, body) = http(
        addr,
        "DELETE",
        &format!("/api/v1/servers/{id}"),
        &[("Authorization", &auth())],
        "",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(get_json(addr, &format!("/api/v1/servers/{id}")).0, 404);
    let (_, feed) = get_json(addr, "/api/v1/changes");
    let last = feed["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["server_id"].as_str()),
        (Some("gone"), Some(id.as_str()))
    );
    assert_eq!(
        http(
            addr,
            "DELETE",
            &format!("/api/v1/servers/{id}"),
            &[("Authorization", &auth())],
            ""
        )
        .0,
        404
    );
    drop(d);

    // Without a token, writes are disabled.
    let cfg = dir.path("notoken.yaml");
    std::fs::write(
        &cfg,
        format!(
            "api: {{ listen: 127.0.0.1:{port} }}\nstore: {{ path: {} }}\njobs:\n{}",
            dir.path("inventory.db").display(),
            job("lo", "127.0.0.73", "1h")
        ),
    )
    .unwrap();
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    let (code, body) = post("/api/v1/jobs/lo/run", &[("Authorization", &auth())]);
    assert_eq!(
        (code, body.as_str()),
        (403, "{\"error\":\"writes disabled: set api.token\"}")
    );
    drop(d);
}

#[test]
fn read_token_guards_reads_but_not_probes_or_metrics() {
    let dir = Scratch::new("readtoken");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = write_config(
        &dir,
        port,
        &job("lo", "127.0.0.74", "1h"),
        "  read_token: reader-secret\n",
    );
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    assert_eq!(http(addr, "GET", "/api/v1/servers", &[], "").0, 401);
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/v1/servers",
            &[("Authorization", "Bearer reader-secret")],
            ""
        )
        .0,
        200
    );
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/v1/servers",
            &[("Authorization", &auth())],
            ""
        )
        .0,
        200,
        "the write token reads too"
    );
    for open in ["/livez", "/readyz", "/metrics"] {
        assert_eq!(http(addr, "GET", open, &[], "").0, 200, "{open}");
    }
    drop(d);
}

#[test]
fn metrics_parse_with_the_official_openmetrics_parser() {
    if !require_peers("metrics_parse") {
        return;
    }
    let dir = Scratch::new("metrics");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _peers = start_peers(&[("py1-streamable", "127.0.0.75", 8000)]);
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.75", "1h"), "");
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    d.wait_for("/api/v1/servers", Duration::from_secs(60), |v| {
        v["count"] == 1
    });
    let _ = http(addr, "GET", "/api/v1/servers?kind=bad", &[], "");
    let (code, text) = http(addr, "GET", "/metrics", &[], "");
    assert_eq!(code, 200);
    let py = root().join("target/peers/tools/bin/python");
    let script = r#"
import sys, json
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new(py)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let has = |name: &str, labels: Value, min: f64| {
        let samples = m[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} missing: {text}"));
        assert!(
            samples.iter().any(|s| labels
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| s[0][k] == *v)
                && s[1].as_f64().unwrap() >= min),
            "{name}{labels} >= {min}: {samples:?}"
        );
    };
    has(
        "mcp_scout_build_info",
        serde_json::json!({"version": env!("CARGO_PKG_VERSION")}),
        1.0,
    );
    has(
        "mcp_scout_servers",
        serde_json::json!({"kind": "mcp", "transport": "streamable-http", "status": "active"}),
        1.0,
    );
    has(
        "mcp_scout_job_runs_total",
        serde_json::json!({"job": "lo", "result": "completed"}),
        1.0,
    );
    has(
        "mcp_scout_job_run_duration_seconds_count",
        serde_json::json!({"job": "lo"}),
        1.0,
    );
    has(
        "mcp_scout_job_last_success_timestamp_seconds",
        serde_json::json!({"job": "lo"}),
        1.7e9,
    );
    has(
        "mcp_scout_probes_total",
        serde_json::json!({"job": "lo", "state": "open"}),
        1.0,
    );
    has(
        "mcp_scout_changes_total",
        serde_json::json!({"kind": "appeared"}),
        1.0,
    );
    has(
        "mcp_scout_api_requests_total",
        serde_json::json!({"route": "/api/v1/servers", "code": "400"}),
        1.0,
    );
    has(
        "mcp_scout_api_request_duration_seconds_count",
        serde_json::json!({"route": "/api/v1/servers"}),
        1.0,
    );
    has("process_resident_memory_bytes", serde_json::json!({}), 1e6);
    has("process_cpu_seconds_total", serde_json::json!({}), 0.0);
    drop(d);
}

#[test]
fn kill_9_mid_run_then_restart_keeps_every_shown_change_and_marks_the_run_interrupted() {
    if !require_peers("kill_9_mid_run") {
        return;
    }
    let dir = Scratch::new("kill9");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _peers = start_peers(&[("py1-streamable", "127.0.0.76", 8000)]);
    let slow = slow_job("127.0.32.0/20", 500);
    let cfg = write_config(
        &dir,
        port,
        &format!("{}{slow}", job("lo", "127.0.0.76", "1h")),
        "",
    );
    let db = dir.path("inventory.db");
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let shown = d.wait_for("/api/v1/changes", Duration::from_secs(60), |v| {
        !v["changes"].as_array().unwrap().is_empty()
    });
    // The slow job's first run (8 s at 500 probes/s) is in progress.
    d.wait_for("/api/v1/jobs", Duration::from_secs(10), |v| {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "slow" && j["running"].is_number())
    });
    d.kill9();

    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    let (_, after) = get_json(addr, "/api/v1/changes?since=0&limit=1000");
    for c in shown["changes"].as_array().unwrap() {
        assert!(after["changes"].as_array().unwrap().contains(c), "lost {c}");
    }
    let (_, runs) = get_json(addr, "/api/v1/runs?job=slow&limit=10");
    let first = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .min_by_key(|r| r["id"].as_i64())
        .unwrap()
        .clone();
    assert_eq!(first["status"], "interrupted", "{runs}");
    // New changes continue the sequence.
    let max_before = after["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .max()
        .unwrap();
    let (code, body) = http(
        addr,
        "DELETE",
        &format!(
            "/api/v1/servers/{}",
            after["changes"][0]["server_id"].as_str().unwrap()
        ),
        &[("Authorization", &auth())],
        "",
    );
    assert_eq!(code, 200, "{body}");
    let (_, feed) = get_json(addr, &format!("/api/v1/changes?since={max_before}"));
    assert!(feed["changes"][0]["seq"].as_i64().unwrap() > max_before);
    let log = dir.path("daemon2.log");
    let (code, _) = d.stop();
    let log = std::fs::read_to_string(log).unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(sqlite(&db, "SELECT coalesce(group_concat(id || ' ' || job || ' ' || status, '; '), '') FROM runs WHERE status = 'running'"), "", "{log}");
    assert_eq!(sqlite(&db, "PRAGMA integrity_check"), "ok");
    assert_eq!(
        sqlite(&db, "SELECT count(*) - count(DISTINCT id) FROM servers"),
        "0"
    );
    assert_eq!(
        sqlite(&db, "SELECT count(*) FROM runs WHERE status = 'running'"),
        "0"
    );
}

#[test]
fn sigterm_exits_0_within_10_s_and_records_the_run_as_interrupted() {
    let dir = Scratch::new("sigterm");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let slow = slow_job("127.0.48.0/20", 300);
    let cfg = write_config(&dir, port, &slow, "");
    let log = dir.path("daemon.log");
    let d = Daemon::start_with(&cfg, log.clone(), addr, &["--log-format", "json"]);
    d.wait_for("/api/v1/jobs", Duration::from_secs(10), |v| {
        v["jobs"][0]["running"].is_number()
    });
    let (code, took) = d.stop();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let db = dir.path("inventory.db");
    assert_eq!(sqlite(&db, "SELECT status FROM runs"), "interrupted");
    // JSON log lines; those logged during the run carry the job and the run id.
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ended = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("run finished"))
        })
        .unwrap_or_else(|| panic!("no run line: {text}"));
    assert_eq!(ended["span"]["job"], "slow");
    assert_eq!(ended["span"]["run"], 1);
    assert_eq!(ended["fields"]["result"], "interrupted");
}

#[test]
fn sighup_applies_a_valid_config_and_keeps_the_old_one_on_error() {
    let dir = Scratch::new("sighup");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = write_config(&dir, port, &job("a", "127.0.0.77", "1h"), "");
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let names = || -> Vec<String> {
        get_json(addr, "/api/v1/jobs").1["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(), ["a"]);
    // Invalid: nothing changes, and the error says where.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("interval: 1h", "interval: soon"),
    )
    .unwrap();
    d.signal("HUP");
    let start = Instant::now();
    while !d.logs().contains("config not applied") {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", d.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        d.logs()
            .contains("config.yaml:11:15: jobs[0].interval: \"soon\" is not a duration"),
        "{}",
        d.logs()
    );
    assert_eq!(names(), ["a"]);
    // Valid: job a removed, b added; a changed listen address is logged, not applied.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("interval: soon", "interval: 1h")
        .replace("name: a", "name: b")
        .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:1");
    std::fs::write(&cfg, text).unwrap();
    d.signal("HUP");
    let v = d.wait_for("/api/v1/jobs", Duration::from_secs(10), |v| {
        v["jobs"][0]["name"] == "b"
    });
    assert_eq!(v["count"], 1);
    assert!(d.logs().contains("api.listen changed from"), "{}", d.logs());
    let (_, m) = http(addr, "GET", "/metrics", &[], "");
    assert!(
        m.contains("mcp_scout_config_reloads_total{result=\"error\"} 1")
            && m.contains("mcp_scout_config_reloads_total{result=\"ok\"} 1"),
        "{m}"
    );
    drop(d);
}

#[test]
fn bad_store_files_exit_2_and_are_left_untouched() {
    let dir = Scratch::new("badstore");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.78", "1h"), "");
    let db = dir.path("inventory.db");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&db, &garbage).unwrap();
    let run = |cfg: &Path| {
        let child = common::daemon_command(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_with_deadline(child, Duration::from_secs(20))
    };
    let out = run(&cfg);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&db.display().to_string()) && err.contains("left untouched"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "the file was modified"
    );

    // A second daemon on the same store is refused, saying why.
    std::fs::remove_file(&db).unwrap();
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let cfg2 = dir.path("second.yaml");
    std::fs::write(
        &cfg2,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace(&port.to_string(), &free_port().to_string()),
    )
    .unwrap();
    let out = run(&cfg2);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("in use by another mcp-scout daemon")
            && err.contains(&format!("pid {}", d.pid())),
        "{err}"
    );
    drop(d);

    // A bad config never starts the daemon.
    std::fs::write(&cfg2, "jobs:\n  - name: x\n    ports: http\n").unwrap();
    let out = run(&cfg2);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("second.yaml:3:12: jobs[0].ports: invalid port spec \"http\""),
        "{err}"
    );
}

#[test]
fn stalled_and_oversized_clients_are_cut_off_without_blocking_others() {
    let dir = Scratch::new("clients");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = write_config(
        &dir,
        port,
        &job("lo", "127.0.0.79", "1h"),
        "  header_timeout: 1s\n  max_connections: 8\n  body_limit: 1024\n",
    );
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    // A client that trickles its headers is closed at the header timeout...
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // ...while other clients are served.
    assert_eq!(http(addr, "GET", "/livez", &[], "").0, 200);
    let start = Instant::now();
    let mut buf = [0u8; 512];
    let n = slow.read(&mut buf).unwrap_or(0);
    let cut = start.elapsed();
    assert!(cut < Duration::from_secs(4), "closed after {cut:?}");
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || reply.starts_with("HTTP/1.1 408"), "{reply}");
    // Oversized bodies: 413.
    let big = "x".repeat(4096);
    let (code, _) = http(
        addr,
        "POST",
        "/api/v1/jobs/lo/run",
        &[("Authorization", &auth())],
        &big,
    );
    assert_eq!(code, 413);
    // Beyond max_connections, new connections are closed; those within are served.
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let _ = extra.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        extra.read(&mut buf).unwrap_or(0),
        0,
        "the 9th connection is closed"
    );
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(http(addr, "GET", "/livez", &[], "").0, 200);
    // A stalled client does not hold shutdown.
    let _stalled = TcpStream::connect(addr).unwrap();
    let (code, took) = d.stop();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn the_change_stream_replays_after_last_event_id_then_follows() {
    if !require_peers("the_change_stream") {
        return;
    }
    let dir = Scratch::new("sse");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _peers = start_peers(&[
        ("py1-streamable", "127.0.0.80", 8000),
        ("py1-sse", "127.0.0.81", 8000),
    ]);
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.80-81", "1h"), "");
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    d.wait_for("/api/v1/changes", Duration::from_secs(60), |v| {
        v["changes"].as_array().unwrap().len() == 2
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(
        format!("GET /api/v1/changes/stream HTTP/1.1\r\nHost: {addr}\r\nLast-Event-ID: 1\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut ids = Vec::new();
    let mut line = String::new();
    let mut forgot = false;
    let start = Instant::now();
    while ids.len() < 2 {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(id) = line.trim().strip_prefix("id: ") {
            ids.push(id.parse::<i64>().unwrap());
            if !forgot {
                // Replayed seq 2; now make a live change (seq 3).
                forgot = true;
                let (_, v) = get_json(addr, "/api/v1/servers");
                let id = v["servers"][0]["id"].as_str().unwrap();
                assert_eq!(
                    http(
                        addr,
                        "DELETE",
                        &format!("/api/v1/servers/{id}"),
                        &[("Authorization", &auth())],
                        ""
                    )
                    .0,
                    200
                );
            }
        }
        assert!(start.elapsed() < Duration::from_secs(20));
    }
    assert_eq!(ids, [2, 3]);
    drop(d);
}

#[test]
fn config_check_prints_one_line_per_job_and_refuses_bad_files_with_exit_2() {
    let dir = Scratch::new("check");
    let good = dir.path("good.yaml");
    std::fs::write(
        &good,
        "api: { token: \"${MCP_SCOUT_TEST_UNSET_TOKEN:-s3cret}\" }\njobs:\n  - name: a\n    targets: [127.0.0.1]\n    interval: 90s\n  - name: b\n    targets: [127.0.0.2-9]\n    ports: \"8000\"\n    interval: 1h30m\n    jitter: 0%\n",
    )
    .unwrap();
    let out = common::scout(&["config", "check", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1].starts_with("job \"a\": 127.0.0.1 on ports 3000-3001,5000")
            && lines[1].ends_with("every 1m30s ± 10%"),
        "{text}"
    );
    assert_eq!(
        lines[2],
        "job \"b\": 127.0.0.2-127.0.0.9 on ports 8000 every 1h30m"
    );
    // --print shows the resolved config with the secret redacted.
    let out = common::scout(&["config", "check", good.to_str().unwrap(), "--print"]);
    let text = common::stdout(&out);
    assert!(
        text.contains("token: \"<redacted>\"") && !text.contains("s3cret"),
        "{text}"
    );
    // The example parses, and is what `config example` prints.
    let out = common::scout(&["config", "example"]);
    let example = dir.path("example.yaml");
    std::fs::write(&example, &out.stdout).unwrap();
    assert_eq!(
        out.stdout,
        std::fs::read(root().join("config/example.yaml")).unwrap()
    );
    let out = common::scout(&["config", "check", example.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    // Errors exit 2 and say where.
    let missing = dir.path("missing.yaml");
    let out = common::scout(&["config", "check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains("cannot read config file")
            && common::stderr(&out).contains("missing.yaml")
    );
    let bad = dir.path("bad.yaml");
    std::fs::write(&bad, "jobs:\n  - name: a\n    sweep: { rate: fast }\n").unwrap();
    let out = common::scout(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::stderr(&out).contains(
            "bad.yaml:3:20: jobs[0].sweep.rate: invalid u32 (found \"fast\"); write a whole number"
        ),
        "{}",
        common::stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

/// Fill the stopped daemon's store with three checks of `id` through the library's own
/// writer (the monitor scheduler is not wired yet): healthy, a failure (still healthy below
/// the threshold), healthy. Returns the times of the checks.
fn record_three_checks(db: &Path, id: &str) -> Vec<std::time::SystemTime> {
    use mcp_scout::monitor::state::{step, CheckResult, HealthState, Thresholds};
    use mcp_scout::store::{HealthUpdate, Store, StoreOptions};
    let now = std::time::SystemTime::now();
    let ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let now = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    let times = vec![
        now - Duration::from_secs(60),
        now - Duration::from_secs(30),
        now,
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (store, handle) = Store::open(StoreOptions::new(db)).unwrap();
        let mut s = HealthState::new(times[0]);
        for (i, at) in times.iter().enumerate() {
            let r = if i == 1 {
                CheckResult::fail("mcp", "timeout after 10s")
            } else {
                CheckResult::pass("mcp").with_latency(Duration::from_millis(12))
            };
            let results = vec![r];
            let (next, transition) = step(&s, &results, &Thresholds::default(), *at);
            store
                .record_health(HealthUpdate {
                    server_id: id.into(),
                    at: *at,
                    results,
                    health: next.health().clone(),
                    transition,
                    tools: None,
                })
                .await
                .unwrap();
            s = next;
        }
        drop(store);
        handle.close().await.unwrap();
    });
    times
}

#[test]
fn stored_health_is_served_filtered_and_listed_with_its_checks_by_the_api_and_the_cli() {
    if !require_peers("stored_health_is_served") {
        return;
    }
    let dir = Scratch::new("health");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _peers = start_peers(&[("py1-streamable", "127.0.0.84", 8000)]);
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.84", "1h"), "");
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(60), |v| {
        v["count"] == 1
    });
    let s = &v["servers"][0];
    let id = s["id"].as_str().unwrap().to_string();
    assert!(s["health"].is_null(), "never checked: {s}");
    assert_eq!(
        s["uptime"],
        serde_json::json!({"1h": null, "24h": null, "7d": null, "30d": null})
    );
    assert!(s["health_endpoints"].is_array(), "{s}");
    let count = |q: &str| {
        get_json(addr, &format!("/api/v1/servers{q}")).1["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        count("?health_status=unknown"),
        1,
        "never checked is unknown"
    );
    assert_eq!(count("?health_status=healthy"), 0);
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));

    let db = dir.path("inventory.db");
    let times = record_three_checks(&db, &id);

    // Restarted: the run at start rescans the server and must keep its health.
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    d.wait_for("/api/v1/runs?job=lo", Duration::from_secs(60), |v| {
        v["count"] == 2 && v["runs"][0]["status"] == "completed"
    });
    let (code, one) = get_json(addr, &format!("/api/v1/servers/{id}"));
    assert_eq!(code, 200);
    assert_eq!(one["health"]["status"], "healthy", "{one}");
    assert_eq!(one["health"]["consecutive_successes"], 1);
    assert_eq!(one["health"]["checks"][0]["name"], "mcp");
    assert_eq!(one["health"]["latency_ms"], 12.0);
    let up = one["uptime"]["1h"].as_f64().unwrap();
    assert!((up - 2.0 / 3.0).abs() < 1e-9, "{}", one["uptime"]);
    assert!(one["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["kind"] == "health_changed"
            && c["detail"]
                == serde_json::json!({"from": "unknown", "to": "healthy",
                    "reason": "first check passed", "check": null})));
    assert_eq!(count("?health_status=healthy"), 1);
    assert_eq!(count("?health_status=healthy&kind=mcp&status=active"), 1);
    assert_eq!(count("?health_status=unhealthy"), 0);
    assert_eq!(count("?health_status=unknown"), 0);
    let (code, v) = get_json(addr, "/api/v1/servers?health_status=sick");
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (
            400,
            "invalid health_status \"sick\"; accepted values: unknown, healthy, degraded, unhealthy, gone"
        )
    );

    // The check history, newest first, with its filters and their errors.
    let checks = |q: &str| get_json(addr, &format!("/api/v1/servers/{id}/checks{q}"));
    let (code, v) = checks("");
    assert_eq!((code, v["count"].as_u64()), (200, Some(3)), "{v}");
    let rows = v["checks"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["ok"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(rows[1]["message"], "timeout after 10s");
    assert_eq!(rows[1]["check"], "mcp");
    assert!(rows[1]["latency_ms"].is_null());
    assert_eq!(rows[0]["latency_ms"], 12.0);
    let since = mcp_scout::finding::rfc3339(times[1]);
    assert_eq!(checks(&format!("?since={since}")).1["count"], 2);
    assert_eq!(checks("?check=mcp&limit=1").1["count"], 1);
    assert_eq!(checks("?check=other").1["count"], 0);
    for (q, code, want) in [
        ("?since=yesterday", 400, "invalid since \"yesterday\"; accepted values: an RFC 3339 UTC time such as 2026-01-01T00:00:00Z or 2026-01-01T00:00:00.000Z"),
        ("?limit=-1", 400, "invalid limit \"-1\"; accepted values: a whole number from 0 to 10000"),
        ("?colour=red", 400, "unknown parameter \"colour\"; accepted: since, check, limit"),
    ] {
        let (c, v) = checks(q);
        assert_eq!((c, v["error"].as_str().unwrap()), (code, want), "{q}");
    }
    let (code, v) = get_json(addr, "/api/v1/servers/nope-1/checks");
    assert_eq!(
        (code, v["error"].as_str().unwrap()),
        (404, "no server with id \"nope-1\"")
    );

    // `servers --health-status`, through the API and from the file; the table's HEALTH.
    for src in [
        vec!["--api".to_string(), format!("http://{addr}")],
        vec!["--db".to_string(), db.display().to_string()],
    ] {
        let servers = |extra: &[&str]| {
            let mut args: Vec<String> = vec!["servers".into()];
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend(src.clone());
            common::scout(&args.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let out = servers(&["--health-status", "healthy", "-o", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["count"], 1, "{src:?}");
        assert_eq!(v["servers"][0]["health"]["status"], "healthy");
        common::assert_record_schema(&{
            let mut r = v["servers"][0].clone();
            let o = r.as_object_mut().unwrap();
            for k in ["id", "status", "first_seen", "last_seen", "jobs", "uptime"] {
                o.remove(k);
            }
            r
        });
        let out = servers(&["--health-status", "unhealthy"]);
        assert_eq!(out.status.code(), Some(1), "nothing matched: {src:?}");
        let out = servers(&["--health-status", "sick"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            common::stderr(&out).contains(
                "invalid --health-status \"sick\"; accepted values: unknown, healthy, degraded, unhealthy, gone"
            ),
            "{}",
            common::stderr(&out)
        );
        let out = servers(&[]);
        let table = common::stdout(&out);
        let header = table.lines().next().unwrap();
        assert!(header.contains("HEALTH"), "{table}");
        let row = table.lines().nth(1).unwrap();
        assert!(row.split_whitespace().any(|c| c == "healthy"), "{table}");
    }

    // Forgetting a checked server: gone, then health_changed to gone, both counted.
    let (code, body) = d.http(
        "DELETE",
        &format!("/api/v1/servers/{id}"),
        &[("Authorization", &auth())],
        "",
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["change"]["kind"], "gone");
    assert_eq!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["gone", "health_changed"]
    );
    assert_eq!(v["changes"][1]["detail"]["from"], "healthy");
    assert_eq!(v["changes"][1]["detail"]["to"], "gone");
    let (_, metrics) = d.http("GET", "/metrics", &[], "");
    assert!(
        metrics.contains("mcp_scout_changes_total{kind=\"health_changed\"} 1"),
        "{metrics}"
    );
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}
