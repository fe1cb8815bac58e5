//! The `consul` sink against the Consul MOCK (`consul-mock`, scripts/peers/consul_mock.py:
//! Consul cannot run here; the mock implements the agent API subset with Consul's validation
//! and records every request): the real daemon finds real MCP servers (py1 streamable HTTP and
//! SSE on 127.0.0.194-195) and the test asserts the exact requests the mock recorded, the
//! TTL check fed by our health (kept from lapsing), deregistration when gone, a foreign
//! service left alone, an agent that restarted empty (re-registered), kill -9 and restart
//! without duplicates, and bad registry answers (HTML, 50 MiB, no answer: decoys on
//! 127.0.0.196-198; a refused ACL token: a second mock on 127.0.0.199) bounded while the
//! consul sink stays current.

mod common;

use common::daemon::sink_of;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::daemon::{free_port, get_json, http, job, write_config, Daemon, Scratch};
use common::{require_peers, start_peers};
use serde_json::{json, Value};

const FAST_HEALTH: &str =
    "health:\n  interval: 2s\n  timeout: 2s\n  unhealthy_threshold: 2\n  healthy_threshold: 1\n";
const CONSUL_TOKEN: &str = "consul-acl-secret-0123";
const WRONG_TOKEN: &str = "wrong-acl-token-4567";
const MOCK: &str = "127.0.0.193:8500";

fn mock() -> SocketAddr {
    MOCK.parse().unwrap()
}

/// The requests the mock recorded from the daemon (its User-Agent), oldest first; the
/// test's own requests are left out.
fn requests() -> Vec<Value> {
    let (code, v) = get_json(mock(), "/mock/requests");
    assert_eq!(code, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["headers"]["user-agent"]
                .as_str()
                .is_some_and(|u| u.starts_with("mcp-scout/"))
        })
        .cloned()
        .collect()
}

fn services() -> Value {
    let (code, v) = get_json_token("/v1/agent/services");
    assert_eq!(code, 200, "{v}");
    v
}

fn checks() -> Value {
    get_json_token("/v1/agent/checks").1
}

