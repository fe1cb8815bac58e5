//! Fill an mcp-scout inventory with N synthetic MCP servers through the store's own upsert
//! path (`Store::begin_run` + `Store::finish_run`, one transaction per run), and time it.
//!
//! ```text
//! cargo run --release --example fill_store -- STORE.db [--count N] [--job NAME] [--runs R]
//!                                                [--checks K]
//! ```
//!
//! Used by `scripts/bench-daemon.sh` (parts `api` and `store`). Each record looks like what
//! the fingerprinter reports for a FastMCP server: a distinct address in 10.0.0.0/8 on port
//! 8000, `http://IP:8000/mcp`, streamable HTTP, 4 tools with descriptions and schema hashes.
//! Every server has the common tool `get_forecast`; one in 100 (index % 100 == 7) also has
//! the rare tool `rare_audit_log`, so `capability=rare_audit_log` returns 1 % of them.
//!
//! Run 1 inserts everything (N `appeared` changes). Runs 2..R upsert the same records again
//! with a fresh `seen_at` and `rtt_ms`, as a rescan that finds nothing new does (no change).
//! Each run's wall time, from `begin_run` to the committed `finish_run`, is printed as
//! `run=K records=N appeared=A updated=U gone=G seconds=S records_per_s=X`, then the file
//! size. The store must not be in use by a daemon (its lock would refuse the open).
//!
//! `--checks K` (default 0) then stores K rounds of health checks of every server through
//! `Store::record_health`, as the monitor will, 30 s apart and ending now: one passing
//! critical `mcp` check each (every 10th server fails it, so statuses and uptimes differ),
//! through the real state machine. Each round's time is printed as
//! `checks=K updates=N seconds=S updates_per_s=X`; the lists then carry health and uptime.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use mcp_scout::finding::{rfc3339, Origin, PortState, Record};
use mcp_scout::fingerprint::{HttpInfo, Tool, Transport, Verdict};
use mcp_scout::store::{RunEnd, RunOutcome, Store, StoreOptions};

/// The tool every server has.
const COMMON_TOOL: &str = "get_forecast";
/// The tool one server in 100 has.
const RARE_TOOL: &str = "rare_audit_log";
/// Tool names the other tools are drawn from.
const POOL: &[&str] = &[
    "add",
    "search_docs",
    "read_file",
    "write_file",
    "list_issues",
    "create_issue",
    "run_query",
    "fetch_url",
    "send_email",
    "get_time",
    "translate",
    "summarize",
    "list_tables",
    "describe_table",
    "git_log",
    "git_diff",
    "kubectl_get",
    "create_ticket",
    "lookup_user",
    "calendar_events",
];

struct Args {
    db: PathBuf,
    count: u32,
    job: String,
    runs: u32,
    checks: u32,
}

fn usage() -> ! {
    eprintln!("usage: fill_store STORE.db [--count N] [--job NAME] [--runs R] [--checks K]");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut db = None;
    let (mut count, mut job, mut runs, mut checks) = (10_000u32, "fill".to_string(), 2u32, 0u32);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--count" => count = value().parse().unwrap_or_else(|_| usage()),
            "--job" => job = value(),
            "--runs" => runs = value().parse().unwrap_or_else(|_| usage()),
            "--checks" => checks = value().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            s if s.starts_with('-') => usage(),
            _ if db.is_none() => db = Some(PathBuf::from(a)),
            _ => usage(),
        }
    }
    let Some(db) = db else { usage() };
    if count == 0 || count > 16_000_000 || runs == 0 {
        usage();
    }
    Args {
        db,
        count,
        job,
        runs,
        checks,
    }
}

/// A deterministic 64-bit mix (splitmix64), so tool choices and hashes are reproducible.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn tool(name: &str) -> Tool {
    Tool {
        name: name.to_string(),
        description: Some(format!(
            "{} (synthetic tool for the benchmark).",
            name.replace('_', " ")
        )),
        input_schema_hash: Some(format!(
            "{:016x}",
            name.bytes().fold(0x5eed, |h, b| mix(h ^ u64::from(b)))
        )),
    }
}

