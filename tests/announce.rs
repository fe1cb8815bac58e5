//! Announce-based discovery against real peers inside test namespaces: python-zeroconf
//! publishing real MCP servers over mDNS, and dnsmasq serving SRV/TXT/A records
//! (scripts/peers/dns-records.conf). mDNS never runs in the machine's own namespace.

mod common;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require_peers, require_root, stderr, Publisher, Reaped, Testnet};
use serde_json::Value;

fn ready(test: &str) -> bool {
    require_root(test) && require_peers(test)
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn mdns_server_at_an_unusual_port_and_path_is_found_confirmed_and_merged() {
    if !ready("mdns_server_at_an_unusual_port_and_path_is_found_confirmed_and_merged") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let _srv = net.peer(
        "h1",
        "py1-streamable",
        "10.99.0.11",
        8765,
        Some("/custom/mcp"),
    );
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    publisher.cmd(
        "announce srv1 _mcp._tcp.local. 10.99.0.11 8765 path=/custom/mcp transport=streamable-http",
    );

    // mDNS alone: nothing swept, the announcement leads to a confirmed server.
    let out = net.scout(
        "scan",
        &["scan", "--mdns", "--mdns-wait", "2s", "-o", "json"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let f = &doc["findings"].as_array().unwrap()[..];
    assert_eq!(f.len(), 1, "{doc}");
    assert_eq!(f[0]["kind"], "mcp");
    assert_eq!(f[0]["url"], "http://10.99.0.11:8765/custom/mcp");
    assert_eq!(f[0]["origins"], serde_json::json!(["mdns"]));
    assert_eq!(
        f[0]["announced_as"],
        serde_json::json!(["srv1._mcp._tcp.local."])
    );

    // --interface restricts browsing: on lo alone the LAN announcement is not seen.
    for (iface, want) in [("lo", 0), ("eth0", 1)] {
        let args = [
            "scan",
            "--mdns",
            "--mdns-wait",
            "2s",
            "--interface",
            iface,
            "-o",
            "json",
        ];
        let out = net.scout("scan", &args, Duration::from_secs(30));
        let n = json(&out)["findings"].as_array().unwrap().len();
        assert_eq!(n, want, "--interface {iface}: {}", stderr(&out));
    }

    // Swept and announced: one server, one record, both origins.
    let out = net.scout(
        "scan",
        &[
            "scan",
            "10.99.0.11",
            "-p",
            "8765",
            "--mdns",
            "--mdns-wait",
            "2s",
            "-o",
            "json",
        ],
        Duration::from_secs(30),
    );
    let doc = json(&out);
    let f = &doc["findings"].as_array().unwrap()[..];
    assert_eq!(f.len(), 1, "{doc}");
    assert_eq!(f[0]["origins"], serde_json::json!(["sweep", "mdns"]));
}

#[test]
fn an_mdns_announcement_with_only_an_aaaa_record_is_found_over_ff02_fb() {
    if !ready("an_mdns_announcement_with_only_an_aaaa_record_is_found_over_ff02_fb") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let _srv = net.peer("h1", "py1-streamable", "fd99::11", 8765, None);
    // The publisher speaks only IPv6 mDNS (ff02::fb) and the instance has only an AAAA record.
    let mut publisher = Publisher::start_with(
        &net.ns("h1"),
        "10.99.0.11",
        &["--ip-version", "6", "--interface-ip6", "fd99::11"],
    );
    publisher.cmd("announce v6srv _mcp._tcp.local. fd99::11 8765 path=/mcp");
    let out = net.scout(
        "scan",
        &["scan", "--mdns", "--mdns-wait", "3s", "-o", "json"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let f = &doc["findings"].as_array().unwrap()[..];
    assert_eq!(f.len(), 1, "{doc}");
    assert_eq!(f[0]["ip"], "fd99::11", "{doc}");
    assert_eq!(f[0]["kind"], "mcp", "{doc}");
    assert_eq!(f[0]["url"], "http://[fd99::11]:8765/mcp", "{doc}");
    assert_eq!(
        f[0]["announced_as"],
        serde_json::json!(["v6srv._mcp._tcp.local."])
    );
}

/// The JSON lines of a running `watch`, read on a thread.
struct WatchEvents(std::sync::mpsc::Receiver<Value>);

impl WatchEvents {
    fn follow(watch: &mut std::process::Child) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        let out = watch.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        Self(rx)
    }

    /// The next event named `want` (others are skipped), within 20 s.
    fn next(&self, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self
                .0
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {want} event within 20 s"));
            eprintln!("watch event: {ev}");
            if ev["event"] == want {
                return ev;
            }
        }
    }
}

#[test]
fn watch_reports_announcements_and_goodbyes() {
    if !ready("watch_reports_announcements_and_goodbyes") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    // Announced before watching starts, as a running service is.
    publisher.cmd("announce w1 _mcp._tcp.local. 10.99.0.11 9000 path=/mcp");
    let mut watch = net
        .scout_command("scan", &[], &["watch", "--mdns"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let events = WatchEvents::follow(&mut watch);
    let _watch = Reaped(watch);
    let next = |want: &str| events.next(want);
    let ev = next("appeared");
    assert_eq!(
        (ev["name"].as_str(), ev["port"].as_u64()),
        (Some("w1._mcp._tcp.local."), Some(9000)),
        "{ev}"
    );
    assert_eq!(ev["hints"]["path"], "/mcp");
    publisher.cmd("withdraw w1 _mcp._tcp.local.");
    let ev = next("gone");
    assert_eq!(ev["name"], "w1._mcp._tcp.local.", "{ev}");
}

#[test]
fn watch_reports_gone_for_a_service_announced_while_it_starts_and_withdrawn_at_once() {
    if !ready("watch_reports_gone_for_a_service_announced_while_it_starts") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    let mut watch = net
        .scout_command("scan", &[], &["watch", "--mdns"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Announced while watch starts: watch's first query reaches the publisher while it
    // announces, and python-zeroconf (which may multicast a record once a second) sends its
    // answer about a second later, after the goodbyes below: a stale answer with full TTLs
    // that revives the instance in mdns-sd's cache. watch verifies each new instance
    // (RFC 6762 §10.4), so the goodbye still ends in `gone`.
    publisher.cmd("announce r1 _mcp._tcp.local. 10.99.0.11 9000 path=/mcp");
    let events = WatchEvents::follow(&mut watch);
    let _watch = Reaped(watch);
    let next = |want: &str| events.next(want);
    let ev = next("appeared");
    assert_eq!(ev["name"], "r1._mcp._tcp.local.", "{ev}");
    // Withdrawn right after it appeared.
    publisher.cmd("withdraw r1 _mcp._tcp.local.");
    let ev = next("gone");
    assert_eq!(ev["name"], "r1._mcp._tcp.local.", "{ev}");
}

#[test]
fn mdns_flood_and_malformed_packets_leave_the_scanner_working() {
    if !ready("mdns_flood_and_malformed_packets_leave_the_scanner_working") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let _srv = net.peer("h1", "py1-stateless-json", "10.99.0.11", 8765, None);
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    publisher.cmd("flood 1000 _mcp._tcp.local. 10.99.0.11 9999");
    publisher.cmd("bigtxt big1 _mcp._tcp.local. 10.99.0.11 9998 251");
    publisher.cmd("garbage 500 7");
    publisher.cmd("announce real1 _mcp._tcp.local. 10.99.0.11 8765 path=/mcp");
    let start = Instant::now();
    let out = net.scout(
        "scan",
        &["scan", "--mdns", "--mdns-wait", "3s", "-o", "json"],
        Duration::from_secs(60),
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let mcp: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "mcp")
        .collect();
    assert_eq!(mcp.len(), 1, "{doc}");
    assert!(mcp[0]["announced_as"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "real1._mcp._tcp.local."));
    // The flood points at one address and port: it is one candidate, not a thousand probes.
    assert!(
        doc["scan"]["announced"].as_u64().unwrap() <= 3,
        "{}",
        doc["scan"]
    );
}

#[test]
fn srv_records_are_resolved_walled_and_reported_plainly() {
    if !ready("srv_records_are_resolved_walled_and_reported_plainly") {
        return;
    }
    let net = Testnet::up(2, &[]);
    let _dns = net.dnsmasq("scan", "10.99.0.2");
    let _h1 = net.listen("h1", "10.99.0.11", &[8000]);
    let _h2 = net.listen("h2", "10.99.0.12", &[8001]);
    let names = [
        "_mcp._tcp.example.test",
        "_cname._tcp.example.test",
        "_gone._tcp.example.test",
        "_nothing._tcp.example.test",
        "_outside._tcp.example.test",
    ];
    let mut args = vec![
        "scan",
        "--no-fingerprint",
        "--dns-server",
        "10.99.0.2",
        "-o",
        "json",
    ];
    for n in &names {
        args.extend(["--srv", n]);
    }
    let out = net.scout("scan", &args, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let doc = json(&out);
    // The schema holds with announced origins and an out_of_scope entry too.
    common::assert_document_schema(&doc);
    let f = &doc["findings"].as_array().unwrap()[..];
    let got: Vec<(String, u64)> = f
        .iter()
        .map(|r| {
            (
                r["ip"].as_str().unwrap().to_string(),
                r["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("10.99.0.11".to_string(), 8000),
            ("10.99.0.12".to_string(), 8001)
        ],
        "{doc}"
    );
    // srv1 is reached by the SRV name and through a CNAME chain: one record, both names.
    let names1: Vec<&str> = f[0]["announced_as"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        names1.contains(&"_mcp._tcp.example.test") && names1.contains(&"_cname._tcp.example.test"),
        "{names1:?}"
    );
    assert_eq!(f[0]["origins"], serde_json::json!(["srv"]));
    let oos = &doc["scan"]["out_of_scope"];
    assert_eq!(
        oos,
        &serde_json::json!([{"ip": "192.0.2.10", "port": 8000, "origin": "srv", "name": "_outside._tcp.example.test"}])
    );
    assert!(
        err.contains("_nothing._tcp.example.test: NXDOMAIN"),
        "{err}"
    );
    assert!(
        err.contains("_gone._tcp.example.test: service explicitly unavailable"),
        "{err}"
    );
    assert!(
        err.contains("out of scope") && err.contains("not probed"),
        "{err}"
    );

    // --scope narrows the wall: srv1 is then reported, not contacted.
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--no-fingerprint",
            "--dns-server",
            "10.99.0.2",
            "--srv",
            "_mcp._tcp.example.test",
            "--scope",
            "10.99.0.12/32",
            "-o",
            "json",
        ],
        Duration::from_secs(30),
    );
    let doc = json(&out);
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["findings"][0]["ip"], "10.99.0.12");
    let walled: Vec<&str> = doc["scan"]["out_of_scope"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["ip"].as_str().unwrap())
        .collect();
    assert!(walled.contains(&"10.99.0.11"), "{walled:?}");
}

#[test]
fn srv_targets_that_resolve_only_to_aaaa_are_found_at_their_ipv6_address() {
    if !ready("srv_targets_that_resolve_only_to_aaaa_are_found_at_their_ipv6_address") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let _dns = net.dnsmasq("scan", "10.99.0.2");
    let _srv = net.peer("h1", "py1-streamable", "fd99::11", 8000, None);
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--srv",
            "_v6._tcp.example.test",
            "--dns-server",
            "10.99.0.2",
            "-o",
            "json",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json(&out);
    let f = &doc["findings"].as_array().unwrap()[..];
    assert_eq!(f.len(), 1, "{doc}");
    assert_eq!(f[0]["ip"], "fd99::11", "{doc}");
    assert_eq!(f[0]["kind"], "mcp", "{doc}");
    assert_eq!(f[0]["origins"], serde_json::json!(["srv"]));
    assert_eq!(
        f[0]["announced_as"],
        serde_json::json!(["_v6._tcp.example.test"])
    );
}

#[test]
fn a_dead_dns_server_times_out_with_a_clear_message() {
    if !ready("a_dead_dns_server_times_out_with_a_clear_message") {
        return;
    }
    // 10.99.1.0/24 is blackholed by the test router: the query is never answered.
    let net = Testnet::up(1, &[]);
    let start = Instant::now();
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--srv",
            "_mcp._tcp.example.test",
            "--dns-server",
            "10.99.1.53",
            "--dns-timeout",
            "1s",
        ],
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "nothing found, no error: {err}");
    assert!(
        err.contains("DNS server 10.99.1.53:53 did not answer") && err.contains("within 1s"),
        "{err}"
    );
}

/// dnsmasq on a loopback address (allowed outside namespaces), for library-level tests.
struct LoopDns(String);

impl LoopDns {
    fn up(tag: &str, ip: &str, port: u16) -> Self {
        let out = Command::new(common::root().join("scripts/peers/dnsmasq.sh"))
            .args(["up", tag, ip, &port.to_string()])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("READY"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(tag.to_string())
    }
}

impl Drop for LoopDns {
    fn drop(&mut self) {
        let _ = Command::new(common::root().join("scripts/peers/dnsmasq.sh"))
            .args(["down", &self.0])
            .output();
    }
}

#[tokio::test]
async fn srv_targets_come_in_priority_then_weight_order_and_watch_reports_them() {
    use mcp_scout::discover::candidate::DiscoveryEvent;
    use mcp_scout::discover::dns_srv::{SrvAnswer, SrvOptions, SrvResolver};
    if !ready("srv_targets_come_in_priority_then_weight_order_and_watch_reports_them") {
        return;
    }
    let port = 5300 + (std::process::id() % 500) as u16;
    let _dns = LoopDns::up(&format!("lo{}", std::process::id()), "127.0.0.53", port);
    let r = SrvResolver::new(SrvOptions {
        server: Some(format!("127.0.0.53:{port}").parse().unwrap()),
        ..SrvOptions::default()
    })
    .unwrap();
    // dnsmasq rotates the answer order on every query: the order must be ours.
    for _ in 0..3 {
        let SrvAnswer::Targets { targets, hints } =
            r.resolve("_mcp._tcp.example.test").await.unwrap()
        else {
            panic!()
        };
        let order: Vec<(&str, u16, u16, u16)> = targets
            .iter()
            .map(|t| (t.target.as_str(), t.priority, t.weight, t.port))
            .collect();
        assert_eq!(
            order,
            [
                ("srv1.example.test.", 10, 60, 8000),
                ("srv2.example.test.", 10, 40, 8001),
                ("srv3.example.test.", 20, 100, 9000)
            ]
        );
        assert_eq!(
            targets[0].addrs,
            ["10.99.0.11".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(hints.path.as_deref(), Some("/mcp"));
    }
    assert_eq!(
        r.resolve("_gone._tcp.example.test").await.unwrap(),
        SrvAnswer::Unavailable
    );
    assert_eq!(
        r.resolve("_nothing._tcp.example.test").await.unwrap(),
        SrvAnswer::NxDomain
    );
    // Continuous mode: the first resolution reports every target as appeared.
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let stop = tokio_util::sync::CancellationToken::new();
    let names = vec!["_custom._tcp.example.test".to_string()];
    let w = {
        let (r, stop) = (r.clone(), stop.clone());
        tokio::spawn(async move { r.watch(&names, Duration::from_millis(200), tx, stop).await })
    };
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    match ev {
        DiscoveryEvent::Appeared(c) => {
            assert_eq!(c.addr, "10.99.0.14:8765".parse().unwrap());
            assert_eq!(c.hints.path.as_deref(), Some("/custom/mcp"));
        }
        other => panic!("{other:?}"),
    }
    // Unchanged answers on later intervals report nothing new.
    assert!(tokio::time::timeout(Duration::from_millis(700), rx.recv())
        .await
        .is_err());
    stop.cancel();
    w.await.unwrap();
}

#[tokio::test]
async fn srv_answers_are_capped_at_64_targets_in_priority_order() {
    use mcp_scout::discover::dns_srv::{SrvAnswer, SrvOptions, SrvResolver, MAX_TARGETS};
    if !ready("srv_answers_are_capped_at_64_targets_in_priority_order") {
        return;
    }
    assert_eq!(MAX_TARGETS, 64, "the README's figure");
    let port = 5800 + (std::process::id() % 500) as u16;
    let _dns = LoopDns::up(&format!("lo{}cap", std::process::id()), "127.0.0.53", port);
    let r = SrvResolver::new(SrvOptions {
        server: Some(format!("127.0.0.53:{port}").parse().unwrap()),
        ..SrvOptions::default()
    })
    .unwrap();
    // _many has 70 targets, priorities 0..69 at ports 9001..9070 (dns-records.conf).
    let SrvAnswer::Targets { targets, .. } = r.resolve("_many._tcp.example.test").await.unwrap()
    else {
        panic!("no targets")
    };
    let ports: Vec<u16> = targets.iter().map(|t| t.port).collect();
    let want: Vec<u16> = (9001..=9064).collect();
    assert_eq!(
        ports, want,
        "the 64 lowest priorities, in order; none beyond"
    );
    assert!(targets
        .iter()
        .all(|t| t.addrs == ["10.99.0.11".parse::<std::net::IpAddr>().unwrap()]));
}

#[test]
fn mdns_all_enumerates_types_that_are_not_browsed_by_default() {
    if !ready("mdns_all_enumerates_types_that_are_not_browsed_by_default") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let _srv = net.peer("h1", "py1-stateless-json", "10.99.0.11", 7444, None);
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    publisher.cmd("announce odd1 _agent._tcp.local. 10.99.0.11 7444 path=/mcp");
    let out = net.scout(
        "scan",
        &["scan", "--mdns", "--mdns-wait", "2s", "-o", "json"],
        Duration::from_secs(30),
    );
    assert_eq!(
        json(&out)["findings"].as_array().unwrap().len(),
        0,
        "not a default type"
    );
    let out = net.scout(
        "scan",
        &["scan", "--mdns-all", "--mdns-wait", "4s", "-o", "json"],
        Duration::from_secs(30),
    );
    let doc = json(&out);
    let f = &doc["findings"].as_array().unwrap()[..];
    assert_eq!(f.len(), 1, "{doc}");
    assert_eq!(
        f[0]["announced_as"],
        serde_json::json!(["odd1._agent._tcp.local."])
    );
    assert_eq!(f[0]["kind"], "mcp");
}

#[test]
fn mdns_instances_beyond_4096_are_counted_and_ignored() {
    if !ready("mdns_instances_beyond_4096_are_counted_and_ignored") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    // 5,000 instances, all at one address and port (about 3 s to register).
    publisher.cmd_within(
        "flood 5000 _mcp._tcp.local. 10.99.0.11 9999",
        Duration::from_secs(120),
    );
    // Nothing listens on 9999: --report all keeps the closed port's record, whose
    // announced_as lists every instance that was tracked. How many of the 5,000 the browser
    // resolves within its wait depends on the machine's load (about 4,400 in 5 s idle, 3,300
    // in 8 s beside the rest of the suite), so the wait grows over at most three runs until
    // the cap is reached; each run must stay within it.
    let mut tracked = 0;
    for wait in ["8s", "16s", "30s"] {
        let out = net.scout(
            "scan",
            &[
                "scan",
                "--mdns",
                "--mdns-wait",
                wait,
                "--no-fingerprint",
                "--report",
                "all",
                "-o",
                "json",
            ],
            Duration::from_secs(90),
        );
        let err = stderr(&out);
        let doc = json(&out);
        let f = &doc["findings"].as_array().unwrap()[..];
        assert_eq!(f.len(), 1, "one address and port: {}", doc["scan"]);
        let names: std::collections::BTreeSet<&str> = f[0]["announced_as"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("flood-")), "{names:?}");
        tracked = names.len();
        assert!(
            tracked <= 4096,
            "{tracked} instances tracked, above the cap"
        );
        if tracked == 4096 {
            assert!(
                err.contains("instances ignored beyond the 4096 tracked"),
                "the overflow is counted and said: {err}"
            );
            break;
        }
        assert!(
            !err.contains("instances ignored"),
            "{tracked} tracked, yet some ignored: {err}"
        );
        eprintln!("--mdns-wait {wait}: {tracked} instances resolved, waiting longer");
    }
    assert_eq!(
        tracked, 4096,
        "the cap was never reached: only {tracked} resolved"
    );
}
