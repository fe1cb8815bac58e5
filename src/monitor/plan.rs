//! The `health:` config section: the raw serde type [`HealthSpec`] (what the user wrote) and
//! the typed [`HealthPlan`] the monitor runs, validated once at load.
//!
//! Design choices:
//! - **Validation lives here, locations in the config.** [`HealthPlan::resolve`] returns a
//!   [`PlanIssue`] holding the line, column, key path and message; `config.rs` adds the file
//!   name and turns it into its located `Invalid` error, so the health keys read like every
//!   other key without this module knowing about files.
//! - **CEL is compiled at load**, and a condition may only use the variables its probe
//!   provides ([`Probe::variables`]): `result` only exists for `mcp_call`, `status`,
//!   `headers` and `body` only for a probe that makes an HTTP request. A condition naming a
//!   variable that would always be null is a config error, not a check that always fails.
//! - **A [`Match`] is a conjunction of `*` globs** (the only wildcard: no regex to get
//!   wrong, and matching is linear). An empty match picks every server.
//! - **Tokens never print.** [`Credential`]'s `Debug` redacts the bearer token, so a plan can
//!   be logged.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::cel::{Condition, Var};
use super::check::Target;
use super::state::{self, Severity, Thresholds};
use crate::units::parse_duration;

/// Time between two built-in checks of one server.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Deadline of one whole check (every request in it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Checks in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Most checks in flight accepted.
pub const MAX_CONCURRENCY: usize = 4096;
/// Cap on one response body read by a check (a `tools/list`, a tool result, an HTTP body).
pub const DEFAULT_BODY_CAP: usize = 1024 * 1024;
/// Smallest body cap accepted.
pub const MIN_BODY_CAP: usize = 1024;
/// Largest body cap accepted: the JSON-RPC classifier refuses larger bodies anyway, and CEL
/// evaluation over a body cannot be interrupted.
pub const MAX_BODY_CAP: usize = crate::fingerprint::jsonrpc::MAX_BODY_BYTES;
/// The built-in check's name, reserved.
pub const BUILTIN_CHECK: &str = "mcp";

/// The raw `health:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSpec {
    enabled: Option<bool>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    concurrency: Option<Spanned<u32>>,
    unhealthy_threshold: Option<Spanned<u32>>,
    healthy_threshold: Option<Spanned<u32>>,
    degraded_latency: Option<Spanned<String>>,
    flap_threshold: Option<Spanned<String>>,
    flap_window: Option<Spanned<u32>>,
    body_cap: Option<Spanned<u32>>,
    credentials: Vec<Spanned<RawCredential>>,
    checks: Vec<RawCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    bearer: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMatch {
    tool: Option<String>,
    server_name: Option<String>,
    url: Option<String>,
    job: Option<String>,
    kind: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: Spanned<String>,
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    http: Option<Spanned<RawHttp>>,
    mcp_call: Option<Spanned<RawMcpCall>>,
    tcp: Option<Spanned<RawTcp>>,
    expect: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawHttp {
    path: Option<String>,
    method: Option<String>,
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcpCall {
    tool: String,
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTcp {}

/// A health value that cannot be used: where it is and why (the config adds the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanIssue {
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// Key path, such as `health.checks[0].expect`.
    pub path: String,
    /// The bad value and the fix.
    pub message: String,
}

/// Which servers a credential or check applies to: every given field must match (AND);
/// each is a glob where `*` matches any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    /// A tool the server lists.
    pub tool: Option<String>,
    /// Its `serverInfo.name`.
    pub server_name: Option<String>,
    /// Its MCP endpoint URL.
    pub url: Option<String>,
    /// A job that found it.
    pub job: Option<String>,
    /// Its verdict: `mcp`, `mcp-auth-required`, `mcp-likely`.
    pub kind: Option<String>,
}

impl Match {
    /// Whether `t` is picked.
    pub fn matches(&self, t: &Target) -> bool {
        let one = |pat: &Option<String>, value: Option<&str>| match pat {
            None => true,
            Some(p) => value.is_some_and(|v| glob(p, v)),
        };
        let any = |pat: &Option<String>, values: &[String]| match pat {
            None => true,
            Some(p) => values.iter().any(|v| glob(p, v)),
        };
        one(&self.server_name, t.server_name.as_deref())
            && one(&self.url, Some(t.url.as_str()))
            && one(&self.kind, Some(t.kind.as_str()))
            && any(&self.tool, &t.tools)
            && any(&self.job, &t.jobs)
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, rest) = parts.split_first().expect("split yields one part");
    let Some(mut left) = value.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = rest.split_last().expect("a * yields two parts");
    for p in middle {
        match left.find(p) {
            Some(i) => left = &left[i + p.len()..],
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last)
}

/// A bearer token for the servers a match picks.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// Which servers.
    pub matcher: Match,
    /// The token sent as `Authorization: Bearer`.
    pub bearer: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("matcher", &self.matcher)
            .field("bearer", &crate::config::REDACTED)
            .finish()
    }
}