/// Server `i`: 10.x.y.z (distinct for every i < 2^24), port 8000.
fn record(i: u32, pass: u32) -> Record {
    let n = i + 1; // skip 10.0.0.0
    let ip = IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8));
    let h = mix(u64::from(i));
    let mut tools = vec![tool(COMMON_TOOL)];
    let mut k = h;
    while tools.len() < 4 {
        let name = POOL[(k % POOL.len() as u64) as usize];
        k = mix(k);
        if tools.iter().all(|t| t.name != name) {
            tools.push(tool(name));
        }
    }
    if i % 100 == 7 {
        tools.push(tool(RARE_TOOL));
    }
    let jitter = (mix(h ^ u64::from(pass)) % 900) as f64 / 1000.0;
    Record {
        ip,
        port: 8000,
        state: PortState::Open,
        rtt_ms: Some(0.1 + jitter),
        kind: Some(Verdict::Mcp),
        origins: vec![Origin::Sweep],
        announced_as: Vec::new(),
        seen_at: rfc3339(SystemTime::now()),
        url: Some(format!("http://{ip}:8000/mcp")),
        transport: Some(Transport::StreamableHttp),
        protocol_version: Some("2025-06-18".into()),
        protocol_versions: vec!["2025-06-18".into(), "2025-03-26".into()],
        server_name: Some(format!("demo-server-{}", i % 50)),
        server_version: Some(format!("1.{}.0", i % 7)),
        instructions: Some("Synthetic MCP server written by examples/fill_store.rs.".into()),
        capabilities: Some(serde_json::json!({
            "experimental": {},
            "prompts": {"listChanged": false},
            "resources": {"subscribe": false, "listChanged": false},
            "tools": {"listChanged": false}
        })),
        tools,
        resources: Some(1),
        prompts: Some(1),
        auth: None,
        http: Some(HttpInfo {
            scheme: "http".into(),
            status: Some(404),
            server: Some("uvicorn".into()),
            title: None,
            tls: None,
        }),
        health_endpoints: Vec::new(),
        server_card: None,
        health: None,
        evidence: vec![
            "initialize result with serverInfo".into(),
            "tools/list answered".into(),
            "Mcp-Session-Id header".into(),
        ],
        confidence: Some(1.0),
        node: None,
        k8s: None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = parse_args();
    let opts = StoreOptions::new(&args.db);
    let (store, handle) = match Store::open(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fill_store: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "store={} count={} job={} rare_tool={RARE_TOOL} rare_servers={} common_tool={COMMON_TOOL}",
        args.db.display(),
        args.count,
        args.job,
        (0..args.count).filter(|i| i % 100 == 7).count(),
    );
    for pass in 1..=args.runs {
        let records: Vec<Record> = (0..args.count).map(|i| record(i, pass)).collect();
        let n = records.len() as u64;
        let t0 = Instant::now();
        let run = store.begin_run(&args.job).await.expect("begin_run");
        let summary = store
            .finish_run(
                run,
                RunOutcome {
                    job: args.job.clone(),
                    status: RunEnd::Completed,
                    records,
                    probes: n,
                    open: n,
                },
            )
            .await
            .expect("finish_run");
        let s = t0.elapsed().as_secs_f64();
        println!(
            "run={pass} records={n} mcp={} appeared={} updated={} gone={} seconds={s:.3} records_per_s={:.0}",
            summary.mcp,
            summary.appeared,
            summary.updated,
            summary.gone,
            n as f64 / s,
        );
    }
    if args.checks > 0 {
        check_rounds(&store, &args).await;
    }
    let m = store.read_model().stats();
    println!(
        "read_model servers={} json_bytes={} changes_bytes={} changes_uncached={}",
        m.servers, m.json_bytes, m.changes_bytes, m.changes_uncached
    );
    drop(store);
    handle.close().await.expect("closing the store");
    let size = std::fs::metadata(&args.db).map_or(0, |m| m.len());
    let wal = std::fs::metadata(args.db.with_extension("db-wal")).map_or(0, |m| m.len());
    println!("db_bytes={size} wal_bytes={wal}");
}

/// `--checks`: rounds of `record_health` for every server, 30 s apart, the last one now.
async fn check_rounds(store: &Store, args: &Args) {
    use mcp_scout::monitor::state::{step, CheckResult, HealthState, Thresholds};
    use mcp_scout::store::{HealthUpdate, ServerId};
    use std::time::{Duration, SystemTime};
    let now = SystemTime::now();
    let start = now - Duration::from_secs(30 * u64::from(args.checks - 1));
    let ids: Vec<String> = (0..args.count)
        .map(|i| {
            let url = record(i, 1).url.expect("records have a URL");
            ServerId::from_url(&url).into_string()
        })
        .collect();
    let mut states: Vec<HealthState> = ids.iter().map(|_| HealthState::new(start)).collect();
    for round in 0..args.checks {
        let at = start + Duration::from_secs(30 * u64::from(round));
        let t0 = Instant::now();
        for (i, (id, state)) in ids.iter().zip(states.iter_mut()).enumerate() {
            let r = if i % 10 == 3 {
                CheckResult::fail("mcp", "timeout after 10s")
            } else {
                CheckResult::pass("mcp")
            };
            let results = vec![r.with_latency(Duration::from_millis(3 + (i % 7) as u64))];
            let (next, transition) = step(state, &results, &Thresholds::default(), at);
            store
                .record_health(HealthUpdate {
                    server_id: id.clone(),
                    at,
                    results,
                    health: next.health().clone(),
                    transition,
                    tools: None,
                })
                .await
                .expect("record_health");
            *state = next;
        }
        let s = t0.elapsed().as_secs_f64();
        println!(
            "checks={} updates={} seconds={s:.3} updates_per_s={:.0}",
            round + 1,
            ids.len(),
            ids.len() as f64 / s
        );
    }
}
