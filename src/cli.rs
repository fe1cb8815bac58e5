//! Command-line types only: what the user typed, before validation (clap derive).
//!
//! Each command's flags become a [`JobSpec`] (or one of its parts) here, and
//! [`crate::plan`] validates that into the typed plan shared with the daemon; values that clap can check on
//! its own (durations, numbers, enums) are parsed here so a bad token exits 2 with clap's
//! message, which quotes the token.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::discover::local::{self, LocalFilter};
use crate::fingerprint::credentials::RawCredentials;
use crate::plan::{DiscoverySpec, FingerprintSpec, JobSpec, Shard};
use crate::units::parse_duration;

/// Find Model Context Protocol (MCP) servers on a network.
#[derive(Debug, Parser)]
#[command(name = "mcp-scout", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once per process: boxing `ScanArgs` would save nothing worth the indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sweep addresses × ports and report the MCP servers found (localhost on the MCP ports by default).
    Scan(ScanArgs),
    /// Fingerprint one endpoint (URL or host:port) and show every step and everything learned.
    Probe(ProbeArgs),
    /// Keep browsing mDNS and re-resolving SRV names; print appeared/gone events as JSON lines.
    Watch(WatchArgs),
    /// Run as a service: scan on schedules, keep an inventory, serve an HTTP API and metrics.
    Daemon(DaemonArgs),
    /// Validate a daemon config, or print a commented example.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the servers in the inventory (through the API, or from the store file).
    Servers(ServersArgs),
    /// Print the inventory's change feed as JSON lines.
    Changes(ChangesArgs),
    /// Health-check one MCP server once, as the daemon's monitor does; exit 0 healthy, 1 not.
    Check(CheckArgs),
    /// Write registry documents from an inventory: a Kailash registry file or one
    /// server.json per server (the same documents the daemon's sinks write).
    Export(ExportArgs),
}

/// What `mcp-scout export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A Kailash `FileBasedDiscovery` registry file (JSON).
    Kailash,
    /// One server.json per server, in the official MCP Registry format.
    #[value(name = "server-json")]
    ServerJson,
}

/// `mcp-scout export` options.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The document format.
    #[arg(value_enum, value_name = "FORMAT")]
    pub format: ExportFormat,
    /// The daemon's store file (read-only; safe while the daemon runs).
    #[arg(long, value_name = "FILE")]
    pub db: std::path::PathBuf,
    /// kailash: write the file here (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// server-json: the directory to write into (required for server-json).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Also export mcp-likely servers (by default only confirmed ones: mcp,
    /// mcp-auth-required, as the sinks do).
    #[arg(long)]
    pub include_likely: bool,
}

/// `mcp-scout check` options.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The MCP endpoint: http://host:port/path or https://...
    #[arg(value_name = "URL")]
    pub url: String,
    /// Also call this tool (a custom `mcp_call` check); the built-in check never calls one.
    #[arg(long, value_name = "TOOL")]
    pub call: Option<String>,
    /// The tool's arguments, a JSON object.
    #[arg(long, value_name = "JSON", requires = "call")]
    pub arguments: Option<String>,
    /// A CEL condition that must hold: over the call (result, status, latency_ms, tools,
    /// server, cert_days_left) with --call, else over the built-in check (latency_ms, tools,
    /// server).
    #[arg(long, value_name = "CEL")]
    pub expect: Option<String>,
    /// Bearer token sent as `Authorization: Bearer` (for mcp-auth-required servers).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MCP_SCOUT_BEARER",
        hide_env_values = true
    )]
    pub bearer: Option<String>,
    /// Deadline of each check (and of the fingerprint before them).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Output: table (readable steps) or json (one document).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = CheckOutput::Table)]
    pub output: CheckOutput,
}

/// `mcp-scout check -o` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckOutput {
    /// The steps as an aligned table, then the verdict.
    Table,
    /// One JSON document.
    Json,
}

/// `mcp-scout daemon` options.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// YAML config file [default: the embedded one: localhost on the MCP ports every 5 minutes].
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// `mcp-scout config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE: print one line per job (exit 0), or the error with its position (exit 2).
    Check {
        /// The config file.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// Also print the resolved config, secrets redacted.
        #[arg(long)]
        print: bool,
    },
    /// Print a commented config with every key and its default.
    Example,
}

