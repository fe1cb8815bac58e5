//! The daemon on a LAN: the real binary inside a namespace of a test LAN (scripts/testnet.sh),
//! scanning real MCP servers that python-zeroconf announces over mDNS and dnsmasq names in
//! SRV records, and the daemon on loopback with its store on a tmpfs that fills up. mDNS and
//! SRV only ever run inside namespaces these tests built (`Testnet::daemon_command`); the
//! API of a namespaced daemon is reached from a thread that entered that namespace.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{get_json, http, sqlite, sqlite_in, Daemon, Scratch, TOKEN};
use common::{require_peers, require_root, start_peers, Publisher, ReadyLine, Reaped, Testnet};
use serde_json::Value;

fn ready(test: &str) -> bool {
    require_root(test) && require_peers(test)
}

/// The API inside the scanner's namespace: its own loopback, so any port is free.
const LAN_API: &str = "127.0.0.1:9464";

fn lan_api() -> SocketAddr {
    LAN_API.parse().unwrap()
}

/// A config for a daemon inside a namespace: the API on that namespace's loopback, the store
/// in `dir`.
fn lan_config(dir: &Scratch, gone_after: u32, jobs: &str) -> PathBuf {
    let cfg = dir.path("config.yaml");
    let text = format!(
        "api:\n  listen: {LAN_API}\n  token: {TOKEN}\nstore:\n  path: {}\ngone_after: {gone_after}\njobs:\n{jobs}",
        dir.path("inventory.db").display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn runs(d: &Daemon, job: &str) -> Vec<Value> {
    let (code, v) = d.get_json(&format!("/api/v1/runs?job={job}&limit=100"));
    assert_eq!(code, 200, "{v}");
    v["runs"].as_array().unwrap().clone()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn a_newly_announced_server_is_stored_within_seconds_not_at_the_next_run_and_its_goodbye_marks_it_gone(
) {
    if !ready("a_newly_announced_server_is_stored_within_seconds") {
        return;
    }
    let net = Testnet::up(1, &[]);
    // A real FastMCP server at a port and path no sweep or default would find.
    let _srv = net.peer(
        "h1",
        "py1-streamable",
        "10.99.0.11",
        8765,
        Some("/custom/mcp"),
    );
    let dir = Scratch::new("lan-mdns");
    let cfg = lan_config(
        &dir,
        3,
        "  - name: lan\n    targets: []\n    interval: 1h\n    jitter: 0%\n    mdns: { types: [_mcp._tcp.local.], wait: 1s }\n",
    );
    let d = Daemon::start_in(
        net.daemon_command("scan", &cfg),
        &net.ns("scan"),
        dir.path("daemon.log"),
        lan_api(),
    );
    // The run at start completes and finds nothing: nothing is announced yet.
    d.wait_for("/api/v1/runs?job=lan", Duration::from_secs(30), |v| {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "completed")
    });
    assert_eq!(d.get_json("/api/v1/servers?status=all").1["count"], 0);
    assert_eq!(runs(&d, "lan").len(), 1);

    // Announced now; the next run is an hour away.
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    let t0 = Instant::now();
    publisher.cmd(
        "announce srv1 _mcp._tcp.local. 10.99.0.11 8765 path=/custom/mcp transport=streamable-http",
    );
    let acked = t0.elapsed();
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(10), |v| {
        v["count"] == 1
    });
    let stored = t0.elapsed();
    eprintln!(
        "announce -> stored: {:.0} ms from the announce command ({:.0} ms after the publisher's ack)",
        stored.as_secs_f64() * 1e3,
        (stored - acked).as_secs_f64() * 1e3
    );
    let s = &v["servers"][0];
    assert_eq!(s["kind"], "mcp", "{s}");
    assert_eq!(s["url"], "http://10.99.0.11:8765/custom/mcp", "{s}");
    assert!(strs(&s["origins"]).contains(&"mdns"), "{s}");
    assert!(
        strs(&s["announced_as"]).contains(&"srv1._mcp._tcp.local."),
        "{s}"
    );
    assert_eq!(s["jobs"], serde_json::json!(["lan"]), "{s}");
    assert_eq!(s["status"], "active");
    // Stored by the browser, not by a run: still the one run from start-up.
    assert_eq!(
        runs(&d, "lan").len(),
        1,
        "a run happened: {:?}",
        runs(&d, "lan")
    );
    let id = s["id"].as_str().unwrap().to_string();
    let (_, one) = d.get_json(&format!("/api/v1/servers/{id}"));
    assert_eq!(one["changes"][0]["kind"], "appeared", "{one}");

    // Goodbye (three TTL-0 announcements): gone, with a reason naming mDNS.
    let t1 = Instant::now();
    publisher.cmd("withdraw srv1 _mcp._tcp.local.");
    let acked = t1.elapsed();
    let one = d.wait_for(
        &format!("/api/v1/servers/{id}"),
        Duration::from_secs(10),
        |v| v["status"] == "gone",
    );
    let gone = t1.elapsed();
    eprintln!(
        "goodbye -> gone: {:.0} ms from the withdraw command ({:.0} ms after the ack that the \
         three goodbyes were sent)",
        gone.as_secs_f64() * 1e3,
        (gone - acked).as_secs_f64() * 1e3
    );
    let c = &one["changes"][0];
    assert_eq!(c["kind"], "gone", "{one}");
    let reason = c["detail"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("mDNS") && reason.contains("srv1._mcp._tcp.local."),
        "{one}"
    );
    assert_eq!(d.get_json("/api/v1/servers").1["count"], 0);
    assert_eq!(runs(&d, "lan").len(), 1, "no run was needed for either");

    let (code, took) = d.stop();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        sqlite(&dir.path("inventory.db"), "PRAGMA integrity_check"),
        "ok"
    );
}

