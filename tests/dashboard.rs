//! The web dashboard in a real browser: the daemon scans real MCP servers from the official
//! SDKs on loopback (127.0.0.240-242 only), one of them hostile (py1-hostile: `<script>` and
//! `<img onerror>` in its name, instructions and a tool), and headless Chromium (Debian's
//! `chromium` + `chromium-driver`, driven by scripts/peers/dashboard_check.py over WebDriver)
//! checks what a user sees: the servers and their fields, a filter that lives in the URL, a
//! stopped server turning unhealthy without a reload, hostile text shown and never run, the
//! topology and the jobs/sinks/config views. Screenshots land in target/screenshots/.
//!
//! Before the browser, plain HTTP checks the page's contract: the security headers, the ETag
//! revalidation, and the read auth (Basic with the read token as the password, a Basic
//! challenge on `/`, bearer still accepted by the API).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::daemon::{free_port, job, write_config, Daemon, Scratch};
use common::{must_run_all, peers_dir, require_peers, root, start_peers, wait_with_deadline};

const READ_TOKEN: &str = "dashboard-read-token-42";
/// Health checks every second; two failures make a server unhealthy.
const FAST_HEALTH: &str =
    "health:\n  interval: 1s\n  timeout: 1s\n  unhealthy_threshold: 2\n  healthy_threshold: 1\n";
/// The whole browser session, bounded.
const BROWSER_LIMIT: Duration = Duration::from_secs(240);

/// The browser, its driver and the selenium venv; `None` (with the test skipped) when one is
/// missing outside CI.
fn browser_python(test: &str) -> Option<PathBuf> {
    let py = peers_dir().join("browser/bin/python");
    let missing: Vec<String> = [
        PathBuf::from("/usr/bin/chromium"),
        PathBuf::from("/usr/bin/chromedriver"),
        py.clone(),
    ]
    .into_iter()
    .filter(|p| !p.exists())
    .map(|p| p.display().to_string())
    .collect();
    if missing.is_empty() {
        return Some(py);
    }
    assert!(
        !must_run_all(),
        "{test}: missing {}; run scripts/peers/setup.sh",
        missing.join(", ")
    );
    eprintln!(
        "SKIPPED {test}: missing {}; run scripts/peers/setup.sh",
        missing.join(", ")
    );
    None
}

/// One raw HTTP/1.1 GET: (status, head, body).
fn raw_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

#[test]
fn dashboard_in_headless_chromium_shows_real_servers_live_and_never_runs_hostile_text() {
    let test = "dashboard";
    if !require_peers(test) {
        return;
    }
    let Some(python) = browser_python(test) else {
        return;
    };
    let dir = Scratch::new("dashboard");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut peers = start_peers(&[
        ("py1-streamable", "127.0.0.240", 8000),
        ("ts-streamable", "127.0.0.241", 8000),
        ("py1-hostile", "127.0.0.242", 8000),
    ]);
    let extra = format!("  read_token: {READ_TOKEN}\n{FAST_HEALTH}");
    let cfg = write_config(&dir, port, &job("lo", "127.0.0.240-242", "1h"), &extra);
    let d = Daemon::start(&cfg, dir.path("daemon.log"), addr);
    let auth = basic("anyone", READ_TOKEN);

    // The page's contract over plain HTTP.
    let (code, head, _) = raw_get(addr, "/", &[]);
    assert_eq!(code, 401, "{head}");
    assert_eq!(
        header(&head, "www-authenticate"),
        Some("basic realm=\"mcp-scout\", charset=\"utf-8\""),
        "{head}"
    );
    let (code, _, _) = raw_get(addr, "/", &[("Authorization", &basic("x", "wrong"))]);
    assert_eq!(code, 401);
    let (code, head, page) = raw_get(addr, "/", &[("Authorization", &auth)]);
    assert_eq!(code, 200, "{head}");
    assert!(page.contains("/assets/app.js"), "{page}");
    let csp = header(&head, "content-security-policy").unwrap_or_default();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(part), "CSP {csp:?} lacks {part}");
    }
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&head, "referrer-policy"), Some("no-referrer"));
    let (code, head, _) = raw_get(addr, "/assets/app.js", &[("Authorization", &auth)]);
    assert_eq!(code, 200);
    assert!(
        header(&head, "content-type").is_some_and(|t| t.starts_with("text/javascript")),
        "{head}"
    );
    let etag = header(&head, "etag").expect("an ETag").to_string();
    let (code, _, body) = raw_get(
        addr,
        "/assets/app.js",
        &[("Authorization", &auth), ("If-None-Match", &etag)],
    );
    assert_eq!((code, body.as_str()), (304, ""));
    // The API reads take the same Basic auth, and still the bearer token.
    let (code, _, _) = raw_get(
        addr,
        "/api/v1/dashboard/servers",
        &[("Authorization", &auth)],
    );
    assert_eq!(code, 200);
    let bearer = format!("Bearer {READ_TOKEN}");
    let (code, _, body) = raw_get(addr, "/api/v1/config", &[("Authorization", &bearer)]);
    assert_eq!(code, 200, "{body}");
    assert!(
        !body.contains(READ_TOKEN),
        "the config shows the token: {body}"
    );
    let (code, _, _) = raw_get(addr, "/api/v1/config", &[]);
    assert_eq!(code, 401);
    let (code, _, body) = raw_get(
        addr,
        "/api/v1/dashboard/servers?sort=nope",
        &[("Authorization", &auth)],
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("invalid sort \\\"nope\\\""), "{body}");

    // The browser. The py1 peer is the first one started; the script stops it.
    let py1_pid = peers[0].0.id().to_string();
    let shots = root().join("target/screenshots");
    let url = format!("http://{addr}");
    let child = Command::new(&python)
        .arg(root().join("scripts/peers/dashboard_check.py"))
        .args(["check", "--url", &url, "--token", READ_TOKEN])
        .args(["--py1", "127.0.0.240", "--ts", "127.0.0.241"])
        .args(["--hostile", "127.0.0.242", "--stop-pid", &py1_pid])
        .arg("--screenshots")
        .arg(&shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dashboard_check.py");
    let out = wait_with_deadline(child, BROWSER_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dashboard_check.py failed:\n{stdout}\n{stderr}\ndaemon log:\n{}",
        d.logs()
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line: {stdout}"));
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    eprintln!("dashboard: {result}");
    assert_eq!(result["hostile"]["pwned"], "undefined");
    assert!(
        result["live_lag_ms"].as_f64().unwrap() <= 2000.0,
        "{result}"
    );
    for s in result["screenshots"].as_array().unwrap() {
        let p = PathBuf::from(s.as_str().unwrap());
        assert!(std::fs::metadata(&p).is_ok_and(|m| m.len() > 1000), "{p:?}");
    }
    // The peer the script stopped has exited; reap it.
    let _ = peers.remove(0);
}