/// Where `servers` and `changes` read the inventory.
#[derive(Debug, Clone, Args)]
pub struct InventorySource {
    /// The daemon's API.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://127.0.0.1:9464",
        conflicts_with = "db"
    )]
    pub api: String,
    /// Read the store file directly (read-only; safe while the daemon runs).
    #[arg(long, value_name = "FILE")]
    pub db: Option<std::path::PathBuf>,
    /// Bearer token for the API's reads (when it sets api.read_token) [env: MCP_SCOUT_READ_TOKEN].
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MCP_SCOUT_READ_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// `mcp-scout servers` options.
#[derive(Debug, Args)]
pub struct ServersArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: InventorySource,
    /// Only this kind: mcp, mcp-auth-required, mcp-likely.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only this transport: streamable-http, sse.
    #[arg(long, value_name = "TRANSPORT")]
    pub transport: Option<String>,
    /// Only servers found by this source: sweep, mdns, srv, static, catalog, kubernetes.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// Only servers found by this job.
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Only servers offering this tool (`*` wildcards allowed).
    #[arg(long, value_name = "TOOL")]
    pub capability: Option<String>,
    /// Only servers whose serverInfo name matches (`*` wildcards allowed).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// active (default), gone or all.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only this health status: unknown (also never checked), healthy, degraded, unhealthy,
    /// gone.
    #[arg(long, value_name = "STATUS")]
    pub health_status: Option<String>,
    /// Output format on stdout.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `mcp-scout changes` options.
#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: InventorySource,
    /// Only changes after this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub since: i64,
    /// Keep following new changes (the API's event stream, or polling the file).
    #[arg(long)]
    pub follow: bool,
}

/// `mcp-scout watch` options.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Re-resolution interval of --srv names.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub interval: Duration,
    /// Also fingerprint every in-scope service that appears.
    #[arg(long)]
    pub fingerprint: bool,
    /// Fingerprinting limits.
    #[command(flatten)]
    pub fingerprint_args: FingerprintArgs,
    /// What to watch, and the scope wall.
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

/// Fingerprinting options shared by `scan` and `probe`.
#[derive(Debug, Clone, Args)]
pub struct FingerprintArgs {
    /// HTTP paths tried on every open port, in order (comma-separated).
    #[arg(
        long,
        value_name = "PATHS",
        value_delimiter = ',',
        default_value = "/mcp,/,/sse,/api/mcp,/mcp/v1,/v1/mcp"
    )]
    pub paths: Vec<String>,
    /// Total time spent fingerprinting one endpoint.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub fingerprint_budget: Duration,
    /// Deadline of one HTTP request (connect, TLS, headers and body).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3s")]
    pub request_timeout: Duration,
    /// Cap on one response body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_body: u32,
    /// Cap on bytes read from one event stream.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    pub sse_max_bytes: u32,
    /// Cap on time spent reading one event stream.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub sse_max_time: Duration,
    /// Extra request header, 'NAME: VALUE' (repeatable), such as an API key. Sent only to
    /// targets named on the command line or inside the scope wall; never printed.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Bearer token sent as `Authorization: Bearer`, to confirm a server behind an
    /// authentication wall. Same rules as --header. Deliberately not read from
    /// MCP_SCOUT_BEARER (check's variable): a token exported for one server must not go to
    /// every host of a sweep unasked.
    #[arg(long, value_name = "TOKEN")]
    pub bearer: Option<String>,
}

/// `mcp-scout probe` options.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// http://host:port/path, https://..., or host:port (then every path is tried).
    #[arg(value_name = "URL|HOST:PORT")]
    pub target: String,
    /// Output: table is the human report; json, ndjson and csv give the same record as scan.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Fingerprinting limits.
    #[command(flatten)]
    pub fingerprint: FingerprintArgs,
}

