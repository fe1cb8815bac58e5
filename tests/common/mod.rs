//! Helpers shared by the integration tests: run the built binary with a deadline, real TCP
//! listeners on loopback, and the namespace LAN from `scripts/testnet.sh`.
//!
//! Network safety: everything here targets 127.0.0.0/8 or addresses that exist only inside
//! namespaces a test created itself. This module is the only place that spawns the binary,
//! and it enforces that rule instead of trusting each test:
//! - [`scout`] and [`scout_command`] run it in the machine's own namespace, and panic before
//!   spawning when [`off_loopback`] finds an argument that could send a packet elsewhere (a
//!   non-loopback or malformed target, a hostname, `--local`, `--mdns`, `--srv` without a
//!   loopback `--dns-server`);
//! - [`scout_isolated`] runs it in a fresh network namespace that has nothing but a loopback
//!   interface (`unshare --net`), for arguments that must be refused before any packet;
//! - [`Testnet::scout`] and [`Testnet::scout_command`] run it inside a namespace of a LAN
//!   that this test process built.
#![allow(dead_code, unreachable_pub)]

pub mod daemon;
pub mod kube;

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Path of the binary under test. Private: tests spawn it through the guarded helpers below.
fn bin() -> PathBuf {
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

/// Run `mcp-scout` with `args` in the machine's own namespace (at most 60 s). Panics before
/// spawning if `args` could reach beyond loopback (see [`off_loopback`]).
pub fn scout(args: &[&str]) -> Output {
    let child = scout_command(&[], args).spawn().expect("spawn mcp-scout");
    wait_with_deadline(child, Duration::from_secs(60))
}

/// `wrapper... mcp-scout args` in the machine's own namespace (stdin null, stdout and stderr
/// piped), for tests that signal or limit the process. `wrapper` is a command that execs its
/// arguments, such as `prlimit --nofile=40 --`. Panics like [`scout`].
pub fn scout_command(wrapper: &[&str], args: &[&str]) -> Command {
    if let Some(why) = off_loopback(args) {
        panic!(
            "refusing to run mcp-scout {args:?} in the machine's own network namespace: {why}; \
             use scout_isolated() or a Testnet namespace"
        );
    }
    piped(wrapped(wrapper, args))
}

/// Run `mcp-scout` with `args` in a new network namespace that holds only a loopback
/// interface, which is down (at most 60 s): nothing it sends can leave. For input that must be
/// refused before any packet (malformed or non-loopback targets): if a regression let one
/// through, the packets would have nowhere to go.
pub fn scout_isolated(args: &[&str]) -> Output {
    // Root may create a network namespace directly; anyone else needs a user namespace too.
    let unshare: &[&str] = if is_root() {
        &["unshare", "--net", "--"]
    } else {
        &["unshare", "--user", "--map-root-user", "--net", "--"]
    };
    let child = piped(wrapped(unshare, args))
        .spawn()
        .expect("spawn unshare (util-linux)");
    wait_with_deadline(child, Duration::from_secs(60))
}

/// `mcp-scout -v daemon -c config` in the machine's own namespace (stdin null; stdout and
/// stderr are the caller's to set). Panics before spawning unless every job of the config
/// sweeps loopback literals only and uses no source that reaches the network by itself
/// (`local`, `mdns`, `srv`): the daemon's targets come from the file, not the arguments.
pub fn daemon_command(config: &std::path::Path) -> Command {
    daemon_command_in(&[], config)
}

/// [`daemon_command`] behind `wrapper`, a command that execs its arguments in the same
/// network namespace (`nsenter --mount=/proc/PID/ns/mnt --` for a private mount table).
/// The config is checked the same way.
pub fn daemon_command_in(wrapper: &[&str], config: &std::path::Path) -> Command {
    let text = std::fs::read_to_string(config).expect("read the daemon config");
    if let Some(why) = config_off_loopback(&text) {
        panic!(
            "refusing to run the daemon with {}: {why}",
            config.display()
        );
    }
    for w in wrapper {
        // Entering another network namespace is Testnet::daemon_command's business.
        assert!(
            !w.starts_with("--net") && *w != "-n" && *w != "netns",
            "daemon_command_in: wrapper {wrapper:?} changes the network namespace"
        );
    }
    let mut cmd = wrapped(wrapper, &["-v", "daemon", "-c"]);
    cmd.arg(config).stdin(Stdio::null());
    cmd
}

/// Why `--push TYPE=TARGET` could write beyond loopback: a URL target (`mcp-mesh`, `etcd`,
/// `consul`, `webhook`) must name a loopback host; a path (`kailash-file`, `server-json`) is
/// local.
fn push_off_loopback(v: &str) -> Option<String> {
    let (kind, target) = v.split_once('=')?;
    if matches!(kind, "kailash-file" | "server-json") {
        return None;
    }
    target
        .split(',')
        .find(|u| !loopback_url(u.trim()))
        .map(|u| format!("--push {kind}={u:?} is not a loopback URL"))
}

/// Whether `u` is an http(s) URL whose host is a loopback literal.
fn loopback_url(u: &str) -> bool {
    let Some(rest) = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    loopback_ip(host)
}

/// Every registry URL a `sinks:` section names (`url:` and `endpoints:` values, in block or
/// flow style, quoted or not), for the loopback check.
fn sink_urls(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["url:", "endpoints:"] {
        let mut rest = line;
        while let Some(i) = rest.find(key) {
            let before = rest[..i].chars().last();
            rest = &rest[i + key.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue; // `base_url:` and the like are other keys
            }
            let value = rest.trim_start();
            let value = value.strip_prefix('[').unwrap_or(value);
            let end = value.find(['}', ']']).unwrap_or(value.len());
            for v in value[..end].split(',') {
                let v = v.trim().trim_matches(['"', '\'']).trim();
                if !v.is_empty() && !v.contains(": ") {
                    out.push(v.to_string());
                }
                if key == "url:" {
                    break;
                }
            }
        }
    }
    out
}

/// Why a daemon config could reach beyond loopback (a line-based reading of the YAML the
/// tests write: `targets:`/`exclude:` flow lists, no `mdns:`, `srv:` or `local`, and sink
/// URLs on loopback only).
pub fn config_off_loopback(text: &str) -> Option<String> {
    for line in text.lines() {
        let l = line.split(" #").next().unwrap_or("").trim();
        for u in sink_urls(l) {
            if !loopback_url(&u) {
                return Some(format!("sink URL {u:?} is not a loopback URL"));
            }
        }
        for key in ["mdns:", "srv:", "- local", "dns:"] {
            if l.starts_with(key) {
                return Some(format!("`{l}` reaches the network by itself"));
            }
        }
        for key in ["targets:", "exclude:"] {
            if let Some(rest) = l.strip_prefix(key) {
                let list = rest.trim().trim_start_matches('[').trim_end_matches(']');
                for t in list.split(',').map(|t| t.trim().trim_matches('"')) {
                    if t.is_empty() {
                        continue;
                    }
                    if t == "local" || !loopback_target(t) {
                        return Some(format!("{key} {t:?} is not a loopback literal"));
                    }
                }
                if rest.trim().is_empty() {
                    return Some(format!("`{l}`: write targets as a flow list, [a, b]"));
                }
            }
        }
    }
    None
}

fn wrapped(wrapper: &[&str], args: &[&str]) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    cmd.args(args);
    cmd
}

