//! Fingerprinting against real peers (scripts/peers): the official Python SDK 1.x and 2.x,
//! the TypeScript SDK, an auth-protected and a Host-restricted server, decoys that must not be
//! called MCP, and hostile servers that must not stall the scanner. All on 127.91.x.x.

mod common;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{assert_document_schema, require_peers, scout, start_peers, stderr, stdout};
use serde_json::Value;

fn by_ip(doc: &Value) -> HashMap<String, Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["ip"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

#[test]
fn corpus_is_classified_right_with_zero_false_positives() {
    if !require_peers("corpus_is_classified_right_with_zero_false_positives") {
        return;
    }
    // (peer, address, kind, transport, protocol_version)
    let mcp: &[(&str, &str, &str, &str, &str)] = &[
        (
            "py1-streamable",
            "127.91.0.1",
            "mcp",
            "streamable-http",
            "2025-11-25",
        ),
        (
            "py1-stateless-json",
            "127.91.0.2",
            "mcp",
            "streamable-http",
            "2025-11-25",
        ),
        ("py1-sse", "127.91.0.3", "mcp", "sse", "2024-11-05"),
        (
            "py2-streamable",
            "127.91.0.4",
            "mcp",
            "streamable-http",
            "2025-11-25",
        ),
        (
            "py2-stateless-json",
            "127.91.0.5",
            "mcp",
            "streamable-http",
            "2025-11-25",
        ),
        ("py2-sse", "127.91.0.6", "mcp", "sse", "2024-11-05"),
        (
            "ts-streamable",
            "127.91.0.7",
            "mcp",
            "streamable-http",
            "2025-11-25",
        ),
        ("ts-sse", "127.91.0.8", "mcp", "sse", "2024-11-05"),
    ];
    let decoys: &[(&str, &str, &str)] = &[
        ("plain-http", "127.91.0.20", "http"),
        ("jsonrpc", "127.91.0.21", "http"),
        ("endless-sse", "127.91.0.22", "http"),
        ("all-405", "127.91.0.23", "http"),
        ("tls", "127.91.0.24", "http"),
        ("banner", "127.91.0.25", "open"),
    ];
    let mut specs: Vec<(&str, &str, u16)> = mcp.iter().map(|m| (m.0, m.1, 8000)).collect();
    specs.extend(decoys.iter().map(|d| (d.0, d.1, 8000)));
    specs.push(("py1-auth", "127.91.0.9", 8000));
    specs.push(("py1-hostcheck", "127.91.0.10", 8000));
    let _peers = start_peers(&specs);

    let out = scout(&["scan", "127.91.0.1-25", "-p", "8000", "--all", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every documented key in every record, with auth, http, tls, tools and health filled in.
    assert_document_schema(&doc);
    let f = by_ip(&doc);
    assert_eq!(f.len(), specs.len(), "one record per peer: {:?}", f.keys());

    for (name, ip, kind, transport, version) in mcp {
        let r = &f[*ip];
        assert_eq!(r["kind"], *kind, "{name}: {r}");
        assert_eq!(r["transport"], *transport, "{name}");
        assert_eq!(r["protocol_version"], *version, "{name}");
        assert!(
            r["server_name"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: {r}"
        );
        let tools: Vec<&str> = r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(tools.contains(&"add"), "{name}: tools {tools:?}");
        assert_eq!(
            r["confidence"].as_f64().map(|c| c >= 0.95),
            Some(true),
            "{name}"
        );
        let url = r["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("http://{ip}:8000/")),
            "{name}: {url}"
        );
    }
    // The 2.x SDK also speaks the modern era (server/discover).
    let v2 = f["127.91.0.4"]["protocol_versions"].as_array().unwrap();
    assert!(v2.iter().any(|v| v == "2026-07-28"), "{v2:?}");
    // MCP Mesh style health endpoints next to /mcp are recorded.
    let health: Vec<&str> = f["127.91.0.2"]["health_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["path"].as_str().unwrap())
        .collect();
    assert_eq!(health, ["/livez", "/ready"], "{}", f["127.91.0.2"]);
    // Stateful Python sessions are closed after probing.
    let steps_doc = scout(&["probe", "http://127.91.0.1:8000/mcp"]);
    assert!(
        stdout(&steps_doc).contains("DELETE /mcp (close the probe session)"),
        "{}",
        stdout(&steps_doc)
    );

    let auth = &f["127.91.0.9"];
    assert_eq!(auth["kind"], "mcp-auth-required", "{auth}");
    assert_eq!(auth["auth"]["required"], true);
    assert_eq!(auth["auth"]["resource"], "http://127.91.0.9:8000/mcp");
    assert!(
        !auth["auth"]["authorization_servers"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{auth}"
    );

    let host = &f["127.91.0.10"];
    assert_eq!(host["kind"], "mcp-likely", "{host}");
    assert!(
        host["evidence"][0].as_str().unwrap().contains("421"),
        "{host}"
    );

    for (name, ip, kind) in decoys {
        assert_eq!(
            f[*ip]["kind"], *kind,
            "decoy {name} misclassified: {}",
            f[*ip]
        );
    }
    let tls = &f["127.91.0.24"];
    assert_eq!(tls["http"]["scheme"], "https");
    assert_eq!(tls["http"]["tls"]["subject"], "decoy.test", "{tls}");
    assert_eq!(
        tls["http"]["tls"]["not_after"], "2030-01-01T00:00:00Z",
        "{tls}"
    );
    assert!(
        f["127.91.0.25"]["evidence"][0]
            .as_str()
            .unwrap()
            .contains("SSH-2.0"),
        "{}",
        f["127.91.0.25"]
    );
    let s = &doc["scan"]["kinds"];
    assert_eq!(
        (
            s["mcp"].as_u64(),
            s["mcp_auth_required"].as_u64(),
            s["mcp_likely"].as_u64()
        ),
        (Some(8), Some(1), Some(1)),
        "{s}"
    );
}

#[test]
fn scan_lists_only_mcp_servers_unless_all_and_ports_only_without_fingerprinting() {
    if !require_peers(
        "scan_lists_only_mcp_servers_unless_all_and_ports_only_without_fingerprinting",
    ) {
        return;
    }
    let _peers = start_peers(&[
        ("py1-stateless-json", "127.91.1.1", 8000),
        ("plain-http", "127.91.1.2", 8000),
    ]);
    let out = scout(&["scan", "127.91.1.1-2", "-p", "8000", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["findings"][0]["kind"], "mcp");
    assert_eq!(doc["scan"]["not_listed"], 1);
    let out = scout(&[
        "scan",
        "127.91.1.1-2",
        "-p",
        "8000",
        "--no-fingerprint",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["open", "open"]);
    // The table lists MCP servers first, and with --all the other HTTP service too: find each
    // row by its KIND cell and endpoint, not by a substring that another cell also contains
    // ("streamable-http ").
    let row = |text: &str, kind: &str, ip: &str| {
        text.lines().position(|l| {
            let mut cells = l.split_whitespace();
            cells.next() == Some(kind) && cells.next().is_some_and(|e| e.contains(ip))
        })
    };
    let out = scout(&["scan", "127.91.1.1-2", "-p", "8000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(row(&text, "mcp", "127.91.1.1").is_some(), "{text}");
    assert_eq!(
        row(&text, "http", "127.91.1.2"),
        None,
        "listed without --all: {text}"
    );
    let out = scout(&["scan", "127.91.1.1-2", "-p", "8000", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let mcp_at = row(&text, "mcp", "127.91.1.1").unwrap_or_else(|| panic!("no MCP row: {text}"));
    let http_at = row(&text, "http", "127.91.1.2").unwrap_or_else(|| panic!("no HTTP row: {text}"));
    assert!(mcp_at < http_at, "{text}");
    // Only the plain web server: nothing MCP, so nothing is reported without --all (exit 1),
    // and --all reports it (exit 0).
    let out = scout(&["scan", "127.91.1.2", "-p", "8000"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        row(&stdout(&out), "http", "127.91.1.2"),
        None,
        "{}",
        stdout(&out)
    );
    let out = scout(&["scan", "127.91.1.2", "-p", "8000", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        row(&stdout(&out), "http", "127.91.1.2").is_some(),
        "{}",
        stdout(&out)
    );
}

#[test]
fn probe_reports_steps_and_exits_by_verdict() {
    if !require_peers("probe_reports_steps_and_exits_by_verdict") {
        return;
    }
    let _peers = start_peers(&[
        ("py1-sse", "127.91.2.1", 8000),
        ("jsonrpc", "127.91.2.2", 8000),
    ]);
    let out = scout(&["probe", "127.91.2.1:8000"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("event: endpoint")
            && text.contains("Verdict: mcp")
            && text.contains("Transport     sse"),
        "{text}"
    );
    let out = scout(&["probe", "http://127.91.2.2:8000/", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["kind"], "http");
    assert_eq!(rec["origins"], serde_json::json!(["static"]));
    assert!(
        rec["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("JSON-RPC")),
        "{rec}"
    );
    let out = scout(&["probe", "ftp://127.91.2.2/"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("accepted forms"));
}

#[test]
fn hostile_servers_end_within_their_deadlines() {
    if !require_peers("hostile_servers_end_within_their_deadlines") {
        return;
    }
    let names = [
        "trickle-headers",
        "endless-sse-body",
        "huge-body",
        "bad-utf8",
        "bad-json",
        "deep-json",
        "redirect-loop",
        "tls-stall",
    ];
    let ips: Vec<String> = (1..=names.len()).map(|i| format!("127.91.3.{i}")).collect();
    let specs: Vec<(&str, &str, u16)> = names
        .iter()
        .zip(&ips)
        .map(|(n, ip)| (*n, ip.as_str(), 8000))
        .collect();
    let _peers = start_peers(&specs);
    let start = Instant::now();
    let out = scout(&[
        "scan",
        "127.91.3.1-8",
        "-p",
        "8000",
        "--all",
        "-o",
        "json",
        "--fingerprint-budget",
        "8s",
    ]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Every endpoint runs in parallel within its 8 s budget (plus one 3 s request in flight).
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = by_ip(&doc);
    assert_eq!(f.len(), names.len());
    for (name, ip) in names.iter().zip(&ips) {
        let r = &f[ip.as_str()];
        let kind = r["kind"].as_str().unwrap();
        assert!(kind == "http" || kind == "open", "{name}: {r}");
        assert!(
            !r["evidence"].as_array().unwrap().is_empty(),
            "{name} has no evidence note: {r}"
        );
    }
    let huge = f["127.91.3.3"]["evidence"].to_string();
    assert!(
        huge.contains("1048576"),
        "the 100 MiB body is cut at the 1 MiB cap: {huge}"
    );
    assert!(
        f["127.91.3.7"]["evidence"].to_string().contains("redirect"),
        "{}",
        f["127.91.3.7"]
    );
}

#[test]
fn csv_carries_tools_and_auth_required_with_fingerprinting_on() {
    if !require_peers("csv_carries_tools_and_auth_required_with_fingerprinting_on") {
        return;
    }
    let _peers = start_peers(&[
        ("py1-stateless-json", "127.91.4.1", 8000),
        ("py1-auth", "127.91.4.2", 8000),
        ("plain-http", "127.91.4.3", 8000),
    ]);
    let out = scout(&["scan", "127.91.4.1-3", "-p", "8000", "--all", "-o", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut rdr = csv::Reader::from_reader(&out.stdout[..]);
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column: {headers:?}"))
    };
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3, "{}", stdout(&out));
    let row = |ip: &str| {
        rows.iter()
            .find(|r| &r[col("ip")] == ip)
            .unwrap_or_else(|| panic!("no row for {ip}: {}", stdout(&out)))
    };
    // (kind, tool_count, tools, auth_required) per server.
    let cells = |ip: &str| {
        let r = row(ip);
        (
            r[col("kind")].to_string(),
            r[col("tool_count")].to_string(),
            r[col("tools")].to_string(),
            r[col("auth_required")].to_string(),
        )
    };
    // The MCP server's tools, in the order it lists them, joined with ';'. No challenge was
    // seen, so auth_required is empty (the table's AUTH column says "none").
    assert_eq!(
        cells("127.91.4.1"),
        (
            "mcp".into(),
            "2".into(),
            "get_forecast;add".into(),
            String::new()
        )
    );
    // The auth-protected one: a challenge, no tools listed without a token.
    assert_eq!(
        cells("127.91.4.2"),
        (
            "mcp-auth-required".into(),
            "0".into(),
            String::new(),
            "true".into()
        )
    );
    // The web server: fingerprinted (tool_count 0), nothing about auth.
    assert_eq!(
        cells("127.91.4.3"),
        ("http".into(), "0".into(), String::new(), String::new())
    );
}

#[test]
fn off_host_endpoints_metadata_and_redirects_are_reported_never_contacted() {
    if !require_peers("off_host_endpoints_metadata_and_redirects_are_reported_never_contacted") {
        return;
    }
    // "Another host": a loopback address no peer uses, where a listener counts connections.
    // If a regression followed a link, the packet would still stay on loopback.
    let elsewhere = common::Listener::bind("127.0.0.99:0");
    let target = elsewhere.addr.to_string();
    let extra: &[&str] = &["--elsewhere", &target];
    let _peers = common::start_peers_with(&[
        ("offhost-sse", "127.91.5.1", 8000, extra),
        ("offhost-metadata", "127.91.5.2", 8000, extra),
        ("offhost-redirect", "127.91.5.3", 8000, extra),
    ]);
    let out = scout(&["scan", "127.91.5.1-3", "-p", "8000", "--all", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = by_ip(&doc);
    let evidence = |ip: &str| f[ip]["evidence"].to_string();

    // Reported: each link is in the record...
    let sse = &f["127.91.5.1"];
    assert_eq!(sse["kind"], "mcp-likely", "{sse}");
    let endpoint = format!("endpoint event points off-host (http://{target}/messages/?session_id=offhost); not contacted");
    assert!(evidence("127.91.5.1").contains(&endpoint), "{sse}");
    let meta = &f["127.91.5.2"];
    let meta_url = format!("http://{target}/.well-known/oauth-protected-resource/mcp");
    assert_eq!(meta["auth"]["required"], true, "{meta}");
    assert_eq!(
        meta["auth"]["resource_metadata"],
        meta_url.as_str(),
        "{meta}"
    );
    assert!(
        evidence("127.91.5.2")
            .contains(&format!("metadata at {meta_url} is off-host, not fetched")),
        "{meta}"
    );
    assert!(
        evidence("127.91.5.3").contains(&format!(
            "redirect to http://{target}/mcp not followed: outside the probed host or path"
        )),
        "{}",
        f["127.91.5.3"]
    );
    // ...and never contacted.
    assert!(
        elsewhere
            .accepted
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "the scanner connected to the off-host address {target}"
    );
}

#[test]
fn redirects_are_followed_at_most_three_times() {
    if !require_peers("redirects_are_followed_at_most_three_times") {
        return;
    }
    // /mcp -> /mcp/r1 -> /mcp/r2 -> ... without end, same host and first path segment.
    let _peers = start_peers(&[("redirect-chain", "127.91.5.4", 8000)]);
    let out = scout(&["probe", "http://127.91.5.4:8000/mcp", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "not MCP: {}", stderr(&out));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        rec["evidence"]
            .to_string()
            .contains("/mcp: more than 3 redirects"),
        "{rec}"
    );
    // What the chain served, asked over loopback after the probe.
    let hits: Vec<String> = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect("127.91.5.4:8000").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /__hits HTTP/1.1\r\nHost: 127.91.5.4:8000\r\n\r\n")
            .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {raw}"))
    };
    let depth = |h: &String| {
        h.rsplit_once("/r")
            .and_then(|(_, k)| k.parse::<u32>().ok())
            .unwrap_or(0)
    };
    // Three redirects followed (r1, r2, r3 requested), never a fourth.
    assert!(hits.iter().any(|h| h == "POST /mcp/r3"), "{hits:?}");
    assert_eq!(hits.iter().map(depth).max(), Some(3), "{hits:?}");
}

/// The evidence of a host-wide authentication wall (`fingerprint::HOST_WIDE`).
const HOST_WIDE: &str = "authentication required on every path (not MCP-specific)";

#[test]
fn host_wide_auth_walls_are_http_and_counted_apart_from_mcp_challenges() {
    if !require_peers("host_wide_auth_walls_are_http_and_counted_apart_from_mcp_challenges") {
        return;
    }
    let _peers = start_peers(&[
        ("oauth-api", "127.91.6.1", 8000),
        ("apikey-proxy", "127.91.6.2", 8000),
        ("py1-auth", "127.91.6.3", 8000),
        ("py1-hostcheck", "127.91.6.4", 8000),
    ]);
    let out = scout(&["scan", "127.91.6.1-4", "-p", "8000", "--all", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_document_schema(&doc);
    let f = by_ip(&doc);
    // An OAuth API and an API-key proxy: the same challenge on a random path, so `http`,
    // with the wall recorded and nothing claimed that was not seen.
    for (name, ip) in [("oauth-api", "127.91.6.1"), ("apikey-proxy", "127.91.6.2")] {
        let r = &f[ip];
        assert_eq!(r["kind"], "http", "{name}: {r}");
        assert_eq!(r["evidence"][0], HOST_WIDE, "{name}: {r}");
        assert_eq!(r["auth"]["required"], true, "{name}: {r}");
        assert!(
            r["transport"].is_null(),
            "{name}: no handshake, no transport: {r}"
        );
        assert!(
            r["auth"]["resource_metadata"].is_null(),
            "{name}: the server named no metadata: {r}"
        );
        assert_eq!(r["url"], format!("http://{ip}:8000/"), "{name}");
    }
    // The RFC 9728 challenge whose metadata names the resource stays MCP; the challenge
    // named its metadata, so that URL is recorded, but no transport was seen.
    let auth = &f["127.91.6.3"];
    assert_eq!(auth["kind"], "mcp-auth-required", "{auth}");
    assert!(auth["transport"].is_null(), "{auth}");
    assert_eq!(
        auth["auth"]["resource_metadata"],
        "http://127.91.6.3:8000/.well-known/oauth-protected-resource/mcp",
        "{auth}"
    );
    assert!(
        !auth["evidence"].to_string().contains(HOST_WIDE),
        "corroborated, so never tested as a wall: {auth}"
    );
    // SDK transport signals stay mcp-likely, and show no transport either.
    let host = &f["127.91.6.4"];
    assert_eq!(host["kind"], "mcp-likely", "{host}");
    assert!(host["transport"].is_null(), "{host}");
    assert_eq!(doc["scan"]["auth_walls"], 2, "{}", doc["scan"]);
    assert_eq!(doc["scan"]["kinds"]["http"], 2, "{}", doc["scan"]);

    // The table hides the walls without --all and says how many there are.
    let out = scout(&["scan", "127.91.6.1-4", "-p", "8000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(" · 2 behind an authentication wall on MCP ports: --all lists them"),
        "{text}"
    );
    assert!(
        !text.contains("127.91.6.1:8000"),
        "a wall listed without --all: {text}"
    );

    // probe says the same.
    let out = scout(&["probe", "127.91.6.1:8000"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Verdict: http (confidence 0.80)"), "{text}");
    assert!(text.contains(&format!("  - {HOST_WIDE}")), "{text}");
    assert!(text.contains("(is the challenge host-wide?)"), "{text}");
    assert!(!text.contains("Transport"), "{text}");
    assert!(!text.contains("  metadata"), "{text}");
}

#[test]
fn credentials_confirm_a_server_behind_its_wall_and_never_show() {
    if !require_peers("credentials_confirm_a_server_behind_its_wall_and_never_show") {
        return;
    }
    let token = "scout-test-token";
    let key = "sekrit-api-key-1234";
    let _peers = start_peers(&[("py1-auth", "127.91.6.10", 8000)]);
    // With the right token, the handshake goes through: confirmed, with its tools.
    let out = scout(&[
        "-vv",
        "scan",
        "127.91.6.10",
        "-p",
        "8000",
        "--bearer",
        token,
        "--header",
        &format!("X-Api-Key: {key}"),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &doc["findings"][0];
    assert_eq!(r["kind"], "mcp", "{r}");
    assert_eq!(r["transport"], "streamable-http", "{r}");
    assert!(r["tools"].to_string().contains("\"add\""), "{r}");
    assert_eq!(
        r["evidence"][0], "sent the given credentials (x-api-key, authorization)",
        "{r}"
    );
    for text in [stdout(&out), stderr(&out)] {
        assert!(
            !text.contains(token) && !text.contains(key),
            "a credential leaked: {text}"
        );
    }
    // probe's report, the same.
    let out = scout(&["-vv", "probe", "127.91.6.10:8000", "--bearer", token]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Verdict: mcp (confidence 1.00)"), "{text}");
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(token), "the token leaked: {text}");
    }
    // check's MCP_SCOUT_BEARER is not read by scan or probe: no token goes out unasked.
    let child = common::scout_command(&[], &["probe", "127.91.6.10:8000", "-o", "json"])
        .env("MCP_SCOUT_BEARER", token)
        .spawn()
        .expect("spawn mcp-scout");
    let out = common::wait_with_deadline(child, Duration::from_secs(60));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["kind"], "mcp-auth-required", "{rec}");
    // A wrong token is just another refusal.
    let out = scout(&[
        "probe",
        "127.91.6.10:8000",
        "--bearer",
        "wrong",
        "-o",
        "json",
    ]);
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["kind"], "mcp-auth-required", "{rec}");
    // A malformed header is refused before any packet, without echoing its value.
    let out = scout(&["probe", "127.91.6.10:8000", "--header", key]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim_end().lines().last(),
        Some("mcp-scout: error: invalid --header #1: expected 'NAME: VALUE', for example --header 'X-Api-Key: KEY'"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(key));
}

#[test]
fn unparseable_answers_quote_their_status_and_first_line() {
    if !require_peers("unparseable_answers_quote_their_status_and_first_line") {
        return;
    }
    // Like Playwright's MCP server to any Host but localhost: a plain-text 403.
    let _peers = start_peers(&[("host-allowlist", "127.91.6.20", 8000)]);
    let out = scout(&["probe", "127.91.6.20:8000", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["kind"], "http", "{rec}");
    assert!(rec["transport"].is_null(), "{rec}");
    assert_eq!(
        rec["evidence"][0],
        "/mcp: 403: Access is only allowed at localhost:8000 (not JSON-RPC: invalid json: expected value at line 1 column 1)",
        "{rec}"
    );
}

#[test]
fn server_cards_are_recorded_as_advisory_and_off_origin_cards_never_fetched() {
    if !require_peers("server_cards_are_recorded_as_advisory_and_off_origin_cards_never_fetched") {
        return;
    }
    // py1-card: the real FastMCP server, plus OUR routes serving a card and a catalog whose
    // second entry names a card on 127.0.0.99:9, where a listener counts connections.
    let elsewhere = common::Listener::bind("127.0.0.99:9");
    let _peers = start_peers(&[
        ("py1-card", "127.91.7.1", 8000),
        ("py1-streamable", "127.91.7.2", 8000),
    ]);
    let out = scout(&["scan", "127.91.7.1-2", "-p", "8000", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_document_schema(&doc);
    let f = by_ip(&doc);
    let r = &f["127.91.7.1"];
    // The handshake stays the truth...
    assert_eq!(r["kind"], "mcp", "{r}");
    assert_eq!(r["server_name"], "weather-demo", "{r}");
    assert_eq!(r["server_version"], "1.30.0", "{r}");
    // ...and the card is recorded beside it.
    assert_eq!(
        r["server_card"],
        serde_json::json!({
            "url": "http://127.91.7.1:8000/mcp/server-card",
            "name": "test.scout/weather",
            "version": "2.0.0",
            "title": "Weather Demo",
            "description": "Forecasts and arithmetic for mcp-scout tests.",
            "remotes": [{
                "transport": "streamable-http",
                "url": "http://127.91.7.1:8000/mcp",
                "supported_protocol_versions": ["2025-11-25", "2025-06-18"]
            }],
            "catalog": [
                {
                    "identifier": "urn:air:scout.test:weather",
                    "display_name": "Weather Demo",
                    "url": "http://127.91.7.1:8000/mcp/server-card"
                },
                {
                    "identifier": "urn:air:scout.test:other",
                    "display_name": "Elsewhere",
                    "url": "http://127.0.0.99:9/other/server-card"
                }
            ]
        }),
        "the entry of another type is ignored: {r}"
    );
    let evidence: Vec<&str> = r["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for want in [
        "server card at /mcp/server-card: test.scout/weather 2.0.0 (advisory)",
        "server card says version 2.0.0, the handshake says 1.30.0 (the handshake wins)",
        "catalog entry urn:air:scout.test:other names a card off this origin (http://127.0.0.99:9/other/server-card); not contacted",
    ] {
        assert!(evidence.contains(&want), "{want:?} missing: {evidence:#?}");
    }
    // A server without a card has none.
    assert!(
        f["127.91.7.2"]["server_card"].is_null(),
        "{}",
        f["127.91.7.2"]
    );
    // probe shows it too.
    let text = stdout(&scout(&["probe", "127.91.7.1:8000"]));
    assert!(
        text.contains("  Server card   test.scout/weather 2.0.0 at http://127.91.7.1:8000/mcp/server-card (advisory)"),
        "{text}"
    );
    assert!(
        elsewhere
            .accepted
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "the scanner fetched the off-origin card"
    );
    // The catalog's other entry is a candidate behind the scope wall: outside the scope it
    // is listed as such and never contacted...
    let out = scout(&[
        "scan",
        "127.91.7.1",
        "-p",
        "8000",
        "--scope",
        "127.91.7.0/24",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["scan"]["out_of_scope"],
        serde_json::json!([{"ip": "127.0.0.99", "port": 9, "origin": "catalog", "name": "urn:air:scout.test:other"}]),
        "{}",
        doc["scan"]
    );
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1, "{doc}");
    assert!(
        elsewhere
            .accepted
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "an out-of-scope catalog entry was contacted"
    );
    // ...and inside it, it is fingerprinted (the listener there speaks no HTTP).
    let out = scout(&[
        "scan",
        "127.91.7.1",
        "-p",
        "8000",
        "--scope",
        "127.91.7.0/24,127.0.0.99/32",
        "--all",
        "--fingerprint-budget",
        "2s",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = by_ip(&doc);
    let other = &f["127.0.0.99"];
    assert_eq!(other["port"], 9, "{doc}");
    assert_eq!(other["origins"], serde_json::json!(["catalog"]), "{other}");
    assert_eq!(
        other["announced_as"],
        serde_json::json!(["urn:air:scout.test:other"]),
        "{other}"
    );
    assert!(doc["scan"]["out_of_scope"].as_array().unwrap().is_empty());
    assert!(
        elsewhere
            .accepted
            .recv_timeout(Duration::from_secs(5))
            .is_ok(),
        "the in-scope catalog entry was not probed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carry_skips_the_card_and_health_gets_of_an_unchanged_server_and_gives_the_same_fingerprint(
) {
    use mcp_scout::fingerprint::carry::Carry;
    use mcp_scout::fingerprint::{FingerprintOptions, Fingerprinter, ProbeTarget};
    if !require_peers("a_carry_skips_the_card_and_health_gets_of_an_unchanged_server_and_gives_the_same_fingerprint") {
        return;
    }
    // The daemon's rescans: the same Fingerprinter carry across two fingerprints of the
    // real FastMCP server with a card and a catalog (py1-card).
    let _peers = start_peers(&[("py1-card", "127.91.7.5", 8000)]);
    let target = ProbeTarget {
        addr: "127.91.7.5:8000".parse().unwrap(),
        https: None,
        path: None,
        hint_path: None,
        credentials: false,
    };
    let carry = std::sync::Arc::new(Carry::default());
    let fp = Fingerprinter::new(FingerprintOptions::default())
        .unwrap()
        .with_carry(carry.clone());
    let first = fp.fingerprint(&target).await;
    let second = fp.fingerprint(&target).await;
    let asked = |f: &mcp_scout::fingerprint::Fingerprint, what: &str| {
        f.steps.iter().any(|s| s.request.contains(what))
    };
    for what in ["/server-card", "catalog.json", "GET /livez", "GET /health"] {
        assert!(
            asked(&first, what),
            "the first run reads {what}: {:?}",
            first.steps
        );
        assert!(
            !asked(&second, what),
            "a rescan carries {what}: {:?}",
            second.steps
        );
    }
    let carried = |f: &mcp_scout::fingerprint::Fingerprint, what: &str| {
        f.steps
            .iter()
            .any(|s| s.request.contains(what) && s.outcome.starts_with("carried over"))
    };
    assert!(
        carried(&second, "health endpoints, Server Card and catalog"),
        "{:?}",
        second.steps
    );
    assert!(!carried(&first, "server/discover") && carried(&second, "server/discover"));
    assert!(
        !asked(&second, "minted by an earlier reply"),
        "no refused server/discover, so no minted session to close: {:?}",
        second.steps
    );
    for what in ["initialize", "tools/list", "resources/list", "prompts/list"] {
        assert!(asked(&second, what), "{what} is asked every run");
    }
    assert_eq!(carry.len(), 1);
    assert!(first.server_card.is_some(), "{first:?}");
    // Everything but the request log is the same.
    let strip = |mut f: mcp_scout::fingerprint::Fingerprint| {
        f.steps.clear();
        f
    };
    assert_eq!(strip(first.clone()), strip(second));
    // Without a carry (scan, probe, watch) every fingerprint reads everything.
    let plain = Fingerprinter::new(FingerprintOptions::default()).unwrap();
    let third = plain.fingerprint(&target).await;
    assert!(asked(&third, "/server-card") && asked(&third, "GET /livez"));
    assert_eq!(strip(third), strip(first));
}