#[test]
fn a_server_announced_before_it_listens_is_stored_by_a_run_and_its_goodbye_still_marks_it_gone() {
    if !ready("a_server_announced_before_it_listens") {
        return;
    }
    let net = Testnet::up(1, &[]);
    // Announced before anything listens at the address, as a service may be while it starts.
    let mut publisher = Publisher::start(&net.ns("h1"), "10.99.0.11");
    publisher.cmd("announce early1 _mcp._tcp.local. 10.99.0.11 8765 path=/custom/mcp");
    let dir = Scratch::new("lan-mdns-early");
    let cfg = lan_config(
        &dir,
        3,
        "  - name: lan\n    targets: []\n    interval: 1h\n    jitter: 0%\n    mdns: { types: [_mcp._tcp.local.], wait: 1s }\n",
    );
    let d = Daemon::start_in(
        net.daemon_command("scan", &cfg),
        &net.ns("scan"),
        dir.path("daemon.log"),
        lan_api(),
    );
    // The browser's probe and the run at start both meet a closed port: nothing stored.
    d.wait_for("/api/v1/runs?job=lan", Duration::from_secs(30), |v| {
        v["runs"][0]["status"] == "completed"
    });
    assert_eq!(d.get_json("/api/v1/servers?status=all").1["count"], 0);

    // The server starts; the next run (from what the browser knows) finds and stores it.
    let _srv = net.peer(
        "h1",
        "py1-streamable",
        "10.99.0.11",
        8765,
        Some("/custom/mcp"),
    );
    let r = d.run_now("lan");
    assert_eq!(r["status"], "completed", "{r}");
    let (_, v) = d.get_json("/api/v1/servers");
    assert_eq!(v["count"], 1, "{v}");
    let s = &v["servers"][0];
    assert_eq!(s["origins"], serde_json::json!(["mdns"]), "{s}");
    assert_eq!(s["url"], "http://10.99.0.11:8765/custom/mcp", "{s}");
    let id = s["id"].as_str().unwrap().to_string();

    // Known only from mDNS: its goodbye makes it gone, though the browser never stored it.
    publisher.cmd("withdraw early1 _mcp._tcp.local.");
    let one = d.wait_for(
        &format!("/api/v1/servers/{id}"),
        Duration::from_secs(10),
        |v| v["status"] == "gone",
    );
    let reason = one["changes"][0]["detail"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("mDNS") && reason.contains("early1._mcp._tcp.local."),
        "{one}"
    );
    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
}