fn piped(mut cmd: Command) -> Command {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Why running `mcp-scout args` in the machine's own namespace could send a packet somewhere
/// other than loopback, or `None` when it cannot.
///
/// Deliberately stricter than the binary: a target passes only if it is a loopback literal
/// (127.0.0.0/8 or ::1, as an address, a CIDR inside 127.0.0.0/8, a range or a URL), because a
/// malformed token that a regression let through might be resolved as a hostname. Targets in
/// a readable `@FILE` are checked the same way; `--exclude` values too (a hostname there is
/// resolved). Options that reach the network by themselves (`--local`, `--mdns`, `--mdns-all`,
/// `--srv` without a loopback `--dns-server` and a loopback `--scope`) are refused outright.
pub fn off_loopback(args: &[&str]) -> Option<String> {
    // The daemon reads its targets from a file; see `daemon_command`.
    if args.contains(&"daemon") {
        return Some("start the daemon through daemon_command(), which checks its config".into());
    }
    // Options that take a value and name no place on the network.
    const VALUE: &[&str] = &[
        "--shard",
        "-p",
        "--ports",
        "-o",
        "--output",
        "--log-format",
        "--max-targets",
        "--concurrency",
        "--rate",
        "--timeout",
        "--min-timeout",
        "--retries",
        "--max-retries",
        "--report",
        "--fingerprint-concurrency",
        "--paths",
        "--fingerprint-budget",
        "--request-timeout",
        "--max-body",
        "--sse-max-bytes",
        "--sse-max-time",
        "--mdns-wait",
        "--interface",
        "--dns-timeout",
        "--dns-concurrency",
        "--threads",
        "--seed",
        "--interval",
        // check: a tool name, its JSON arguments, a CEL condition, a token.
        "--call",
        "--arguments",
        "--expect",
        "--bearer",
        "--header",
    ];
    const NETWORK: &[&str] = &["--local", "--mdns", "--mdns-all"];
    let mut it = args.iter().copied();
    // Global options may come before the subcommand.
    let command = loop {
        match it.next() {
            None => return None, // --help, --version: nothing is scanned
            Some(a @ ("scan" | "probe" | "watch" | "check")) => break a,
            Some("--log-format") => {
                it.next();
            }
            // A command that scans nothing (`config check FILE` must not read as `check`).
            Some("config" | "servers" | "changes" | "help") => return None,
            Some(_) => {}
        }
    };
    let (mut srv, mut dns_server, mut scoped) = (false, None::<String>, false);
    let mut positional_only = false;
    while let Some(a) = it.next() {
        if positional_only || !a.starts_with('-') || a == "-" {
            if let Some(why) = target_off_loopback(command, a) {
                return Some(why);
            }
            continue;
        }
        if a == "--" {
            positional_only = true;
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if a.starts_with("--") => (n, Some(v)),
            // -p8000, -p-, -ojson
            _ if !a.starts_with("--") && a.len() > 2 && matches!(&a[..2], "-p" | "-o") => {
                (&a[..2], Some(&a[2..]))
            }
            _ => (a, None),
        };
        if NETWORK.contains(&name) {
            return Some(format!(
                "{name} reaches the machine's real network (mDNS multicast or attached subnets)"
            ));
        }
        let mut value = || {
            inline
                .map(str::to_string)
                .or_else(|| it.next().map(str::to_string))
        };
        match name {
            "--srv" => {
                srv = true;
                value();
            }
            "--dns-server" => dns_server = value(),
            // The wall for announced addresses: SRV answers name addresses that are then
            // contacted when inside it, so outside a namespace it must be loopback only.
            "--scope" => {
                scoped = true;
                for t in value()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|t| !t.is_empty())
                {
                    if let Some(why) = target_off_loopback("scan", t) {
                        return Some(format!("--scope: {why}"));
                    }
                }
            }
            "--exclude" => {
                for t in value()
                    .unwrap_or_default()
                    .split(',')
                    .filter(|t| !t.is_empty())
                {
                    if let Some(why) = target_off_loopback("scan", t) {
                        return Some(format!("--exclude: {why}"));
                    }
                }
            }
            // A registry a one-shot push writes to: a URL must be loopback (a path is local).
            "--push" => {
                let v = value().unwrap_or_default();
                if let Some(why) = push_off_loopback(&v) {
                    return Some(why);
                }
            }
            n if VALUE.contains(&n) => {
                value();
            }
            // A flag, or an unknown option: whatever follows is checked as a target.
            _ => {}
        }
    }
    if srv {
        match dns_server.as_deref() {
            None => return Some("--srv without --dns-server asks the system resolver".into()),
            Some(s) if !loopback_socket(s) => {
                return Some(format!("--dns-server {s} is not a loopback address"))
            }
            Some(_) => {}
        }
        if !scoped {
            // The default SRV scope includes the machine's attached subnets.
            return Some(
                "--srv without a loopback --scope may contact the attached subnets".into(),
            );
        }
    } else if let Some(s) = dns_server.filter(|s| !loopback_socket(s)) {
        return Some(format!("--dns-server {s} is not a loopback address"));
    }
    None
}

