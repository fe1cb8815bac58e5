//! The `sinks:` config section: the raw serde type [`SinkSpec`] (what the user wrote) and
//! the typed [`SinkPlan`] a sink runs, validated once at load (errors are [`PlanIssue`]s
//! with the line, column and key path, as for `health:`).
//!
//! Every type's settings sit next to the common keys in one flat map (`{name: mesh, type:
//! mcp-mesh, url: …}`), as Vector's sinks do. The raw struct knows every key of every type
//! (serde's `flatten` and untagged enums would lose the error locations), and validation
//! refuses a key that is not a setting of the entry's type, listing the ones it has.
//!
//! Secrets (`token`, `password`, `secret`, header values) are [`Secret`]s: their `Debug`
//! and `Display` print `<redacted>`, so a plan can be logged.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::only::Only;
use crate::fingerprint::Verdict;
use crate::monitor::plan::{issue, PlanIssue};
use crate::monitor::state::Status;
use crate::units::{format_duration, parse_duration};

/// How often a sink reconciles the registry with the inventory.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(600);
/// Deadline of one request to a registry (or one file write).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// First back-off after a failure.
pub const DEFAULT_RETRY_INITIAL: Duration = Duration::from_millis(500);
/// Longest back-off: a registry that comes back is noticed within about this.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(10);
/// Requests a sink sends at once (reconciliation, heartbeats).
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Most requests in flight per sink accepted.
pub const MAX_CONCURRENCY: usize = 256;
/// MCP Mesh: time between two heartbeats of one server (the registry marks an agent
/// unhealthy after about 20 s without one).
pub const DEFAULT_MESH_HEARTBEAT: Duration = Duration::from_secs(5);
/// MCP Mesh: the namespace servers are registered in.
pub const DEFAULT_MESH_NAMESPACE: &str = "default";
/// Kailash file: how often `last_seen` of the servers that are up is refreshed (readers
/// treat entries older than 300 s as unhealthy).
pub const DEFAULT_KAILASH_REFRESH: Duration = Duration::from_secs(30);
/// Kailash file: the longest refresh accepted (the issue's "at least every 60 s").
pub const MAX_KAILASH_REFRESH: Duration = Duration::from_secs(60);
/// etcd: the key prefix of our records.
pub const DEFAULT_ETCD_PREFIX: &str = "/mcp-scout/servers/";
/// etcd: the TTL of the lease every record is attached to.
pub const DEFAULT_ETCD_LEASE_TTL: Duration = Duration::from_secs(60);
/// Consul: the TTL of the check our health feeds.
pub const DEFAULT_CONSUL_TTL: Duration = Duration::from_secs(90);

/// A secret from the config: never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::config::REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::config::REDACTED)
    }
}

/// One or several values (`kind: mcp` or `kind: [mcp, mcp-likely]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One value.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// The raw `only:` filter.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawOnly {
    kind: Option<Spanned<OneOrMany>>,
    health_status: Option<Spanned<OneOrMany>>,
    job: Option<Spanned<OneOrMany>>,
    capability: Option<Spanned<OneOrMany>>,
}

/// The raw `retry:` back-off.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRetry {
    initial: Option<Spanned<String>>,
    max: Option<Spanned<String>>,
}

/// One raw `sinks:` entry: the common keys and every type's settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    only: Option<Spanned<RawOnly>>,
    #[serde(default)]
    resync: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    retry: Option<Spanned<RawRetry>>,
    #[serde(default)]
    concurrency: Option<Spanned<u32>>,
    // Type settings.
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    namespace: Option<Spanned<String>>,
    #[serde(default)]
    heartbeat: Option<Spanned<String>>,
    #[serde(default)]
    path: Option<Spanned<String>>,
    #[serde(default)]
    refresh: Option<Spanned<String>>,
    #[serde(default)]
    endpoints: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    prefix: Option<Spanned<String>>,
    #[serde(default)]
    lease_ttl: Option<Spanned<String>>,
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    password: Option<Spanned<Secret>>,
    #[serde(default)]
    secret: Option<Spanned<Secret>>,
    #[serde(default)]
    headers: Option<Spanned<BTreeMap<String, Secret>>>,
    #[serde(default)]
    token: Option<Spanned<Secret>>,
    #[serde(default)]
    ttl: Option<Spanned<String>>,
    #[serde(default)]
    dir: Option<Spanned<String>>,
}

