//! The sweep against real listeners on 127.x addresses: classification, every output
//! format read back by a real parser, exit codes, Ctrl-C and descriptor exhaustion.

mod common;
use std::time::Duration;

use common::{
    assert_document_schema, assert_record_schema, ndjson_states, scout, scout_command, stderr,
    stdout, wait_with_deadline, Listener,
};

/// A port on which nothing listens at `ip` (bound once, then released).
fn closed_port(ip: &str) -> u16 {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn open_and_closed_ports_are_classified_on_loopback() {
    let l = Listener::bind("127.88.1.10:0");
    let open = l.addr.port();
    let closed = closed_port("127.88.1.11");
    let ports = format!("{open},{closed}");
    let out = scout(&[
        "scan",
        "--no-fingerprint",
        "127.88.1.8-12",
        "-p",
        &ports,
        "--report",
        "all",
        "-o",
        "ndjson",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut got = ndjson_states(&out);
    got.sort();
    assert_eq!(got.len(), 10, "each address×port exactly once: {got:?}");
    for (ip, port, state) in got {
        let want = if ip == "127.88.1.10" && port == open {
            "open"
        } else {
            "closed"
        };
        assert_eq!(state, want, "{ip}:{port}");
    }
}

#[test]
fn nothing_found_exits_1_with_empty_stream() {
    let closed = closed_port("127.88.2.1");
    let out = scout(&[
        "scan",
        "--no-fingerprint",
        "127.88.2.1",
        "-p",
        &closed.to_string(),
        "-o",
        "ndjson",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn json_document_has_summary_and_documented_record_fields() {
    let l = Listener::bind("127.88.3.1:0");
    let p = l.addr.port().to_string();
    let out = scout(&[
        "scan",
        "--no-fingerprint",
        "127.88.3.0/30",
        "-p",
        &p,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    // Every documented key, exactly, also where nothing is known.
    assert_document_schema(&doc);
    assert_eq!(doc["scan"]["probes_total"], 4);
    assert_eq!(doc["scan"]["probes_done"], 4);
    assert_eq!(doc["scan"]["open"], 1);
    assert_eq!(doc["scan"]["closed"], 3);
    assert_eq!(doc["scan"]["interrupted"], false);
    let f = &doc["findings"].as_array().unwrap()[..];
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["ip"], "127.88.3.1");
    assert_eq!(f[0]["port"].as_u64(), Some(u64::from(l.addr.port())));
    assert_eq!(f[0]["state"], "open");
    assert_eq!(f[0]["kind"], "open");
    assert_eq!(f[0]["origins"], serde_json::json!(["sweep"]));
    assert!(f[0]["rtt_ms"].as_f64().unwrap() >= 0.0);
    let seen = f[0]["seen_at"].as_str().unwrap();
    assert!(
        seen.len() == 24 && seen.ends_with('Z') && &seen[10..11] == "T",
        "{seen}"
    );

    // The same schema in every format that carries records: NDJSON, with closed ports too...
    let out = scout(&[
        "scan",
        "--no-fingerprint",
        "127.88.3.0/30",
        "-p",
        &p,
        "--report",
        "all",
        "-o",
        "ndjson",
    ]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    lines.iter().for_each(assert_record_schema);
    // `health` is the monitor's object: present and null in scan output (schema change).
    for l in &lines {
        assert!(l.get("health").is_some_and(|h| h.is_null()), "{l}");
        assert!(l["health_endpoints"].is_array(), "{l}");
    }
    // ...and probe -o json, fingerprinting on (a port that closes at once is not HTTP).
    let out = scout(&["probe", &format!("127.88.3.1:{p}"), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_record_schema(&rec);
    assert_eq!(rec["kind"], "open", "{rec}");
}

#[test]
fn csv_output_reads_back_with_a_csv_parser() {
    let l = Listener::bind("127.88.4.1:0");
    let p = l.addr.port();
    let closed = closed_port("127.88.4.1");
    let ports = format!("{p},{closed}");
    let out = scout(&[
        "scan",
        "--no-fingerprint",
        "127.88.4.1",
        "-p",
        &ports,
        "-o",
        "csv",
        "--report",
        "all",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let mut rdr = csv::Reader::from_reader(&out.stdout[..]);
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column: {headers:?}"))
    };
    for name in [
        "ip",
        "port",
        "state",
        "rtt_ms",
        "kind",
        "url",
        "transport",
        "protocol_version",
        "server_name",
        "tool_count",
        "origins",
        "seen_at",
    ] {
        col(name);
    }
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let open = rows
        .iter()
        .find(|r| r[col("port")] == *p.to_string())
        .unwrap();
    assert_eq!(
        (
            &open[col("state")],
            &open[col("kind")],
            &open[col("origins")]
        ),
        ("open", "open", "sweep")
    );
    let closed_row = rows
        .iter()
        .find(|r| r[col("port")] == *closed.to_string())
        .unwrap();
    assert_eq!(
        (&closed_row[col("state")], &closed_row[col("kind")]),
        ("closed", "")
    );
}

#[test]
fn table_lists_open_ports_and_a_summary() {
    let l = Listener::bind("127.88.5.1:0");
    let p = l.addr.port().to_string();
    let out = scout(&["scan", "--no-fingerprint", "127.88.5.1", "-p", &p]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("ADDRESS") && text.contains("127.88.5.1") && text.contains(&p),
        "{text}"
    );
    assert!(text.contains("1 open, 0 closed"), "{text}");
    assert!(
        out.stderr.is_empty(),
        "no progress bar when stderr is not a terminal: {}",
        stderr(&out)
    );
}

#[test]
fn target_files_and_excludes_combine() {
    let l = Listener::bind("127.88.6.1:0");
    let p = l.addr.port().to_string();
    let dir = std::env::temp_dir().join(format!("mcp-scout-lo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("t.txt");
    std::fs::write(&f, "# lab hosts\n127.88.6.1-3\n127.88.6.9, 127.88.6.10\n").unwrap();
    let arg = format!("@{}", f.display());
    let out = scout(&[
        "scan",
        "--no-fingerprint",
        &arg,
        "--exclude",
        "127.88.6.2,127.88.6.10",
        "-p",
        &p,
        "--report",
        "all",
        "-o",
        "ndjson",
    ]);
    let mut ips: Vec<String> = ndjson_states(&out)
        .into_iter()
        .map(|(ip, _, _)| ip)
        .collect();
    ips.sort();
    assert_eq!(ips, ["127.88.6.1", "127.88.6.3", "127.88.6.9"]);
}

#[test]
fn default_scan_is_localhost_on_the_mcp_ports() {
    let out = scout(&[
        "scan",
        "--no-fingerprint",
        "-o",
        "ndjson",
        "--report",
        "all",
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let got = ndjson_states(&out);
    assert_eq!(got.len(), 22, "127.0.0.1 and ::1 × 11 ports: {got:?}");
    let mut ports: Vec<u16> = got
        .iter()
        .filter(|(ip, _, _)| ip == "127.0.0.1")
        .map(|(_, p, _)| *p)
        .collect();
    ports.sort_unstable();
    assert_eq!(
        ports,
        [3000, 3001, 5000, 6277, 8000, 8001, 8080, 8081, 8787, 8811, 9000]
    );
}

/// Start a paced scan of `ip` that would take ~14 s, wait until one of three listeners
/// is probed, and send `signal`; return what the scan printed (at most 10 s later).
fn interrupted_scan(ip: &str, signal: libc::c_int) -> std::process::Output {
    // Three listeners among ~28k paced probes: the scan would take ~14 s; it is interrupted
    // as soon as the first listener sees a probe.
    let ls: Vec<Listener> = (0..3).map(|_| Listener::bind(&format!("{ip}:0"))).collect();
    let child = scout_command(
        &[],
        &[
            "scan",
            "--no-fingerprint",
            ip,
            "-p",
            "32768-60999",
            "--rate",
            "2000",
            "-o",
            "json",
        ],
    )
    .spawn()
    .unwrap();
    let pid = child.id() as i32;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    'wait: loop {
        for l in &ls {
            if l.accepted.recv_timeout(Duration::from_millis(20)).is_ok() {
                break 'wait;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no listener was probed"
        );
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, signal) };
    wait_with_deadline(child, Duration::from_secs(10))
}

#[test]
fn sigterm_stops_the_scan_and_still_prints_what_was_found() {
    let out = interrupted_scan("127.88.7.2", libc::SIGTERM);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON after SIGTERM");
    assert_eq!(doc["scan"]["interrupted"], true);
    assert!(doc["scan"]["probes_done"].as_u64() < doc["scan"]["probes_total"].as_u64());
    assert!(!doc["findings"].as_array().unwrap().is_empty());
}

#[test]
fn a_second_ctrl_c_quits_at_once_when_finishing_up_is_stuck() {
    use std::os::fd::AsRawFd;
    // Every port of one address reported: far more output than a pipe holds. Nobody reads
    // stdout, so the writer blocks on the full pipe and the first Ctrl-C's "finish up and
    // print" cannot complete: exactly when a user presses Ctrl-C again.
    let mut child = scout_command(
        &[],
        &[
            "scan",
            "--no-fingerprint",
            "127.88.9.1",
            "-p",
            "1-65535",
            "--report",
            "all",
            "-o",
            "ndjson",
        ],
    )
    .spawn()
    .unwrap();
    let pid = child.id() as i32;
    let fd = child.stdout.as_ref().unwrap().as_raw_fd();
    let queued = || {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD on a pipe we own writes one c_int.
        unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
        n
    };
    // Wait (bounded) until the pipe is full and stays full: the writer is blocked.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = -1;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let n = queued();
        if n >= 32 * 1024 && n == last {
            break;
        }
        last = n;
        assert!(
            std::time::Instant::now() < deadline,
            "the scan never filled its stdout pipe ({n} bytes queued)"
        );
    }
    let started = std::time::Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first Ctrl-C should finish up (and block on the full pipe), not exit"
    );
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let signalled = std::time::Instant::now();
    // Still nobody reads stdout: the exit must not depend on it.
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if signalled.elapsed() > Duration::from_secs(2) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second Ctrl-C did not quit within 2 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("again to quit at once"), "{err}");
    eprintln!(
        "second Ctrl-C: exited {:?} after it ({:?} after the first)",
        signalled.elapsed(),
        started.elapsed()
    );
}

#[test]
fn ctrl_c_stops_and_still_prints_what_was_found() {
    let out = interrupted_scan("127.88.7.1", libc::SIGINT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON after Ctrl-C");
    assert_eq!(doc["scan"]["interrupted"], true);
    assert!(doc["scan"]["probes_done"].as_u64() < doc["scan"]["probes_total"].as_u64());
    assert!(!doc["findings"].as_array().unwrap().is_empty());
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
}

#[test]
fn running_out_of_descriptors_slows_down_but_loses_no_probe() {
    let ls: Vec<Listener> = (0..5).map(|_| Listener::bind("127.88.8.1:0")).collect();
    let child = scout_command(
        &["prlimit", "--nofile=40:40", "--"],
        &[
            "scan",
            "--no-fingerprint",
            "127.88.8.1",
            "-p",
            "32768-60999",
            "--concurrency",
            "2000",
            "-o",
            "json",
        ],
    )
    .spawn()
    .unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(120));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["scan"]["probes_done"], doc["scan"]["probes_total"]);
    assert_eq!(doc["scan"]["unreachable"], 0, "{err}");
    let mut found: Vec<u64> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["port"].as_u64().unwrap())
        .collect();
    found.sort_unstable();
    let mut want: Vec<u64> = ls.iter().map(|l| u64::from(l.addr.port())).collect();
    want.sort_unstable();
    assert_eq!(found, want);
    assert!(err.contains("file descriptors"), "{err}");
}

#[test]
fn probe_of_a_closed_port_says_nothing_listens_there() {
    let port = closed_port("127.88.9.1");
    let target = format!("127.88.9.1:{port}");
    let out = scout(&["probe", &target]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Verdict: closed (nothing listens on {target})")),
        "{text}"
    );
    assert!(!text.contains("confidence 0.00"), "{text}");
}
