//! The daemon's YAML config: raw serde structs (what the user wrote), `${VAR}` expansion,
//! and validation into typed settings with errors that say where.
//!
//! Loading is three steps, each with its own errors:
//! 1. **Expansion.** `${VAR}` and `${VAR:-default}` are replaced in the text before parsing,
//!    outside comments, as Vector does; `$$` is a literal `$`. An unset variable with no
//!    default is an error naming it and its line.
//! 2. **Parsing** (serde-saphyr) into the `Raw*` structs, which deny unknown keys: the error
//!    carries the line and column and lists the accepted keys.
//! 3. **Validation.** Each value that `scan` would parse (targets, ports, durations, report,
//!    paths, scope…) is parsed here with the same function, and a failure names the file,
//!    line, column, key path, bad value and fix. Values are kept as [`Spanned`] for that.
//!    Each job then becomes a [`JobSpec`] and a [`JobPlan`]: the same plan `scan` runs.
//!
//! Every `scan` option has a key of the same meaning (see `config/example.yaml` and the
//! README); output-only flags (`-o`, `--all`, `--no-progress`) have none.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::discover::local::LocalFilter;
use crate::kube::pods::PodsSpec;
use crate::kube::KubePlan;
use crate::monitor::plan::{HealthPlan, HealthSpec, PlanIssue};
use crate::plan::{
    self, DiscoverySpec, FingerprintSpec, JobPlan, JobSpec, Shard, DEFAULT_FINGERPRINT_CONCURRENCY,
};
use crate::ports::PortList;
use crate::sinks::plan::{SinkPlan, SinkSpec};
use crate::target::TargetSpec;
use crate::units::parse_duration;

/// The commented full example, printed by `mcp-scout config example`.
pub const EXAMPLE: &str = include_str!("../config/example.yaml");
/// The API's default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Consecutive completed runs that must miss a server before it is gone.
pub const DEFAULT_GONE_AFTER: u32 = 3;
/// How long changes, runs and gone servers are kept.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// A job's default interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// A job's default jitter, as a fraction of its interval.
pub const DEFAULT_JITTER: f64 = 0.1;
/// API connections served at once; bounded so API clients cannot take the descriptors the
/// scanner needs.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 256;
/// Deadline of one API request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client gets to send its request headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest API request body.
pub const DEFAULT_BODY_LIMIT: u32 = 64 * 1024;
/// Longest accepted config file; a larger one is refused rather than parsed.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// Shown instead of secrets by `config check --print`.
pub const REDACTED: &str = "<redacted>";

/// A config that cannot be used (exit code 2; the daemon does not start).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}; check the path given to --config", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (in the message, so not also a `#[source]`).
        source: std::io::Error,
    },
    /// The file is too large to be a config.
    #[error("config file {} is {size} bytes, above the {MAX_CONFIG_BYTES}-byte limit; is it the right file?", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Not valid YAML, an unknown key or a value of the wrong type.
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        /// The file (or `<embedded default>`).
        file: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column.
        column: u64,
        /// What serde-saphyr said, with the accepted keys for an unknown one.
        message: String,
    },
    /// A value that parsed as YAML but means nothing valid.
    #[error("{file}:{line}:{column}: {path}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column.
        column: u64,
        /// Key path, such as `jobs[0].ports`.
        path: String,
        /// The bad value and the fix.
        message: String,
    },
    /// `${VAR}` without a value.
    #[error("{file}:{line}:{column}: environment variable {var} is not set and has no default; set it, or write ${{{var}:-default}}")]
    UnsetVar {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column of the `$`.
        column: u64,
        /// The variable.
        var: String,
    },
}

// ---------------------------------------------------------------------------------------
// Raw input: what the user wrote.

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    api: RawApi,
    store: RawStore,
    gone_after: Option<Spanned<u32>>,
    jobs: Option<Spanned<Vec<RawJob>>>,
    health: Option<HealthSpec>,
    sinks: Option<Vec<Spanned<SinkSpec>>>,
    kubernetes: Option<Spanned<RawKubernetes>>,
}

/// `kubernetes:` (top level): how to reach the API and who this pod is.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawKubernetes {
    kubeconfig: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
    namespace: Option<Spanned<String>>,
    pod: Option<Spanned<String>>,
    peers: Option<Spanned<String>>,
    lease: Option<Spanned<RawLease>>,
    timeout: Option<Spanned<String>>,
    retry: Option<Spanned<RawRetry>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawLease {
    name: Option<Spanned<String>>,
    duration: Option<Spanned<String>>,
    renew: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRetry {
    initial: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
}

/// A job's `kubernetes:` source.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawJobKubernetes {
    pods: Option<Spanned<String>>,
    namespaces: Vec<Spanned<String>>,
    labels: Vec<Spanned<String>>,
    all_ports: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawApi {
    listen: Option<Spanned<String>>,
    token: Option<String>,
    read_token: Option<String>,
    max_connections: Option<Spanned<u32>>,
    request_timeout: Option<Spanned<String>>,
    header_timeout: Option<Spanned<String>>,
    body_limit: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawStore {
    path: Option<Spanned<String>>,
    retention: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    max_local_prefix: Option<Spanned<u8>>,
    max_local_prefix_v6: Option<Spanned<u8>>,
    skip_interfaces: Option<Vec<Spanned<String>>>,
    skip_loopback: Option<bool>,
    skip_link_local: Option<bool>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    ports: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    jitter: Option<Spanned<String>>,
    #[serde(default)]
    sweep: RawSweep,
    #[serde(default)]
    fingerprint: RawFingerprint,
    mdns: Option<RawMdns>,
    #[serde(default)]
    srv: Vec<Spanned<String>>,
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    scope: Vec<Spanned<String>>,
    shard: Option<Spanned<RawShard>>,
    kubernetes: Option<Spanned<RawJobKubernetes>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSweep {
    rate: Option<Spanned<u32>>,
    concurrency: Option<Spanned<u32>>,
    timeout: Option<Spanned<String>>,
    min_timeout: Option<Spanned<String>>,
    retries: Option<Spanned<u8>>,
    max_retries: Option<Spanned<u8>>,
    ping: Option<bool>,
    ping_timeout: Option<Spanned<String>>,
    report: Option<Spanned<String>>,
    max_targets: Option<u64>,
    force: Option<bool>,
    threads: Option<Spanned<u16>>,
    seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawFingerprint {
    enabled: Option<bool>,
    concurrency: Option<Spanned<u16>>,
    budget: Option<Spanned<String>>,
    paths: Option<Vec<Spanned<String>>>,
    request_timeout: Option<Spanned<String>>,
    max_body: Option<Spanned<u32>>,
    sse_max_bytes: Option<Spanned<u32>>,
    sse_max_time: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMdns {
    types: Vec<Spanned<String>>,
    all: Option<bool>,
    wait: Option<Spanned<String>>,
    interfaces: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDns {
    server: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    concurrency: Option<Spanned<u16>>,
}

/// `shard:` is `auto` or `{ index, count }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawShard {
    Word(String),
    Fixed(RawFixedShard),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixedShard {
    index: u32,
    count: u32,
}

// ---------------------------------------------------------------------------------------
// Typed settings.

/// The HTTP API's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Bearer token for writes; `None` disables writes.
    pub token: Option<String>,
    /// Bearer token for reads; `None` leaves reads open.
    pub read_token: Option<String>,
    /// Connections served at once.
    pub max_connections: u32,
    /// Deadline of one request.
    pub request_timeout: Duration,
    /// Time to send request headers.
    pub header_timeout: Duration,
    /// Largest request body.
    pub body_limit: u32,
}

/// The inventory's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// How long history is kept.
    pub retention: Duration,
}

/// One scheduled job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Unique name.
    pub name: String,
    /// Time between planned starts.
    pub interval: Duration,
    /// Random spread of each start, as a fraction of `interval` (0 to 0.5).
    pub jitter: f64,
    /// The settings as typed (compared on reload to tell a changed job).
    pub spec: JobSpec,
    /// The validated plan the pipeline runs.
    pub plan: JobPlan,
    /// Where it runs: every pod (`node`), or only the Lease holder (`leader`).
    pub owner: Owner,
}

/// A job's `owner:`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Owner {
    /// Every daemon runs it (the default).
    #[default]
    Node,
    /// Only the daemon that holds the `kubernetes.lease` Lease runs it.
    Leader,
}

impl Owner {
    /// As written in the config and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Leader => "leader",
        }
    }
}