/// The sink types, as `type:` names them.
pub const TYPES: [&str; 7] = [
    "mcp-mesh",
    "kailash-file",
    "etcd",
    "webhook",
    "contextforge",
    "consul",
    "server-json",
];

/// The type settings each type takes (besides the common keys), required ones first.
fn settings_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "mcp-mesh" => &["url", "namespace", "heartbeat"],
        "kailash-file" => &["path", "refresh"],
        "etcd" => &["endpoints", "prefix", "lease_ttl", "user", "password"],
        "webhook" => &["url", "secret", "headers"],
        "contextforge" => &["url", "token"],
        "consul" => &["url", "token", "ttl"],
        "server-json" => &["dir"],
        _ => &[],
    }
}

/// A validated sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkPlan {
    /// Unique name (the cursor's key in the store, the metrics' `sink` label).
    pub name: String,
    /// The type and its settings.
    pub kind: SinkKind,
    /// Which servers it lists.
    pub only: Only,
    /// Time between two reconciliations.
    pub resync: Duration,
    /// Deadline of one request.
    pub timeout: Duration,
    /// First back-off after a failure.
    pub retry_initial: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
}

/// A sink type and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// The MCP Mesh registry.
    Mesh {
        /// Base URL (`http://registry:8000`).
        url: url::Url,
        /// Namespace of the registered agents.
        namespace: String,
        /// Time between two heartbeats of one server.
        heartbeat: Duration,
    },
    /// A Kailash `FileBasedDiscovery` registry file.
    KailashFile {
        /// The file.
        path: PathBuf,
        /// How often `last_seen` is refreshed.
        refresh: Duration,
    },
    /// etcd v3 through its JSON gateway.
    Etcd {
        /// Client URLs, tried in order.
        endpoints: Vec<url::Url>,
        /// Key prefix; each record is at `prefix + id`.
        prefix: String,
        /// The TTL of the lease the records are attached to.
        lease_ttl: Duration,
        /// User and password for etcd's auth, when enabled.
        user: Option<(String, Secret)>,
    },
    /// CloudEvents over HTTP POST.
    Webhook {
        /// Where events go.
        url: url::Url,
        /// HMAC-SHA256 key of `X-MCP-Scout-Signature` (no signature without one).
        secret: Option<Secret>,
        /// Extra request headers.
        headers: Vec<(String, Secret)>,
    },
    /// IBM ContextForge gateways.
    ContextForge {
        /// Base URL.
        url: url::Url,
        /// JWT bearer token.
        token: Secret,
    },
    /// The Consul agent API.
    Consul {
        /// The agent's base URL (`http://127.0.0.1:8500`).
        url: url::Url,
        /// ACL token (`X-Consul-Token`).
        token: Option<Secret>,
        /// TTL of the check our health verdict feeds.
        ttl: Duration,
    },
    /// One `server.json` per server (the official MCP Registry format).
    ServerJson {
        /// The directory.
        dir: PathBuf,
    },
}

impl SinkKind {
    /// The `type:` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Mesh { .. } => "mcp-mesh",
            Self::KailashFile { .. } => "kailash-file",
            Self::Etcd { .. } => "etcd",
            Self::Webhook { .. } => "webhook",
            Self::ContextForge { .. } => "contextforge",
            Self::Consul { .. } => "consul",
            Self::ServerJson { .. } => "server-json",
        }
    }

    /// Where it writes, without credentials: a URL's userinfo and query are dropped.
    pub fn target(&self) -> String {
        let show = |u: &url::Url| {
            let mut u = u.clone();
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        };
        match self {
            Self::Mesh { url, .. }
            | Self::Webhook { url, .. }
            | Self::ContextForge { url, .. }
            | Self::Consul { url, .. } => show(url),
            Self::KailashFile { path, .. } => path.display().to_string(),
            Self::Etcd { endpoints, .. } => {
                endpoints.iter().map(show).collect::<Vec<_>>().join(",")
            }
            Self::ServerJson { dir } => dir.display().to_string(),
        }
    }
}

