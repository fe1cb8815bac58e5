//! Bad input exits 2 with a message that quotes the bad token and names the accepted forms;
//! oversized sweeps are refused before a packet is sent.

mod common;
use common::{scout, stderr};

#[test]
fn every_malformed_input_exits_2_quoting_the_token() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["scan", "10.0.0.0/33"], "10.0.0.0/33", "accepted forms"),
        (&["scan", "10.0.0.5-3"], "10.0.0.5-3", "accepted forms"),
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
        (&["scan", "--min-timeout", "-1s", "127.0.0.1"], "-1s", ""),
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
        (&["scan", "--rate", "fast", "127.0.0.1"], "fast", ""),
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
        (&["scan", "fd00::/64"], "fd00::/64", "/112"),
        (&["scan", "--bogus-flag"], "--bogus-flag", ""),
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
        let out = scout(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} should exit 2: {err}");
        assert!(
            err.contains(token),
            "{args:?}: message does not quote {token:?}: {err}"
        );
        assert!(
            err.contains(hint),
            "{args:?}: message lacks {hint:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed results");
    }
}

#[test]
fn sweeps_above_max_targets_are_refused_without_force() {
    // 16,777,216 probes: refused before any packet is sent.
    let out = scout(&["scan", "10.0.0.0/8", "-p", "80"]);
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
    let out = scout(&["scan", &arg]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("targets.txt:3") && err.contains("127.0.0.999"),
        "{err}"
    );
}