/// What a custom check does.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// An HTTP request against the server's origin.
    Http {
        /// Path (and query) on the origin, starting with `/`.
        path: String,
        /// Method, uppercase.
        method: reqwest::Method,
        /// Extra request headers.
        headers: BTreeMap<String, String>,
        /// Request body.
        body: Option<String>,
    },
    /// The handshake, then `tools/call` of `tool` with fixed arguments.
    McpCall {
        /// The tool called (the only tool the monitor ever calls on that server).
        tool: String,
        /// Its arguments (an object).
        arguments: serde_json::Value,
    },
    /// A TCP connect to the server's address.
    Tcp,
}

impl Probe {
    /// Its name in config and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Http { .. } => "http",
            Self::McpCall { .. } => "mcp_call",
            Self::Tcp => "tcp",
        }
    }

    /// The CEL variables this probe gives values to.
    pub fn variables(&self) -> &'static [Var] {
        match self {
            Self::Http { .. } => &[
                Var::Status,
                Var::Headers,
                Var::Body,
                Var::LatencyMs,
                Var::Tools,
                Var::Server,
                Var::CertDaysLeft,
            ],
            Self::McpCall { .. } => &[
                Var::Status,
                Var::LatencyMs,
                Var::Tools,
                Var::Result,
                Var::Server,
                Var::CertDaysLeft,
            ],
            Self::Tcp => &[Var::LatencyMs, Var::Tools, Var::Server],
        }
    }
}

/// One custom check.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomCheck {
    /// Unique name (the result's name).
    pub name: String,
    /// Which servers it runs on.
    pub matcher: Match,
    /// What it does.
    pub probe: Probe,
    /// Its pass condition; without one, http passes on 2xx, mcp_call when not `isError`,
    /// tcp when connected.
    pub expect: Option<Condition>,
    /// How much a failure counts.
    pub severity: Severity,
    /// Its own interval (else the built-in check's).
    pub interval: Option<Duration>,
    /// Its own timeout (else `health.timeout`).
    pub timeout: Option<Duration>,
}

/// The validated `health:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthPlan {
    /// Whether the daemon runs the monitor.
    pub enabled: bool,
    /// Time between two checks of one server.
    pub interval: Duration,
    /// Deadline of one check.
    pub timeout: Duration,
    /// Checks in flight at once.
    pub concurrency: usize,
    /// Cap on one response body.
    pub body_cap: usize,
    /// The state machine's thresholds.
    pub thresholds: Thresholds,
    /// Tokens, first match wins.
    pub credentials: Vec<Credential>,
    /// Custom checks, in file order.
    pub checks: Vec<CustomCheck>,
}

impl Default for HealthPlan {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            body_cap: DEFAULT_BODY_CAP,
            thresholds: Thresholds::default(),
            credentials: Vec::new(),
            checks: Vec::new(),
        }
    }
}

impl HealthPlan {
    /// The custom checks that run on `t`.
    pub fn checks_for<'a>(&'a self, t: &'a Target) -> impl Iterator<Item = &'a CustomCheck> {
        self.checks.iter().filter(move |c| c.matcher.matches(t))
    }

    /// The token for `t`: the first credential whose match picks it.
    pub fn bearer_for(&self, t: &Target) -> Option<&str> {
        self.credentials
            .iter()
            .find(|c| c.matcher.matches(t))
            .map(|c| c.bearer.as_str())
    }