impl Job {
    /// One line for `config check`: what it scans and how often.
    pub fn describe(&self) -> String {
        let p = &self.plan;
        let mut what = p.target_labels().join(", ");
        if what.is_empty() {
            what = "no sweep targets".into();
        }
        let mut s = format!(
            "job {:?}: {} on ports {} every {}",
            self.name,
            what,
            p.ports,
            crate::units::format_duration(self.interval)
        );
        if self.jitter > 0.0 {
            let _ = write!(s, " ± {}%", (self.jitter * 100.0).round());
        }
        if let Some(m) = &p.discovery.mdns {
            let _ = write!(s, "; mDNS {}", m.types.join(","));
        }
        if !p.discovery.srv.is_empty() {
            let _ = write!(s, "; SRV {}", p.discovery.srv.join(","));
        }
        if let Some(k) = &p.discovery.kubernetes {
            let ns = if k.namespaces.is_empty() {
                "every namespace".to_string()
            } else {
                k.namespaces.join(",")
            };
            let _ = write!(s, "; kubernetes pods of this node ({ns})");
        }
        if let Some(sh) = p.shard {
            let _ = write!(s, "; shard {} of {}", sh.index, sh.count);
        }
        if p.shard_auto {
            s.push_str("; shard auto (over the ready pods, read at each run)");
        }
        if self.owner == Owner::Leader {
            s.push_str("; owner leader (runs only on the Lease holder)");
        }
        if p.fingerprint.is_none() {
            s.push_str("; ports only (fingerprint disabled)");
        }
        s
    }
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a path, or `<embedded default>`).
    pub source: String,
    /// HTTP API.
    pub api: ApiConfig,
    /// Inventory.
    pub store: StoreConfig,
    /// Misses before gone.
    pub gone_after: u32,
    /// Jobs, in file order.
    pub jobs: Vec<Job>,
    /// The health monitor (`health:`; every default when the key is absent).
    pub health: HealthPlan,
    /// The registries fed from the inventory (`sinks:`), in file order.
    pub sinks: Vec<SinkPlan>,
    /// The `kubernetes:` section; `None` when absent.
    pub kubernetes: Option<KubePlan>,
}

/// Name of the embedded default config in messages.
pub const EMBEDDED: &str = "<embedded default>";

impl Config {
    /// Read, expand and validate `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                size,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The config used without `--config`: localhost on the MCP ports every 5 minutes, the
    /// store under `$XDG_STATE_HOME`, the API on 127.0.0.1:9464.
    pub fn embedded_default() -> Self {
        Self::parse("jobs:\n  - name: localhost\n", EMBEDDED)
            .expect("the embedded default config is valid")
    }

    /// Expand and validate `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let expanded = expand_env(text, file, &|k| std::env::var(k).ok())?;
        let raw: RawConfig = if expanded.trim().is_empty() {
            RawConfig::default()
        } else {
            let mut path = String::new();
            serde_saphyr::with_deserializer_from_str(&expanded, |de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    path = e.path().to_string();
                    e.into_inner()
                })
            })
            .map_err(|e| parse_error(&e, file, &path, &expanded))?
        };
        Validator { file }.config(raw)
    }

    /// The resolved config as YAML, secrets redacted (`config check --print`).
    pub fn to_yaml(&self) -> String {
        let secret = |t: &Option<String>| match t {
            Some(_) => format!("\"{REDACTED}\""),
            None => "null".into(),
        };
        let d = crate::units::format_duration;
        let mut s = String::new();
        let a = &self.api;
        let _ = writeln!(s, "# resolved from {}", self.source);
        let _ = writeln!(s, "api:");
        let _ = writeln!(s, "  listen: {}", a.listen);
        let _ = writeln!(s, "  token: {}", secret(&a.token));
        let _ = writeln!(s, "  read_token: {}", secret(&a.read_token));
        let _ = writeln!(s, "  max_connections: {}", a.max_connections);
        let _ = writeln!(s, "  request_timeout: {}", d(a.request_timeout));
        let _ = writeln!(s, "  header_timeout: {}", d(a.header_timeout));
        let _ = writeln!(s, "  body_limit: {}", a.body_limit);
        let _ = writeln!(s, "store:");
        let _ = writeln!(
            s,
            "  path: {}",
            json(&self.store.path.display().to_string())
        );
        let _ = writeln!(s, "  retention: {}", d(self.store.retention));
        let _ = writeln!(s, "gone_after: {}", self.gone_after);
        let _ = writeln!(s, "jobs:");
        for j in &self.jobs {
            let p = &j.spec;
            let list = |v: &[String]| {
                format!(
                    "[{}]",
                    v.iter().map(|x| json(x)).collect::<Vec<_>>().join(", ")
                )
            };
            let mut targets = p.targets.clone();
            if p.local {
                targets.push("local".into());
            }
            let _ = writeln!(s, "  - name: {}", json(&j.name));
            let _ = writeln!(s, "    targets: {}", list(&targets));
            if p.local {
                let lf = &p.local_filter;
                let _ = writeln!(s, "    max_local_prefix: {}", lf.max_prefix_v4);
                let _ = writeln!(s, "    max_local_prefix_v6: {}", lf.max_prefix_v6);
                let _ = writeln!(s, "    skip_interfaces: {}", list(&lf.skip_interfaces));
                let _ = writeln!(s, "    skip_loopback: {}", lf.skip_loopback);
                let _ = writeln!(s, "    skip_link_local: {}", lf.skip_link_local);
            }
            let _ = writeln!(s, "    exclude: {}", list(&p.exclude));
            let _ = writeln!(s, "    ports: {}", json(&p.ports));
            let _ = writeln!(s, "    interval: {}", d(j.interval));
            let _ = writeln!(s, "    jitter: {}%", (j.jitter * 100.0).round());
            let _ = writeln!(s, "    sweep:");
            let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
            let _ = writeln!(s, "      rate: {}", opt(p.rate.map(|v| v.to_string())));
            let _ = writeln!(
                s,
                "      concurrency: {}",
                opt(p.concurrency.map(|v| v.to_string()))
            );
            let _ = writeln!(s, "      timeout: {}", d(p.timeout));
            let _ = writeln!(s, "      min_timeout: {}", opt(p.min_timeout.map(d)));
            let _ = writeln!(s, "      retries: {}", p.retries);
            let _ = writeln!(s, "      max_retries: {}", p.max_retries);
            let _ = writeln!(s, "      ping: {}", p.ping);
            let _ = writeln!(s, "      ping_timeout: {}", d(p.ping_timeout));
            let _ = writeln!(s, "      report: {}", json(&p.report));
            let _ = writeln!(s, "      max_targets: {}", p.max_targets);
            let _ = writeln!(s, "      force: {}", p.force);
            let _ = writeln!(
                s,
                "      threads: {}",
                opt(p.threads.map(|v| v.to_string()))
            );
            let _ = writeln!(s, "      seed: {}", opt(p.seed.map(|v| v.to_string())));
            let _ = writeln!(s, "    fingerprint:");
            let _ = writeln!(s, "      enabled: {}", p.fingerprint.is_some());
            let _ = writeln!(s, "      concurrency: {}", p.fingerprint_concurrency);
            if let Some(f) = &p.fingerprint {
                let _ = writeln!(s, "      budget: {}", d(f.budget));
                let _ = writeln!(s, "      paths: {}", list(&f.paths));
                let _ = writeln!(s, "      request_timeout: {}", d(f.request_timeout));
                let _ = writeln!(s, "      max_body: {}", f.max_body);
                let _ = writeln!(s, "      sse_max_bytes: {}", f.sse_max_bytes);
                let _ = writeln!(s, "      sse_max_time: {}", d(f.sse_max_time));
            }
            let disc = &p.discovery;
            if disc.mdns.is_some() || disc.mdns_all {
                let _ = writeln!(s, "    mdns:");
                let _ = writeln!(
                    s,
                    "      types: {}",
                    list(disc.mdns.as_deref().unwrap_or_default())
                );
                let _ = writeln!(s, "      all: {}", disc.mdns_all);
                let _ = writeln!(s, "      wait: {}", d(disc.mdns_wait));
                let _ = writeln!(s, "      interfaces: {}", list(&disc.interfaces));
            }
            let _ = writeln!(s, "    srv: {}", list(&disc.srv));
            let _ = writeln!(s, "    dns:");
            let _ = writeln!(
                s,
                "      server: {}",
                disc.dns_server.as_deref().map_or("null".into(), json)
            );
            let _ = writeln!(s, "      timeout: {}", d(disc.dns_timeout));
            let _ = writeln!(s, "      concurrency: {}", disc.dns_concurrency);
            let _ = writeln!(s, "    scope: {}", list(&disc.scope));
            if let Some(k) = &disc.kubernetes {
                let _ = writeln!(s, "    kubernetes:");
                let _ = writeln!(s, "      pods: node");
                let _ = writeln!(s, "      namespaces: {}", list(&k.namespaces));
                let _ = writeln!(s, "      labels: {}", list(&k.labels));
                let _ = writeln!(s, "      all_ports: {}", k.all_ports);
            }
            if let Some(sh) = p.shard {
                let _ = writeln!(
                    s,
                    "    shard: {{ index: {}, count: {} }}",
                    sh.index, sh.count
                );
            }
            if p.shard_auto {
                let _ = writeln!(s, "    shard: auto");
            }
            if j.owner == Owner::Leader {
                let _ = writeln!(s, "    owner: leader");
            }
        }
        if let Some(k) = &self.kubernetes {
            let _ = writeln!(s, "kubernetes:");
            let _ = writeln!(
                s,
                "  kubeconfig: {}",
                k.kubeconfig
                    .as_ref()
                    .map_or("null".into(), |p| json(&p.display().to_string()))
            );
            let _ = writeln!(
                s,
                "  node: {}",
                k.node.as_deref().map_or("null".into(), json)
            );
            let _ = writeln!(s, "  namespace: {}", json(&k.namespace));
            let _ = writeln!(s, "  pod: {}", json(&k.pod));
            let _ = writeln!(s, "  peers: {}", json(&k.peers));
            let _ = writeln!(
                s,
                "  lease: {{ name: {}, duration: {}, renew: {} }}",
                json(&k.lease.name),
                d(k.lease.duration),
                d(k.lease.renew)
            );
            let _ = writeln!(s, "  timeout: {}", d(k.timeout));
            let _ = writeln!(
                s,
                "  retry: {{ initial: {}, max: {} }}",
                d(k.retry_initial),
                d(k.retry_max)
            );
        }
        let h = &self.health;
        let t = &h.thresholds;
        let _ = writeln!(s, "health:");
        let _ = writeln!(s, "  enabled: {}", h.enabled);
        let _ = writeln!(s, "  interval: {}", d(h.interval));
        let _ = writeln!(s, "  timeout: {}", d(h.timeout));
        let _ = writeln!(s, "  concurrency: {}", h.concurrency);
        let _ = writeln!(s, "  unhealthy_threshold: {}", t.unhealthy_threshold);
        let _ = writeln!(s, "  healthy_threshold: {}", t.healthy_threshold);
        let _ = writeln!(s, "  degraded_latency: {}", d(t.degraded_latency));
        let _ = writeln!(
            s,
            "  flap_threshold: {}%",
            (t.flap_threshold * 100.0).round()
        );
        let _ = writeln!(s, "  flap_window: {}", t.flap_window);
        let _ = writeln!(s, "  body_cap: {}", h.body_cap);
        let _ = writeln!(
            s,
            "  # {} credential(s), tokens redacted",
            h.credentials.len()
        );
        let names: Vec<String> = h.checks.iter().map(|c| json(&c.name)).collect();
        let _ = writeln!(s, "  # checks: [{}]", names.join(", "));
        if self.sinks.is_empty() {
            let _ = writeln!(s, "sinks: []");
        } else {
            let _ = writeln!(s, "sinks:");
        }
        for k in &self.sinks {
            let _ = writeln!(s, "  - name: {}", json(&k.name));
            let _ = writeln!(s, "    type: {}", k.kind.type_name());
            for (key, value) in crate::sinks::plan::settings_yaml(&k.kind) {
                let _ = writeln!(s, "    {key}: {value}");
            }
            let _ = writeln!(s, "    resync: {}", d(k.resync));
            let _ = writeln!(s, "    timeout: {}", d(k.timeout));
            let _ = writeln!(
                s,
                "    retry: {{ initial: {}, max: {} }}",
                d(k.retry_initial),
                d(k.retry_max)
            );
            let _ = writeln!(s, "    concurrency: {}", k.concurrency);
            let _ = writeln!(s, "    # only {}", k.only.describe());
        }
        s
    }

    /// A job by name.
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A Kubernetes DNS-1123 label (namespace names): 1-63 of `[a-z0-9-]`, alphanumeric ends.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain (node names, label prefixes): dot-separated labels, at most 253.
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