/// How many SRV queries for `name` dnsmasq has logged (scripts/peers/dnsmasq.sh runs it with
/// `log-queries` into its state directory).
fn srv_queries(dns: &common::Dnsmasq, name: &str) -> usize {
    let want = format!("query[SRV] {name} ");
    dns.queries().lines().filter(|l| l.contains(&want)).count()
}

/// The SRV query count for `name` once it exceeds `above` (dnsmasq writes its log a moment
/// after answering), at most 5 s; `above` itself if it never does.
fn srv_queries_above(dns: &common::Dnsmasq, name: &str, above: usize) -> usize {
    let start = Instant::now();
    loop {
        let n = srv_queries(dns, name);
        if n > above || start.elapsed() > Duration::from_secs(5) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn srv_names_are_resolved_again_on_every_run_and_a_target_that_stops_answering_goes_after_gone_after_runs(
) {
    if !ready("srv_names_are_resolved_again_on_every_run") {
        return;
    }
    // dns-records.conf: _custom._tcp.example.test -> srv4.example.test:8765 (10.99.0.14),
    // TXT path=/custom/mcp transport=streamable-http.
    let name = "_custom._tcp.example.test";
    let net = Testnet::up(4, &[]);
    let dns = net.dnsmasq("scan", "10.99.0.2");
    let mut srv = Some(net.peer(
        "h4",
        "py1-streamable",
        "10.99.0.14",
        8765,
        Some("/custom/mcp"),
    ));
    let dir = Scratch::new("lan-srv");
    let cfg = lan_config(
        &dir,
        2,
        &format!("  - name: dns\n    targets: []\n    interval: 1h\n    jitter: 0%\n    srv: [{name}]\n    dns: {{ server: 10.99.0.2, timeout: 2s }}\n    scope: [10.99.0.0/24]\n"),
    );
    let before = srv_queries(&dns, name);
    let d = Daemon::start_in(
        net.daemon_command("scan", &cfg),
        &net.ns("scan"),
        dir.path("daemon.log"),
        lan_api(),
    );
    // The run at start resolves the name and finds the server behind it.
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(60), |v| {
        v["count"] == 1
    });
    let s = &v["servers"][0];
    assert_eq!(s["kind"], "mcp", "{s}");
    assert_eq!(s["url"], "http://10.99.0.14:8765/custom/mcp", "{s}");
    assert_eq!(s["origins"], serde_json::json!(["srv"]), "{s}");
    assert!(strs(&s["announced_as"]).contains(&name), "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    d.wait_for("/api/v1/runs?job=dns", Duration::from_secs(30), |v| {
        v["runs"][0]["status"] == "completed"
    });

    // Each run asks dnsmasq again: the count of logged SRV queries for the name after each
    // completed run (a run that reused an earlier answer would leave it unchanged).
    let mut queried = vec![srv_queries_above(&dns, name, before)];
    let run = |queried: &mut Vec<usize>| {
        let r = d.run_now("dns");
        assert_eq!(r["status"], "completed", "{r}");
        let last = *queried.last().unwrap();
        queried.push(srv_queries_above(&dns, name, last));
    };
    let status = |d: &Daemon| d.get_json(&format!("/api/v1/servers/{id}")).1;
    run(&mut queried);
    assert_eq!(status(&d)["status"], "active");

    // The server stops; the name still resolves to it, and each completed run is a miss.
    drop(srv.take());
    run(&mut queried);
    let s = status(&d);
    assert_eq!(
        s["status"], "active",
        "one miss of gone_after 2 is not gone: {s}"
    );
    run(&mut queried);
    let s = status(&d);
    assert_eq!(s["status"], "gone", "{s}");
    let c = &s["changes"][0];
    assert_eq!(c["kind"], "gone", "{s}");
    assert!(
        c["detail"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("missed 2 consecutive"),
        "{s}"
    );
    let queried: Vec<usize> = queried.iter().map(|n| n - before).collect();
    eprintln!("SRV queries for {name} logged by dnsmasq after runs 1..4: {queried:?}");
    assert!(
        queried.windows(2).all(|w| w[1] > w[0]) && queried[0] >= 1,
        "every run must query the name again: {queried:?}"
    );

    // It comes back at the same SRV target: the next run resolves the name and finds it.
    srv = Some(net.peer(
        "h4",
        "py1-streamable",
        "10.99.0.14",
        8765,
        Some("/custom/mcp"),
    ));
    let last = before + queried[3];
    let r = d.run_now("dns");
    assert_eq!(r["status"], "completed", "{r}");
    let s = status(&d);
    assert_eq!(s["status"], "active", "{s}");
    assert_eq!(
        (
            s["changes"][0]["kind"].as_str(),
            s["changes"][0]["detail"]["reason"].as_str()
        ),
        (Some("appeared"), Some("back")),
        "{s}"
    );
    assert!(srv_queries_above(&dns, name, last) > last);
    drop(srv);

    let (code, _) = d.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        sqlite(&dir.path("inventory.db"), "PRAGMA integrity_check"),
        "ok"
    );
}

