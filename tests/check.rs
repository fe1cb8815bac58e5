//! `mcp-scout check` and the check engine against real peers on loopback (127.97.x.x): the
//! official Python SDK 1.x and 2.x and the TypeScript SDK, the auth-protected server with a
//! good and a bad token, the controllable server (scripts/peers/py1_control.py) in each of
//! its modes, and the hostile servers of the fingerprint tests.

mod common;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{require_peers, scout, scout_isolated, start_peers, stderr, stdout};
use mcp_scout::fingerprint::{Transport, Verdict, MODERN_VERSION};
use mcp_scout::monitor::cel::Condition;
use mcp_scout::monitor::check::{Checker, Target};
use mcp_scout::monitor::plan::{CustomCheck, HealthPlan, Match, Probe};
use mcp_scout::monitor::state::Severity;
use serde_json::Value;

/// One HTTP/1.0 request to a peer's control channel: (status, body). Bounded by a 5 s
/// socket timeout.
fn http(method: &str, addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the peer");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.take(1 << 20).read_to_string(&mut raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// Set the control peer's mode.
fn mode(addr: &str, m: &str) {
    let (status, body) = http("POST", addr, &format!("/control/{m}"));
    assert_eq!(status, 200, "POST /control/{m}: {body}");
}

/// The control peer's counters.
fn stats(addr: &str) -> Value {
    let (status, body) = http("GET", addr, "/control/stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `mcp-scout check ARGS -o json`: (exit code, document, elapsed).
fn check(args: &[&str]) -> (i32, Value, Duration) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let start = Instant::now();
    let out = scout(&all);
    let elapsed = start.elapsed();
    let code = out.status.code().unwrap_or(-1);
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (code, doc, elapsed)
}

fn step_names(check: &Value) -> Vec<String> {
    check["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_builtin_check_passes_on_every_sdk_and_never_calls_a_tool() {
    if !require_peers("the_builtin_check_passes_on_every_sdk_and_never_calls_a_tool") {
        return;
    }
    let peers: &[(&str, &str, &str, usize)] = &[
        ("py1-streamable", "127.97.0.1", "/mcp", 2),
        ("py1-stateless-json", "127.97.0.2", "/mcp", 2),
        ("py1-sse", "127.97.0.3", "/sse", 2),
        ("py2-streamable", "127.97.0.4", "/mcp", 2),
        ("ts-streamable", "127.97.0.5", "/mcp", 2),
        ("ts-sse", "127.97.0.6", "/sse", 2),
        ("py1-control", "127.97.0.7", "/mcp", 2),
    ];
    let specs: Vec<(&str, &str, u16)> = peers.iter().map(|p| (p.0, p.1, 8000)).collect();
    let _peers = start_peers(&specs);
    for (name, ip, path, tools) in peers {
        let url = format!("http://{ip}:8000{path}");
        let (code, doc, _) = check(&[&url]);
        let mcp = &doc["checks"][0];
        assert_eq!(code, 0, "{name}: {doc:#}");
        assert_eq!(doc["healthy"], true, "{name}");
        assert_eq!(mcp["name"], "mcp");
        assert_eq!(mcp["ok"], true, "{name}: {mcp:#}");
        assert_eq!(
            mcp["tools"].as_array().map(Vec::len),
            Some(*tools),
            "{name}: {mcp:#}"
        );
        if path == &"/mcp" {
            let steps = step_names(mcp);
            assert_eq!(
                &steps[..3],
                ["initialize", "notifications/initialized", "tools/list"],
                "{name}"
            );
            // Stateful servers get their session closed; stateless ones open none.
            let stateful = *name != "py1-stateless-json";
            assert_eq!(
                steps.last().map(String::as_str) == Some("DELETE session"),
                stateful,
                "{name}: {steps:?}"
            );
            for s in mcp["steps"].as_array().unwrap() {
                assert!(s["latency"].as_f64().unwrap() > 0.0, "{name}: {s}");
            }
        }
        // Tool hashes are the scan record's: 16 hex digits.
        let hash = mcp["tools"][0]["input_schema_hash"].as_str().unwrap();
        assert_eq!(hash.len(), 16, "{name}: {hash}");
    }
    // The same tools, hashed the same, as `probe` (the scan record) shows them.
    let out = scout(&["probe", "http://127.97.0.1:8000/mcp", "-o", "json"]);
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (_, doc, _) = check(&["http://127.97.0.1:8000/mcp"]);
    assert_eq!(doc["checks"][0]["tools"], rec["tools"], "{doc:#}");
    // The fingerprint and the built-in check list tools but never call one.
    let s = stats("127.97.0.7:8000");
    assert_eq!(s["tools_call"], 0, "{s}");
    assert!(s["tools_list"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["sessions"], 0, "every session was closed: {s}");
}

#[test]
fn the_auth_peer_passes_as_required_and_checks_tokens() {
    if !require_peers("the_auth_peer_passes_as_required_and_checks_tokens") {
        return;
    }
    let _peers = start_peers(&[("py1-auth", "127.97.1.1", 8000)]);
    let url = "http://127.97.1.1:8000/mcp";
    let (code, doc, _) = check(&[url]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["fingerprint"]["kind"], "mcp-auth-required");
    assert_eq!(doc["checks"][0]["message"], "auth: required");
    let (code, doc, _) = check(&[url, "--bearer", "scout-test-token"]);
    assert_eq!(code, 0, "{doc:#}");
    let mcp = &doc["checks"][0];
    assert!(
        mcp["message"]
            .as_str()
            .unwrap()
            .starts_with("authenticated; 2 tools, tools hash "),
        "{mcp:#}"
    );
    let (code, doc, _) = check(&[url, "--bearer", "not-the-token"]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(
        doc["checks"][0]["message"],
        "initialize: HTTP 401: credentials rejected"
    );
}

#[test]
fn the_control_peer_fails_hangs_slows_and_drops_tools_on_command() {
    if !require_peers("the_control_peer_fails_hangs_slows_and_drops_tools_on_command") {
        return;
    }
    let _peers = start_peers(&[("py1-control", "127.97.2.1", 8000)]);
    let ctl = "127.97.2.1:8000";
    let url = "http://127.97.2.1:8000/mcp";
    let call = ["--call", "echo", "--arguments", "{\"text\": \"hi\"}"];
    let with = |extra: &[&'static str]| {
        let mut v: Vec<&'static str> = vec![url];
        v.extend_from_slice(&call);
        v.extend_from_slice(extra);
        v
    };

    // The readable table: every step with its latency, then the verdict.
    let out = scout(&["check", url]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "Checking http://127.97.2.1:8000/mcp",
        "fingerprint: mcp, streamable-http, 2025-11-25, control-demo",
        "STEP",
        "mcp: initialize",
        "mcp: tools/list",
        "mcp: DELETE session",
        "check mcp: pass in ",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("healthy ("),
        "{text}"
    );

    // ok: the call answers, and the condition sees its result.
    let (code, doc, _) = check(&with(&["--expect", "result.content[0].text == 'hi'"]));
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(stats(ctl)["tools_call"], 1);

    // fail: the tool returns isError; the built-in check still passes (it calls nothing).
    mode(ctl, "fail");
    let (code, doc, _) = check(&with(&[]));
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["checks"][0]["ok"], true);
    let msg = doc["checks"][1]["message"].as_str().unwrap();
    assert!(msg.starts_with("echo returned isError"), "{msg}");

    // drop-tool: a condition over the tool list notices the missing tool.
    mode(ctl, "drop-tool");
    let (code, doc, _) = check(&[url, "--expect", "tools.exists(t, t.name == 'get_status')"]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["checks"][0]["tools"].as_array().unwrap().len(), 1);
    assert_eq!(
        doc["checks"][1]["message"],
        "expect \"tools.exists(t, t.name == 'get_status')\" is false"
    );

    // no-tools: an empty tools/list passes, and says so (the state machine decides).
    mode(ctl, "no-tools");
    let (code, doc, _) = check(&[url]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["checks"][0]["message"], "0 tools (tools/list is empty)");

    // slow: the latency is measured and judged.
    http("POST", ctl, "/control/slow?ms=800");
    let (code, doc, _) = check(&[url, "--expect", "latency_ms < 500"]);
    assert_eq!(code, 1, "{doc:#}");
    assert!(doc["checks"][0]["latency_ms"].as_f64().unwrap() >= 800.0);

    // hang: one timeout, naming the step that hung; the session is still closed.
    mode(ctl, "hang");
    let (code, doc, elapsed) = check(&[url, "--timeout", "2s"]);
    assert_eq!(code, 1, "{doc:#}");
    let mcp = &doc["checks"][0];
    assert_eq!(
        mcp["message"], "tools/list: no answer within the check's timeout (2s)",
        "{mcp:#}"
    );
    assert_eq!(step_names(mcp).last().unwrap(), "DELETE session");
    // Fingerprint (2 s budget) + check (2 s) + the DELETE, on a loaded machine.
    assert!(elapsed < Duration::from_secs(9), "{elapsed:?}");

    // huge-result: the tool's 2 MiB answer is cut at the 1 MiB body cap.
    mode(ctl, "huge-result");
    let (code, doc, _) = check(&with(&[]));
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(
        doc["checks"][1]["message"],
        "tools/call echo: the response was cut at the 1048576-byte body cap (health.body_cap)"
    );

    // refuse-delete: the refusal is recorded but is not a failure.
    mode(ctl, "refuse-delete");
    let (code, doc, _) = check(&[url]);
    assert_eq!(code, 0, "{doc:#}");
    let last = doc["checks"][0]["steps"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["ok"], false);
    assert_eq!(
        last["message"],
        "405 refused (not counted; the session is dropped on our side)"
    );
    mode(ctl, "ok");
}

#[test]
fn hostile_servers_fail_within_the_cap_and_the_timeout() {
    if !require_peers("hostile_servers_fail_within_the_cap_and_the_timeout") {
        return;
    }
    let _peers = start_peers(&[
        ("huge-body", "127.97.3.1", 8000),
        ("trickle-headers", "127.97.3.2", 8000),
    ]);
    let (code, doc, elapsed) = check(&["http://127.97.3.1:8000/mcp", "--timeout", "3s"]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["fingerprint"]["kind"], "http");
    assert_eq!(
        doc["checks"][0]["message"],
        "initialize: the response was cut at the 1048576-byte body cap (health.body_cap)"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let (code, doc, elapsed) = check(&["http://127.97.3.2:8000/mcp", "--timeout", "2s"]);
    assert_eq!(code, 1, "{doc:#}");
    // The step that hung is named, whichever deadline ended it first: the request's
    // ("initialize: no complete response within …") or, on a loaded machine, the whole
    // check's ("timeout: initialize got no answer within 2s").
    let msg = doc["checks"][0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("initialize: ") || msg.starts_with("timeout: initialize "),
        "{msg}"
    );
    assert!(elapsed < Duration::from_secs(9), "{elapsed:?}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["check", "127.0.0.1:8000"],
            "invalid check URL \"127.0.0.1:8000\"",
        ),
        (
            &["check", "ftp://127.0.0.1/x"],
            "invalid check URL \"ftp://127.0.0.1/x\": the scheme must be http or https",
        ),
        (
            &[
                "check",
                "http://127.0.0.1:1/mcp",
                "--expect",
                "size(tools) >",
            ],
            "--expect: syntax error in CEL expression \"size(tools) >\" at column",
        ),
        (
            &[
                "check",
                "http://127.0.0.1:1/mcp",
                "--expect",
                "result.isError",
            ],
            "--expect: `result` has no value without --call (add --call TOOL for result)",
        ),
        (
            &[
                "check",
                "http://127.0.0.1:1/mcp",
                "--call",
                "echo",
                "--arguments",
                "{text: hi}",
            ],
            "--arguments: invalid JSON \"{text: hi}\"",
        ),
        (
            &[
                "check",
                "http://127.0.0.1:1/mcp",
                "--call",
                "echo",
                "--arguments",
                "[1]",
            ],
            "--arguments: \"[1]\" is not a JSON object",
        ),
        (
            &["check", "http://127.0.0.1:1/mcp", "--arguments", "{}"],
            "--call",
        ),
        (
            &["check", "http://127.0.0.1:1/mcp", "--timeout", "soon"],
            "\"soon\" is not a duration",
        ),
    ];
    for (args, want) in cases {
        let out = scout_isolated(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}\n got: {err}\nwant: {want}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Nothing listens: a check that fails is exit 1, not an error.
    let (code, doc, _) = check(&["http://127.0.0.1:1/mcp", "--timeout", "1s"]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["healthy"], false);
}

fn target(url: &str) -> Target {
    Target {
        url: url::Url::parse(url).unwrap(),
        kind: Verdict::Mcp,
        transport: Some(Transport::StreamableHttp),
        server_name: None,
        jobs: Vec::new(),
        tools: vec!["echo".into(), "get_status".into()],
        protocol_version: None,
        auth: None,
    }
}

fn custom(name: &str, probe: Probe, expect: Option<&str>) -> CustomCheck {
    CustomCheck {
        name: name.into(),
        matcher: Match::default(),
        probe,
        expect: expect.map(|e| Condition::compile(e).unwrap()),
        severity: Severity::Warning,
        interval: None,
        timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_http_and_tcp_checks_follow_the_health_endpoint() {
    if !require_peers("custom_http_and_tcp_checks_follow_the_health_endpoint") {
        return;
    }
    let _peers = start_peers(&[("py1-control", "127.97.4.1", 8000)]);
    let ctl = "127.97.4.1:8000";
    let t = target("http://127.97.4.1:8000/mcp");
    let checker = Checker::new(&HealthPlan::default());
    let timeout = Duration::from_secs(5);
    let health = Probe::Http {
        path: "/health".into(),
        method: reqwest::Method::GET,
        headers: [("accept".to_string(), "application/json".to_string())].into(),
        body: None,
    };
    let plain = custom("health", health.clone(), None);
    let judged = custom(
        "health-body",
        health,
        Some(
            "status == 200 && body.status == 'ok' && headers['content-type'] == 'application/json'",
        ),
    );
    let r = checker.custom(&t, &plain, None, timeout).await;
    assert!(r.result.ok, "{r:?}");
    assert_eq!(
        (r.result.name.as_str(), r.result.severity),
        ("health", Severity::Warning)
    );
    let r = checker.custom(&t, &judged, None, timeout).await;
    assert!(r.result.ok, "{r:?}");
    mode(ctl, "health-503");
    let r = checker.custom(&t, &plain, None, timeout).await;
    assert_eq!(
        (r.result.ok, r.result.message.as_str()),
        (false, "HTTP 503 (not 2xx)")
    );
    let r = checker.custom(&t, &judged, None, timeout).await;
    assert!(
        !r.result.ok && r.result.message.ends_with("is false"),
        "{r:?}"
    );
    // A runtime CEL error is a failed check with its message.
    let missing = custom(
        "missing",
        Probe::Http {
            path: "/health".into(),
            method: reqwest::Method::GET,
            headers: Default::default(),
            body: None,
        },
        Some("body.nosuch.deeper == 1"),
    );
    let r = checker.custom(&t, &missing, None, timeout).await;
    assert!(
        !r.result.ok
            && r.result
                .message
                .starts_with("expect \"body.nosuch.deeper == 1\": "),
        "{r:?}"
    );
    mode(ctl, "health-200");

    let tcp = custom("port", Probe::Tcp, Some("latency_ms < 1000"));
    let r = checker.custom(&t, &tcp, None, timeout).await;
    assert!(r.result.ok, "{r:?}");
    let closed = target("http://127.97.4.2:9/mcp");
    let r = checker.custom(&closed, &tcp, None, timeout).await;
    assert!(
        !r.result.ok && r.result.message.starts_with("connection failed"),
        "{r:?}"
    );

    // mcp_call through the engine: the only path to tools/call.
    let before = stats(ctl)["tools_call"].as_u64().unwrap();
    let call = custom(
        "echo",
        Probe::McpCall {
            tool: "echo".into(),
            arguments: serde_json::json!({"text": "hello"}),
        },
        Some(
            "!result.isError && result.content[0].text == 'hello' && server.name == 'control-demo'",
        ),
    );
    let r = checker.custom(&t, &call, None, timeout).await;
    assert!(r.result.ok, "{r:?}");
    assert_eq!(stats(ctl)["tools_call"].as_u64().unwrap(), before + 1);
    let r = checker.builtin(&t, None, timeout).await;
    assert!(r.result.ok, "{r:?}");
    assert_eq!(stats(ctl)["tools_call"].as_u64().unwrap(), before + 1);
    assert_eq!(stats(ctl)["sessions"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_era_server_is_checked_with_server_discover() {
    if !require_peers("a_modern_era_server_is_checked_with_server_discover") {
        return;
    }
    let _peers = start_peers(&[("py2-streamable", "127.97.5.1", 8000)]);
    let mut t = target("http://127.97.5.1:8000/mcp");
    // What a scan records for a server that speaks only 2026-07-28.
    t.protocol_version = Some(MODERN_VERSION.into());
    let checker = Checker::new(&HealthPlan::default());
    let r = checker.builtin(&t, None, Duration::from_secs(5)).await;
    assert!(r.result.ok, "{r:?}");
    let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["server/discover", "tools/list"], "{r:?}");
    assert_eq!(r.tools.as_ref().map(Vec::len), Some(2));
    assert_eq!(r.server.protocol_version.as_deref(), Some(MODERN_VERSION));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_likely_servers_fail_when_their_signal_changes() {
    if !require_peers("auth_and_likely_servers_fail_when_their_signal_changes") {
        return;
    }
    let _peers = start_peers(&[
        ("py1-hostcheck", "127.97.6.1", 8000),
        ("py1-streamable", "127.97.6.2", 8000),
        ("plain-http", "127.97.6.3", 8000),
        ("py1-auth", "127.97.6.4", 8000),
    ]);
    // A Host-restricted server is mcp-likely, and passes while it still says so.
    let (code, doc, _) = check(&["http://127.97.6.1:8000/mcp"]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["fingerprint"]["kind"], "mcp-likely");
    let msg = doc["checks"][0]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("signal still served: /mcp: 421 Invalid Host"),
        "{msg}"
    );

    let checker = Checker::new(&HealthPlan::default());
    let timeout = Duration::from_secs(5);
    let mut likely = target("http://127.97.6.3:8000/mcp");
    likely.kind = Verdict::McpLikely;
    let r = checker.builtin(&likely, None, timeout).await;
    assert!(!r.result.ok, "{r:?}");
    assert!(
        r.result
            .message
            .starts_with("the MCP transport signal is gone: "),
        "{r:?}"
    );

    let scan_auth = mcp_scout::fingerprint::AuthInfo {
        required: true,
        resource: Some("http://127.97.6.4:8000/mcp".into()),
        resource_metadata: Some(
            "http://127.97.6.4:8000/.well-known/oauth-protected-resource/mcp".into(),
        ),
        ..Default::default()
    };
    let mut auth = target("http://127.97.6.4:8000/mcp");
    auth.kind = Verdict::McpAuthRequired;
    auth.auth = Some(scan_auth.clone());
    let r = checker.builtin(&auth, None, timeout).await;
    assert_eq!(
        (r.result.ok, r.result.message.as_str()),
        (true, "auth: required"),
        "{r:?}"
    );
    // The resource named at scan time is not the one challenged now.
    auth.auth = Some(mcp_scout::fingerprint::AuthInfo {
        resource: Some("http://127.97.6.4:8000/other".into()),
        ..scan_auth.clone()
    });
    let r = checker.builtin(&auth, None, timeout).await;
    assert_eq!(
        (r.result.ok, r.result.message.as_str()),
        (
            false,
            "the challenge names another resource: http://127.97.6.4:8000/other at scan time, http://127.97.6.4:8000/mcp now"
        ),
        "{r:?}"
    );
    // The wall came down: an auth-required server that answers without a token.
    let mut open = target("http://127.97.6.2:8000/mcp");
    open.kind = Verdict::McpAuthRequired;
    open.auth = Some(scan_auth);
    let r = checker.builtin(&open, None, timeout).await;
    assert_eq!(
        (r.result.ok, r.result.message.as_str()),
        (
            false,
            "no 401 any more: the server answers the handshake without a token"
        ),
        "{r:?}"
    );
}
