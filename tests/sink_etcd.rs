//! The `etcd` sink as a user runs it: the real daemon feeding a real etcd 3.4 (Debian's
//! `etcd-server`, started by `scripts/peers/run.sh etcd`) from a real MCP server (the
//! FastMCP 1.x peer), everything on 127.0.0.181-189; what etcd holds is read through its own
//! v3 JSON gateway. Lease TTL 5 s, so the expiry steps take seconds.

mod common;

use common::daemon::sink_of;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::daemon::{free_port, http, job, write_config, Daemon, Scratch};
use common::{must_run_all, require_peers, start_peers, start_peers_with, Reaped};
use serde_json::{json, Value};

const PREFIX: &str = "/t/servers/";
const ETCD: &str = "127.0.0.181:2379";

/// Whether Debian's etcd is installed (the peer script runs it); under
/// `MCP_SCOUT_REQUIRE_ALL` its absence fails.
fn require_etcd(test: &str) -> bool {
    if !require_peers(test) {
        return false;
    }
    if Path::new("/usr/bin/etcd").exists() {
        return true;
    }
    assert!(
        !must_run_all(),
        "{test}: /usr/bin/etcd missing; apt-get install etcd-server (scripts/peers/setup.sh)"
    );
    eprintln!("SKIPPED {test}: /usr/bin/etcd missing; apt-get install etcd-server");
    false
}