    /// Validate the raw section (`None`: the key is absent, every default).
    pub fn resolve(spec: Option<&HealthSpec>) -> Result<Self, PlanIssue> {
        let Some(s) = spec else {
            return Ok(Self::default());
        };
        let interval = duration(s.interval.as_ref(), "health.interval", DEFAULT_INTERVAL)?;
        // Unset, the timeout is the default or the interval, whichever is shorter: a short
        // interval alone is a valid config.
        let timeout = duration(
            s.timeout.as_ref(),
            "health.timeout",
            DEFAULT_TIMEOUT.min(interval),
        )?;
        if let Some(t) = &s.timeout {
            if timeout > interval {
                return Err(issue(
                    t,
                    "health.timeout",
                    format!(
                        "{:?} is above health.interval ({}): a check would overlap the next one; lower timeout or raise interval",
                        t.value,
                        crate::units::format_duration(interval)
                    ),
                ));
            }
        }
        let count = |v: &Option<Spanned<u32>>, path: &str, default: u32, max: u32| match v {
            Some(c) if c.value == 0 || c.value > max => Err(issue(
                c,
                path,
                format!("{} is out of range; accepted range: 1..={max}", c.value),
            )),
            Some(c) => Ok(c.value),
            None => Ok(default),
        };
        let concurrency = count(
            &s.concurrency,
            "health.concurrency",
            DEFAULT_CONCURRENCY as u32,
            MAX_CONCURRENCY as u32,
        )? as usize;
        let thresholds = Thresholds {
            unhealthy_threshold: count(
                &s.unhealthy_threshold,
                "health.unhealthy_threshold",
                state::DEFAULT_UNHEALTHY_THRESHOLD,
                1000,
            )?,
            healthy_threshold: count(
                &s.healthy_threshold,
                "health.healthy_threshold",
                state::DEFAULT_HEALTHY_THRESHOLD,
                1000,
            )?,
            degraded_latency: duration(
                s.degraded_latency.as_ref(),
                "health.degraded_latency",
                state::DEFAULT_DEGRADED_LATENCY,
            )?,
            flap_threshold: match &s.flap_threshold {
                None => state::DEFAULT_FLAP_THRESHOLD,
                Some(f) => parse_fraction(&f.value).ok_or_else(|| {
                    issue(
                        f,
                        "health.flap_threshold",
                        format!(
                            "{:?} is not a fraction; accepted forms: 30%, 0.3 (from 0 to 1)",
                            f.value
                        ),
                    )
                })?,
            },
            flap_window: match &s.flap_window {
                Some(w) if w.value > 1000 => {
                    return Err(issue(
                        w,
                        "health.flap_window",
                        format!(
                        "{} is out of range; accepted range: 0..=1000 (0 turns flap damping off)",
                        w.value
                    ),
                    ))
                }
                Some(w) => w.value as usize,
                None => state::DEFAULT_FLAP_WINDOW,
            },
        };
        let body_cap = match &s.body_cap {
            Some(b) if (b.value as usize) < MIN_BODY_CAP || b.value as usize > MAX_BODY_CAP => {
                return Err(issue(
                    b,
                    "health.body_cap",
                    format!(
                        "{} bytes is out of range; accepted range: {MIN_BODY_CAP}..={MAX_BODY_CAP}",
                        b.value
                    ),
                ))
            }
            Some(b) => b.value as usize,
            None => DEFAULT_BODY_CAP,
        };
        let mut credentials = Vec::new();
        for (i, c) in s.credentials.iter().enumerate() {
            let at = format!("health.credentials[{i}]");
            if c.value.bearer.trim().is_empty() {
                return Err(issue(
                    c,
                    &format!("{at}.bearer"),
                    "empty token; set it, for example bearer: \"${MCP_TOKEN}\"",
                ));
            }
            credentials.push(Credential {
                matcher: matcher(&c.value.matcher, &format!("{at}.match"))?,
                bearer: c.value.bearer.trim().to_string(),
            });
        }
        let mut checks = Vec::new();
        let mut names = HashSet::new();
        for (i, c) in s.checks.iter().enumerate() {
            let check = custom(c, &format!("health.checks[{i}]"), interval)?;
            if !names.insert(check.name.clone()) {
                return Err(issue(
                    &c.name,
                    &format!("health.checks[{i}].name"),
                    format!(
                        "duplicate check name {:?}; every check needs its own name",
                        check.name
                    ),
                ));
            }
            checks.push(check);
        }
        Ok(Self {
            enabled: s.enabled.unwrap_or(true),
            interval,
            timeout,
            concurrency,
            body_cap,
            thresholds,
            credentials,
            checks,
        })
    }
}

/// A [`PlanIssue`] at `s`'s location (also used by the `sinks:` plan).
pub(crate) fn issue<T>(s: &Spanned<T>, path: &str, message: impl Into<String>) -> PlanIssue {
    PlanIssue {
        line: s.referenced.line(),
        column: s.referenced.column(),
        path: path.to_string(),
        message: message.into(),
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
            Ok(d) if d.is_zero() => Err(issue(s, path, "0 is not a period; use 1s or more")),
            Ok(d) => Ok(d),
            Err(e) => Err(issue(s, path, e)),
        },
    }
}

