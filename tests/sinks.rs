//! The sinks' outbox as a user runs it: the real daemon with a `sinks:` section feeding
//! directories of server.json files from a real MCP server (the official Python SDK on
//! 127.0.6.1), through a sink that cannot write, a `kill -9` with undelivered changes, a
//! restart, and the server going away. Addresses: 127.0.6.0/24 (loopback only).

mod common;

use common::wait_until;

use common::daemon::sink_of;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::{free_port, job, write_config, Daemon, Scratch};
use common::{require_peers, start_peers};
use serde_json::Value;

fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn undelivered_changes_survive_a_failing_sink_and_kill_9_and_nothing_is_doubled() {
    if !require_peers("sinks_outbox") {
        return;
    }
    let dir = Scratch::new("sinks-outbox");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut peers = start_peers(&[("py1-streamable", "127.0.6.1", 8000)]);
    // `blocked` cannot be a directory while a file of that name exists: every write of that
    // sink fails, as a full or unmounted volume would.
    let blocked = dir.path("blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let good = dir.path("good");
    let secret = "hunter2-webhook-secret";
    let sinks = format!(
        "sinks:\n  - {{ name: good, type: server-json, dir: \"{}\" }}\n  - {{ name: blocked, type: server-json, dir: \"{}/sub\", retry: {{ initial: 100ms, max: 1s }} }}\n  - {{ name: hook, type: webhook, url: \"http://127.0.6.2:9/x\", secret: \"{secret}\", headers: {{ authorization: \"Bearer {secret}\" }} }}\n",
        good.display(),
        blocked.display()
    );
    let cfg = write_config(&dir, port, &job("lan", "127.0.6.1", "2s"), &sinks);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    wait_until(
        "the good sink writes the server",
        Duration::from_secs(30),
        || files(&good).len() == 1,
    );
    let id = files(&good)[0].trim_end_matches(".server.json").to_string();
    let v = d.wait_for("/api/v1/sinks", Duration::from_secs(20), |v| {
        let b = sink_of(v, "blocked");
        b["consecutive_failures"].as_u64().unwrap_or(0) >= 2
    });
    let b = sink_of(&v, "blocked");
    assert!(
        matches!(b["state"].as_str(), Some("retrying" | "failing")),
        "{b}"
    );
    assert!(
        b["last_error"].as_str().unwrap().contains("blocked"),
        "the error names the path: {b}"
    );
    let g = sink_of(&v, "good");
    assert_eq!(g["state"], "ok", "{g}");
    assert_eq!(g["queue_depth"], 0, "{g}");
    assert_eq!(g["listed"], 1, "{g}");
    // The good sink's cursor moved past the change the blocked one still holds: one slow
    // sink never holds another.
    assert!(g["cursor"].as_i64().unwrap() >= 1, "{g}");

    d.kill9();
    // The volume is back; the restarted daemon delivers what the killed one could not.
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir_all(blocked.join("sub")).unwrap();
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    wait_until(
        "the blocked sink delivers after the restart",
        Duration::from_secs(30),
        || files(&blocked.join("sub")) == vec![format!("{id}.server.json")],
    );
    let v = d.wait_for("/api/v1/sinks", Duration::from_secs(20), |v| {
        sink_of(v, "blocked")["state"] == "ok" && sink_of(v, "blocked")["queue_depth"] == 0
    });
    assert_eq!(sink_of(&v, "blocked")["listed"], 1);
    assert_eq!(
        files(&good),
        vec![format!("{id}.server.json")],
        "not doubled"
    );
    let doc: Value =
        serde_json::from_slice(&std::fs::read(good.join(format!("{id}.server.json"))).unwrap())
            .unwrap();
    assert_eq!(doc["remotes"][0]["url"], "http://127.0.6.1:8000/mcp");
    assert_eq!(doc["remotes"][0]["type"], "streamable-http");

    // The server goes: both sinks remove it (gone_after 2 runs of 2 s).
    peers.clear();
    wait_until("removed when gone", Duration::from_secs(40), || {
        files(&good).is_empty() && files(&blocked.join("sub")).is_empty()
    });
    let (code, metrics) = common::daemon::http(addr, "GET", "/metrics", &[], "");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("mcp_scout_sink_queue_depth{sink=\"good\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("mcp_scout_sink_deliveries_total{sink=\"good\",result=\"ok\"}"));
    assert!(metrics.contains("mcp_scout_sink_resyncs_total{sink=\"blocked\"}"));
    let logs = format!(
        "{}{}",
        std::fs::read_to_string(dir.path("daemon.log")).unwrap(),
        d.logs()
    );
    assert!(!logs.contains(secret), "a secret reached the log: {logs}");
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

/// Three daemons on three "nodes" (network namespaces of one test LAN, as a DaemonSet's
/// pods) find the same real MCP server and feed one real MCP Mesh registry: it lists the
/// server once, healthy, and keeps it healthy (no flapping) while all three heartbeat it;
/// when the server stops, every daemon removes it.
#[test]
fn three_daemons_on_three_nodes_converge_on_one_healthy_mesh_entry() {
    if !(common::require_root("three_daemons_converge") && require_peers("three_daemons_converge"))
    {
        return;
    }
    let net = common::Testnet::up(5, &[]);
    let mut server = Some(net.peer("h1", "py1-streamable", "10.99.0.11", 8000, None));
    let _registry = net.peer("h2", "mesh-registry", "10.99.0.12", 18000, None);
    let registry: SocketAddr = "10.99.0.12:18000".parse().unwrap();
    let reg_ns = net.ns("h2");
    let api: SocketAddr = "127.0.0.1:9464".parse().unwrap();
    let mut daemons = Vec::new();
    for (i, node) in ["h3", "h4", "h5"].iter().enumerate() {
        let dir = Scratch::new(&format!("sinks-node{i}"));
        let cfg = dir.path("config.yaml");
        std::fs::write(
            &cfg,
            format!(
                "api: {{ listen: \"{api}\", token: {} }}\nstore: {{ path: \"{}\" }}\ngone_after: 2\n\
                 jobs:\n  - {{ name: lan, targets: [10.99.0.11], ports: \"8000\", interval: 3s, jitter: 0% }}\n\
                 health: {{ interval: 2s, timeout: 2s, unhealthy_threshold: 2, healthy_threshold: 1 }}\n\
                 sinks:\n  - {{ name: mesh, type: mcp-mesh, url: \"http://{registry}\", heartbeat: 2s }}\n",
                common::daemon::TOKEN,
                dir.path("inventory.db").display()
            ),
        )
        .unwrap();
        let cmd = net.daemon_command(node, &cfg);
        let d = Daemon::start_in(cmd, &net.ns(node), dir.path("daemon.log"), api);
        daemons.push((dir, d));
    }
    let agents = || {
        let (code, v) = common::daemon::get_json_in(Some(&reg_ns), registry, "/agents");
        assert_eq!(code, 200, "{v}");
        v["agents"].as_array().cloned().unwrap_or_default()
    };
    let start = Instant::now();
    loop {
        let a = agents();
        if a.len() == 1 && a[0]["status"] == "healthy" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no single healthy entry: {a:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let id = agents()[0]["id"].as_str().unwrap().to_string();
    for (_, d) in &daemons {
        let v = d.wait_for("/api/v1/servers", Duration::from_secs(30), |v| {
            v["count"] == 1
        });
        assert_eq!(v["servers"][0]["id"], id.as_str(), "the same id everywhere");
        d.wait_for("/api/v1/sinks", Duration::from_secs(30), |v| {
            v["sinks"][0]["listed"] == 1 && v["sinks"][0]["state"] == "ok"
        });
    }
    // 30 s, longer than Mesh's ~20 s unhealthy timeout: listed once, healthy every time.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(30) {
        let a = agents();
        assert_eq!(a.len(), 1, "listed once: {a:?}");
        assert_eq!(a[0]["status"], "healthy", "no flapping: {a:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    server.take();
    let start = Instant::now();
    loop {
        let a = agents();
        if a.iter().all(|x| x["status"] != "healthy") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still healthy after the server stopped: {a:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for (_, d) in daemons {
        let (code, _) = d.stop();
        assert_eq!(code, Some(0));
    }
}