/// A tmpfs in a private mount namespace: `unshare --mount` mounts it on `dir` and then holds
/// the namespace (as `sleep`) for the test. Nothing is mounted in the machine's mount table:
/// the test reaches the files through `/proc/<holder>/root`, the daemon runs in the holder's
/// mount namespace (`nsenter --mount`), and the tmpfs vanishes with the holder.
struct PrivateTmpfs {
    holder: Reaped,
    dir: PathBuf,
}

impl PrivateTmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o size=\"$1\",mode=0700 mcp-scout-test \"$2\" || exit 1; \
                 echo READY; exec sleep 600",
            )
            .args(["sh", size])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let mut holder = Reaped(child);
        let line = ReadyLine::watch(&mut holder).wait(
            &mut holder,
            "the tmpfs holder",
            Duration::from_secs(10),
        );
        assert_eq!(line, "READY");
        Self {
            holder,
            dir: dir.to_path_buf(),
        }
    }

    /// `path` (inside the tmpfs) as the test process reaches it.
    fn outside(&self, path: &Path) -> PathBuf {
        let rel = path.strip_prefix("/").unwrap();
        PathBuf::from(format!("/proc/{}/root", self.holder.0.id())).join(rel)
    }

    /// The wrapper that runs a command in this mount namespace.
    fn nsenter(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--mount=/proc/{}/ns/mnt", self.holder.0.id()),
            "--".into(),
        ]
    }

    /// Bytes free, as `df` inside the namespace sees them.
    fn free(&self) -> u64 {
        let out = Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.holder.0.id()))
            .args(["--", "df", "--output=avail", "-B1"])
            .arg(&self.dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("df: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Write `path` in 16 KiB pieces until the file system refuses (ENOSPC); bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 16 * 1024];
    let mut written = 0u64;
    // Bounded: the tmpfs is a few MiB.
    for _ in 0..100_000 {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) => {
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::ENOSPC),
                    "filling {}: {e}",
                    path.display()
                );
                return written;
            }
        }
    }
    panic!("{} never filled up", path.display());
}

