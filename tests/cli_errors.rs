//! Bad input exits 2 with a message that quotes the bad token and names the accepted forms;
//! oversized sweeps are refused before a packet is sent.
//!
//! Every refusal is exercised either on loopback or, for tokens that are not loopback
//! literals (a malformed address, an IPv6 prefix, an address outside 127.0.0.0/8), in a fresh
//! network namespace with nothing but a loopback interface ([`common::scout_isolated`]): a
//! regression that let one through could not send a packet anywhere.

mod common;
use common::{off_loopback, scout, scout_isolated, stderr};

/// Run in the machine's own namespace when the test guard allows it, else isolated.
fn run(args: &[&str]) -> std::process::Output {
    if off_loopback(args).is_some() {
        scout_isolated(args)
    } else {
        scout(args)
    }
}

#[test]
fn every_malformed_input_exits_2_quoting_the_token() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["scan", "127.0.0.0/33"],
            "127.0.0.0/33",
            "IPv4 prefix length is 0-32",
        ),
        (&["scan", "127.0.0.5-3"], "127.0.0.5-3", "below its start"),
        (&["scan", "127.0.0.300"], "127.0.0.300", "accepted forms"),
        (&["scan", "300.1.1.1"], "300.1.1.1", "accepted forms"),
        (
            &["scan", "-p", "70000", "127.0.0.1"],
            "70000",
            "accepted forms",
        ),
        (
            &["scan", "-p", "80,,81", "127.0.0.1"],
            "80,,81",
            "accepted forms",
        ),
        (
            &["scan", "-p", "http", "127.0.0.1"],
            "http",
            "accepted forms",
        ),
        (
            &["scan", "--timeout", "5x", "127.0.0.1"],
            "5x",
            "accepted forms",
        ),
        (
            &["scan", "--min-timeout", "-1s", "127.0.0.1"],
            "-1s",
            "accepted forms",
        ),
        (
            &["scan", "--exclude", "1.2.3", "127.0.0.1"],
            "1.2.3",
            "accepted forms",
        ),
        (&["scan", "-o", "yaml", "127.0.0.1"], "yaml", "ndjson"),
        (
            &["scan", "--report", "bogus", "127.0.0.1"],
            "bogus",
            "accepted forms",
        ),
        (&["scan", "--concurrency", "0", "127.0.0.1"], "0", "1..="),
        (&["scan", "--retries", "99", "127.0.0.1"], "99", "0..=20"),
        (
            &["scan", "--rate", "fast", "127.0.0.1"],
            "fast",
            "for '--rate <N>'",
        ),
        (
            &["scan", "@/nonexistent/targets.txt"],
            "/nonexistent/targets.txt",
            "cannot read",
        ),
        (
            &[
                "scan",
                "--min-timeout",
                "2s",
                "--timeout",
                "1s",
                "127.0.0.1",
            ],
            "--min-timeout",
            "lower",
        ),
        (&["scan", "fd00::/64"], "fd00::/64", "wider than /112"),
        (&["scan", "::1/64"], "::1/64", "wider than /112"),
        (
            &["scan", "--bogus-flag"],
            "--bogus-flag",
            "unexpected argument",
        ),
        (
            &["scan", "--paths", "/mcp,mcp", "127.0.0.1"],
            "mcp",
            "starts with '/'",
        ),
        (
            &["scan", "--fingerprint-budget", "soon", "127.0.0.1"],
            "soon",
            "accepted forms",
        ),
        (&["probe", "127.0.0.1"], "127.0.0.1", "accepted forms"),
        (
            &["probe", "http://127.0.0.1:1/x", "--request-timeout", "0s"],
            "0s",
            "greater than zero",
        ),
    ];
    for (args, token, hint) in cases {
        let out = run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} should exit 2: {err}");
        assert!(
            err.contains(token),
            "{args:?}: message does not quote {token:?}: {err}"
        );
        assert!(
            !hint.is_empty() && err.contains(hint),
            "{args:?}: message lacks {hint:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed results");
    }
}

