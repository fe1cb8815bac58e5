//! The sweep across the namespace LAN of scripts/testnet.sh: live, closed, filtered
//! (blackholed) and dead hosts, ICMP host discovery inside a namespace, `--local` and its
//! filter (container interfaces, wide prefixes), and the
//! fallback when ICMP is not permitted. Needs root (network namespaces).
//!
//! LAN: scanner 10.99.0.2, router 10.99.0.1 (blackholes 10.99.1.0/24), hosts 10.99.0.11..,
//! nobody at 10.99.0.200-254; beside it the ULA fd99::/64 with the same last digits
//! (scanner fd99::2, router fd99::1, hosts fd99::11..). These addresses exist only inside
//! the test's namespaces.

mod common;
use std::time::Duration;

use common::{ndjson_states, require_root, stderr, Testnet};

#[test]
fn lan_classifies_open_closed_filtered_and_unreachable() {
    if !require_root("lan_classifies_open_closed_filtered_and_unreachable") {
        return;
    }
    let net = Testnet::up(2, &[]);
    let _h1 = net.listen("h1", "10.99.0.11", &[3000, 8000]);
    let _h2 = net.listen("h2", "10.99.0.12", &[8080]);
    // A fixed 5 s deadline outlasts the ~3 s ARP failure, so the dead address is reported
    // unreachable; the blackholed one never answers and is filtered.
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--no-fingerprint",
            "10.99.0.11-12",
            "10.99.0.250",
            "10.99.1.5",
            "-p",
            "3000,8000,8080",
            "--no-ping",
            "--timeout",
            "5s",
            "--min-timeout",
            "5s",
            "--retries",
            "0",
            "--report",
            "all",
            "-o",
            "ndjson",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut got = ndjson_states(&out);
    got.sort();
    let want: Vec<(String, u16, String)> = [
        ("10.99.0.11", 3000, "open"),
        ("10.99.0.11", 8000, "open"),
        ("10.99.0.11", 8080, "closed"),
        ("10.99.0.12", 3000, "closed"),
        ("10.99.0.12", 8000, "closed"),
        ("10.99.0.12", 8080, "open"),
        ("10.99.0.250", 3000, "unreachable"),
        ("10.99.0.250", 8000, "unreachable"),
        ("10.99.0.250", 8080, "unreachable"),
        ("10.99.1.5", 3000, "filtered"),
        ("10.99.1.5", 8000, "filtered"),
        ("10.99.1.5", 8080, "filtered"),
    ]
    .iter()
    .map(|(a, p, s)| (a.to_string(), *p, s.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn icmp_discovery_in_a_namespace_skips_dead_hosts() {
    if !require_root("icmp_discovery_in_a_namespace_skips_dead_hosts") {
        return;
    }
    let net = Testnet::up(2, &[]);
    let _h1 = net.listen("h1", "10.99.0.11", &[8000]);
    let _h2 = net.listen("h2", "10.99.0.12", &[3000]);
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--no-fingerprint",
            "10.99.0.0/24",
            "-p",
            "3000,8000,8080",
            "-o",
            "json",
        ],
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &doc["scan"];
    // Up: router .1, scanner .2, h1 .11, h2 .12.
    assert_eq!(s["hosts_up"], 4, "{s}");
    assert_eq!(s["skipped_host_down"], (256 - 4) * 3, "{s}");
    assert_eq!(s["probes_done"], 256 * 3);
    assert_eq!(
        open_pairs(&doc),
        [
            ("10.99.0.11".to_string(), 8000),
            ("10.99.0.12".to_string(), 3000)
        ]
    );
    assert!(!err.contains("ICMP"), "ICMP works as root: {err}");
}

/// The open (address, port) pairs of a JSON scan document, addresses as printed.
fn open_pairs(doc: &serde_json::Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "open")
        .map(|f| {
            (
                f["ip"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_ipv6_slash_120_sweep_finds_the_same_servers_as_ipv4() {
    if !require_root("an_ipv6_slash_120_sweep_finds_the_same_servers_as_ipv4") {
        return;
    }
    // Each host holds 10.99.0.(10+I) and its twin fd99::(10+I); both listen on the same ports.
    let net = Testnet::up(2, &[]);
    let _h1 = net.listen("h1", "10.99.0.11", &[3000, 8000]);
    let _h1v6 = net.listen("h1", "fd99::11", &[3000, 8000]);
    let _h2 = net.listen("h2", "10.99.0.12", &[8080]);
    let _h2v6 = net.listen("h2", "fd99::12", &[8080]);
    let scan = |target: &str| -> serde_json::Value {
        let out = net.scout(
            "scan",
            &[
                "scan",
                "--no-fingerprint",
                target,
                "-p",
                "3000,8000,8080",
                "--no-ping",
                "--timeout",
                "1s",
                "--retries",
                "0",
                "-o",
                "json",
            ],
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "{target}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v4 = open_pairs(&scan("10.99.0.0/24"));
    let v6 = open_pairs(&scan("fd99::/120"));
    assert_eq!(
        v4,
        [
            ("10.99.0.11".to_string(), 3000),
            ("10.99.0.11".to_string(), 8000),
            ("10.99.0.12".to_string(), 8080)
        ]
    );
    let twins: Vec<(String, u64)> = v4
        .iter()
        .map(|(ip, p)| (format!("fd99::{}", ip.rsplit('.').next().unwrap()), *p))
        .collect();
    assert_eq!(
        v6, twins,
        "the IPv6 sweep finds each server at its twin address"
    );
}

#[test]
fn icmpv6_discovery_skips_dead_hosts() {
    if !require_root("icmpv6_discovery_skips_dead_hosts") {
        return;
    }
    let net = Testnet::up(2, &[]);
    let _h1 = net.listen("h1", "fd99::11", &[8000]);
    let _h2 = net.listen("h2", "fd99::12", &[3000]);
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--no-fingerprint",
            "fd99::/120",
            "-p",
            "3000,8000,8080",
            "-o",
            "json",
        ],
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &doc["scan"];
    // Up by ICMPv6 echo: router ::1, scanner ::2, h1 ::11, h2 ::12.
    assert_eq!(s["hosts_up"], 4, "{s}");
    assert_eq!(s["skipped_host_down"], (256 - 4) * 3, "{s}");
    assert_eq!(
        open_pairs(&doc),
        [
            ("fd99::11".to_string(), 8000),
            ("fd99::12".to_string(), 3000)
        ]
    );
    assert!(!err.contains("ICMP"), "ICMPv6 works as root: {err}");
}

#[test]
fn without_icmp_permission_it_warns_once_and_sweeps_by_tcp() {
    if !require_root("without_icmp_permission_it_warns_once_and_sweeps_by_tcp") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let _h1 = net.listen("h1", "10.99.0.11", &[8000]);
    // As nobody, with ping_group_range "1 0" in the namespace: no raw, no datagram ICMP.
    let out = common::wait_with_deadline(
        net.scout_command(
            "scan",
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ],
            &[
                "scan",
                "--no-fingerprint",
                "10.99.0.10-12",
                "-p",
                "8000",
                "-o",
                "ndjson",
            ],
        )
        .spawn()
        .unwrap(),
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        err.matches("ICMP echo is not permitted").count(),
        1,
        "{err}"
    );
    let got = ndjson_states(&out);
    assert_eq!(got, [("10.99.0.11".to_string(), 8000, "open".to_string())]);
}

#[test]
fn local_sweeps_the_attached_subnet() {
    if !require_root("local_sweeps_the_attached_subnet") {
        return;
    }
    let net = Testnet::up(1, &[]);
    let _h1 = net.listen("h1", "10.99.0.11", &[8811]);
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--no-fingerprint",
            "--local",
            "-p",
            "8811",
            "-o",
            "json",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["scan"]["targets"], serde_json::json!(["10.99.0.0/24"]));
    assert_eq!(doc["findings"][0]["ip"], "10.99.0.11");
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1);
}

/// Extra interfaces in the scanner's namespace: a container bridge (`docker0`, a narrow /24
/// that only its name excludes), a /16 LAN (too wide) and a narrow LAN that is kept. Each is
/// one end of a veth pair whose other end (`p0`, `p1`, `p2`, no address) stays in the same
/// namespace: what is sent to their subnets goes nowhere else.
fn add_local_interfaces(net: &Testnet) {
    let ns = net.ns("scan");
    for (dev, peer, addr) in [
        ("docker0", "p0", "172.31.7.1/24"),
        ("wide0", "p1", "10.98.0.1/16"),
        ("lan1", "p2", "10.97.0.1/29"),
    ] {
        for args in [
            vec!["link", "add", dev, "type", "veth", "peer", "name", peer],
            vec!["addr", "add", addr, "dev", dev],
            vec!["link", "set", peer, "up"],
            vec!["link", "set", dev, "up"],
        ] {
            let ok = std::process::Command::new("ip")
                .args(["-n", &ns])
                .args(&args)
                .status()
                .expect("run ip")
                .success();
            assert!(ok, "ip -n {ns} {args:?} failed");
        }
    }
}

#[test]
fn local_skips_container_interfaces_and_wide_prefixes_naming_the_key() {
    if !require_root("local_skips_container_interfaces_and_wide_prefixes_naming_the_key") {
        return;
    }
    let net = Testnet::up(1, &[]);
    add_local_interfaces(&net);
    let _h1 = net.listen("h1", "10.99.0.11", &[8811]);
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "--no-fingerprint",
            "--no-ping",
            "--local",
            "-p",
            "8811",
            "--timeout",
            "300ms",
            "--retries",
            "0",
            "-o",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = net.scout("scan", &args, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut targets: Vec<String> = doc["scan"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        targets.sort();
        assert_eq!(doc["findings"][0]["ip"], "10.99.0.11", "{doc}");
        (targets, stderr(&out))
    };
    let (targets, err) = scan(&[]);
    assert_eq!(targets, ["10.97.0.0/29", "10.99.0.0/24"], "{err}");
    for want in [
        "docker0: 172.31.7.1/24 skipped, interface matches \"docker*\" of skip_interfaces",
        "wide0: 10.98.0.1/16 skipped, /16 is wider than /22 (raise max_local_prefix in the job, or --max-local-prefix, to 16",
        "lo: 127.0.0.1/8 skipped, loopback",
        "skipped, IPv6 prefixes wider than /112 cannot be swept",
    ] {
        assert_eq!(err.matches(want).count(), 1, "{want:?} once in:\n{err}");
    }
    // The same filter takes flags: with no interface pattern the bridge's /24 is swept; a
    // /24 limit still skips the /16.
    let (targets, err) = scan(&["--skip-interfaces", "", "--max-local-prefix", "24"]);
    assert_eq!(
        targets,
        ["10.97.0.0/29", "10.99.0.0/24", "172.31.7.0/24"],
        "{err}"
    );
    assert!(
        err.contains("wide0: 10.98.0.1/16 skipped, /16 is wider than /24"),
        "{err}"
    );
}

#[test]
fn unresolvable_hostname_is_a_warning_and_the_scan_goes_on() {
    if !require_root("unresolvable_hostname_is_a_warning_and_the_scan_goes_on") {
        return;
    }
    // Inside the scanner namespace no resolver is reachable, so the lookup fails locally.
    let net = Testnet::up(1, &[]);
    let _h1 = net.listen("h1", "10.99.0.11", &[8000]);
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--no-fingerprint",
            "no-such-host.invalid",
            "10.99.0.11",
            "-p",
            "8000",
            "-o",
            "ndjson",
        ],
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("no-such-host.invalid") && err.contains("does not resolve"),
        "{err}"
    );
    assert_eq!(ndjson_states(&out).len(), 1);
}

#[test]
fn lossy_lan_default_settings_find_every_open_port_from_a_cold_start() {
    if !require_root("lossy_lan_default_settings_find_every_open_port_from_a_cold_start") {
        return;
    }
    // 20 ms round trip, 2% loss each way (user-space forwarder here; netem where the kernel
    // has it). A cold ARP cache is the hard case: it is where a shared ICMP client once lost
    // every reply after the first dead host's send failed.
    let net = Testnet::up(3, &["--delay-ms", "20", "--loss", "2"]);
    let _l: Vec<_> = (1..=3)
        .map(|h| {
            net.listen(
                &format!("h{h}"),
                &format!("10.99.0.1{h}"),
                &[3000, 8000, 8811],
            )
        })
        .collect();
    for run in 0..2 {
        let flush = std::process::Command::new("ip")
            .args(["-n", &net.ns("scan"), "neigh", "flush", "all"])
            .status()
            .unwrap();
        assert!(flush.success());
        let out = net.scout(
            "scan",
            &["scan", "--no-fingerprint", "10.99.0.0/24", "-o", "json"],
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "run {run}: {}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Up: router .1, scanner .2, h1-h3.
        assert_eq!(doc["scan"]["hosts_up"], 5, "run {run}: {}", doc["scan"]);
        let mut found: Vec<(String, u64, String)> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["ip"].as_str().unwrap().to_string(),
                    f["port"].as_u64().unwrap(),
                    f["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        found.sort();
        let want: Vec<(String, u64, String)> = (1..=3)
            .flat_map(|h| {
                [3000, 8000, 8811].map(|p| (format!("10.99.0.1{h}"), p, "open".to_string()))
            })
            .collect();
        assert_eq!(found, want, "run {run}: {}", doc["scan"]);
        assert_eq!(doc["scan"]["open"], 9, "run {run}: {}", doc["scan"]);
    }
}

#[test]
fn when_no_host_answers_icmp_it_warns_and_sweeps_every_host() {
    if !require_root("when_no_host_answers_icmp_it_warns_and_sweeps_every_host") {
        return;
    }
    let net = Testnet::up(2, &[]);
    let _h1 = net.listen("h1", "10.99.0.11", &[8000]);
    let _h2 = net.listen("h2", "10.99.0.12", &[3000]);
    // Both hosts ignore echo requests (per namespace), as a filtering firewall would.
    for h in ["h1", "h2"] {
        let st = std::process::Command::new("ip")
            .args(["netns", "exec", &net.ns(h), "sh", "-c"])
            .arg("echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all")
            .status()
            .unwrap();
        assert!(st.success(), "icmp_echo_ignore_all in {h}");
    }
    let out = net.scout(
        "scan",
        &[
            "scan",
            "--no-fingerprint",
            "10.99.0.11-12",
            "-p",
            "3000,8000",
            "-o",
            "json",
        ],
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        err.matches("no host answered ICMP echo (2 pinged); sweeping every host")
            .count(),
        1,
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &doc["scan"];
    assert_eq!(s["probes_done"], 4, "{s}");
    assert_eq!(s["skipped_host_down"], 0, "every host swept: {s}");
    assert_eq!(s["hosts_up"], serde_json::Value::Null, "{s}");
    let mut found: Vec<(String, u64)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["ip"].as_str().unwrap().to_string(),
                f["port"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("10.99.0.11".to_string(), 8000),
            ("10.99.0.12".to_string(), 3000)
        ]
    );
}