/// `30%` or `0.3`: a fraction from 0 to 1.
fn parse_fraction(s: &str) -> Option<f64> {
    crate::units::parse_fraction(s, 1.0)
}

const KINDS: [&str; 3] = ["mcp", "mcp-auth-required", "mcp-likely"];

fn matcher(m: &RawMatch, at: &str) -> Result<Match, PlanIssue> {
    if let Some(k) = &m.kind {
        if !KINDS.iter().any(|kind| glob(&k.value, kind)) {
            return Err(issue(
                k,
                &format!("{at}.kind"),
                format!(
                    "{:?} matches no checked kind; accepted: {} (or a * pattern)",
                    k.value,
                    KINDS.join(", ")
                ),
            ));
        }
    }
    Ok(Match {
        tool: m.tool.clone(),
        server_name: m.server_name.clone(),
        url: m.url.clone(),
        job: m.job.clone(),
        kind: m.kind.as_ref().map(|k| k.value.clone()),
    })
}

fn custom(c: &RawCheck, at: &str, interval: Duration) -> Result<CustomCheck, PlanIssue> {
    let key = |k: &str| format!("{at}.{k}");
    let name = c.name.value.trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    {
        return Err(issue(
            &c.name,
            &key("name"),
            format!(
                "invalid check name {:?}; use letters, digits, '-', '_' or '.', for example db-health",
                c.name.value
            ),
        ));
    }
    if name == BUILTIN_CHECK {
        return Err(issue(
            &c.name,
            &key("name"),
            "\"mcp\" is the built-in check's name; pick another",
        ));
    }
    let given = [
        c.http.is_some().then_some("http"),
        c.mcp_call.is_some().then_some("mcp_call"),
        c.tcp.is_some().then_some("tcp"),
    ];
    let given: Vec<&str> = given.into_iter().flatten().collect();
    if given.len() != 1 {
        return Err(issue(
            &c.name,
            at,
            format!(
                "check {name:?} has {}; give exactly one of http, mcp_call or tcp",
                if given.is_empty() {
                    "none of them".to_string()
                } else {
                    given.join(" and ")
                }
            ),
        ));
    }
    let probe = if let Some(h) = &c.http {
        let path = h.value.path.clone().unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            return Err(issue(
                h,
                &key("http.path"),
                format!("{path:?} must start with /, for example /internal/db-health"),
            ));
        }
        let m = h
            .value
            .method
            .as_deref()
            .unwrap_or("GET")
            .trim()
            .to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(m.as_bytes())
            .ok()
            .filter(|_| !m.is_empty())
            .ok_or_else(|| {
                issue(
                    h,
                    &key("http.method"),
                    format!("{m:?} is not an HTTP method; for example GET, POST, HEAD"),
                )
            })?;
        for name in h.value.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(issue(
                    h,
                    &key("http.headers"),
                    format!("{name:?} is not a header name; use letters, digits and '-'"),
                ));
            }
        }
        Probe::Http {
            path,
            method,
            headers: h.value.headers.clone(),
            body: h.value.body.clone(),
        }
    } else if let Some(m) = &c.mcp_call {
        let tool = m.value.tool.trim().to_string();
        if tool.is_empty() {
            return Err(issue(
                m,
                &key("mcp_call.tool"),
                "empty tool name; name the tool to call",
            ));
        }
        let arguments = m
            .value
            .arguments
            .clone()
            .unwrap_or_else(|| serde_json::json!({}));
        if !arguments.is_object() {
            return Err(issue(
                m,
                &key("mcp_call.arguments"),
                "must be a map of argument names to values, for example {city: Paris}",
            ));
        }
        Probe::McpCall { tool, arguments }
    } else {
        Probe::Tcp
    };
    let expect = match &c.expect {
        None => None,
        Some(e) => Some(condition(e, &key("expect"), &probe)?),
    };
    let severity = match &c.severity {
        None => Severity::Critical,
        Some(s) => match s.value.trim() {
            "critical" => Severity::Critical,
            "warning" => Severity::Warning,
            other => {
                return Err(issue(
                    s,
                    &key("severity"),
                    format!("{other:?} is not a severity; accepted: critical, warning"),
                ))
            }
        },
    };
    let own_interval = c
        .interval
        .as_ref()
        .map(|i| duration(Some(i), &key("interval"), interval))
        .transpose()?;
    let own_timeout = c
        .timeout
        .as_ref()
        .map(|t| duration(Some(t), &key("timeout"), interval))
        .transpose()?;
    if let (Some(t), Some(d)) = (&c.timeout, own_timeout) {
        let every = own_interval.unwrap_or(interval);
        if d > every {
            return Err(issue(
                t,
                &key("timeout"),
                format!(
                    "{:?} is above the check's interval ({}): it would overlap its next run",
                    t.value,
                    crate::units::format_duration(every)
                ),
            ));
        }
    }
    Ok(CustomCheck {
        name,
        matcher: matcher(&c.matcher, &key("match"))?,
        probe,
        expect,
        severity,
        interval: own_interval,
        timeout: own_timeout,
    })
}

