//! A daemon under test: the real binary with a config file in a scratch directory, waited on
//! through `/readyz`, driven over plain HTTP/1.1 (std sockets, so tests see exactly what a
//! client sends), stopped by signals. Configs pass `daemon_command`'s loopback check, or the
//! daemon runs inside a namespace of a [`Testnet`](super::Testnet) (`Daemon::start_in`), where
//! requests are made from a thread that entered that namespace.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{daemon_command, wait_with_deadline};

pub const TOKEN: &str = "test-token-0123456789";

pub static NEXT: AtomicU32 = AtomicU32::new(0);

/// A scratch directory for one test, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!(
            "mcp-scout-daemon-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TCP connection to `addr` made inside network namespace `netns` (a name under
/// /run/netns), or in the test's own namespace for `None`. A short-lived thread enters the
/// namespace (`setns` changes only the calling thread's) and connects; the socket stays in
/// that namespace after the thread ends.
pub fn connect_in(
    netns: Option<&str>,
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    let Some(ns) = netns else {
        return TcpStream::connect_timeout(&addr, timeout);
    };
    let file = std::fs::File::open(Path::new("/run/netns").join(ns))?;
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid namespace descriptor; CLONE_NEWNET moves only this thread, which
        // does nothing but connect and then ends.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        TcpStream::connect_timeout(&addr, timeout)
    })
    .join()
    .expect("the connecting thread panicked")
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    http_in(None, addr, method, path, headers, body)
}

/// [`http`] from inside network namespace `netns` (see [`connect_in`]).
pub fn http_in(
    netns: Option<&str>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = connect_in(netns, addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // Bodies from axum are not chunked for JSON; some peers' (the Mesh registry's large lists)
    // are. Event streams are read elsewhere.
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// The body of a `Transfer-Encoding: chunked` response read to its end.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    get_json_in(None, addr, path)
}

/// [`get_json`] from inside network namespace `netns`.
pub fn get_json_in(netns: Option<&str>, addr: SocketAddr, path: &str) -> (u16, Value) {
    let (code, body) = http_in(netns, addr, "GET", path, &[], "");
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body:?}")),
    )
}

pub fn auth() -> String {
    format!("Bearer {TOKEN}")
}

/// Write `dir/kubeconfig` pointing at the kube-mock API server (a MOCK) at `api`, with a
/// bearer token the mock accepts; returns its path.
pub fn kubeconfig(dir: &Scratch, api: SocketAddr) -> PathBuf {
    let p = dir.path("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: http://{api}\nusers:\n- name: scout\n  user:\n    token: mock-token\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: scout\ncurrent-context: mock\n"
        ),
    )
    .unwrap();
    p
}

/// A running daemon; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    /// The API address.
    pub addr: SocketAddr,
    log: PathBuf,
    /// The network namespace the API is reached in (`None`: the test's own).
    netns: Option<String>,
}

impl Daemon {
    pub fn start(config: &Path, log: PathBuf, addr: SocketAddr) -> Self {
        Self::start_command(daemon_command(config), log, addr)
    }

    /// As [`Daemon::start`], with more arguments (such as `--log-format json`).
    pub fn start_with(config: &Path, log: PathBuf, addr: SocketAddr, extra: &[&str]) -> Self {
        let mut cmd = daemon_command(config);
        cmd.args(extra);
        Self::launch(cmd, log, addr, None)
    }

    /// Start the daemon from `cmd` (a guarded command: [`daemon_command`],
    /// [`daemon_command_in`](super::daemon_command_in)) and wait until it is ready.
    pub fn start_command(cmd: Command, log: PathBuf, addr: SocketAddr) -> Self {
        Self::launch(cmd, log, addr, None)
    }

    /// Start the daemon from `cmd`, made by [`Testnet::daemon_command`](super::Testnet::daemon_command)
    /// for namespace `netns`, whose API listens on `addr` inside it; every request of this
    /// handle is made from inside `netns`.
    pub fn start_in(cmd: Command, netns: &str, log: PathBuf, addr: SocketAddr) -> Self {
        Self::launch(cmd, log, addr, Some(netns.to_string()))
    }