fn get_json_token(path: &str) -> (u16, Value) {
    let (code, body) = http(mock(), "GET", path, &[("X-Consul-Token", CONSUL_TOKEN)], "");
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Poll the mock until `cond` holds, at most `limit`.
fn wait_mock(d: &Daemon, limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "{what} never held within {limit:?}; services {}, checks {}\n{}",
            services(),
            checks(),
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn server_id(d: &Daemon, ip: &str) -> String {
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(60), |v| {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["ip"] == ip)
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

#[test]
fn consul_mock_gets_exact_agent_requests_ttl_checks_fed_by_health_and_deregistration() {
    if !require_peers("consul_mock") {
        return;
    }
    let mut peers = start_peers(&[
        ("py1-streamable", "127.0.0.194", 8000),
        ("py1-sse", "127.0.0.195", 8000),
    ]);
    let _registry = common::start_peers_with(&[
        (
            "consul-mock",
            "127.0.0.193",
            8500,
            &["--token", CONSUL_TOKEN],
        ),
        ("registry-html", "127.0.0.196", 8500, &[]),
        ("registry-huge", "127.0.0.197", 8500, &[]),
        ("registry-hang", "127.0.0.198", 8500, &[]),
        (
            "consul-mock",
            "127.0.0.199",
            8500,
            &["--token", CONSUL_TOKEN],
        ),
    ]);
    // Someone else's service on the same agent.
    let (code, body) = http(
        mock(),
        "PUT",
        "/v1/agent/service/register",
        &[("X-Consul-Token", CONSUL_TOKEN)],
        r#"{"ID":"web-1","Name":"web","Port":80,"Tags":["mcp"]}"#,
    );
    assert_eq!(code, 200, "{body}");

    let dir = Scratch::new("sink-consul");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let decoy = |name: &str, ip: &str| {
        format!("  - {{name: {name}, type: consul, url: 'http://{ip}:8500', timeout: 1s, retry: {{initial: 200ms, max: 1s}}}}\n")
    };
    let acl = format!("  - {{name: acl, type: consul, url: 'http://127.0.0.199:8500', token: {WRONG_TOKEN}, retry: {{initial: 200ms, max: 1s}}}}\n");
    let sinks = format!(
        "sinks:\n{acl}  - name: c\n    type: consul\n    url: 'http://{MOCK}'\n    token: {CONSUL_TOKEN}\n    ttl: 6s\n    retry: {{initial: 200ms, max: 1s}}\n{}{}{}{FAST_HEALTH}",
        decoy("html", "127.0.0.196"),
        decoy("huge", "127.0.0.197"),
        decoy("hang", "127.0.0.198"),
    );
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.194-195", "1h"), &sinks);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let streamable = server_id(&d, "127.0.0.194");
    let sse = server_id(&d, "127.0.0.195");
    wait_mock(&d, Duration::from_secs(60), "both registered", || {
        let s = services();
        s.get(&streamable).is_some() && s.get(&sse).is_some()
    });

    // The exact registration, with the token, as Consul's agent API spells it.
    let (_, rec) = d.get_json(&format!("/api/v1/servers/{streamable}"));
    let reqs = requests();
    assert_eq!(reqs[1]["method"], "PUT", "{reqs:#?}");
    assert_eq!(reqs[1]["path"], "/v1/agent/service/register");
    let reg = reqs
        .iter()
        .find(|r| {
            r["path"] == "/v1/agent/service/register" && r["body"]["ID"] == streamable.as_str()
        })
        .expect("a registration of the streamable server");
    assert_eq!(reg["method"], "PUT");
    assert_eq!(reg["query"], "replace-existing-checks=true");
    assert_eq!(reg["headers"]["x-consul-token"], CONSUL_TOKEN);
    assert_eq!(reg["problems"], json!([]), "{reg}");
    let check_id = format!("mcp-scout:{streamable}");
    let name = rec["server_name"].as_str().unwrap();
    let slug: String = name
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    assert_eq!(
        reg["body"],
        json!({
            "ID": streamable, "Name": slug, "Address": "127.0.0.194", "Port": 8000,
            "Tags": ["mcp", "mcp-scout", "transport:streamable-http"],
            "Meta": {
                "mcp_path": "/mcp", "server_id": streamable, "source": "mcp-scout",
                "url": "http://127.0.0.194:8000/mcp", "transport": "streamable-http", "kind": "mcp",
                "server_name": name, "server_version": rec["server_version"],
                "protocol_version": rec["protocol_version"], "tools": "get_forecast,add",
            },
            "Check": {"CheckID": check_id, "Name": "mcp-scout health", "TTL": "6s",
                      "DeregisterCriticalServiceAfter": "10m"},
        })
    );
    let sse_tags = &services()[&sse]["Tags"];
    assert_eq!(*sse_tags, json!(["mcp", "mcp-scout", "transport:sse"]));
    assert_eq!(services()[&sse]["Meta"]["mcp_path"], "/sse");
    // The first request is the reconciliation's listing; each registration is followed by
    // the check update from our health; nothing the mock would refuse was sent.
    assert_eq!(reqs[0]["method"], "GET");
    assert_eq!(reqs[0]["path"], "/v1/agent/services");
    let i = reqs.iter().position(|r| std::ptr::eq(r, reg)).unwrap();
    assert_eq!(reqs[i + 1]["method"], "PUT");
    assert_eq!(
        reqs[i + 1]["path"],
        format!("/v1/agent/check/pass/{check_id}")
    );
    assert!(
        reqs[i + 1]["query"]
            .as_str()
            .unwrap()
            .starts_with("note=mcp-scout"),
        "{}",
        reqs[i + 1]
    );
    for r in &reqs {
        assert_eq!(r["problems"], json!([]), "{r}");
        assert_eq!(r["headers"]["x-consul-token"], CONSUL_TOKEN, "{r}");
    }

    // Healthy: passing, and kept passing past its 6 s TTL by the updates every 2 s.
    wait_mock(
        &d,
        Duration::from_secs(30),
        "passing after health checks",
        || {
            checks()[&check_id]["Output"]
                .as_str()
                .is_some_and(|o| o.starts_with("mcp-scout: healthy"))
        },
    );
    let first = requests().len();
    let start = Instant::now();
    wait_mock(&d, Duration::from_secs(30), "past the TTL", || {
        start.elapsed() > Duration::from_secs(8)
    });
    assert_eq!(checks()[&check_id]["Status"], "passing", "{}", checks());
    let updates = requests()[first..]
        .iter()
        .filter(|r| r["path"] == format!("/v1/agent/check/pass/{check_id}"))
        .count();
    assert!(updates >= 3, "{updates} updates in 8 s with a 6 s TTL");

    // The SSE server stops: its check fails with our reason; two runs later it is gone and
    // deregistered; the foreign service stays.
    drop(peers.remove(1));
    let sse_check = format!("mcp-scout:{sse}");
    wait_mock(
        &d,
        Duration::from_secs(40),
        "critical when unhealthy",
        || {
            let c = &checks()[&sse_check];
            c["Status"] == "critical"
                && c["Output"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("mcp-scout: unhealthy: mcp: "))
        },
    );
    assert!(requests()
        .iter()
        .any(|r| r["path"] == format!("/v1/agent/check/fail/{sse_check}")));
    d.run_now("lo");
    d.run_now("lo");
    wait_mock(
        &d,
        Duration::from_secs(30),
        "deregistered when gone",
        || services().get(&sse).is_none(),
    );
    assert!(requests().iter().any(
        |r| r["method"] == "PUT" && r["path"] == format!("/v1/agent/service/deregister/{sse}")
    ));
    assert!(
        services().get("web-1").is_some(),
        "a foreign service is kept"
    );

    // The agent restarts empty: the next check update finds no check, and the sink
    // registers again.
    let (code, _) = http(mock(), "POST", "/mock/reset", &[], "");
    assert_eq!(code, 200);
    wait_mock(
        &d,
        Duration::from_secs(30),
        "registered again after a reset",
        || services().get(&streamable).is_some(),
    );

    // Bad registries are bounded and named; the consul sink stayed current meanwhile.
    let v = d.wait_for("/api/v1/sinks", Duration::from_secs(30), |v| {
        ["html", "huge", "hang", "acl"]
            .iter()
            .all(|n| sink_of(v, n)["last_error"].is_string())
    });
    let err = |n: &str| sink_of(&v, n)["last_error"].as_str().unwrap().to_string();
    assert!(
        err("html").contains("content type text/html"),
        "{}",
        err("html")
    );
    assert!(err("huge").contains("cap"), "{}", err("huge"));
    assert!(
        err("hang").contains("no answer within 1s") || err("hang").contains("timed out"),
        "{}",
        err("hang")
    );
    assert_eq!(sink_of(&v, "c")["state"], "ok", "{v}");
    let logs = d.logs();
    assert!(
        !logs.contains(CONSUL_TOKEN),
        "the token leaked into the logs"
    );

    // kill -9 and a restart: the reconciliation lists ours and re-registers the one server,
    // no duplicate, and the foreign service is never deregistered.
    let before = requests().len();
    d.kill9();
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    wait_mock(
        &d,
        Duration::from_secs(30),
        "reconciled after the restart",
        || {
            let r = requests();
            let after = &r[before.min(r.len())..];
            let listed = after.iter().position(|r| r["path"] == "/v1/agent/services");
            listed.is_some_and(|i| {
                after[i..].iter().any(|r| {
                    r["path"] == "/v1/agent/service/register"
                        && r["body"]["ID"] == streamable.as_str()
                })
            })
        },
    );
    let ours: Vec<String> = services()
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["Meta"]["source"] == "mcp-scout")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(ours, vec![streamable.clone()]);
    assert!(requests()
        .iter()
        .all(|r| r["path"] != "/v1/agent/service/deregister/web-1"));
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}