/// Why one positional argument of `command` could reach beyond loopback.
fn target_off_loopback(command: &str, token: &str) -> Option<String> {
    let t = token.trim();
    let ok = match command {
        // check takes a URL only: anything else is refused by the binary, but is refused here
        // first, unless it names loopback.
        "probe" | "check" if t.contains("://") => {
            url::Url::parse(t).ok().is_some_and(|u| match u.host() {
                Some(url::Host::Ipv4(a)) => a.is_loopback(),
                Some(url::Host::Ipv6(a)) => a.is_loopback(),
                _ => false,
            })
        }
        "probe" | "check" => loopback_socket(t) || loopback_ip(t),
        _ => {
            if let Some(path) = t.strip_prefix('@') {
                return match std::fs::read_to_string(path) {
                    // Unreadable: the binary cannot read it either.
                    Err(_) => None,
                    Ok(text) => text
                        .lines()
                        .map(|l| l.split('#').next().unwrap_or(""))
                        .flat_map(|l| l.split([' ', '\t', ',']))
                        .filter(|w| !w.is_empty())
                        .find_map(|w| target_off_loopback("scan", w))
                        .map(|why| format!("{token}: {why}")),
                };
            }
            loopback_target(t)
        }
    };
    (!ok).then(|| {
        format!(
            "{token:?} is not a loopback literal (127.0.0.0/8 or ::1), so it might leave loopback"
        )
    })
}