impl SinkPlan {
    /// A plan with every common setting at its default (`scan --push`, tests).
    pub fn with_defaults(name: &str, kind: SinkKind) -> Self {
        Self {
            name: name.into(),
            kind,
            only: Only::default(),
            resync: DEFAULT_RESYNC,
            timeout: DEFAULT_TIMEOUT,
            retry_initial: DEFAULT_RETRY_INITIAL,
            retry_max: DEFAULT_RETRY_MAX,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// One line for `config check`.
    pub fn describe(&self) -> String {
        format!(
            "sink {}: {} -> {}, resync every {}, only {}",
            self.name,
            self.kind.type_name(),
            self.kind.target(),
            format_duration(self.resync),
            self.only.describe()
        )
    }

    /// Validate the raw `sinks:` list (each entry with its index, for key paths).
    pub fn resolve_all(specs: &[Spanned<SinkSpec>]) -> Result<Vec<Self>, PlanIssue> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, s) in specs.iter().enumerate() {
            let plan = Self::resolve(&s.value, &format!("sinks[{i}]"))?;
            if !names.insert(plan.name.clone()) {
                return Err(issue(
                    &s.value.name,
                    &format!("sinks[{i}].name"),
                    format!(
                        "duplicate sink name {:?}; every sink needs its own name (it keys the sink's cursor in the store)",
                        plan.name
                    ),
                ));
            }
            out.push(plan);
        }
        Ok(out)
    }

    fn resolve(s: &SinkSpec, at: &str) -> Result<Self, PlanIssue> {
        let key = |k: &str| format!("{at}.{k}");
        let name = s.name.value.trim().to_string();
        if name.is_empty()
            || name.len() > 63
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(issue(
                &s.name,
                &key("name"),
                format!(
                    "{:?} is not a sink name; use 1 to 63 letters, digits, - or _",
                    s.name.value
                ),
            ));
        }
        let type_name = s.kind.value.as_str();
        if !TYPES.contains(&type_name) {
            return Err(issue(
                &s.kind,
                &key("type"),
                format!(
                    "{:?} is not a sink type; accepted: {}",
                    s.kind.value,
                    TYPES.join(", ")
                ),
            ));
        }
        s.refuse_foreign_settings(type_name, at)?;
        let kind = s.kind_settings(type_name, at)?;
        let resync = duration(s.resync.as_ref(), &key("resync"), DEFAULT_RESYNC)?;
        let timeout = duration(s.timeout.as_ref(), &key("timeout"), DEFAULT_TIMEOUT)?;
        let (retry_initial, retry_max) = match &s.retry {
            None => (DEFAULT_RETRY_INITIAL, DEFAULT_RETRY_MAX),
            Some(r) => {
                let initial = duration(
                    r.value.initial.as_ref(),
                    &key("retry.initial"),
                    DEFAULT_RETRY_INITIAL,
                )?;
                let max = duration(r.value.max.as_ref(), &key("retry.max"), DEFAULT_RETRY_MAX)?;
                if max < initial {
                    return Err(issue(
                        r,
                        &key("retry"),
                        format!(
                            "max ({}) is below initial ({}); the back-off grows from initial to max",
                            format_duration(max),
                            format_duration(initial)
                        ),
                    ));
                }
                (initial, max)
            }
        };
        let concurrency = match &s.concurrency {
            None => DEFAULT_CONCURRENCY,
            Some(c) if c.value == 0 || c.value as usize > MAX_CONCURRENCY => {
                return Err(issue(
                    c,
                    &key("concurrency"),
                    format!(
                        "{} is out of range; accepted range: 1..={MAX_CONCURRENCY}",
                        c.value
                    ),
                ))
            }
            Some(c) => c.value as usize,
        };
        let only = match &s.only {
            None => Only::default(),
            Some(o) => only(&o.value, &key("only"))?,
        };
        Ok(Self {
            name,
            kind,
            only,
            resync,
            timeout,
            retry_initial,
            retry_max,
            concurrency,
        })
    }
}

impl SinkSpec {
    /// The type settings that are set, with their locations.
    fn set_settings(&self) -> Vec<(&'static str, u64, u64)> {
        let mut out = Vec::new();
        macro_rules! set {
            ($($f:ident),*) => {$(
                if let Some(v) = &self.$f {
                    out.push((stringify!($f), v.referenced.line(), v.referenced.column()));
                }
            )*};
        }
        set!(
            url, namespace, heartbeat, path, refresh, endpoints, prefix, lease_ttl, user, password,
            secret, headers, token, ttl, dir
        );
        out
    }

