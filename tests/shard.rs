//! Sharding and interruption of `scan`, on loopback listeners only (127.0.0.0/8).

mod common;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ndjson_states, scout, stderr, wait_with_deadline};

#[test]
fn shards_cover_the_address_port_space_exactly_once_whatever_their_seeds() {
    // 24 addresses × 5 ports, every probe reported (closed ones too), in three shards with
    // different probe-order seeds.
    let mut seen: Vec<(String, u16)> = Vec::new();
    let mut per_shard = Vec::new();
    for (i, seed) in [(0, "1"), (1, "99"), (2, "12345")] {
        let shard = format!("{i}/3");
        let out = scout(&[
            "scan",
            "--no-fingerprint",
            "127.89.1.1-24",
            "-p",
            "1-5",
            "--report",
            "all",
            "--shard",
            &shard,
            "--seed",
            seed,
            "-o",
            "ndjson",
        ]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
        let got: Vec<(String, u16)> = ndjson_states(&out)
            .into_iter()
            .map(|(ip, p, _)| (ip, p))
            .collect();
        per_shard.push(got.len());
        seen.extend(got);
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 120, "no probe twice: {per_shard:?}");
    assert_eq!(unique.len(), 120, "every probe once");
    assert_eq!(per_shard, [40, 40, 40]);
    for bad in ["3/3", "1", "a/b", "0/0"] {
        let out = scout(&["scan", "127.0.0.1", "--shard", bad]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            stderr(&out).contains("accepted forms: 0/3, 1/3, 2/3"),
            "{}",
            stderr(&out)
        );
    }
}

/// Listeners on `ip` that accept and never answer, one per port; each accepted connection
/// is announced on the returned channel. Returns the ports, comma-joined.
fn silent_listeners(ip: &str, n: usize) -> (String, std::sync::mpsc::Receiver<()>) {
    let (accepted, connections) = std::sync::mpsc::channel();
    let mut ports = Vec::new();
    for _ in 0..n {
        let l = std::net::TcpListener::bind(format!("{ip}:0")).unwrap();
        ports.push(l.local_addr().unwrap().port().to_string());
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().take(32) {
                let Ok(s) = s else { break };
                held.push(s);
                let _ = accepted.send(());
            }
        });
    }
    (ports.join(","), connections)
}

/// Start `scan args`, wait for `connects` connections (so work is in flight), send Ctrl-C,
/// and return what the scan printed and how long it took to exit after the signal.
fn interrupt_after(
    args: &[&str],
    connections: &std::sync::mpsc::Receiver<()>,
    connects: usize,
) -> (std::process::Output, Duration) {
    let child = common::scout_command(&[], args).spawn().unwrap();
    for _ in 0..connects {
        connections
            .recv_timeout(Duration::from_secs(20))
            .expect("the scan connects");
    }
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = wait_with_deadline(child, Duration::from_secs(30));
    (out, start.elapsed())
}

#[test]
fn ctrl_c_during_a_fingerprint_stops_the_scan_at_once() {
    // A server that accepts and never answers keeps a fingerprint busy for its request
    // timeouts; Ctrl-C must not wait for it (it once spun until the fingerprint ended).
    let (port, connections) = silent_listeners("127.89.2.1", 1);
    let args = [
        "scan",
        "127.89.2.1",
        "-p",
        &port,
        "--fingerprint-budget",
        "30s",
        "--request-timeout",
        "10s",
        "-o",
        "ndjson",
    ];
    // The sweep's connect, then the fingerprint's first request: it is now in flight.
    let (out, took) = interrupt_after(&args, &connections, 2);
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    let s = common::stdout(&out);
    assert!(
        s.contains("\"port\":") && s.contains("interrupted before fingerprinting finished"),
        "stdout {s:?}, stderr {:?}, {:?}",
        common::stderr(&out),
        out.status
    );
}

#[test]
fn ctrl_c_while_open_ports_wait_for_a_fingerprint_slot_stops_the_scan_at_once() {
    // Two silent servers and one fingerprint slot: the second open port waits for a permit
    // that only the first fingerprint's end would free. Ctrl-C must not wait for it.
    let (ports, connections) = silent_listeners("127.89.3.1", 2);
    let args = [
        "scan",
        "127.89.3.1",
        "-p",
        &ports,
        "--fingerprint-concurrency",
        "1",
        "--request-timeout",
        "10s",
        "-o",
        "ndjson",
    ];
    // Two sweep connects and the first fingerprint's request.
    let (out, took) = interrupt_after(&args, &connections, 3);
    assert!(took < Duration::from_secs(3), "exit took {took:?}");
    let s = common::stdout(&out);
    assert_eq!(
        s.matches("interrupted before fingerprinting finished")
            .count(),
        2,
        "both open ports are reported: {s}"
    );
}