/// mDNS / DNS SRV discovery options, shared by `scan` and `watch`.
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// Browse mDNS/DNS-SD service types [default: _mcp._tcp.local., _http._tcp.local.]; put
    /// targets before it or use --mdns=TYPE,TYPE.
    #[arg(long, value_name = "TYPE", num_args = 0.., value_delimiter = ',')]
    pub mdns: Option<Vec<String>>,
    /// Enumerate every announced service type (_services._dns-sd._udp.local.) and browse them all.
    #[arg(long)]
    pub mdns_all: bool,
    /// Time spent browsing mDNS.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "3s")]
    pub mdns_wait: Duration,
    /// Interfaces to browse mDNS on (repeatable) [default: all]; their subnets form the mDNS scope.
    #[arg(long, value_name = "NAME")]
    pub interface: Vec<String>,
    /// DNS SRV names to resolve (repeatable), e.g. _mcp._tcp.example.com or
    /// _http._tcp.my-svc.my-ns.svc.cluster.local.
    #[arg(long, value_name = "NAME")]
    pub srv: Vec<String>,
    /// DNS server for --srv, IP[:PORT] [default: the system resolver].
    #[arg(long, value_name = "IP[:PORT]")]
    pub dns_server: Option<String>,
    /// Deadline of one DNS query (two tries).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2s")]
    pub dns_timeout: Duration,
    /// SRV names resolved at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub dns_concurrency: u16,
    /// Networks that announced addresses may be in (repeatable, comma-separated) [default: the
    /// subnets of the chosen interfaces, plus loopback for mDNS and the explicit targets for SRV].
    #[arg(long, value_name = "CIDR", value_delimiter = ',')]
    pub scope: Vec<String>,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output formats for results on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// An aligned table with a summary (the default).
    Table,
    /// One JSON document: {"scan": {...summary}, "findings": [...]}.
    Json,
    /// One JSON object per line, streamed as ports are found.
    Ndjson,
    /// Comma-separated values with a header row, streamed.
    Csv,
}

impl From<OutputFormat> for crate::output::Format {
    fn from(f: OutputFormat) -> Self {
        match f {
            OutputFormat::Table => Self::Table,
            OutputFormat::Json => Self::Json,
            OutputFormat::Ndjson => Self::Ndjson,
            OutputFormat::Csv => Self::Csv,
        }
    }
}

/// `mcp-scout scan` options.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Targets: 10.0.0.0/24, fd00::/120, 10.0.0.5, 10.0.0.1-50, 10.0.0.1-10.0.1.20,
    /// host.example, @FILE (one or more per line, # comments). Default: 127.0.0.1 and ::1.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Ports: 8000,8080 | 1-1024 | - (all) | mcp (3000,3001,5000,6277,8000,8001,8080,8081,8787,8811,9000).
    #[arg(
        short = 'p',
        long = "ports",
        value_name = "PORTS",
        allow_hyphen_values = true,
        default_value = "mcp"
    )]
    pub ports: String,
    /// Addresses never to probe, same grammar as targets (repeatable).
    #[arg(long, value_name = "TARGET")]
    pub exclude: Vec<String>,
    /// Also sweep the subnets attached to this machine's interfaces, less loopback, link-local,
    /// container interfaces (--skip-interfaces) and wide prefixes (--max-local-prefix).
    #[arg(long)]
    pub local: bool,
    /// With --local: skip attached IPv4 prefixes wider than this.
    #[arg(long, value_name = "N", default_value_t = local::DEFAULT_MAX_LOCAL_PREFIX_V4, value_parser = clap::value_parser!(u8).range(0..=32))]
    pub max_local_prefix: u8,
    /// With --local: skip attached IPv6 prefixes wider than this (wider than /112 is never swept).
    #[arg(long, value_name = "N", default_value_t = local::DEFAULT_MAX_LOCAL_PREFIX_V6, value_parser = clap::value_parser!(u8).range(0..=128))]
    pub max_local_prefix_v6: u8,
    /// With --local: interface name globs to skip, comma-separated; "" skips none
    /// [default: docker*,cni*,flannel*,cali*,veth*,cilium*,kube-*].
    #[arg(long, value_name = "GLOBS")]
    pub skip_interfaces: Option<String>,
    /// Refuse sweeps with more address×port probes than this, unless --force.
    #[arg(long, value_name = "N", default_value_t = 1_048_576)]
    pub max_targets: u64,
    /// Run sweeps larger than --max-targets.
    #[arg(long)]
    pub force: bool,
    /// Connects in flight at once [default: 512 on loopback-only sweeps, else the descriptor limit minus 256, at most 4096].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub concurrency: Option<u32>,
    /// Probes per second [default: unpaced on loopback, 5000 otherwise].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// Deadline of one connect attempt (the ceiling when adapted to measured round trips).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration, default_value = "1s")]
    pub timeout: Duration,
    /// Floor of the adaptive deadline; set equal to --timeout to disable adaptation
    /// [default: 100ms, or --timeout when that is lower].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration)]
    pub min_timeout: Option<Duration>,
    /// Retries of a probe that timed out, spaced one deadline apart.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=20))]
    pub retries: u8,
    /// Retry cap once the path is seen to lose packets (a retry that got an answer).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=20))]
    pub max_retries: u8,
    /// Skip ICMP host discovery (probe every address).
    #[arg(long)]
    pub no_ping: bool,
    /// Host discovery: wait for an echo reply this long after the last of the three requests
    /// to a host (long enough for the kernel to retry a cold ARP entry twice).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration, default_value = "1800ms")]
    pub ping_timeout: Duration,
    /// Output format on stdout.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Port states to report: open (default), all, or a list of open,closed,filtered,unreachable.
    #[arg(long, value_name = "STATES", default_value = "open")]
    pub report: String,
    /// Ports only: do not fingerprint open ports (every open port is listed, kind "open").
    #[arg(long)]
    pub no_fingerprint: bool,
    /// Also list open ports that are not MCP servers (other HTTP services, non-HTTP ports).
    #[arg(long)]
    pub all: bool,
    /// Endpoints fingerprinted at once.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub fingerprint_concurrency: u16,
    /// Fingerprinting limits.
    #[command(flatten)]
    pub fingerprint: FingerprintArgs,
    /// Announce-based discovery (mDNS, DNS SRV) and the scope wall.
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// Never draw the progress bar (it is drawn only when stderr is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// After the scan, register the confirmed MCP servers it found in a registry, once
    /// (repeatable): mcp-mesh=URL, kailash-file=PATH, etcd=URL[,URL], server-json=DIR,
    /// consul=URL, webhook=URL. Exit 2 if a push fails.
    #[arg(long = "push", value_name = "TYPE=TARGET")]
    pub push: Vec<String>,
    /// Worker threads, each with its own event loop [default: CPU count].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Key of the pseudo-random probe order (for reproducible runs).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Probe only this share of the address×port space: INDEX/COUNT, for example 0/3, 1/3
    /// and 2/3 on three machines (exactly once each, whatever their seeds).
    #[arg(long, value_name = "INDEX/COUNT", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || {
        format!("{s:?} is not a shard; accepted forms: 0/3, 1/3, 2/3 (INDEX/COUNT with INDEX below COUNT)")
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let index: u32 = i.trim().parse().map_err(|_| bad())?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