#[test]
fn sweeps_above_max_targets_are_refused_without_force() {
    // 16,777,216 probes: refused before any packet is sent (and loopback if it were not).
    let out = scout(&["scan", "127.0.0.0/8", "-p", "80"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("16777216 probes") && err.contains("--force") && err.contains("--max-targets"),
        "{err}"
    );
    // A lower limit applies too.
    let out = scout(&["scan", "127.0.0.1", "-p", "1-100", "--max-targets", "50"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("100 probes"));
}

#[test]
fn target_file_errors_name_file_and_line() {
    let dir = std::env::temp_dir().join(format!("mcp-scout-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("targets.txt");
    std::fs::write(&f, "127.0.0.1\n# comment\n127.0.0.999\n").unwrap();
    let arg = format!("@{}", f.display());
    // The file names a malformed address: the guard sends this run to an empty namespace.
    assert!(off_loopback(&["scan", &arg]).is_some());
    let out = scout_isolated(&["scan", &arg]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("targets.txt:3") && err.contains("127.0.0.999"),
        "{err}"
    );
}

#[test]
fn the_test_guard_refuses_anything_that_could_leave_loopback() {
    let dir = std::env::temp_dir().join(format!("mcp-scout-guard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, bad) = (dir.join("good.txt"), dir.join("bad.txt"));
    std::fs::write(&good, "# lab\n127.0.0.1, 127.0.0.2-9\n::1\n").unwrap();
    std::fs::write(&bad, "127.0.0.1\n10.0.0.1 # not loopback\n").unwrap();
    let (good, bad) = (
        format!("@{}", good.display()),
        format!("@{}", bad.display()),
    );
    let allowed: &[&[&str]] = &[
        &["scan"],
        &["--help"],
        &[
            "scan",
            "127.0.0.1",
            "::1",
            "[::1]",
            "127.0.0.0/8",
            "::1/128",
        ],
        &["scan", "127.1.2.3-9", "127.0.0.1-127.0.0.9", "::1-1", "-p-"],
        &[
            "scan",
            "-p",
            "8000",
            "-o",
            "json",
            "--timeout",
            "1s",
            "127.0.0.1",
        ],
        &["scan", "--exclude", "127.0.0.2,127.0.0.3", "127.0.0.0/29"],
        &["scan", &good],
        &["scan", "@/nonexistent/targets.txt"],
        &["-v", "--log-format", "json", "scan", "127.0.0.1"],
        &[
            "scan",
            "--srv",
            "_mcp._tcp.example.test",
            "--dns-server",
            "127.0.0.53:5353",
            "--scope",
            "127.0.0.0/8",
        ],
        &[
            "probe",
            "http://127.0.0.1:8000/mcp",
            "--request-timeout",
            "1s",
        ],
        &["probe", "http://[::1]:8000/mcp"],
        &["probe", "127.0.0.1:8000"],
        &["probe", "[::1]:8000"],
        &["config", "check", "/tmp/lab.yaml"],
        &[
            "check",
            "http://127.0.0.1:8000/mcp",
            "--call",
            "get_forecast",
            "--arguments",
            "{\"city\": \"Paris\"}",
            "--expect",
            "!result.isError",
            "--bearer",
            "t",
            "--timeout",
            "2s",
            "-o",
            "json",
        ],
    ];
    for args in allowed {
        assert_eq!(off_loopback(args), None, "{args:?}");
    }
    for args in [
        &[
            "scan",
            "127.0.0.1",
            "--push",
            "mcp-mesh=http://127.0.0.5:8000",
        ][..],
        &["scan", "127.0.0.1", "--push", "kailash-file=/tmp/x.json"],
        &[
            "scan",
            "127.0.0.1",
            "--push=etcd=http://127.0.0.1:2379,http://[::1]:2379",
        ],
    ] {
        assert_eq!(off_loopback(args), None, "{args:?}");
    }
    // Sink URLs in a daemon config: loopback only, in block or flow style.
    use common::config_off_loopback as cfg;
    assert_eq!(
        cfg("sinks:\n  - { name: m, type: mcp-mesh, url: \"http://127.0.0.9:18000\" }\n"),
        None
    );
    assert_eq!(
        cfg("    endpoints: [\"http://127.0.0.1:2379\", \"http://[::1]:2379\"]\n"),
        None
    );
    for text in [
        "sinks:\n  - { name: m, type: mcp-mesh, url: \"http://10.0.0.9:18000\" }\n",
        "    url: https://hooks.example/x\n",
        "    endpoints: [\"http://127.0.0.1:2379\", \"http://etcd:2379\"]\n",
        "  - {name: c, type: consul, url: http://localhost:8500}\n",
    ] {
        assert!(cfg(text).is_some(), "{text} passed the guard");
    }
    let refused: &[&[&str]] = &[
        &["check", "http://10.0.0.1:8000/mcp"],
        &["check", "http://localhost:8000/mcp"],
        &["check", "--call", "echo", "http://db.lab.example/mcp"],
        &["scan", "10.0.0.0/8"],
        &["scan", "127.0.0.1", "192.168.1.1"],
        &["scan", "127.0.0.0/7"],
        &["scan", "::1/64"],
        &["scan", "fd00::/120"],
        &["scan", "::1-ff"],
        &["scan", "127.0.0.1-10.0.0.1"],
        &["scan", "300.1.1.1"],
        &["scan", "127.0.0.999"],
        &["scan", "db.lab.example"],
        &["scan", "localhost"],
        &["scan", &bad],
        &["scan", "--exclude", "db.lab.example", "127.0.0.1"],
        &["scan", "--exclude=10.0.0.1", "127.0.0.1"],
        &["scan", "--bogus-flag", "10.0.0.1"],
        &["scan", "-p", "80", "--", "10.0.0.1"],
        &["scan", "--local"],
        &["scan", "--mdns"],
        &["scan", "--mdns=_mcp._tcp"],
        &["scan", "--mdns-all"],
        &["watch", "--mdns"],
        &["scan", "--srv", "_mcp._tcp.example.test"],
        &[
            "scan",
            "--srv",
            "_mcp._tcp.example.test",
            "--dns-server",
            "127.0.0.53:5353",
        ],
        &[
            "scan",
            "--srv",
            "_mcp._tcp.example.test",
            "--dns-server",
            "127.0.0.53",
            "--scope",
            "10.99.0.0/24",
        ],
        &[
            "scan",
            "--srv",
            "_mcp._tcp.example.test",
            "--dns-server",
            "10.99.0.2",
        ],
        &["probe", "http://10.0.0.5:8000/mcp"],
        &["probe", "http://mcp.example:8000/mcp"],
        &["probe", "10.0.0.5:8000"],
        &[
            "scan",
            "127.0.0.1",
            "--push",
            "mcp-mesh=http://registry:8000",
        ],
        &[
            "scan",
            "127.0.0.1",
            "--push=etcd=http://127.0.0.1:2379,http://10.0.0.9:2379",
        ],
        &[
            "scan",
            "127.0.0.1",
            "--push",
            "webhook=https://hooks.example/x",
        ],
    ];
    for args in refused {
        assert!(off_loopback(args).is_some(), "{args:?} passed the guard");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[should_panic(expected = "refusing to run mcp-scout")]
fn scout_panics_before_spawning_a_scan_of_a_private_range() {
    let _ = scout(&["scan", "10.0.0.0/8", "-p", "80"]);
}