    fn launch(mut cmd: Command, log: PathBuf, addr: SocketAddr, netns: Option<String>) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn daemon");
        let mut d = Self {
            child: Some(child),
            addr,
            log,
            netns,
        };
        d.wait_ready(Duration::from_secs(30));
        d
    }

    /// A handle on a daemon started with [`Daemon::spawn`] (not waited on, not killed on
    /// drop): its API and its log.
    pub fn attach(addr: SocketAddr, log: PathBuf) -> Self {
        Self {
            child: None,
            addr,
            log,
            netns: None,
        }
    }

    pub fn spawn(config: &Path, log: &Path, extra: &[&str]) -> Child {
        let log = std::fs::File::create(log).unwrap();
        daemon_command(config)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daemon")
    }

    /// One request to this daemon's API (from inside its namespace, if it has one).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        http_in(
            self.netns.as_deref(),
            self.addr,
            method,
            path,
            headers,
            body,
        )
    }

    /// GET `path` and parse the JSON body.
    pub fn get_json(&self, path: &str) -> (u16, Value) {
        get_json_in(self.netns.as_deref(), self.addr, path)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Poll `/readyz` until 200, at most `limit`.
    pub fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(s) = connect_in(self.netns.as_deref(), self.addr, Duration::from_millis(200))
            {
                drop(s);
                if self.http("GET", "/readyz", &[], "").0 == 200 {
                    return;
                }
            }
            assert!(
                start.elapsed() < limit,
                "daemon not ready within {limit:?}: {}",
                self.logs()
            );
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "daemon exited ({status}) before it was ready: {}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until `cond` holds on a GET of `path`, at most `limit`.
    pub fn wait_for(&self, path: &str, limit: Duration, cond: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (code, v) = self.get_json(path);
            if code == 200 && cond(&v) {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "{path} never matched within {limit:?}; last {v}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Trigger a run of `job` and wait for it to end; returns the run.
    pub fn run_now(&self, job: &str) -> Value {
        let id = self.trigger(job);
        let v = self.wait_for(
            &format!("/api/v1/runs?job={job}&limit=100"),
            Duration::from_secs(60),
            |v| {
                v["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["id"] == id && r["status"] != "running")
            },
        );
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()
            .clone()
    }

    /// Run `job` once more and wait for that run to end: a run already going (the one at
    /// start) is waited out first (its trigger answers 409), then triggered again.
    pub fn run_once_more(&self, job: &str) {
        let start = Instant::now();
        loop {
            let (code, body) = self.http(
                "POST",
                &format!("/api/v1/jobs/{job}/run"),
                &[("Authorization", &auth())],
                "",
            );
            let v: Value = serde_json::from_str(&body).unwrap();
            let id = v["run_id"].clone();
            self.wait_for(
                &format!("/api/v1/runs?job={job}&limit=100"),
                Duration::from_secs(60),
                |r| {
                    r["runs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["id"] == id && r["status"] != "running")
                },
            );
            if code == 202 {
                return;
            }
            assert_eq!(code, 409, "{body}");
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "{job} never ran"
            );
        }
    }

    /// `POST /api/v1/jobs/{job}/run` with the token; asserts 202 and returns the run id.
    pub fn trigger(&self, job: &str) -> i64 {
        let (code, body) = self.http(
            "POST",
            &format!("/api/v1/jobs/{job}/run"),
            &[("Authorization", &auth())],
            "",
        );
        assert_eq!(code, 202, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["run_id"]
            .as_i64()
            .unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM and wait; returns the exit code and how long it took.
    pub fn stop(mut self) -> (Option<i32>, Duration) {
        self.signal("TERM");
        let start = Instant::now();
        let child = self.child.take().unwrap();
        let out = wait_with_deadline(child, Duration::from_secs(20));
        (out.status.code(), start.elapsed())
    }

    pub fn kill9(mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A config for a daemon under test. The health monitor is off unless `extra` sets a
/// `health:` section, so tests of the inventory see only the changes scans make.
pub fn write_config(dir: &Scratch, port: u16, jobs: &str, extra: &str) -> PathBuf {
    let cfg = dir.path("config.yaml");
    let health_off = if extra.contains("health:") {
        ""
    } else {
        "health:\n  enabled: false\n"
    };
    // After the jobs, so the lines above keep their numbers (tests assert on them).
    let text = format!(
        "api:\n  listen: 127.0.0.1:{port}\n  token: {TOKEN}\n{extra}store:\n  path: {}\ngone_after: 2\njobs:\n{jobs}{health_off}",
        dir.path("inventory.db").display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

pub fn job(name: &str, targets: &str, interval: &str) -> String {
    format!("  - name: {name}\n    targets: [{targets}]\n    ports: \"8000\"\n    interval: {interval}\n    jitter: 0%\n")
}

/// A job named `slow` whose run lasts a while: a paced sweep of the loopback network `net`
/// (4,096 addresses for a /20) on a port nothing listens on, at `rate` probes per second.
pub fn slow_job(net: &str, rate: u32) -> String {
    format!("  - name: slow\n    targets: [{net}]\n    ports: \"9\"\n    interval: 1h\n    sweep: {{ rate: {rate} }}\n")
}

pub fn sqlite(db: &Path, sql: &str) -> String {
    sqlite_in(&[], db, sql)
}

/// [`sqlite`] behind `wrapper` (`nsenter --mount=... --`, for a store in a private mount
/// namespace: SQLite resolves symbolic links, so a `/proc/PID/root/...` path would lead it
/// back to the machine's own mount table).
pub fn sqlite_in(wrapper: &[&str], db: &Path, sql: &str) -> String {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg("python3");
            c
        }
        None => Command::new("python3"),
    };
    let out = cmd
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print('\\n'.join('|'.join(map(str,r)) for r in c.execute(sys.argv[2])))"])
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The sink named `name` in a `GET /api/v1/sinks` answer.
pub fn sink_of<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no sink {name}: {v}"))
}