/// An address, CIDR or range that lies wholly in loopback space. A CIDR passes when its
/// address is loopback and its prefix is at least 8 (IPv4) or 128 (IPv6), even if the prefix
/// is out of range: every network it could mean is loopback.
fn loopback_target(t: &str) -> bool {
    if let Some((ip, prefix)) = t.split_once('/') {
        let Some(ip) = parse_ip(ip) else { return false };
        let Ok(prefix) = prefix.parse::<u8>() else {
            return false;
        };
        return ip.is_loopback() && prefix >= if ip.is_ipv4() { 8 } else { 128 };
    }
    if loopback_ip(t) {
        return true;
    }
    let Some((start, end)) = t.split_once('-') else {
        return false;
    };
    let Some(start) = parse_ip(start).filter(IpAddr::is_loopback) else {
        return false;
    };
    match (start, parse_ip(end)) {
        (_, Some(end)) => end.is_loopback(),
        // A short end replaces the last octet: still inside 127.0.0.0/8.
        (IpAddr::V4(_), None) => {
            !end.is_empty() && end.len() <= 3 && end.bytes().all(|b| b.is_ascii_digit())
        }
        // ::1 with another last group is not loopback.
        (IpAddr::V6(_), None) => u16::from_str_radix(end, 16) == Ok(1),
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn loopback_ip(s: &str) -> bool {
    parse_ip(s).is_some_and(|ip| ip.is_loopback())
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT` on loopback.
fn loopback_socket(s: &str) -> bool {
    loopback_ip(s) || s.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback())
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

/// Whether a test that cannot run must fail rather than skip: under `scripts/test.sh` (which
/// exports `MCP_SCOUT_REQUIRE_ALL=1`) and in CI (`CI` set).
pub fn must_run_all() -> bool {
    std::env::var_os("CI").is_some() || std::env::var("MCP_SCOUT_REQUIRE_ALL").as_deref() == Ok("1")
}

/// Namespace tests need root. Under [`must_run_all`] missing root is a failure; elsewhere
/// (a bare `cargo test` as a user) the test says so on stderr and returns.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !must_run_all(),
        "{test} needs root (network namespaces); MCP_SCOUT_REQUIRE_ALL or CI forbids skipping it"
    );
    eprintln!("SKIPPED {test}: needs root for network namespaces");
    false
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The start of every namespace name this process creates (`mt<pid>`); scripts/test.sh looks
/// for leftovers by it.
fn net_prefix_stem() -> String {
    format!("mt{}", std::process::id() % 100_000)
}

/// Poll `cond` every 50 ms until it holds, at most `limit` (then fail naming `what`);
/// returns how long it took.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// A namespace LAN from scripts/testnet.sh, torn down on drop.
pub struct Testnet {
    pub prefix: String,
}

impl Testnet {
    /// `scripts/testnet.sh up` with a prefix unique to this process and call.
    pub fn up(hosts: u32, extra: &[&str]) -> Self {
        let prefix = format!(
            "{}x{}",
            net_prefix_stem(),
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
             \x20s=socket.socket(socket.AF_INET6 if ':' in '{ip}' else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(('{ip}',p)); s.listen(512); s.setblocking(False); sel.register(s,selectors.EVENT_READ)\n\
             print('ready',flush=True)\n\
             while True:\n\
             \x20for k,_ in sel.select():\n\
             \x20\x20try:\n\
             \x20\x20\x20c,_=k.fileobj.accept(); c.close()\n\
             \x20\x20except OSError: pass\n",
            ports.join(",")
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(name), "python3", "-c", &code])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn listener");
        let mut child = Reaped(child);
        let ready = ReadyLine::watch(&mut child);
        let line = ready.wait(&mut child, &format!("listener in {name}"), LISTENER_START);
        assert_eq!(line.trim(), "ready", "listener in {name} did not start");
        child
    }

    /// Run `mcp-scout args` inside this LAN's namespace `host` (at most `limit`).
    pub fn scout(&self, host: &str, args: &[&str], limit: Duration) -> Output {
        let child = self
            .scout_command(host, &[], args)
            .spawn()
            .expect("spawn ip netns exec");
        wait_with_deadline(child, limit)
    }

    /// `ip netns exec NS mcp-scout -v daemon -c config` in this LAN's namespace `host` (stdin
    /// null; stdout and stderr are the caller's to set). Whatever the config names (mDNS,
    /// SRV, `local`, any target), the daemon sees only this LAN: the namespace must be one
    /// this Testnet built, which is checked before spawning. Its API is then reachable only
    /// inside that namespace (see `daemon::Daemon::start_in`).
    pub fn daemon_command(&self, host: &str, config: &std::path::Path) -> Command {
        let ns = self.ns(host);
        assert!(
            ns.starts_with(&format!("{}x", net_prefix_stem()))
                && std::path::Path::new("/run/netns").join(&ns).exists(),
            "{ns} is not a namespace of this Testnet: refusing to start the daemon there"
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns.as_str()])
            .arg(bin())
            .args(["-v", "daemon", "-c"])
            .arg(config)
            .stdin(Stdio::null());
        cmd
    }

    /// `ip netns exec NS wrapper... mcp-scout args` for this LAN's namespace `host` (stdin
    /// null, stdout and stderr piped). `wrapper` execs its arguments (`setpriv ... --`).
    pub fn scout_command(&self, host: &str, wrapper: &[&str], args: &[&str]) -> Command {
        let ns = self.ns(host);
        let mut inner = vec!["netns", "exec", ns.as_str()];
        inner.extend_from_slice(wrapper);
        let mut cmd = Command::new("ip");
        cmd.args(&inner).arg(bin()).args(args);
        piped(cmd)
    }
}

/// How long a peer may take to print its READY line. The Python MCP peers need 1-5 s on a
/// loaded 2-core machine (scripts/peers/README.md); many started at once share the CPU.
pub const PEER_START: Duration = Duration::from_secs(60);
/// How long the stdlib listener of [`Testnet::listen`] may take to print `ready`.
pub const LISTENER_START: Duration = Duration::from_secs(20);

/// The first stdout line of a child, read on a thread so that waiting for it has a deadline.
/// The thread then keeps draining stdout until the child exits, so the child never blocks on
/// (or dies of) a closed pipe.
pub struct ReadyLine(mpsc::Receiver<String>);

impl ReadyLine {
    /// Take `child`'s stdout (which must be piped) and start reading it.
    pub fn watch(child: &mut Reaped) -> Self {
        let out = child.0.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines.map_while(Result::ok) {}
        });
        Self(rx)
    }

    /// The first line, within `limit`. Otherwise `child` is killed and the test panics, saying
    /// whether `what` exited first or printed nothing in time.
    pub fn wait(&self, child: &mut Reaped, what: &str, limit: Duration) -> String {
        match self.0.recv_timeout(limit) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.0.wait().ok();
                panic!("{what} exited ({status:?}) before printing its READY line")
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.0.kill();
                panic!("{what} printed no READY line within {limit:?}: it hangs in start-up")
            }
        }
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

/// Where scripts/peers/setup.sh installed the peers: `$MCP_SCOUT_PEERS`, as the peer scripts
/// read it, or `<repo>/target/peers`.
pub fn peers_dir() -> PathBuf {
    std::env::var_os("MCP_SCOUT_PEERS")
        .filter(|p| !p.is_empty())
        .map_or_else(|| root().join("target/peers"), PathBuf::from)
}

/// What of the real peers is missing: each SDK scripts/peers/setup.sh installs, and the
/// commands they run (node, dnsmasq, and openssl for the `tls` decoy).
pub fn missing_peers() -> Vec<String> {
    let dir = peers_dir();
    let mut missing: Vec<String> = [
        "py1/bin/python",
        "py2/bin/python",
        "mdns/bin/python",
        "node/node_modules/@modelcontextprotocol/sdk",
    ]
    .iter()
    .map(|p| dir.join(p))
    .filter(|p| !p.exists())
    .map(|p| p.display().to_string())
    .collect();
    let on_path = |cmd: &str| {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/sbin")])
                .any(|d| d.join(cmd).is_file())
        })
    };
    for cmd in ["dnsmasq", "openssl", "node"] {
        if !on_path(cmd) {
            missing.push(cmd.to_string());
        }
    }
    missing
}

/// Whether the real peers (scripts/peers/setup.sh, in [`peers_dir`]) are installed. Under
/// [`must_run_all`] their absence is a failure; elsewhere the test says so and returns.
pub fn require_peers(test: &str) -> bool {
    let missing = missing_peers();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !must_run_all(),
        "{test}: peers missing ({}); run scripts/peers/setup.sh (scripts/test.sh does)",
        missing.join(", ")
    );
    eprintln!(
        "SKIPPED {test}: peers missing ({}); run scripts/peers/setup.sh",
        missing.join(", ")
    );
    false
}

/// Start test peers (`scripts/peers/run.sh NAME --host IP --port PORT`) and wait for each
/// one's READY line, all within [`PEER_START`]. They stop when dropped.
pub fn start_peers(peers: &[(&str, &str, u16)]) -> Vec<Reaped> {
    let specs: Vec<(&str, &str, u16, &[&str])> = peers
        .iter()
        .map(|(n, ip, port)| (*n, *ip, *port, &[][..]))
        .collect();
    start_peers_with(&specs)
}

/// [`start_peers`] with extra arguments for each peer (`decoys.py --elsewhere ...`).
pub fn start_peers_with(peers: &[(&str, &str, u16, &[&str])]) -> Vec<Reaped> {
    // Wrapped at once, so that a panic below kills every peer started so far.
    let mut children: Vec<(String, Reaped, ReadyLine)> = Vec::with_capacity(peers.len());
    for (name, ip, port, extra) in peers {
        let child = Command::new(root().join("scripts/peers/run.sh"))
            .args([*name, "--host", *ip, "--port", &port.to_string()])
            .args(*extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn peer");
        let mut child = Reaped(child);
        let ready = ReadyLine::watch(&mut child);
        children.push(((*name).to_string(), child, ready));
    }
    let deadline = Instant::now() + PEER_START;
    for (name, child, ready) in &mut children {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = ready.wait(child, &format!("peer {name}"), left);
        assert!(
            line.starts_with("READY"),
            "peer {name} did not start: {line:?}"
        );
    }
    children.into_iter().map(|(_, c, _)| c).collect()
}

/// A python-zeroconf publisher inside a namespace, driven line by line (scripts/peers/mdns_publish.py).
pub struct Publisher {
    child: Reaped,
    stdin: std::process::ChildStdin,
    acks: mpsc::Receiver<String>,
}

impl Publisher {
    /// Start the publisher in `ns`, which must be a namespace of a [`Testnet`] of this
    /// process: mDNS never runs in the machine's own namespace.
    pub fn start(ns: &str, ip: &str) -> Self {
        Self::start_with(ns, ip, &[])
    }

    /// [`Publisher::start`] with extra arguments (`--ip-version 6 --interface-ip6 fd99::11`).
    pub fn start_with(ns: &str, ip: &str, extra: &[&str]) -> Self {
        assert!(
            ns.starts_with(&format!("{}x", net_prefix_stem())),
            "{ns} is not a namespace this test process created"
        );
        let py = peers_dir().join("mdns/bin/python");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(py)
            .arg(root().join("scripts/peers/mdns_publish.py"))
            .args(["--interface-ip", ip, "--no-probe"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mdns_publish.py");
        // Wrapped at once, so that a panic below kills it.
        let mut child = Reaped(child);
        let stdin = child.0.stdin.take().unwrap();
        let out = child.0.stdout.take().unwrap();
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
            child,
            stdin,
            acks: rx,
        }
    }

    /// Send one command and wait (at most 30 s) for its acknowledgement.
    pub fn cmd(&mut self, line: &str) -> String {
        self.cmd_within(line, Duration::from_secs(30))
    }

    /// Send one command and wait at most `limit` for its acknowledgement.
    pub fn cmd_within(&mut self, line: &str, limit: Duration) -> String {
        use std::io::Write;
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let ack = self
            .acks
            .recv_timeout(limit)
            .unwrap_or_else(|e| panic!("publisher: no ack for {line:?} within {limit:?}: {e}"));
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
        self.peer_env(name, peer, ip, port, path, &[])
    }

    /// As [`Testnet::peer`], with more `KEY=VALUE` environment for the peer (such as
    /// `MCP_SCOUT_PEERS_CONNLOG=FILE`, scripts/peers/README.md).
    pub fn peer_env(
        &self,
        name: &str,
        peer: &str,
        ip: &str,
        port: u16,
        path: Option<&str>,
        env: &[String],
    ) -> Reaped {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns(name),
            "env",
            "MCP_SCOUT_PEERS_ANY_ADDR=1",
        ])
        .args(env)
        .arg(root().join("scripts/peers/run.sh"))
        .args([peer, "--host", ip, "--port", &port.to_string()]);
        if let Some(p) = path {
            cmd.args(["--path", p]);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn peer");
        let mut child = Reaped(child);
        let ready = ReadyLine::watch(&mut child);
        let line = ready.wait(&mut child, &format!("peer {peer} in {name}"), PEER_START);
        assert!(line.starts_with("READY"), "peer {peer} in {name}: {line:?}");
        child
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

impl Dnsmasq {
    /// The queries this instance has logged so far (dnsmasq.sh runs it with `log-queries`
    /// into `$MCP_SCOUT_DNSMASQ_STATE/<tag>/queries.log`, default /run/mcp-scout-dnsmasq).
    pub fn queries(&self) -> String {
        let root = std::env::var_os("MCP_SCOUT_DNSMASQ_STATE")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("/run/mcp-scout-dnsmasq"), PathBuf::from);
        std::fs::read_to_string(root.join(&self.tag).join("queries.log")).unwrap_or_default()
    }
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

/// The keys of every record (README "Output", record schema): always all present, null or
/// empty when unknown.
pub const RECORD_KEYS: &[&str] = &[
    "ip",
    "port",
    "state",
    "rtt_ms",
    "kind",
    "origins",
    "announced_as",
    "seen_at",
    "url",
    "transport",
    "protocol_version",
    "protocol_versions",
    "server_name",
    "server_version",
    "instructions",
    "capabilities",
    "tools",
    "resources",
    "prompts",
    "auth",
    "http",
    "health_endpoints",
    "server_card",
    "health",
    "evidence",
    "confidence",
    "node",
    "k8s",
];

/// The keys of `-o json`'s `scan` summary (README "Output").
pub const SCAN_KEYS: &[&str] = &[
    "started_at",
    "finished_at",
    "duration_s",
    "targets",
    "ports",
    "addresses",
    "probes_total",
    "probes_done",
    "open",
    "closed",
    "filtered",
    "unreachable",
    "skipped_host_down",
    "hosts_up",
    "retries",
    "interrupted",
    "fingerprinted",
    "kinds",
    "not_listed",
    "auth_walls",
    "announced",
    "out_of_scope",
];

/// That `v` is an object with exactly the keys `want`.
pub fn assert_keys(v: &serde_json::Value, want: &[&str], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want = want.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "{what}: keys differ from the README's schema: {v}"
    );
}

/// One record against the README's schema: every key, the array fields always arrays, and
/// the nested objects (auth, http, tls, tools, health_endpoints, health) with all their keys when present.
pub fn assert_record_schema(r: &serde_json::Value) {
    assert_keys(r, RECORD_KEYS, "record");
    for k in [
        "origins",
        "announced_as",
        "protocol_versions",
        "tools",
        "health_endpoints",
        "evidence",
    ] {
        assert!(r[k].is_array(), "{k} must always be an array: {r}");
    }
    if !r["auth"].is_null() {
        assert_keys(
            &r["auth"],
            &[
                "required",
                "resource_metadata",
                "resource",
                "authorization_servers",
                "scopes",
            ],
            "auth",
        );
    }
    if !r["http"].is_null() {
        assert_keys(
            &r["http"],
            &["scheme", "status", "server", "title", "tls"],
            "http",
        );
        if !r["http"]["tls"].is_null() {
            assert_keys(&r["http"]["tls"], &["subject", "not_after"], "http.tls");
        }
    }
    for t in r["tools"].as_array().unwrap() {
        assert_keys(t, &["name", "description", "input_schema_hash"], "tools[]");
    }
    for h in r["health_endpoints"].as_array().unwrap() {
        assert_keys(h, &["path", "status"], "health_endpoints[]");
    }
    if !r["server_card"].is_null() {
        let c = &r["server_card"];
        assert_keys(
            c,
            &[
                "url",
                "name",
                "version",
                "title",
                "description",
                "remotes",
                "catalog",
            ],
            "server_card",
        );
        for x in c["remotes"].as_array().unwrap() {
            assert_keys(
                x,
                &["transport", "url", "supported_protocol_versions"],
                "server_card.remotes[]",
            );
        }
        for x in c["catalog"].as_array().unwrap() {
            assert_keys(
                x,
                &["identifier", "display_name", "url"],
                "server_card.catalog[]",
            );
        }
    }
    // The monitor's object: null in scan output, all its keys in the inventory.
    if !r["health"].is_null() {
        assert_keys(
            &r["health"],
            &[
                "status",
                "since",
                "reason",
                "flapping",
                "last_check_at",
                "latency_ms",
                "consecutive_failures",
                "consecutive_successes",
                "checks",
            ],
            "health",
        );
    }
}

/// A `-o json` document: `scan` (with `kinds` and `out_of_scope` entries) and each finding.
pub fn assert_document_schema(doc: &serde_json::Value) {
    assert_keys(doc, &["scan", "findings"], "document");
    assert_keys(&doc["scan"], SCAN_KEYS, "scan");
    assert_keys(
        &doc["scan"]["kinds"],
        &["mcp", "mcp_auth_required", "mcp_likely", "http", "open"],
        "scan.kinds",
    );
    for o in doc["scan"]["out_of_scope"]
        .as_array()
        .expect("out_of_scope is an array")
    {
        assert_keys(o, &["ip", "port", "origin", "name"], "scan.out_of_scope[]");
    }
    for f in doc["findings"].as_array().expect("findings is an array") {
        assert_record_schema(f);
    }
}
