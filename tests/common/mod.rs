//! Helpers shared by the integration tests: run the built binary with a deadline, real TCP
//! listeners on loopback, and the namespace LAN from `scripts/testnet.sh`.
//!
//! Network safety: everything here targets 127.0.0.0/8 or addresses that exist only inside
//! namespaces a test created itself.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcp-scout"))
}

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Wait for `child` at most `limit`; kill it and panic if it overstays.
pub fn wait_with_deadline(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    // Drain pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Output {
                status,
                stdout: t_out.join().unwrap(),
                stderr: t_err.join().unwrap(),
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Run `mcp-scout` with `args` (at most 60 s).
pub fn scout(args: &[&str]) -> Output {
    let child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mcp-scout");
    wait_with_deadline(child, Duration::from_secs(60))
}

/// Run a command in a network namespace (at most `limit`).
pub fn scout_in_ns(ns: &str, args: &[&str], limit: Duration) -> Output {
    let child = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ip netns exec");
    wait_with_deadline(child, limit)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A listener on loopback that accepts and closes connections on a thread; `accepted`
/// receives one message per accepted connection.
pub struct Listener {
    pub addr: SocketAddr,
    pub accepted: mpsc::Receiver<()>,
}

impl Listener {
    pub fn bind(addr: &str) -> Self {
        let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let addr = l.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for s in l.incoming() {
                drop(s);
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        Self { addr, accepted: rx }
    }
}

/// Parse NDJSON stdout into `(ip, port, state)` triples.
pub fn ndjson_states(o: &Output) -> Vec<(String, u16, String)> {
    stdout(o)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            (
                v["ip"].as_str().unwrap().to_string(),
                v["port"].as_u64().unwrap() as u16,
                v["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Whether this process may create network namespaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Namespace tests need root. In CI (CI=true) missing root is a failure; elsewhere the test
/// says so and returns.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "{test} needs root in CI");
    eprintln!("SKIPPED {test}: needs root for network namespaces");
    false
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace LAN from scripts/testnet.sh, torn down on drop.
pub struct Testnet {
    pub prefix: String,
}

impl Testnet {
    /// `scripts/testnet.sh up` with a prefix unique to this process and call.
    pub fn up(hosts: u32, extra: &[&str]) -> Self {
        let prefix = format!(
            "mt{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let status = Command::new(root().join("scripts/testnet.sh"))
            .args(["--prefix", &prefix, "--hosts", &hosts.to_string()])
            .args(extra)
            .arg("up")
            .stdout(Stdio::null())
            .status()
            .expect("run testnet.sh");
        let net = Self { prefix };
        assert!(status.success(), "testnet.sh up failed");
        net
    }

    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Start TCP listeners on `ip` in namespace `name` for `ports`; returns once they listen.
    pub fn listen(&self, name: &str, ip: &str, ports: &[u16]) -> Reaped {
        let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
        let code = format!(
            "import socket,selectors,sys\n\
             sel=selectors.DefaultSelector()\n\
             for p in [{}]:\n\
             \x20s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('{ip}',p)); s.listen(512); s.setblocking(False); sel.register(s,selectors.EVENT_READ)\n\
             print('ready',flush=True)\n\
             while True:\n\
             \x20for k,_ in sel.select():\n\
             \x20\x20try:\n\
             \x20\x20\x20c,_=k.fileobj.accept(); c.close()\n\
             \x20\x20except OSError: pass\n",
            ports.join(",")
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(name), "python3", "-c", &code])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn listener");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "listener in {name} did not start");
        Reaped(child)
    }
}

/// A child process killed and reaped when dropped (no zombies, no strays).
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/testnet.sh"))
            .args(["--prefix", &self.prefix, "down"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the real MCP peers (scripts/peers/setup.sh) are installed. In CI their absence is
/// a failure; elsewhere the test says so and returns.
pub fn require_peers(test: &str) -> bool {
    let py = root().join("target/peers/py1/bin/python");
    if py.exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "{test}: run scripts/peers/setup.sh (scripts/test.sh does)"
    );
    eprintln!("SKIPPED {test}: peers not installed (scripts/peers/setup.sh)");
    false
}

/// Start test peers (`scripts/peers/run.sh NAME --host IP --port PORT`) and wait for each
/// one's READY line. They stop when dropped.
pub fn start_peers(peers: &[(&str, &str, u16)]) -> Vec<Reaped> {
    let mut children: Vec<(String, Child)> = peers
        .iter()
        .map(|(name, ip, port)| {
            let child = Command::new(root().join("scripts/peers/run.sh"))
                .args([*name, "--host", *ip, "--port", &port.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn peer");
            ((*name).to_string(), child)
        })
        .collect();
    for (name, child) in &mut children {
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("READY"),
            "peer {name} did not start: {line:?}"
        );
    }
    children.into_iter().map(|(_, c)| Reaped(c)).collect()
}

/// A python-zeroconf publisher inside a namespace, driven line by line (scripts/peers/mdns_publish.py).
pub struct Publisher {
    child: Reaped,
    stdin: std::process::ChildStdin,
    acks: mpsc::Receiver<String>,
}

impl Publisher {
    pub fn start(ns: &str, ip: &str) -> Self {
        let py = root().join("target/peers/mdns/bin/python");
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(py)
            .arg(root().join("scripts/peers/mdns_publish.py"))
            .args(["--interface-ip", ip, "--no-probe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mdns_publish.py");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("publisher READY");
        assert!(ready.starts_with("READY"), "{ready}");
        Self {
            child: Reaped(child),
            stdin,
            acks: rx,
        }
    }

    /// Send one command and wait for its acknowledgement.
    pub fn cmd(&mut self, line: &str) -> String {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let ack = self
            .acks
            .recv_timeout(Duration::from_secs(30))
            .expect("publisher ack");
        assert!(ack.starts_with("OK"), "{line}: {ack}");
        ack
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = &self.child;
    }
}

impl Testnet {
    /// Start a test peer (scripts/peers/run.sh) inside namespace `name`.
    pub fn peer(&self, name: &str, peer: &str, ip: &str, port: u16, path: Option<&str>) -> Reaped {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns(name),
            "env",
            "MCP_SCOUT_PEERS_ANY_ADDR=1",
        ])
        .arg(root().join("scripts/peers/run.sh"))
        .args([peer, "--host", ip, "--port", &port.to_string()]);
        if let Some(p) = path {
            cmd.args(["--path", p]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn peer");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("READY"), "peer {peer} in {name}: {line:?}");
        Reaped(child)
    }

    /// dnsmasq with scripts/peers/dns-records.conf on `ip`:53 inside namespace `name`.
    pub fn dnsmasq(&self, name: &str, ip: &str) -> Dnsmasq {
        let tag = format!("{}{name}", self.prefix);
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(name)])
            .arg(root().join("scripts/peers/dnsmasq.sh"))
            .args(["up", &tag, ip])
            .output()
            .expect("dnsmasq.sh up");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("READY"),
            "dnsmasq: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Dnsmasq {
            ns: self.ns(name),
            tag,
        }
    }
}

/// A dnsmasq instance, stopped on drop.
pub struct Dnsmasq {
    ns: String,
    tag: String,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(root().join("scripts/peers/dnsmasq.sh"))
            .args(["down", &self.tag])
            .output();
    }
}