/// A label key: `[prefix/]name`, name 1-63 of `[A-Za-z0-9._-]` with alphanumeric ends.
fn label_key(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(dns_subdomain)
        && !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// The store's default path: `$XDG_STATE_HOME/mcp-scout/inventory.db`, else
/// `~/.local/state/mcp-scout/inventory.db`, else `./mcp-scout-inventory.db`.
pub fn default_store_path() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        });
    match state {
        Some(dir) => dir.join("mcp-scout/inventory.db"),
        None => PathBuf::from("mcp-scout-inventory.db"),
    }
}

fn parse_error(e: &serde_saphyr::Error, file: &str, path: &str, text: &str) -> ConfigError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut message = e.without_snippet().to_string();
    // serde-saphyr appends its own "at line L column C"; the prefix already says where.
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    let mut message = message.trim().to_string();
    // A wrong type: name the key and quote what was there.
    // `Spanned` adds a `.value` step of its own to serde's path.
    let path = path.replace(".value", "");
    let path = path.trim_start_matches('.');
    let type_error = message.starts_with("invalid") || message.starts_with("expected");
    let known_path = !path.is_empty() && path != "?";
    if known_path && message.starts_with("unknown field") {
        message = format!("{path}: {message}");
    } else if type_error && known_path {
        let found = scalar_at(text, line, column);
        message = match found {
            Some(v) => format!("{path}: {message} (found {v:?}); {}", type_hint(&message)),
            None => format!("{path}: {message}; {}", type_hint(&message)),
        };
    }
    ConfigError::Parse {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// The plain scalar starting at 1-based `line`:`column`, if any.
fn scalar_at(text: &str, line: u64, column: u64) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let rest: String = l
        .chars()
        .skip(usize::try_from(column).ok()?.saturating_sub(1))
        .collect();
    let end = rest.find([',', '}', ']', '#', '\n']).unwrap_or(rest.len());
    let v = rest[..end].trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// What to write instead, from serde's "invalid type" wording.
fn type_hint(message: &str) -> &'static str {
    if message.contains("u8")
        || message.contains("u16")
        || message.contains("u32")
        || message.contains("u64")
    {
        "write a whole number"
    } else if message.contains("bool") {
        "write true or false"
    } else if message.contains("sequence") {
        "write a list, such as [a, b]"
    } else if message.contains("map") {
        "write a mapping of keys, such as { key: value }"
    } else {
        "see `mcp-scout config example` for the accepted form"
    }
}

/// Replace `${VAR}` and `${VAR:-default}` outside comments; `$$` is a literal `$`.
fn expand_env(
    text: &str,
    file: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let comment = comment_start(line);
        let (code, rest) = line.split_at(comment);
        let mut i = 0;
        let b = code.as_bytes();
        while i < b.len() {
            if b[i] == b'$' && b.get(i + 1) == Some(&b'$') {
                out.push('$');
                i += 2;
            } else if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
                let Some(end) = code[i..].find('}') else {
                    out.push_str(&code[i..]);
                    break;
                };
                let inner = &code[i + 2..i + end];
                let (var, default) = match inner.split_once(":-") {
                    Some((v, d)) => (v, Some(d)),
                    None => (inner, None),
                };
                match lookup(var).filter(|v| !v.is_empty() || default.is_none()) {
                    Some(v) => out.push_str(&v),
                    None => match default {
                        Some(d) => out.push_str(d),
                        None => {
                            return Err(ConfigError::UnsetVar {
                                file: file.to_string(),
                                line: n as u64 + 1,
                                column: code[..i].chars().count() as u64 + 1,
                                var: var.to_string(),
                            })
                        }
                    },
                }
                i += end + 1;
            } else {
                let ch = code[i..].chars().next().unwrap_or_default();
                out.push(ch);
                i += ch.len_utf8().max(1);
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// Byte offset where a YAML comment starts on `line` (a `#` at the start or after
/// whitespace, outside quotes), or the line's length.
fn comment_start(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return i,
            None => {}
        }
        prev = c;
    }
    line.len()
}