fn condition(e: &Spanned<String>, path: &str, probe: &Probe) -> Result<Condition, PlanIssue> {
    let cond = Condition::compile(&e.value).map_err(|err| issue(e, path, err.to_string()))?;
    let offered = probe.variables();
    if let Some(v) = cond.variables().iter().find(|v| !offered.contains(v)) {
        let names: Vec<&str> = offered.iter().map(|v| v.name()).collect();
        return Err(issue(
            e,
            path,
            format!(
                "`{}` has no value in a {} check; its variables are {}",
                v.name(),
                probe.kind(),
                names.join(", ")
            ),
        ));
    }
    Ok(cond)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Verdict;

    fn target() -> Target {
        Target {
            url: url::Url::parse("http://127.0.0.1:8000/mcp").unwrap(),
            kind: Verdict::Mcp,
            transport: None,
            server_name: Some("weather-demo".into()),
            jobs: vec!["lan".into()],
            tools: vec!["get_forecast".into(), "add".into()],
            protocol_version: None,
            auth: None,
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        for (p, v, want) in [
            ("*", "", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("ab", "abc", false),
            ("*ab*ab", "abab", true),
            ("a*a", "a", false),
        ] {
            assert_eq!(glob(p, v), want, "{p} {v}");
        }
    }

    #[test]
    fn a_match_needs_every_given_field() {
        let t = target();
        let m =
            |tool: Option<&str>, name: Option<&str>, job: Option<&str>, kind: Option<&str>| Match {
                tool: tool.map(Into::into),
                server_name: name.map(Into::into),
                url: None,
                job: job.map(Into::into),
                kind: kind.map(Into::into),
            };
        assert!(Match::default().matches(&t));
        assert!(m(Some("get_*"), Some("weather-*"), Some("lan"), Some("mcp")).matches(&t));
        assert!(!m(Some("get_*"), Some("other"), None, None).matches(&t));
        assert!(!m(Some("nosuch"), None, None, None).matches(&t));
        assert!(!m(None, None, Some("office"), None).matches(&t));
        assert!(!m(None, None, None, Some("mcp-likely")).matches(&t));
        let url = Match {
            url: Some("http://127.0.0.1:*/mcp".into()),
            ..Match::default()
        };
        assert!(url.matches(&t));
    }

    #[test]
    fn credentials_do_not_print_their_token() {
        let c = Credential {
            matcher: Match::default(),
            bearer: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn checks_and_tokens_are_picked_by_match() {
        let p = HealthPlan {
            credentials: vec![
                Credential {
                    matcher: Match {
                        server_name: Some("other".into()),
                        ..Match::default()
                    },
                    bearer: "a".into(),
                },
                Credential {
                    matcher: Match {
                        tool: Some("add".into()),
                        ..Match::default()
                    },
                    bearer: "b".into(),
                },
            ],
            checks: vec![
                CustomCheck {
                    name: "one".into(),
                    matcher: Match::default(),
                    probe: Probe::Tcp,
                    expect: None,
                    severity: Severity::Critical,
                    interval: None,
                    timeout: None,
                },
                CustomCheck {
                    name: "two".into(),
                    matcher: Match {
                        job: Some("office".into()),
                        ..Match::default()
                    },
                    probe: Probe::Tcp,
                    expect: None,
                    severity: Severity::Critical,
                    interval: None,
                    timeout: None,
                },
            ],
            ..HealthPlan::default()
        };
        let t = target();
        assert_eq!(p.bearer_for(&t), Some("b"));
        let names: Vec<&str> = p.checks_for(&t).map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["one"]);
    }

    #[test]
    fn fractions_take_percent_or_decimal() {
        assert_eq!(parse_fraction("30%"), Some(0.3));
        assert_eq!(parse_fraction("0.3"), Some(0.3));
        assert_eq!(parse_fraction("1"), Some(1.0));
        assert_eq!(parse_fraction("130%"), None);
        assert_eq!(parse_fraction("-0.1"), None);
    }
}