impl FingerprintArgs {
    /// The fingerprinting settings as typed.
    pub fn spec(&self) -> FingerprintSpec {
        FingerprintSpec {
            paths: self.paths.clone(),
            budget: self.fingerprint_budget,
            request_timeout: self.request_timeout,
            max_body: self.max_body,
            sse_max_bytes: self.sse_max_bytes,
            sse_max_time: self.sse_max_time,
            credentials: RawCredentials {
                headers: self.headers.clone(),
                bearer: self.bearer.clone(),
            },
        }
    }
}

impl DiscoveryArgs {
    /// The discovery settings as typed.
    pub fn spec(&self) -> DiscoverySpec {
        DiscoverySpec {
            mdns: self.mdns.clone(),
            mdns_all: self.mdns_all,
            mdns_wait: self.mdns_wait,
            interfaces: self.interface.clone(),
            srv: self.srv.clone(),
            dns_server: self.dns_server.clone(),
            dns_timeout: self.dns_timeout,
            dns_concurrency: self.dns_concurrency,
            scope: self.scope.clone(),
            kubernetes: None,
        }
    }
}

impl ScanArgs {
    /// The job these flags describe (the same settings a daemon config job holds).
    pub fn job_spec(&self) -> JobSpec {
        JobSpec {
            targets: self.targets.clone(),
            exclude: self.exclude.clone(),
            ports: self.ports.clone(),
            local: self.local,
            max_targets: self.max_targets,
            force: self.force,
            concurrency: self.concurrency,
            rate: self.rate,
            timeout: self.timeout,
            min_timeout: self.min_timeout,
            retries: self.retries,
            max_retries: self.max_retries,
            ping: !self.no_ping,
            ping_timeout: self.ping_timeout,
            report: self.report.clone(),
            fingerprint: (!self.no_fingerprint).then(|| self.fingerprint.spec()),
            fingerprint_concurrency: self.fingerprint_concurrency,
            discovery: self.discovery.spec(),
            threads: self.threads,
            seed: self.seed,
            shard: self.shard,
            shard_auto: false,
            local_filter: LocalFilter {
                max_prefix_v4: self.max_local_prefix,
                max_prefix_v6: self.max_local_prefix_v6,
                skip_interfaces: match &self.skip_interfaces {
                    None => LocalFilter::default().skip_interfaces,
                    Some(list) => list
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect(),
                },
                ..LocalFilter::default()
            },
        }
    }
}