/// Turns raw input into typed settings, naming the file in every error.
struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn invalid<T>(&self, s: &Spanned<T>, path: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: s.referenced.line(),
            column: s.referenced.column(),
            path: path.to_string(),
            message: message.into(),
        }
    }

    fn issue(&self, i: PlanIssue) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            line: i.line,
            column: i.column,
            path: i.path,
            message: i.message,
        }
    }

    fn duration(
        &self,
        v: Option<&Spanned<String>>,
        path: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration(&s.value).map_err(|e| self.invalid(s, path, e)),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let api = self.api(&raw.api)?;
        let store = StoreConfig {
            path: match &raw.store.path {
                Some(p) if p.value.trim().is_empty() => return Err(self.invalid(
                    p,
                    "store.path",
                    "empty path; name the SQLite file, for example /var/lib/mcp-scout/inventory.db",
                )),
                Some(p) => PathBuf::from(&p.value),
                None => default_store_path(),
            },
            retention: self.duration(
                raw.store.retention.as_ref(),
                "store.retention",
                DEFAULT_RETENTION,
            )?,
        };
        let gone_after = match &raw.gone_after {
            Some(g) if g.value == 0 => {
                return Err(self.invalid(
                    g,
                    "gone_after",
                    "0 would mark every server gone at once; use 1 or more (default 3)",
                ))
            }
            Some(g) => g.value,
            None => DEFAULT_GONE_AFTER,
        };
        let kubernetes = raw
            .kubernetes
            .as_ref()
            .map(|k| self.kubernetes(k))
            .transpose()?;
        let mut jobs = Vec::new();
        let mut names = HashSet::new();
        if let Some(list) = &raw.jobs {
            for (i, j) in list.value.iter().enumerate() {
                let job = self.job(i, j, kubernetes.as_ref())?;
                if !names.insert(job.name.clone()) {
                    return Err(self.invalid(
                        &j.name,
                        &format!("jobs[{i}].name"),
                        format!(
                            "duplicate job name {:?}; every job needs its own name",
                            job.name
                        ),
                    ));
                }
                jobs.push(job);
            }
        }
        let health = HealthPlan::resolve(raw.health.as_ref()).map_err(|i| self.issue(i))?;
        let sinks = match &raw.sinks {
            None => Vec::new(),
            Some(list) => SinkPlan::resolve_all(list).map_err(|i| self.issue(i))?,
        };
        Ok(Config {
            source: self.file.to_string(),
            api,
            store,
            gone_after,
            jobs,
            health,
            sinks,
            kubernetes,
        })
    }

    fn kubernetes(&self, k: &Spanned<RawKubernetes>) -> Result<KubePlan, ConfigError> {
        let raw = &k.value;
        let d = KubePlan::default();
        let env = |var: &str| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        let text = |v: &Option<Spanned<String>>| {
            v.as_ref()
                .map(|s| s.value.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let kubeconfig = text(&raw.kubeconfig)
            .filter(|p| p != "null" && p != "~")
            .map(PathBuf::from);
        let node = text(&raw.node).or_else(|| env("NODE_NAME"));
        if let (Some(n), Some(s)) = (&node, &raw.node) {
            if !dns_subdomain(n) {
                return Err(self.invalid(
                    s,
                    "kubernetes.node",
                    format!("{n:?} is not a node name (lowercase letters, digits, '-' and '.'); set it from the downward API: node: \"${{NODE_NAME}}\""),
                ));
            }
        }
        let namespace = text(&raw.namespace)
            .or_else(|| env("POD_NAMESPACE"))
            .unwrap_or(d.namespace);
        if let Some(s) = &raw.namespace {
            if !dns_label(&namespace) {
                return Err(self.invalid(
                    s,
                    "kubernetes.namespace",
                    format!("{namespace:?} is not a namespace name (at most 63 lowercase letters, digits and '-'), for example mcp-scout"),
                ));
            }
        }
        let pod = text(&raw.pod).or_else(|| env("POD_NAME")).unwrap_or(d.pod);
        let peers = text(&raw.peers).unwrap_or(d.peers);
        let mut lease = d.lease;
        if let Some(l) = &raw.lease {
            if let Some(n) = text(&l.value.name) {
                lease.name = n;
            }
            lease.duration = self.duration(
                l.value.duration.as_ref(),
                "kubernetes.lease.duration",
                lease.duration,
            )?;
            lease.renew = self.duration(
                l.value.renew.as_ref(),
                "kubernetes.lease.renew",
                lease.renew,
            )?;
            if lease.renew >= lease.duration {
                return Err(self.invalid(
                    l,
                    "kubernetes.lease",
                    format!("renew {:?} is not below duration {:?}; renew well within the duration, for example duration: 15s, renew: 5s", lease.renew, lease.duration),
                ));
            }
        }
        let timeout = self.duration(raw.timeout.as_ref(), "kubernetes.timeout", d.timeout)?;
        if timeout.is_zero() {
            if let Some(t) = &raw.timeout {
                return Err(self.invalid(
                    t,
                    "kubernetes.timeout",
                    "0s would fail every request; use 1s or more (default 10s)",
                ));
            }
        }
        let (mut retry_initial, mut retry_max) = (d.retry_initial, d.retry_max);
        if let Some(r) = &raw.retry {
            retry_initial = self.duration(
                r.value.initial.as_ref(),
                "kubernetes.retry.initial",
                retry_initial,
            )?;
            retry_max = self.duration(r.value.max.as_ref(), "kubernetes.retry.max", retry_max)?;
            if retry_initial.is_zero() || retry_initial > retry_max {
                return Err(self.invalid(
                    r,
                    "kubernetes.retry",
                    format!("initial {retry_initial:?} must be above 0 and at most max {retry_max:?}, for example {{ initial: 1s, max: 30s }}"),
                ));
            }
        }
        Ok(KubePlan {
            kubeconfig,
            node,
            namespace,
            pod,
            peers,
            lease,
            timeout,
            retry_initial,
            retry_max,
        })
    }

    fn pods(
        &self,
        k: &Spanned<RawJobKubernetes>,
        at: &dyn Fn(&str) -> String,
        plan: Option<&KubePlan>,
    ) -> Result<PodsSpec, ConfigError> {
        let raw = &k.value;
        match &raw.pods {
            None => {
                return Err(self.invalid(
                    k,
                    &at("kubernetes"),
                    "no source; write pods: node (watch the pods of this node)",
                ))
            }
            Some(p) if p.value.trim() != "node" => {
                return Err(self.invalid(
                    p,
                    &at("kubernetes.pods"),
                    format!("{:?} is not a pod source; the one accepted value is node (the pods of kubernetes.node)", p.value),
                ))
            }
            Some(p) => {
                if plan.and_then(|k| k.node.as_ref()).is_none() {
                    return Err(self.invalid(
                        p,
                        &at("kubernetes.pods"),
                        "pods: node needs this pod's node name; set kubernetes.node (node: \"${NODE_NAME}\", with NODE_NAME from the downward API spec.nodeName)",
                    ));
                }
            }
        }
        let mut spec = PodsSpec {
            all_ports: raw.all_ports.unwrap_or(false),
            ..PodsSpec::default()
        };
        for (n, ns) in raw.namespaces.iter().enumerate() {
            let v = ns.value.trim();
            if !dns_label(v) {
                return Err(self.invalid(
                    ns,
                    &at(&format!("kubernetes.namespaces[{n}]")),
                    format!("{v:?} is not a namespace name (at most 63 lowercase letters, digits and '-'); leave the list empty for every namespace"),
                ));
            }
            if !spec.namespaces.iter().any(|x| x == v) {
                spec.namespaces.push(v.to_string());
            }
        }
        for (n, l) in raw.labels.iter().enumerate() {
            let v = l.value.trim();
            if !label_key(v) {
                return Err(self.invalid(
                    l,
                    &at(&format!("kubernetes.labels[{n}]")),
                    format!("{v:?} is not a label key; write [prefix/]name, such as app.kubernetes.io/name or team"),
                ));
            }
            spec.labels.push(v.to_string());
        }
        Ok(spec)
    }

    fn api(&self, a: &RawApi) -> Result<ApiConfig, ConfigError> {
        let listen = match &a.listen {
            None => DEFAULT_LISTEN.parse().expect("valid default"),
            Some(l) => l.value.trim().parse().map_err(|_| {
                self.invalid(
                    l,
                    "api.listen",
                    format!(
                        "{:?} is not an address:port; accepted forms: 127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464",
                        l.value
                    ),
                )
            })?,
        };
        let nonzero = |v: &Option<Spanned<u32>>, path: &str, default: u32| match v {
            Some(s) if s.value == 0 => Err(self.invalid(s, path, "must be 1 or more")),
            Some(s) => Ok(s.value),
            None => Ok(default),
        };
        let secret = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
        Ok(ApiConfig {
            listen,
            token: secret(&a.token),
            read_token: secret(&a.read_token),
            max_connections: nonzero(
                &a.max_connections,
                "api.max_connections",
                DEFAULT_MAX_CONNECTIONS,
            )?,
            request_timeout: self.duration(
                a.request_timeout.as_ref(),
                "api.request_timeout",
                DEFAULT_REQUEST_TIMEOUT,
            )?,
            header_timeout: self.duration(
                a.header_timeout.as_ref(),
                "api.header_timeout",
                DEFAULT_HEADER_TIMEOUT,
            )?,
            body_limit: nonzero(&a.body_limit, "api.body_limit", DEFAULT_BODY_LIMIT)?,
        })
    }

    #[allow(clippy::too_many_lines)]
    fn job(&self, i: usize, j: &RawJob, kube: Option<&KubePlan>) -> Result<Job, ConfigError> {
        let at = |key: &str| format!("jobs[{i}].{key}");
        let name = j.name.value.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(self.invalid(
                &j.name,
                &at("name"),
                format!(
                    "invalid job name {:?}; use letters, digits, '-', '_' or '.', for example lan-office",
                    j.name.value
                ),
            ));
        }
        let mut spec = JobSpec::default();
        for (k, t) in j.targets.iter().enumerate() {
            if t.value.trim() == "local" {
                spec.local = true;
                continue;
            }
            TargetSpec::parse(&t.value)
                .map_err(|e| self.invalid(t, &at(&format!("targets[{k}]")), e.to_string()))?;
            spec.targets.push(t.value.clone());
        }
        self.local_filter(j, &at, &mut spec.local_filter)?;
        for (k, t) in j.exclude.iter().enumerate() {
            for part in t.value.split(',').filter(|p| !p.trim().is_empty()) {
                TargetSpec::parse(part)
                    .map_err(|e| self.invalid(t, &at(&format!("exclude[{k}]")), e.to_string()))?;
            }
            spec.exclude.push(t.value.clone());
        }
        if let Some(p) = &j.ports {
            PortList::parse(&p.value).map_err(|e| self.invalid(p, &at("ports"), e.to_string()))?;
            spec.ports.clone_from(&p.value);
        }
        let interval = self.duration(j.interval.as_ref(), &at("interval"), DEFAULT_INTERVAL)?;
        let jitter = match &j.jitter {
            None => DEFAULT_JITTER,
            Some(s) => crate::units::parse_fraction(&s.value, 0.5).ok_or_else(|| {
                self.invalid(
                    s,
                    &at("jitter"),
                    format!(
                        "{:?} is not a jitter; accepted forms: 10%, 0%, 0.1 (a fraction of the interval, at most 50%)",
                        s.value
                    ),
                )
            })?,
        };
        self.sweep(&j.sweep, &at("sweep"), &mut spec)?;
        spec.fingerprint = self.fingerprint(&j.fingerprint, &at("fingerprint"), &mut spec)?;
        spec.discovery = self.discovery(j, &at)?;
        if let Some(k) = &j.kubernetes {
            spec.discovery.kubernetes = Some(self.pods(k, &at, kube)?);
        }
        let owner = match &j.owner {
            None => Owner::Node,
            Some(o) => match o.value.trim() {
                "node" => Owner::Node,
                "leader" => Owner::Leader,
                other => {
                    return Err(self.invalid(
                        o,
                        &at("owner"),
                        format!("{other:?} is not an owner; accepted values: node (every pod runs the job, the default), leader (only the pod holding kubernetes.lease)"),
                    ))
                }
            },
        };
        if let (Owner::Leader, Some(o), None) = (owner, &j.owner, kube) {
            return Err(self.invalid(
                o,
                &at("owner"),
                "owner: leader needs the top-level kubernetes: section (the Lease kubernetes.lease.name lives in kubernetes.namespace); add kubernetes: {} or remove owner",
            ));
        }
        if let Some(s) = &j.shard {
            match &s.value {
                RawShard::Word(w) if w.trim() == "auto" => {
                    if kube.is_none() {
                        return Err(self.invalid(
                            s,
                            &at("shard"),
                            "shard: auto needs the top-level kubernetes: section (the DaemonSet's pods are kubernetes.peers in kubernetes.namespace); add kubernetes: {} or give { index, count }",
                        ));
                    }
                    if owner == Owner::Leader {
                        return Err(self.invalid(
                            s,
                            &at("shard"),
                            "shard: auto splits a job over every ready pod, owner: leader runs it on one; choose one of them",
                        ));
                    }
                    spec.shard_auto = true;
                }
                RawShard::Word(w) => {
                    return Err(self.invalid(
                        s,
                        &at("shard"),
                        format!(
                        "{w:?} is not a shard; accepted forms: auto, or {{ index: 0, count: 3 }}"
                    ),
                    ))
                }
                RawShard::Fixed(f) => {
                    if f.count == 0 || f.index >= f.count {
                        return Err(self.invalid(
                            s,
                            &at("shard"),
                            format!(
                                "index {} is not below count {}; give each of N instances an index from 0 to N-1 and count N",
                                f.index, f.count
                            ),
                        ));
                    }
                    spec.shard = Some(Shard {
                        index: f.index,
                        count: f.count,
                    });
                }
            }
        }
        let plan = JobPlan::resolve(&spec)
            .map_err(|e| self.invalid(&j.name, &format!("jobs[{i}]"), e.to_string()))?;
        Ok(Job {
            name,
            interval,
            jitter,
            spec,
            plan,
            owner,
        })
    }

    /// The `local` filter keys of job `j` (`targets: [local]`).
    fn local_filter(
        &self,
        j: &RawJob,
        at: &dyn Fn(&str) -> String,
        f: &mut LocalFilter,
    ) -> Result<(), ConfigError> {
        for (v, key, max, slot) in [
            (
                &j.max_local_prefix,
                "max_local_prefix",
                32,
                &mut f.max_prefix_v4,
            ),
            (
                &j.max_local_prefix_v6,
                "max_local_prefix_v6",
                128,
                &mut f.max_prefix_v6,
            ),
        ] {
            if let Some(p) = v {
                if p.value > max {
                    return Err(self.invalid(
                        p,
                        &at(key),
                        format!(
                            "{} is not a prefix length; use 0 to {max} (local skips attached networks wider than it)",
                            p.value
                        ),
                    ));
                }
                *slot = p.value;
            }
        }
        if let Some(list) = &j.skip_interfaces {
            f.skip_interfaces.clear();
            for (k, p) in list.iter().enumerate() {
                let pat = p.value.trim();
                if pat.is_empty() {
                    return Err(self.invalid(
                        p,
                        &at(&format!("skip_interfaces[{k}]")),
                        "empty pattern; write an interface name or a glob such as docker*, or [] to skip none",
                    ));
                }
                f.skip_interfaces.push(pat.to_string());
            }
        }
        if let Some(b) = j.skip_loopback {
            f.skip_loopback = b;
        }
        if let Some(b) = j.skip_link_local {
            f.skip_link_local = b;
        }
        Ok(())
    }

    fn sweep(&self, s: &RawSweep, at: &str, spec: &mut JobSpec) -> Result<(), ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        if let Some(r) = &s.rate {
            if r.value == 0 {
                return Err(self.invalid(r, &key("rate"), "must be 1 or more probes per second"));
            }
            spec.rate = Some(r.value);
        }
        if let Some(c) = &s.concurrency {
            if c.value == 0 || c.value > 1_000_000 {
                return Err(self.invalid(c, &key("concurrency"), "accepted range: 1..=1000000"));
            }
            spec.concurrency = Some(c.value);
        }
        spec.timeout = self.duration(s.timeout.as_ref(), &key("timeout"), spec.timeout)?;
        if let Some(m) = &s.min_timeout {
            let min =
                parse_duration(&m.value).map_err(|e| self.invalid(m, &key("min_timeout"), e))?;
            if min > spec.timeout {
                return Err(self.invalid(
                    m,
                    &key("min_timeout"),
                    format!(
                        "{min:?} is above timeout {:?}; lower min_timeout or raise timeout",
                        spec.timeout
                    ),
                ));
            }
            spec.min_timeout = Some(min);
        }
        for (v, name, slot) in [
            (&s.retries, "retries", &mut spec.retries),
            (&s.max_retries, "max_retries", &mut spec.max_retries),
        ] {
            if let Some(r) = v {
                if r.value > 20 {
                    return Err(self.invalid(r, &key(name), "accepted range: 0..=20"));
                }
                *slot = r.value;
            }
        }
        if let Some(p) = s.ping {
            spec.ping = p;
        }
        spec.ping_timeout = self.duration(
            s.ping_timeout.as_ref(),
            &key("ping_timeout"),
            spec.ping_timeout,
        )?;
        if let Some(r) = &s.report {
            plan::parse_report(&r.value)
                .map_err(|e| self.invalid(r, &key("report"), e.to_string()))?;
            spec.report.clone_from(&r.value);
        }
        if let Some(m) = s.max_targets {
            spec.max_targets = m;
        }
        if let Some(f) = s.force {
            spec.force = f;
        }
        if let Some(t) = &s.threads {
            if t.value == 0 || t.value > 256 {
                return Err(self.invalid(t, &key("threads"), "accepted range: 1..=256"));
            }
            spec.threads = Some(t.value);
        }
        spec.seed = s.seed;
        Ok(())
    }

    fn fingerprint(
        &self,
        f: &RawFingerprint,
        at: &str,
        spec: &mut JobSpec,
    ) -> Result<Option<FingerprintSpec>, ConfigError> {
        let key = |k: &str| format!("{at}.{k}");
        if let Some(c) = &f.concurrency {
            if c.value == 0 || c.value > 4096 {
                return Err(self.invalid(c, &key("concurrency"), "accepted range: 1..=4096"));
            }
            spec.fingerprint_concurrency = c.value;
        } else {
            spec.fingerprint_concurrency = DEFAULT_FINGERPRINT_CONCURRENCY;
        }
        if f.enabled == Some(false) {
            return Ok(None);
        }
        let d = FingerprintSpec::default();
        let bytes = |v: &Option<Spanned<u32>>, name: &str, default: u32| match v {
            Some(b) if b.value < 1024 => Err(self.invalid(b, &key(name), "at least 1024 bytes")),
            Some(b) => Ok(b.value),
            None => Ok(default),
        };
        let mut out = FingerprintSpec {
            paths: d.paths.clone(),
            budget: self.duration(f.budget.as_ref(), &key("budget"), d.budget)?,
            request_timeout: self.duration(
                f.request_timeout.as_ref(),
                &key("request_timeout"),
                d.request_timeout,
            )?,
            max_body: bytes(&f.max_body, "max_body", d.max_body)?,
            sse_max_bytes: bytes(&f.sse_max_bytes, "sse_max_bytes", d.sse_max_bytes)?,
            sse_max_time: self.duration(
                f.sse_max_time.as_ref(),
                &key("sse_max_time"),
                d.sse_max_time,
            )?,
            // Config jobs carry no fingerprint credentials (yet): they would need a
            // secret source, like the health checks' credentials.
            credentials: d.credentials.clone(),
        };
        if let Some(paths) = &f.paths {
            out.paths.clear();
            for (k, p) in paths.iter().enumerate() {
                let one = FingerprintSpec {
                    paths: vec![p.value.clone()],
                    ..FingerprintSpec::default()
                };
                one.resolve()
                    .map_err(|e| self.invalid(p, &key(&format!("paths[{k}]")), e.to_string()))?;
                out.paths.push(p.value.clone());
            }
        }
        Ok(Some(out))
    }

    fn discovery(
        &self,
        j: &RawJob,
        at: &dyn Fn(&str) -> String,
    ) -> Result<DiscoverySpec, ConfigError> {
        let mut d = DiscoverySpec::default();
        if let Some(m) = &j.mdns {
            let mut types = Vec::new();
            for (k, t) in m.types.iter().enumerate() {
                crate::discover::mdns::normalize_type(&t.value).map_err(|e| {
                    self.invalid(t, &at(&format!("mdns.types[{k}]")), e.to_string())
                })?;
                types.push(t.value.clone());
            }
            d.mdns = Some(types);
            d.mdns_all = m.all.unwrap_or(false);
            d.mdns_wait = self.duration(m.wait.as_ref(), &at("mdns.wait"), d.mdns_wait)?;
            d.interfaces.clone_from(&m.interfaces);
        }
        d.srv = j.srv.iter().map(|s| s.value.clone()).collect();
        if let Some(s) = &j.dns.server {
            plan::parse_dns_server(&s.value)
                .map_err(|e| self.invalid(s, &at("dns.server"), e.to_string()))?;
            d.dns_server = Some(s.value.clone());
        }
        d.dns_timeout = self.duration(j.dns.timeout.as_ref(), &at("dns.timeout"), d.dns_timeout)?;
        if let Some(c) = &j.dns.concurrency {
            if c.value == 0 || c.value > 1024 {
                return Err(self.invalid(c, &at("dns.concurrency"), "accepted range: 1..=1024"));
            }
            d.dns_concurrency = c.value;
        }
        for (k, s) in j.scope.iter().enumerate() {
            if plan::parse_scope(&s.value).is_none() {
                return Err(self.invalid(
                    s,
                    &at(&format!("scope[{k}]")),
                    format!(
                        "invalid scope {:?}; accepted forms: 10.0.0.0/24, fd00::/64, 10.0.0.5",
                        s.value
                    ),
                ));
            }
            d.scope.push(s.value.clone());
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "t.yaml").unwrap_err().to_string()
    }

    #[test]
    fn owner_and_shard_auto_need_the_kubernetes_section_and_exclude_each_other() {
        let c = Config::parse(
            "kubernetes: {}\njobs:\n  - name: c\n    owner: leader\n    targets: [127.0.0.1]\n  - name: s\n    shard: auto\n    targets: [127.0.0.0/24]\n  - name: n\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(c.jobs[0].owner, Owner::Leader);
        assert!(!c.jobs[0].plan.shard_auto);
        assert_eq!(
            (c.jobs[1].owner, c.jobs[1].plan.shard_auto),
            (Owner::Node, true)
        );
        assert_eq!(c.jobs[2].owner, Owner::Node);
        assert!(c.jobs[0].describe().contains("; owner leader"));
        assert!(c.jobs[1].describe().contains("; shard auto"));
        let y = c.to_yaml();
        assert!(
            y.contains("    owner: leader\n") && y.contains("    shard: auto\n"),
            "{y}"
        );
        let fixed = Config::parse(
            "jobs:\n  - name: a\n    shard: { index: 1, count: 3 }\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(fixed.jobs[0].plan.shard, Some(Shard { index: 1, count: 3 }));
        for (text, want) in [
            (
                "jobs:\n  - name: a\n    owner: leader\n",
                "t.yaml:3:12: jobs[0].owner: owner: leader needs the top-level kubernetes: section",
            ),
            (
                "jobs:\n  - name: a\n    owner: boss\n",
                "t.yaml:3:12: jobs[0].owner: \"boss\" is not an owner; accepted values: node",
            ),
            (
                "jobs:\n  - name: a\n    shard: auto\n",
                "t.yaml:3:12: jobs[0].shard: shard: auto needs the top-level kubernetes: section",
            ),
            (
                "kubernetes: {}\njobs:\n  - name: a\n    shard: auto\n    owner: leader\n",
                "t.yaml:4:12: jobs[0].shard: shard: auto splits a job over every ready pod, owner: leader runs it on one",
            ),
            (
                "kubernetes: {}\njobs:\n  - name: a\n    shard: half\n",
                "t.yaml:4:12: jobs[0].shard: \"half\" is not a shard; accepted forms: auto, or { index: 0, count: 3 }",
            ),
        ] {
            let e = err(text);
            assert!(e.starts_with(want), "{e}\n  does not start with\n{want}");
        }
    }

    #[test]
    fn local_filter_keys_set_the_job_filter_and_bad_ones_name_the_fix() {
        let c = Config::parse(
            "jobs:\n  - name: lan\n    targets: [local]\n    max_local_prefix: 20\n    max_local_prefix_v6: 56\n    skip_interfaces: [docker*, br-*]\n    skip_loopback: false\n",
            "t.yaml",
        )
        .unwrap();
        let f = &c.jobs[0].plan.local_filter;
        assert_eq!(
            (
                f.max_prefix_v4,
                f.max_prefix_v6,
                f.skip_loopback,
                f.skip_link_local
            ),
            (20, 56, false, true)
        );
        assert_eq!(f.skip_interfaces, ["docker*", "br-*"]);
        assert!(c
            .to_yaml()
            .contains("    skip_interfaces: [\"docker*\", \"br-*\"]\n"));
        let d = Config::parse("jobs:\n  - name: lan\n    targets: [local]\n", "t.yaml").unwrap();
        assert_eq!(d.jobs[0].plan.local_filter, LocalFilter::default());
        for (text, want) in [
            (
                "jobs:\n  - name: a\n    targets: [local]\n    max_local_prefix: 33\n",
                "t.yaml:4:23: jobs[0].max_local_prefix: 33 is not a prefix length; use 0 to 32 (local skips attached networks wider than it)",
            ),
            (
                "jobs:\n  - name: a\n    max_local_prefix_v6: 200\n",
                "t.yaml:3:26: jobs[0].max_local_prefix_v6: 200 is not a prefix length; use 0 to 128",
            ),
            (
                "jobs:\n  - name: a\n    skip_interfaces: [docker*, \"\"]\n",
                "t.yaml:3:32: jobs[0].skip_interfaces[1]: empty pattern; write an interface name or a glob such as docker*, or [] to skip none",
            ),
        ] {
            let e = err(text);
            assert!(e.starts_with(want), "{e}\n  does not start with\n{want}");
        }
    }

    #[test]
    fn ping_timeout_is_read_and_a_bad_one_names_the_key() {
        let c = Config::parse(
            "jobs:\n  - { name: lan, targets: [127.0.0.1], sweep: { ping_timeout: 3s } }\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(c.jobs[0].plan.sweep.ping_timeout, Duration::from_secs(3));
        assert!(c.to_yaml().contains("ping_timeout: 3s"), "{}", c.to_yaml());
        let e =
            err("jobs:\n  - { name: lan, targets: [127.0.0.1], sweep: { ping_timeout: soon } }\n");
        assert!(e.contains("jobs[0].sweep.ping_timeout"), "{e}");
    }

    #[test]
    fn the_issue_example_parses_into_one_job() {
        let c = Config::parse(
            "api:   { listen: 127.0.0.1:9464, token: \"s3cret\" }\n\
             store: { path: /tmp/x/inventory.db, retention: 30d }\n\
             gone_after: 3\n\
             jobs:\n\
             \x20 - name: lan\n\
             \x20   targets: [10.0.0.0/24]\n\
             \x20   exclude: [10.0.0.1]\n\
             \x20   ports: mcp\n\
             \x20   interval: 5m\n\
             \x20   jitter: 10%\n\
             \x20   sweep: { rate: 5000, timeout: 1s, retries: 1, ping: true }\n\
             \x20   fingerprint: { concurrency: 32, budget: 10s }\n\
             \x20   mdns: { types: [_mcp._tcp.local.], interfaces: [eth0] }\n\
             \x20   srv: [_mcp._tcp.corp.example]\n\
             \x20   shard: { index: 0, count: 3 }\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(c.api.token.as_deref(), Some("s3cret"));
        assert_eq!(c.store.retention, Duration::from_secs(30 * 86_400));
        let j = &c.jobs[0];
        assert_eq!(
            (j.name.as_str(), j.interval, j.jitter),
            ("lan", Duration::from_secs(300), 0.1)
        );
        assert_eq!(j.spec.rate, Some(5000));
        assert_eq!(
            j.plan.sweep.ping_timeout,
            crate::discover::icmp::DEFAULT_PING_TIMEOUT
        );
        assert_eq!(j.plan.shard, Some(Shard { index: 0, count: 3 }));
        assert_eq!(j.plan.discovery.srv, ["_mcp._tcp.corp.example"]);
        assert!(c.to_yaml().contains(REDACTED) && !c.to_yaml().contains("s3cret"));
        assert_eq!(
            j.describe(),
            "job \"lan\": 10.0.0.0/24 on ports 3000-3001,5000,6277,8000-8001,8080-8081,8787,8811,9000 every 5m ± 10%; mDNS _mcp._tcp.local.; SRV _mcp._tcp.corp.example; shard 0 of 3"
        );
    }

    #[test]
    fn the_embedded_default_scans_localhost_every_five_minutes() {
        let c = Config::embedded_default();
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.jobs.len(), 1);
        assert_eq!(c.jobs[0].interval, Duration::from_secs(300));
        assert_eq!(c.jobs[0].plan.target_labels(), ["127.0.0.1", "::1"]);
        assert!(c.store.path.ends_with("mcp-scout/inventory.db"));
    }

    #[test]
    fn errors_name_file_line_column_key_value_and_fix() {
        let cases: &[(&str, &str)] = &[
            (
                "jobs:\n  - name: a\n    portz: 80\n",
                "t.yaml:3:5: jobs[0].portz: unknown field `portz`, expected one of name, targets,",
            ),
            (
                "jobs:\n  - name: a\n    sweep: { retries: many }\n",
                "t.yaml:3:23: jobs[0].sweep.retries: invalid u8 (found \"many\"); write a whole number",
            ),
            (
                "jobs:\n  - name: a\n    interval: 5x\n",
                "t.yaml:3:15: jobs[0].interval: \"5x\" is not a duration; accepted forms: 500ms",
            ),
            (
                "jobs:\n  - name: a\n    targets: [10.0.0.0/33]\n",
                "t.yaml:3:15: jobs[0].targets[0]: invalid target \"10.0.0.0/33\": an IPv4 prefix length is 0-32; accepted forms",
            ),
            (
                "jobs:\n  - name: a\n    ports: http\n",
                "t.yaml:3:12: jobs[0].ports: invalid port spec \"http\"",
            ),
            (
                "jobs:\n  - name: a\n  - name: a\n",
                "t.yaml:3:11: jobs[1].name: duplicate job name \"a\"; every job needs its own name",
            ),
            (
                "jobs:\n  - name: a\n    shard: { index: 3, count: 3 }\n",
                "t.yaml:3:12: jobs[0].shard: index 3 is not below count 3; give each of N instances an index from 0 to N-1",
            ),
            (
                "api:\n  token: ${MCP_SCOUT_TEST_SURELY_UNSET}\n",
                "t.yaml:2:10: environment variable MCP_SCOUT_TEST_SURELY_UNSET is not set and has no default; set it, or write ${MCP_SCOUT_TEST_SURELY_UNSET:-default}",
            ),
            (
                "api: { listen: localhost }\n",
                "t.yaml:1:16: api.listen: \"localhost\" is not an address:port; accepted forms: 127.0.0.1:9464",
            ),
            (
                "jobs:\n  - name: a\n    jitter: 80%\n",
                "t.yaml:3:13: jobs[0].jitter: \"80%\" is not a jitter; accepted forms: 10%",
            ),
            (
                "jobs:\n  - name: a\n    sweep: { report: bogus }\n",
                "t.yaml:3:22: jobs[0].sweep.report: invalid --report \"bogus\"",
            ),
            (
                "jobs:\n  - name: a\n    scope: [nowhere]\n",
                "t.yaml:3:13: jobs[0].scope[0]: invalid scope \"nowhere\"",
            ),
            (
                "jobs:\n  - name: a\n    fingerprint: { paths: [mcp] }\n",
                "t.yaml:3:28: jobs[0].fingerprint.paths[0]: invalid --paths item \"mcp\"",
            ),
            ("gone_after: 0\n", "t.yaml:1:13: gone_after: 0 would mark"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn the_health_section_resolves_with_defaults_and_overrides() {
        let c = Config::parse("jobs:\n  - name: a\n", "t.yaml").unwrap();
        assert_eq!(c.health, HealthPlan::default());
        assert_eq!(c.health.interval, Duration::from_secs(30));
        let c = Config::parse(
            "health:\n\
             \x20 interval: 1m\n\
             \x20 timeout: 5s\n\
             \x20 concurrency: 4\n\
             \x20 flap_threshold: 25%\n\
             \x20 body_cap: 65536\n\
             \x20 credentials: [{match: {server_name: \"weather-*\"}, bearer: s3cret}]\n\
             \x20 checks:\n\
             \x20   - name: db-health\n\
             \x20     match: {tool: get_forecast, kind: mcp}\n\
             \x20     http: {path: /internal/db-health, method: post, headers: {x-probe: \"1\"}}\n\
             \x20     expect: \"status == 200 && body.db == 'ok'\"\n\
             \x20     severity: warning\n\
             \x20     interval: 2m\n\
             \x20   - name: forecast\n\
             \x20     mcp_call: {tool: get_forecast, arguments: {city: Paris}}\n\
             \x20     expect: \"!result.isError && size(result.content) > 0\"\n\
             \x20   - name: port\n\
             \x20     tcp: {}\n",
            "t.yaml",
        )
        .unwrap();
        let h = &c.health;
        assert_eq!(
            (h.interval, h.timeout, h.concurrency),
            (Duration::from_secs(60), Duration::from_secs(5), 4)
        );
        assert_eq!((h.thresholds.flap_threshold, h.body_cap), (0.25, 65536));
        assert_eq!(h.credentials[0].bearer, "s3cret");
        assert!(!format!("{h:?}").contains("s3cret") && !c.to_yaml().contains("s3cret"));
        let names: Vec<&str> = h.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["db-health", "forecast", "port"]);
        use crate::monitor::plan::Probe;
        assert!(
            matches!(&h.checks[0].probe, Probe::Http { method, path, .. } if method == "POST" && path == "/internal/db-health")
        );
        assert_eq!(
            h.checks[0].severity,
            crate::monitor::state::Severity::Warning
        );
        assert_eq!(h.checks[0].interval, Some(Duration::from_secs(120)));
        assert!(
            matches!(&h.checks[1].probe, Probe::McpCall { tool, arguments } if tool == "get_forecast" && arguments["city"] == "Paris")
        );
        assert_eq!(h.checks[2].probe, Probe::Tcp);
        // A decimal fraction is accepted too.
        let c = Config::parse("health: {flap_threshold: 0.3}\n", "t.yaml").unwrap();
        assert_eq!(c.health.thresholds.flap_threshold, 0.3);
    }

    #[test]
    fn health_errors_name_line_column_key_value_and_fix() {
        let check = |body: &str| format!("health:\n  checks:\n    - name: c\n{body}");
        let cases: Vec<(String, &str)> = vec![
            ("health: { intervall: 30s }\n".into(), "t.yaml:1:11: health.intervall: unknown field `intervall`, expected one of enabled, interval,"),
            ("health: { interval: soon }\n".into(), "t.yaml:1:21: health.interval: \"soon\" is not a duration"),
            ("health: { timeout: 1m }\n".into(), "t.yaml:1:20: health.timeout: \"1m\" is above health.interval (30s): a check would overlap the next one"),
            ("health: { concurrency: 0 }\n".into(), "t.yaml:1:24: health.concurrency: 0 is out of range; accepted range: 1..=4096"),
            ("health: { flap_threshold: 130% }\n".into(), "t.yaml:1:27: health.flap_threshold: \"130%\" is not a fraction; accepted forms: 30%, 0.3"),
            ("health: { body_cap: 10 }\n".into(), "t.yaml:1:21: health.body_cap: 10 bytes is out of range; accepted range: 1024..=1048576"),
            ("health: { credentials: [{bearer: \"\"}] }\n".into(), "t.yaml:1:25: health.credentials[0].bearer: empty token"),
            (check("      tcp: {}\n      http: {path: /}\n"), "t.yaml:3:13: health.checks[0]: check \"c\" has http and tcp; give exactly one of http, mcp_call or tcp"),
            (check("      expect: \"true\"\n"), "t.yaml:3:13: health.checks[0]: check \"c\" has none of them; give exactly one of http, mcp_call or tcp"),
            ("health:\n  checks:\n    - name: mcp\n      tcp: {}\n".into(), "t.yaml:3:13: health.checks[0].name: \"mcp\" is the built-in check's name; pick another"),
            ("health:\n  checks:\n    - {name: a, tcp: {}}\n    - {name: a, tcp: {}}\n".into(), "t.yaml:4:14: health.checks[1].name: duplicate check name \"a\"; every check needs its own name"),
            (check("      tcp: {}\n      expect: \"latency_ms <\"\n"), "t.yaml:5:15: health.checks[0].expect: syntax error in CEL expression \"latency_ms <\" at column"),
            (check("      tcp: {}\n      expect: \"result.isError\"\n"), "t.yaml:5:15: health.checks[0].expect: `result` has no value in a tcp check; its variables are latency_ms, tools, server"),
            (check("      http: {path: /h}\n      expect: \"result.isError\"\n"), "t.yaml:5:15: health.checks[0].expect: `result` has no value in a http check"),
            (check("      mcp_call: {tool: t}\n      expect: \"body == 1\"\n"), "t.yaml:5:15: health.checks[0].expect: `body` has no value in a mcp_call check"),
            (check("      tcp: {}\n      expect: \"nosuch > 1\"\n"), "t.yaml:5:15: health.checks[0].expect: unknown variable `nosuch` in CEL expression \"nosuch > 1\" at column 1"),
            (check(&format!("      tcp: {{}}\n      expect: \"{}\"\n", "1 + ".repeat(1100) + "1")), "t.yaml:5:15: health.checks[0].expect: the expression is 4401 bytes, above the 4096-byte limit"),
            (check("      tcp: {}\n      severity: fatal\n"), "t.yaml:5:17: health.checks[0].severity: \"fatal\" is not a severity; accepted: critical, warning"),
            (check("      http: {path: health}\n"), "t.yaml:4:13: health.checks[0].http.path: \"health\" must start with /"),
            (check("      mcp_call: {tool: t, arguments: [1]}\n"), "t.yaml:4:17: health.checks[0].mcp_call.arguments: must be a map of argument names to values"),
            (check("      tcp: {}\n      match: {kind: http}\n"), "t.yaml:5:21: health.checks[0].match.kind: \"http\" matches no checked kind; accepted: mcp, mcp-auth-required, mcp-likely"),
            (check("      tcp: {}\n      timeout: 1m\n"), "t.yaml:5:16: health.checks[0].timeout: \"1m\" is above the check's interval (30s)"),
            (check("      tcp: {}\n      interval: 0s\n"), "t.yaml:5:17: health.checks[0].interval: \"0s\" must be greater than zero"),
        ];
        let mut wrong = Vec::new();
        for (text, want) in &cases {
            let e = Config::parse(text, "t.yaml")
                .map(|_| ())
                .unwrap_err()
                .to_string();
            if !e.starts_with(want) {
                wrong.push(format!("{text:?}\n got: {e}\nwant: {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    }

    #[test]
    fn the_kubernetes_section_and_pod_source_resolve() {
        let c = Config::parse(
            "kubernetes:\n\
             \x20 kubeconfig: null\n\
             \x20 node: node-1\n\
             \x20 namespace: tools\n\
             \x20 pod: scout-abc\n\
             \x20 lease: { name: l, duration: 20s, renew: 4s }\n\
             \x20 timeout: 3s\n\
             \x20 retry: { initial: 200ms, max: 5s }\n\
             jobs:\n\
             \x20 - name: pods\n\
             \x20   kubernetes: { pods: node, namespaces: [a, b], labels: [app.kubernetes.io/name, team], all_ports: true }\n",
            "t.yaml",
        )
        .unwrap();
        let k = c.kubernetes.as_ref().unwrap();
        assert_eq!(k.node.as_deref(), Some("node-1"));
        assert_eq!(
            (k.namespace.as_str(), k.pod.as_str()),
            ("tools", "scout-abc")
        );
        assert_eq!(k.lease.duration, Duration::from_secs(20));
        assert_eq!(
            (k.retry_initial, k.retry_max),
            (Duration::from_millis(200), Duration::from_secs(5))
        );
        assert!(k.kubeconfig.is_none());
        let j = &c.jobs[0];
        let p = j.plan.discovery.kubernetes.as_ref().unwrap();
        assert_eq!(p.namespaces, ["a", "b"]);
        assert_eq!(p.labels, ["app.kubernetes.io/name", "team"]);
        assert!(p.all_ports);
        assert!(
            j.plan.targets.is_empty(),
            "a pod job sweeps nothing by default"
        );
        assert!(
            j.describe().contains("kubernetes pods of this node (a,b)"),
            "{}",
            j.describe()
        );
        let y = c.to_yaml();
        assert!(
            y.contains("kubernetes:\n  kubeconfig: null\n  node: \"node-1\""),
            "{y}"
        );
        assert!(y.contains("    kubernetes:\n      pods: node\n"), "{y}");
        Config::parse(&y, "printed").unwrap();
    }

    #[test]
    fn kubernetes_errors_name_line_column_key_value_and_fix() {
        let cases: &[(&str, &str)] = &[
            (
                "kubernetes: { node: n1 }\njobs:\n  - name: p\n    kubernetes: { pods: cluster }\n",
                "t.yaml:4:25: jobs[0].kubernetes.pods: \"cluster\" is not a pod source; the one accepted value is node",
            ),
            (
                "kubernetes: { node: \"\" }\njobs:\n  - name: p\n    kubernetes: { pods: node }\n",
                "jobs[0].kubernetes.pods: pods: node needs this pod's node name; set kubernetes.node",
            ),
            (
                "jobs:\n  - name: p\n    kubernetes: { pods: node }\n",
                "jobs[0].kubernetes.pods: pods: node needs this pod's node name",
            ),
            (
                "kubernetes: { node: n1 }\njobs:\n  - name: p\n    kubernetes: { pods: node, namespaces: [Bad_NS] }\n",
                "jobs[0].kubernetes.namespaces[0]: \"Bad_NS\" is not a namespace name",
            ),
            (
                "kubernetes: { node: n1 }\njobs:\n  - name: p\n    kubernetes: { pods: node, labels: [\"a b\"] }\n",
                "jobs[0].kubernetes.labels[0]: \"a b\" is not a label key",
            ),
            (
                "kubernetes: { node: n1, lease: { duration: 5s, renew: 5s } }\n",
                "kubernetes.lease: renew 5s is not below duration 5s",
            ),
            (
                "kubernetes: { node: n1, retry: { initial: 1m, max: 1s } }\n",
                "kubernetes.retry: initial 60s must be above 0 and at most max 1s",
            ),
            (
                "kubernetes: { node: \"Node One\" }\n",
                "kubernetes.node: \"Node One\" is not a node name",
            ),
            (
                "kubernetes: { nodes: n1 }\n",
                "kubernetes.nodes: unknown field `nodes`, expected one of",
            ),
            (
                "kubernetes: { timeout: soon }\n",
                "kubernetes.timeout:",
            ),
        ];
        std::env::remove_var("NODE_NAME");
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains(want), "{text:?}: {e}\n  lacks {want}");
        }
    }

    #[test]
    fn variables_expand_with_defaults_and_not_in_comments() {
        let env = |k: &str| (k == "SET").then(|| "v".to_string());
        let out = expand_env("a: ${SET}\nb: ${UNSET:-d}\nc: $$x # ${UNSET}\n", "t", &env).unwrap();
        assert_eq!(out, "a: v\nb: d\nc: $x # ${UNSET}\n");
        let e = expand_env("x: \"#${UNSET}\"\n", "t", &env).unwrap_err();
        assert!(e.to_string().contains("UNSET is not set"), "{e}");
    }

    #[test]
    fn every_shipped_example_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                // Examples reference tokens through variables; give them values.
                std::env::set_var("MCP_SCOUT_API_TOKEN", "example-token");
                let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
                assert!(!c.jobs.is_empty(), "{}", path.display());
                n += 1;
            }
        }
        assert!(n >= 2, "expected the shipped examples in {}", dir.display());
    }
}