#[test]
fn a_full_disk_turns_readyz_to_503_and_the_store_recovers_when_space_returns_losing_nothing() {
    if !ready("a_full_disk_turns_readyz_to_503") {
        return;
    }
    let dir = Scratch::new("fulldisk");
    let store_dir = dir.path("store");
    let tmpfs = PrivateTmpfs::mount(&store_dir, "4m");
    let db = store_dir.join("inventory.db");
    let port = common::daemon::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = dir.path("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "api:\n  listen: 127.0.0.1:{port}\n  token: {TOKEN}\nstore:\n  path: {}\ngone_after: 2\njobs:\n{}",
            db.display(),
            common::daemon::job("lo", "127.0.0.91", "1h")
        ),
    )
    .unwrap();
    let wrapper = tmpfs.nsenter();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let d = Daemon::start_command(
        common::daemon_command_in(&wrapper, &cfg),
        dir.path("daemon.log"),
        addr,
    );
    // The run at start finds nothing (no server yet).
    d.wait_for("/api/v1/runs?job=lo", Duration::from_secs(30), |v| {
        v["runs"][0]["status"] == "completed"
    });
    assert_eq!(d.get_json("/api/v1/servers").1["count"], 0);

    // Fill the disk, then give the next run something to write.
    let filler = tmpfs.outside(&store_dir.join("filler"));
    let filled = fill(&filler);
    eprintln!(
        "filler: {filled} bytes; {} bytes free; store files: {:?}",
        tmpfs.free(),
        std::fs::read_dir(tmpfs.outside(&store_dir))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().len())
            })
            .collect::<Vec<_>>()
    );
    let _peer = start_peers(&[("py1-streamable", "127.0.0.91", 8000)]);
    let run = d.trigger("lo");
    let start = Instant::now();
    let not_ready = loop {
        let (code, body) = http(addr, "GET", "/readyz", &[], "");
        if code == 503 {
            break serde_json::from_str::<Value>(&body).unwrap();
        }
        assert_eq!(code, 200, "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "/readyz stayed 200 with the disk full: {body}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "disk full, run triggered -> /readyz 503 {:.0} ms after the 202: {not_ready}",
        start.elapsed().as_secs_f64() * 1e3
    );
    let reason = not_ready["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the store is not writable: ") && reason.contains("full"),
        "{not_ready}"
    );
    // Scanning goes on: the run finishes with the disk still full, and its result (the
    // server, its `appeared` change) is kept in memory with the run's start: two queued writes.
    let start = Instant::now();
    let held = loop {
        let (code, body) = http(addr, "GET", "/readyz", &[], "");
        let v: Value = serde_json::from_str(&body).unwrap();
        if code == 503 && v["queued_writes"].as_u64() >= Some(2) {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run's result was never queued: {code} {v}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let (_, jobs) = d.get_json("/api/v1/jobs");
    assert_eq!(
        (
            jobs["jobs"][0]["running"].is_null(),
            jobs["jobs"][0]["last_result"].as_str()
        ),
        (true, Some("completed")),
        "{jobs}"
    );
    eprintln!("run finished during the outage: {held}");
    // Nothing of it is in the file yet; the API and the liveness probe still answer.
    assert_eq!(d.get_json("/api/v1/servers").1["count"], 0);
    assert_eq!(http(addr, "GET", "/livez", &[], "").0, 200);
    let logs = d.logs();
    assert!(
        logs.contains("store not writable") && logs.contains("database or disk is full"),
        "logged: {logs}"
    );

    // Space returns: ready again, and what was found during the outage is there.
    std::fs::remove_file(&filler).unwrap();
    let start = Instant::now();
    loop {
        let (code, body) = http(addr, "GET", "/readyz", &[], "");
        if code == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "/readyz never recovered: {body}\n{}",
            d.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "space back -> /readyz 200 after {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let v = d.wait_for("/api/v1/servers", Duration::from_secs(30), |v| {
        v["count"] == 1
    });
    let s = &v["servers"][0];
    assert_eq!(
        (s["ip"].as_str(), s["kind"].as_str()),
        (Some("127.0.0.91"), Some("mcp")),
        "{s}"
    );
    let id = s["id"].as_str().unwrap();
    let (_, feed) = get_json(addr, "/api/v1/changes?since=0&limit=100");
    assert!(
        feed["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "appeared" && c["server_id"] == id),
        "{feed}"
    );
    let r = d.wait_for("/api/v1/runs?job=lo", Duration::from_secs(30), |v| {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == run && r["status"] == "completed")
    });
    eprintln!("runs: {r}");

    let (code, took) = d.stop();
    assert_eq!(
        code,
        Some(0),
        "{}",
        std::fs::read_to_string(dir.path("daemon.log")).unwrap_or_default()
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(sqlite_in(&wrapper, &db, "PRAGMA integrity_check"), "ok");
    assert_eq!(
        sqlite_in(
            &wrapper,
            &db,
            "SELECT count(*), count(DISTINCT id) FROM servers WHERE status = 'active'"
        ),
        "1|1"
    );
    drop(tmpfs);
}