    fn refuse_foreign_settings(&self, type_name: &str, at: &str) -> Result<(), PlanIssue> {
        let accepted = settings_of(type_name);
        for (k, line, column) in self.set_settings() {
            if !accepted.contains(&k) {
                return Err(PlanIssue {
                    line,
                    column,
                    path: format!("{at}.{k}"),
                    message: format!(
                        "`{k}` is not a setting of a {type_name} sink; its settings are {}",
                        accepted.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    fn kind_settings(&self, type_name: &str, at: &str) -> Result<SinkKind, PlanIssue> {
        let key = |k: &str| format!("{at}.{k}");
        let missing = |k: &str, example: &str| PlanIssue {
            line: self.kind.referenced.line(),
            column: self.kind.referenced.column(),
            path: format!("{at}.{k}"),
            message: format!("a {type_name} sink needs `{k}`, for example {k}: {example}"),
        };
        let url_of = |v: &Option<Spanned<String>>, example: &str| -> Result<url::Url, PlanIssue> {
            let Some(u) = v else {
                return Err(missing("url", example));
            };
            http_url(u, &key("url"))
        };
        Ok(match type_name {
            "mcp-mesh" => SinkKind::Mesh {
                url: url_of(&self.url, "http://registry:8000")?,
                namespace: match &self.namespace {
                    None => DEFAULT_MESH_NAMESPACE.into(),
                    Some(n) => mesh_name(n, &key("namespace"))?,
                },
                heartbeat: duration(
                    self.heartbeat.as_ref(),
                    &key("heartbeat"),
                    DEFAULT_MESH_HEARTBEAT,
                )?,
            },
            "kailash-file" => {
                let path = self
                    .path
                    .as_ref()
                    .ok_or_else(|| missing("path", "/etc/mcp/servers.json"))?;
                let refresh = duration(
                    self.refresh.as_ref(),
                    &key("refresh"),
                    DEFAULT_KAILASH_REFRESH,
                )?;
                if let Some(r) = &self.refresh {
                    if refresh > MAX_KAILASH_REFRESH {
                        return Err(issue(
                            r,
                            &key("refresh"),
                            format!(
                                "{:?} is above {}: readers treat entries older than 300 s as unhealthy, so last_seen must be refreshed at least every minute",
                                r.value,
                                format_duration(MAX_KAILASH_REFRESH)
                            ),
                        ));
                    }
                }
                SinkKind::KailashFile {
                    path: non_empty_path(path, &key("path"))?,
                    refresh,
                }
            }
            "etcd" => {
                let eps = self
                    .endpoints
                    .as_ref()
                    .ok_or_else(|| missing("endpoints", "[http://127.0.0.1:2379]"))?;
                if eps.value.is_empty() {
                    return Err(issue(
                        eps,
                        &key("endpoints"),
                        "the list is empty; give at least one client URL, such as http://127.0.0.1:2379",
                    ));
                }
                let mut endpoints = Vec::new();
                for (i, e) in eps.value.iter().enumerate() {
                    let spanned = Spanned {
                        value: e.clone(),
                        referenced: eps.referenced,
                        defined: eps.defined,
                    };
                    endpoints.push(http_url(&spanned, &format!("{at}.endpoints[{i}]"))?);
                }
                let prefix = match &self.prefix {
                    None => DEFAULT_ETCD_PREFIX.to_string(),
                    Some(p) if p.value.is_empty() || !p.value.starts_with('/') => {
                        return Err(issue(
                            p,
                            &key("prefix"),
                            format!("{:?} must start with /, such as {DEFAULT_ETCD_PREFIX}", p.value),
                        ))
                    }
                    Some(p) => p.value.clone(),
                };
                let lease_ttl = duration(
                    self.lease_ttl.as_ref(),
                    &key("lease_ttl"),
                    DEFAULT_ETCD_LEASE_TTL,
                )?;
                if lease_ttl < Duration::from_secs(5) {
                    return Err(issue(
                        self.lease_ttl.as_ref().unwrap_or(&self.kind),
                        &key("lease_ttl"),
                        format!(
                            "{} is too short; etcd leases need 5s or more (the keep-alive runs every third of it)",
                            format_duration(lease_ttl)
                        ),
                    ));
                }
                let user = match (&self.user, &self.password) {
                    (None, None) => None,
                    (Some(u), Some(p)) => Some((u.value.clone(), p.value.clone())),
                    (Some(u), None) => {
                        return Err(issue(
                            u,
                            &key("password"),
                            "user is set without password; give both, or neither",
                        ))
                    }
                    (None, Some(p)) => {
                        return Err(issue(
                            p,
                            &key("user"),
                            "password is set without user; give both, or neither",
                        ))
                    }
                };
                SinkKind::Etcd {
                    endpoints,
                    prefix,
                    lease_ttl,
                    user,
                }
            }
            "webhook" => SinkKind::Webhook {
                url: url_of(&self.url, "https://hooks.example/mcp")?,
                secret: match &self.secret {
                    Some(s) if s.value.expose().is_empty() => {
                        return Err(issue(
                            s,
                            &key("secret"),
                            "empty secret; give the HMAC key, or leave secret out to send unsigned events",
                        ))
                    }
                    s => s.as_ref().map(|s| s.value.clone()),
                },
                headers: match &self.headers {
                    None => Vec::new(),
                    Some(h) => {
                        let mut out = Vec::new();
                        for (name, value) in &h.value {
                            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                                || reqwest::header::HeaderValue::from_str(value.expose()).is_err()
                            {
                                return Err(issue(
                                    h,
                                    &format!("{at}.headers.{name}"),
                                    "is not a valid HTTP header name and value",
                                ));
                            }
                            out.push((name.clone(), value.clone()));
                        }
                        out
                    }
                },
            },
            "contextforge" => SinkKind::ContextForge {
                url: url_of(&self.url, "http://gateway:4444")?,
                token: match &self.token {
                    None => return Err(missing("token", "\"${CONTEXTFORGE_TOKEN}\" (a JWT)")),
                    Some(t) if t.value.expose().is_empty() => {
                        return Err(issue(t, &key("token"), "empty token; give ContextForge's JWT"))
                    }
                    Some(t) => t.value.clone(),
                },
            },
            "consul" => SinkKind::Consul {
                url: url_of(&self.url, "http://127.0.0.1:8500")?,
                token: self.token.as_ref().map(|t| t.value.clone()),
                ttl: duration(self.ttl.as_ref(), &key("ttl"), DEFAULT_CONSUL_TTL)?,
            },
            "server-json" => SinkKind::ServerJson {
                dir: non_empty_path(
                    self.dir
                        .as_ref()
                        .ok_or_else(|| missing("dir", "/var/lib/mcp-scout/server-json"))?,
                    &key("dir"),
                )?,
            },
            _ => unreachable!("checked against TYPES"),
        })
    }
}

/// A type's settings as `key: value` YAML lines for `config check --print`, secrets
/// redacted and URLs without credentials.
pub fn settings_yaml(kind: &SinkKind) -> Vec<(&'static str, String)> {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let secret = |s: &Option<Secret>| match s {
        Some(_) => q(crate::config::REDACTED),
        None => "null".into(),
    };
    let d = format_duration;
    match kind {
        SinkKind::Mesh {
            namespace,
            heartbeat,
            ..
        } => vec![
            ("url", q(&kind.target())),
            ("namespace", q(namespace)),
            ("heartbeat", d(*heartbeat)),
        ],
        SinkKind::KailashFile { path, refresh } => vec![
            ("path", q(&path.display().to_string())),
            ("refresh", d(*refresh)),
        ],
        SinkKind::Etcd {
            endpoints,
            prefix,
            lease_ttl,
            user,
        } => vec![
            (
                "endpoints",
                format!(
                    "[{}]",
                    endpoints
                        .iter()
                        .map(|e| q(e.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            ("prefix", q(prefix)),
            ("lease_ttl", d(*lease_ttl)),
            ("user", user.as_ref().map_or("null".into(), |(u, _)| q(u))),
            ("password", secret(&user.as_ref().map(|(_, p)| p.clone()))),
        ],
        SinkKind::Webhook {
            secret: key,
            headers,
            ..
        } => vec![
            ("url", q(&kind.target())),
            ("secret", secret(key)),
            (
                "headers",
                format!(
                    "{{{}}}",
                    headers
                        .iter()
                        .map(|(k, _)| format!("{}: {}", q(k), q(crate::config::REDACTED)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ],
        SinkKind::ContextForge { .. } => vec![
            ("url", q(&kind.target())),
            ("token", q(crate::config::REDACTED)),
        ],
        SinkKind::Consul { token, ttl, .. } => vec![
            ("url", q(&kind.target())),
            ("token", secret(token)),
            ("ttl", d(*ttl)),
        ],
        SinkKind::ServerJson { dir } => vec![("dir", q(&dir.display().to_string()))],
    }
}

fn duration(
    v: Option<&Spanned<String>>,
    path: &str,
    default: Duration,
) -> Result<Duration, PlanIssue> {
    match v {
        None => Ok(default),
        Some(s) => match parse_duration(&s.value) {
            Ok(d) if d.is_zero() => Err(issue(
                s,
                path,
                format!("{:?} must be greater than zero", s.value),
            )),
            Ok(d) => Ok(d),
            Err(e) => Err(issue(s, path, e)),
        },
    }
}

fn http_url(v: &Spanned<String>, path: &str) -> Result<url::Url, PlanIssue> {
    match url::Url::parse(&v.value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(issue(
            v,
            path,
            format!(
                "{:?} is not an http:// or https:// URL with a host, such as http://127.0.0.1:8000",
                v.value
            ),
        )),
    }
}

fn non_empty_path(v: &Spanned<String>, path: &str) -> Result<PathBuf, PlanIssue> {
    if v.value.trim().is_empty() {
        return Err(issue(v, path, "empty path; give a file or directory path"));
    }
    Ok(PathBuf::from(&v.value))
}

/// MCP Mesh names: `[a-z0-9-]`, at most 63.
fn mesh_name(v: &Spanned<String>, path: &str) -> Result<String, PlanIssue> {
    let s = &v.value;
    if s.is_empty()
        || s.len() > 63
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(issue(
            v,
            path,
            format!("{s:?} is not a Mesh namespace; use 1 to 63 of a-z, 0-9 and -"),
        ));
    }
    Ok(s.clone())
}

fn only(o: &RawOnly, at: &str) -> Result<Only, PlanIssue> {
    let mut out = Only::default();
    if let Some(k) = &o.kind {
        let mut kinds = Vec::new();
        for v in k.value.values() {
            let kind = match v.as_str() {
                "mcp" => Verdict::Mcp,
                "mcp-auth-required" => Verdict::McpAuthRequired,
                "mcp-likely" => Verdict::McpLikely,
                _ => {
                    return Err(issue(
                        k,
                        &format!("{at}.kind"),
                        format!(
                            "{v:?} is not a kind a sink can list; accepted: mcp, mcp-auth-required, mcp-likely"
                        ),
                    ))
                }
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        if kinds.is_empty() {
            return Err(issue(
                k,
                &format!("{at}.kind"),
                "the list is empty; leave kind out for mcp and mcp-auth-required",
            ));
        }
        out.kinds = kinds;
    }
    if let Some(h) = &o.health_status {
        for v in h.value.values() {
            let status = match v.as_str() {
                "healthy" => Status::Healthy,
                "degraded" => Status::Degraded,
                "unhealthy" => Status::Unhealthy,
                "unknown" => Status::Unknown,
                _ => {
                    return Err(issue(
                        h,
                        &format!("{at}.health_status"),
                        format!(
                            "{v:?} is not a health status; accepted: healthy, degraded, unhealthy, unknown"
                        ),
                    ))
                }
            };
            out.health.push(status);
        }
    }
    if let Some(j) = &o.job {
        out.jobs = j.value.values();
    }
    if let Some(c) = &o.capability {
        out.capabilities = c.value.values();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<SinkPlan>, PlanIssue> {
        let specs: Vec<Spanned<SinkSpec>> = serde_saphyr::from_str(yaml).unwrap();
        SinkPlan::resolve_all(&specs)
    }

    fn err(yaml: &str) -> String {
        let i = parse(yaml).unwrap_err();
        format!("{}:{}: {}: {}", i.line, i.column, i.path, i.message)
    }

    #[test]
    fn every_type_resolves_with_its_defaults() {
        let plans = parse(
            "- {name: mesh, type: mcp-mesh, url: 'http://127.0.0.1:18000'}\n\
             - {name: k, type: kailash-file, path: /tmp/servers.json}\n\
             - {name: e, type: etcd, endpoints: ['http://127.0.0.1:2379'], user: root, password: pw}\n\
             - {name: w, type: webhook, url: 'https://hooks.example/x', secret: s3, headers: {x-team: net}}\n\
             - {name: cf, type: contextforge, url: 'http://127.0.0.1:4444', token: jwt}\n\
             - {name: c, type: consul, url: 'http://127.0.0.1:8500'}\n\
             - {name: sj, type: server-json, dir: /tmp/sj, only: {kind: [mcp, mcp-likely], job: lan}}\n",
        )
        .unwrap();
        assert_eq!(plans.len(), 7);
        assert_eq!(
            plans[0].kind,
            SinkKind::Mesh {
                url: "http://127.0.0.1:18000".parse().unwrap(),
                namespace: "default".into(),
                heartbeat: Duration::from_secs(5),
            }
        );
        assert_eq!(plans[0].resync, Duration::from_secs(600));
        assert_eq!(plans[0].only, Only::default());
        assert!(
            matches!(&plans[2].kind, SinkKind::Etcd { prefix, lease_ttl, user: Some((u, _)), .. }
                if prefix == "/mcp-scout/servers/" && *lease_ttl == Duration::from_secs(60) && u == "root")
        );
        assert_eq!(plans[6].only.kinds, vec![Verdict::Mcp, Verdict::McpLikely]);
        assert_eq!(plans[6].only.jobs, vec!["lan".to_string()]);
        let debug = format!("{plans:?}");
        for secret in ["pw", "s3", "jwt", "\"net\""] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert_eq!(
            plans[1].describe(),
            "sink k: kailash-file -> /tmp/servers.json, resync every 10m, only kind mcp,mcp-auth-required"
        );
    }

    #[test]
    fn errors_name_the_key_value_and_fix() {
        let cases = [
            ("- {name: a, type: nope}\n", "1:19: sinks[0].type: \"nope\" is not a sink type; accepted: mcp-mesh, kailash-file, etcd, webhook, contextforge, consul, server-json"),
            ("- {name: a, type: mcp-mesh}\n", "1:19: sinks[0].url: a mcp-mesh sink needs `url`, for example url: http://registry:8000"),
            ("- {name: a, type: mcp-mesh, url: 'http://r:1', dir: /x}\n", "1:53: sinks[0].dir: `dir` is not a setting of a mcp-mesh sink; its settings are url, namespace, heartbeat"),
            ("- {name: a, type: mcp-mesh, url: 'ftp://r'}\n", "1:34: sinks[0].url: \"ftp://r\" is not an http:// or https:// URL with a host"),
            ("- {name: a, type: mcp-mesh, url: 'http://r:1', namespace: Prod}\n", "1:59: sinks[0].namespace: \"Prod\" is not a Mesh namespace"),
            ("- {name: a, type: kailash-file, path: /x, refresh: 2m}\n", "1:52: sinks[0].refresh: \"2m\" is above 1m: readers treat entries older than 300 s"),
            ("- {name: a, type: etcd, endpoints: []}\n", "1:36: sinks[0].endpoints: the list is empty"),
            ("- {name: a, type: etcd, endpoints: ['http://e:1'], user: u}\n", "1:58: sinks[0].password: user is set without password"),
            ("- {name: a, type: contextforge, url: 'http://g:1'}\n", "1:19: sinks[0].token: a contextforge sink needs `token`"),
            ("- {name: a, type: server-json, dir: /x, only: {kind: http}}\n", "1:54: sinks[0].only.kind: \"http\" is not a kind a sink can list; accepted: mcp, mcp-auth-required, mcp-likely"),
            ("- {name: a, type: server-json, dir: /x, only: {health_status: sick}}\n", "1:63: sinks[0].only.health_status: \"sick\" is not a health status"),
            ("- {name: a, type: server-json, dir: /x, resync: soon}\n", "1:49: sinks[0].resync: \"soon\" is not a duration"),
            ("- {name: a, type: server-json, dir: /x, retry: {initial: 5s, max: 1s}}\n", "1:48: sinks[0].retry: max (1s) is below initial (5s)"),
            ("- {name: a, type: server-json, dir: /x, concurrency: 0}\n", "1:54: sinks[0].concurrency: 0 is out of range; accepted range: 1..=256"),
            ("- {name: 'a b', type: server-json, dir: /x}\n", "1:10: sinks[0].name: \"a b\" is not a sink name"),
            ("- {name: a, type: server-json, dir: /x}\n- {name: a, type: server-json, dir: /y}\n", "2:10: sinks[1].name: duplicate sink name \"a\""),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .map(|(yaml, want)| (yaml, want, err(yaml)))
            .filter(|(_, want, got)| !got.starts_with(**want))
            .map(|(yaml, want, got)| format!("{yaml} got: {got}\nwant: {want}"))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