/// De-chunk a `Transfer-Encoding: chunked` body, if it is one.
fn dechunk(body: &str) -> String {
    if serde_json::from_str::<Value>(body).is_ok() {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    for _ in 0..10_000 {
        let Some((size, tail)) = rest.split_once("\r\n") else {
            break;
        };
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// POST `body` to etcd's gateway at `addr`.
fn etcd(addr: &str, path: &str, body: &Value, token: Option<&str>) -> Value {
    let addr: SocketAddr = addr.parse().unwrap();
    let headers: Vec<(&str, &str)> = token.map(|t| ("Authorization", t)).into_iter().collect();
    let (code, text) = http(addr, "POST", path, &headers, &body.to_string());
    assert_eq!(code, 200, "{path}: {text}");
    serde_json::from_str(&dechunk(&text)).unwrap_or_else(|e| panic!("{path}: {e}: {text:?}"))
}

fn b64(s: &str) -> String {
    B64.encode(s)
}

/// Every key under `prefix` with its value (as JSON when it is) and lease.
fn keys(addr: &str, prefix: &str, token: Option<&str>) -> Vec<(String, Value, i64)> {
    let mut end = prefix.as_bytes().to_vec();
    *end.last_mut().unwrap() += 1;
    let v = etcd(
        addr,
        "/v3/kv/range",
        &json!({"key": b64(prefix), "range_end": B64.encode(&end)}),
        token,
    );
    v["kvs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            let key = String::from_utf8(B64.decode(kv["key"].as_str().unwrap()).unwrap()).unwrap();
            let raw = B64
                .decode(kv["value"].as_str().unwrap_or_default())
                .unwrap();
            let value = serde_json::from_slice(&raw)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
            let lease = kv["lease"].as_str().map_or(0, |l| l.parse().unwrap());
            (key, value, lease)
        })
        .collect()
}

/// Wait until `cond` holds on the keys under `prefix`, at most `limit`.
fn wait_keys(
    d: Option<&Daemon>,
    addr: &str,
    prefix: &str,
    limit: Duration,
    cond: impl Fn(&[(String, Value, i64)]) -> bool,
) -> Vec<(String, Value, i64)> {
    let start = Instant::now();
    loop {
        let k = keys(addr, prefix, None);
        if cond(&k) {
            return k;
        }
        assert!(
            start.elapsed() < limit,
            "etcd keys never matched within {limit:?}: {k:?}\n{}",
            d.map(Daemon::logs).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_etcd(data: &Path) -> Reaped {
    let data = data.display().to_string();
    let extra: &[&str] = &["--data", &data];
    start_peers_with(&[("etcd", "127.0.0.181", 2379, extra)])
        .pop()
        .unwrap()
}

fn ttl_of(lease: i64) -> i64 {
    let v = etcd(
        ETCD,
        "/v3/lease/timetolive",
        &json!({"ID": lease.to_string()}),
        None,
    );
    v["TTL"].as_str().map_or(-1, |t| t.parse().unwrap())
}

fn server_id(d: &Daemon, ip: &str) -> String {
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(30), |v| {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["ip"] == ip && s["status"] == "active")
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
fn records_follow_the_inventory_under_a_lease_through_etcd_and_daemon_restarts() {
    if !require_etcd("sink_etcd") {
        return;
    }
    let dir = Scratch::new("sink-etcd");
    let data = dir.path("etcd-data");
    let mut etcd_peer = Some(start_etcd(&data));
    let mut mcp = Some(start_peers(&[("py1-streamable", "127.0.0.182", 8000)]));
    let _html = start_peers(&[("registry-html", "127.0.0.185", 8000)]);
    // Somebody else's key under our prefix: never touched.
    etcd(
        ETCD,
        "/v3/kv/put",
        &json!({"key": b64(&format!("{PREFIX}theirs")), "value": b64("{\"owner\":\"ops\"}")}),
        None,
    );
    // 0. `scan --push etcd=…`: one record per server, with no lease (no daemon keeps one).
    let out = common::scout(&[
        "scan",
        "127.0.0.182",
        "-p",
        "8000",
        "--push",
        &format!("etcd=http://{ETCD}"),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let pushed = keys(ETCD, "/mcp-scout/servers/", None);
    assert_eq!(pushed.len(), 1, "{pushed:?}\n{}", common::stderr(&out));
    assert_eq!(
        pushed[0].1["url"], "http://127.0.0.182:8000/mcp",
        "{pushed:?}"
    );
    assert_eq!(pushed[0].1["source"], "mcp-scout", "{pushed:?}");
    assert_eq!(pushed[0].2, 0, "a pushed record has no lease: {pushed:?}");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // The first endpoint refuses connections: the sink fails over to the second.
    let sinks = format!(
        "sinks:\n  - name: etcd\n    type: etcd\n    endpoints: ['http://127.0.0.189:1', 'http://{ETCD}']\n    prefix: {PREFIX}\n    lease_ttl: 5s\n    timeout: 2s\n    retry: {{initial: 200ms, max: 1s}}\n  - name: html\n    type: etcd\n    endpoints: ['http://127.0.0.185:8000']\n    timeout: 2s\n    retry: {{initial: 200ms, max: 1s}}\n"
    );
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.182", "1h"), &sinks);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    d.run_once_more("lo");
    let id = server_id(&d, "127.0.0.182");
    let key = format!("{PREFIX}{id}");

    // 1. The record appears at prefix + id, as the API shows the server, on a lease.
    let k = wait_keys(Some(&d), ETCD, PREFIX, Duration::from_secs(20), |k| {
        k.iter().any(|(name, _, _)| *name == key)
    });
    let (_, rec, lease) = k.iter().find(|(name, _, _)| *name == key).unwrap().clone();
    assert_eq!(rec["id"], id.as_str(), "{rec}");
    assert_eq!(rec["url"], "http://127.0.0.182:8000/mcp", "{rec}");
    assert_eq!(rec["transport"], "streamable-http", "{rec}");
    assert_eq!(rec["status"], "active", "{rec}");
    assert_eq!(rec["source"], "mcp-scout", "{rec}");
    assert_eq!(
        rec["scanner"].as_str().unwrap(),
        format!("{}:{}", hostname(), d.pid())
    );
    let tools: Vec<&str> = rec["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!tools.is_empty(), "{rec}");
    let (_, api) = d.get_json(&format!("/api/v1/servers/{id}"));
    assert_eq!(rec["tools"], api["tools"]);
    assert!(lease != 0, "the record has no lease: {k:?}");
    let theirs = k.iter().find(|(n, _, _)| n.ends_with("theirs")).unwrap();
    assert_eq!(theirs.2, 0);
    // The lease is kept alive: its TTL goes back up (keep-alive every 5s/3).
    let start = Instant::now();
    let mut low = i64::MAX;
    loop {
        let t = ttl_of(lease);
        assert!(t > 0, "the lease expired: {}", d.logs());
        if t < low {
            low = t;
        } else if t > low {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lease TTL never went back up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A registry answering HTML is a bounded error on its sink only.
    let v = d.wait_for("/api/v1/sinks", Duration::from_secs(20), |v| {
        sink_of(v, "html")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not the expected JSON"))
    });
    assert_eq!(sink_of(&v, "etcd")["state"], "ok", "{v}");

    // 1b. The lease ends under the daemon (revoked here, as an expiry would): etcd drops the
    // key; the next keep-alive finds no TTL, and a new lease carries the record again.
    etcd(
        ETCD,
        "/v3/lease/revoke",
        &json!({"ID": lease.to_string()}),
        None,
    );
    wait_keys(Some(&d), ETCD, PREFIX, Duration::from_secs(15), |k| {
        k.iter()
            .any(|(name, _, l)| *name == key && *l != 0 && *l != lease)
    });

    // 2. etcd goes down while the server goes; etcd comes back with its data: converges.
    drop(etcd_peer.take());
    drop(mcp.take());
    d.run_once_more("lo");
    d.run_once_more("lo");
    d.wait_for(
        &format!("/api/v1/servers/{id}"),
        Duration::from_secs(10),
        |v| v["status"] == "gone",
    );
    d.wait_for("/api/v1/sinks", Duration::from_secs(20), |v| {
        sink_of(v, "etcd")["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("no endpoint of 2 answered; the last: POST /v3/kv/"))
    });
    etcd_peer = Some(start_etcd(&data));
    let k = wait_keys(Some(&d), ETCD, PREFIX, Duration::from_secs(30), |k| {
        !k.iter().any(|(name, _, _)| *name == key)
    });
    assert!(k.iter().any(|(n, _, _)| n.ends_with("theirs")), "{k:?}");

    // 3. Back: the key is back.
    mcp = Some(start_peers(&[("py1-streamable", "127.0.0.182", 8000)]));
    d.run_once_more("lo");
    wait_keys(Some(&d), ETCD, PREFIX, Duration::from_secs(20), |k| {
        k.iter().any(|(name, _, _)| *name == key)
    });

    // 3b. A second daemon on the same prefix finds the same server: its put moves the key
    // to its lease and scanner. The first daemon forgetting the server leaves the key to
    // the second; once the second dies, nobody keeps it alive and it expires.
    let dir_b = Scratch::new("sink-etcd-b");
    let port_b = free_port();
    let sinks_b = format!(
        "sinks:\n  - name: etcd\n    type: etcd\n    endpoints: ['http://{ETCD}']\n    prefix: {PREFIX}\n    lease_ttl: 5s\n    timeout: 2s\n"
    );
    let cfg_b = write_config(&dir_b, port_b, &job("lo", "127.0.0.182", "1h"), &sinks_b);
    let addr_b: SocketAddr = format!("127.0.0.1:{port_b}").parse().unwrap();
    let b = Daemon::start(&cfg_b, dir_b.path("daemon.log"), addr_b);
    let scanner_b = format!("{}:{}", hostname(), b.pid());
    wait_keys(Some(&b), ETCD, PREFIX, Duration::from_secs(30), |k| {
        k.iter()
            .any(|(name, v, _)| *name == key && v["scanner"] == scanner_b.as_str())
    });
    let (code, body) = d.http(
        "DELETE",
        &format!("/api/v1/servers/{id}"),
        &[("Authorization", &common::daemon::auth())],
        "",
    );
    assert_eq!(code, 200, "{body}");
    let forgot: Value = serde_json::from_str(&body).unwrap();
    let upto = forgot["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .max()
        .unwrap();
    d.wait_for("/api/v1/sinks", Duration::from_secs(20), |v| {
        sink_of(v, "etcd")["cursor"].as_i64().unwrap() >= upto && sink_of(v, "etcd")["listed"] == 0
    });
    let k = keys(ETCD, PREFIX, None);
    assert!(
        k.iter()
            .any(|(name, v, _)| *name == key && v["scanner"] == scanner_b.as_str()),
        "the first daemon deleted a key the second one wants: {k:?}\n{}",
        d.logs()
    );
    b.kill9();
    wait_keys(None, ETCD, PREFIX, Duration::from_secs(15), |k| {
        !k.iter().any(|(name, _, _)| *name == key)
    });
    d.run_once_more("lo");
    wait_keys(Some(&d), ETCD, PREFIX, Duration::from_secs(20), |k| {
        k.iter().any(|(name, _, _)| *name == key)
    });

    // 4. kill -9: nobody keeps the lease alive, the key vanishes within the TTL.
    d.kill9();
    let killed = Instant::now();
    wait_keys(None, ETCD, PREFIX, Duration::from_secs(15), |k| {
        !k.iter().any(|(name, _, _)| *name == key)
    });
    eprintln!("key gone {:?} after kill -9", killed.elapsed());

    // 5. The daemon restarted: the key is back once, with the new scanner and a new lease.
    let d = Daemon::start(&cfg, dir.path("daemon2.log"), addr);
    let k = wait_keys(Some(&d), ETCD, PREFIX, Duration::from_secs(20), |k| {
        k.iter().any(|(name, _, _)| *name == key)
    });
    let ours: Vec<_> = k
        .iter()
        .filter(|(_, v, _)| v["source"] == "mcp-scout")
        .collect();
    assert_eq!(ours.len(), 1, "{k:?}");
    assert_eq!(
        ours[0].1["scanner"].as_str().unwrap(),
        format!("{}:{}", hostname(), d.pid())
    );
    assert!(ours[0].2 != 0 && ours[0].2 != lease, "{k:?}");

    // 6. Gone: the key is deleted (gone_after: 2 runs), theirs is kept.
    drop(mcp.take());
    d.run_once_more("lo");
    d.run_once_more("lo");
    let k = wait_keys(Some(&d), ETCD, PREFIX, Duration::from_secs(20), |k| {
        !k.iter().any(|(name, _, _)| *name == key)
    });
    assert_eq!(k.len(), 1, "only theirs is left: {k:?}");
    let (_, v) = d.get_json("/api/v1/sinks");
    assert_eq!(sink_of(&v, "etcd")["dead_letter_count"], 0, "{v}");
    d.stop();
    drop(etcd_peer);
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn with_etcd_auth_the_sink_authenticates_and_the_password_is_never_shown() {
    if !require_etcd("sink_etcd_auth") {
        return;
    }
    let dir = Scratch::new("sink-etcd-auth");
    let etcd_addr = "127.0.0.183:2379";
    let _etcd = start_peers_with(&[(
        "etcd",
        "127.0.0.183",
        2379,
        &["--auth", "scout:Pw-5ecret-etcd"],
    )]);
    let _mcp = start_peers(&[("py1-streamable", "127.0.0.184", 8000)]);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sinks = format!(
        "sinks:\n  - name: etcd\n    type: etcd\n    endpoints: ['http://{etcd_addr}']\n    lease_ttl: 5s\n    user: scout\n    password: Pw-5ecret-etcd\n    timeout: 2s\n"
    );
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.184", "1h"), &sinks);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    d.run_once_more("lo");
    let id = server_id(&d, "127.0.0.184");
    let token = {
        let v = etcd(
            etcd_addr,
            "/v3/auth/authenticate",
            &json!({"name": "scout", "password": "Pw-5ecret-etcd"}),
            None,
        );
        v["token"].as_str().unwrap().to_string()
    };
    let start = Instant::now();
    loop {
        let k = keys(etcd_addr, "/mcp-scout/servers/", Some(&token));
        if k.iter().any(|(n, _, _)| n.ends_with(&id)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no key: {k:?}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = common::scout(&["config", "check", cfg.to_str().unwrap(), "--print"]);
    let printed = common::stdout(&out);
    assert!(printed.contains("password"), "{printed}");
    assert!(!printed.contains("Pw-5ecret-etcd"), "{printed}");
    d.stop();
    let logs = std::fs::read_to_string(dir.path("daemon.log")).unwrap();
    assert!(!logs.contains("Pw-5ecret-etcd"), "{logs}");
    assert!(!logs.contains(&token), "{logs}");
}
