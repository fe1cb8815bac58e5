//! `mcp-scout check URL [--call TOOL --arguments JSON] [--expect CEL] [--bearer TOKEN]
//! [--timeout D] [-o json]`: the monitor's checks, once, for a Kubernetes exec probe or cron.
//!
//! Glue: it validates the flags (bad URL, CEL or JSON exit 2 with a message naming the flag),
//! fingerprints the URL once with the probe's machinery (to learn its kind, transport and
//! auth challenge, as a scan would have), runs the built-in check and the custom one the
//! flags describe, and writes [`CheckDocument`]. An endpoint the fingerprint does not call
//! MCP is still checked as a Streamable HTTP MCP server: the user says it is one, and the
//! check's failure says what is wrong with it.

use std::io::Write;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::cli::{CheckArgs, CheckOutput};
use crate::fingerprint::http::{ClientError, HttpLimits, DEFAULT_REQUEST_TIMEOUT};
use crate::fingerprint::{FingerprintOptions, Fingerprinter, ProbeTarget, Transport, Verdict};
use crate::monitor::cel::{CheckVars, Condition, ToolVar, Var};
use crate::monitor::check::{Checker, Report, Target};
use crate::monitor::plan::{CustomCheck, HealthPlan, Match, Probe};
use crate::monitor::state::{CheckResult, Severity};
use crate::output::check::{ms, write_table, CheckDocument, CheckEntry, FingerprintSummary};
use crate::output::WriteError;

/// The variables `--expect` may use without `--call`: what the built-in check observes.
const BUILTIN_VARS: &[Var] = &[Var::LatencyMs, Var::Tools, Var::Server];

/// Why `check` could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The URL is not an http(s) URL with an IP or host.
    #[error("invalid check URL {url:?}: {reason}; accepted forms: http://127.0.0.1:8000/mcp, https://host.example/mcp")]
    Url {
        /// As typed.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// `--expect` does not compile, or names a variable the check does not give.
    #[error("--expect: {0}")]
    Expect(String),
    /// `--arguments` is not a JSON object.
    #[error("--arguments: {0}; for example --arguments '{{\"city\": \"Paris\"}}'")]
    Arguments(String),
    /// `--timeout` of zero.
    #[error("--timeout: must be above 0, for example 10s")]
    Timeout,
    /// The host did not resolve.
    #[error(transparent)]
    Resolve(#[from] crate::probe::ProbeError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Output failed.
    #[error(transparent)]
    Write(WriteError),
}

/// The check `--call`/`--expect` adds, validated.
enum Extra {
    None,
    /// `--call`: a custom `mcp_call` check.
    Call(Box<CustomCheck>),
    /// `--expect` alone: a condition over the built-in check.
    Expect(Condition),
}

fn parse_url(s: &str) -> Result<Url, CheckError> {
    let bad = |reason: &str| CheckError::Url {
        url: s.to_string(),
        reason: reason.to_string(),
    };
    let u = Url::parse(s).map_err(|e| bad(&e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(u)
}

fn compile(expr: &str, allowed: &[Var], what: &str) -> Result<Condition, CheckError> {
    let c = Condition::compile(expr).map_err(|e| CheckError::Expect(e.to_string()))?;
    if let Some(v) = c.variables().iter().find(|v| !allowed.contains(v)) {
        let names: Vec<&str> = allowed.iter().map(|v| v.name()).collect();
        return Err(CheckError::Expect(format!(
            "`{}` has no value {what}; its variables are {}",
            v.name(),
            names.join(", ")
        )));
    }
    Ok(c)
}

fn extra(args: &CheckArgs) -> Result<Extra, CheckError> {
    if let Some(tool) = &args.call {
        let arguments = match &args.arguments {
            None => serde_json::json!({}),
            Some(a) => {
                let v: serde_json::Value = serde_json::from_str(a)
                    .map_err(|e| CheckError::Arguments(format!("invalid JSON {a:?}: {e}")))?;
                if !v.is_object() {
                    return Err(CheckError::Arguments(format!("{a:?} is not a JSON object")));
                }
                v
            }
        };
        let probe = Probe::McpCall {
            tool: tool.clone(),
            arguments,
        };
        let expect = args
            .expect
            .as_deref()
            .map(|e| compile(e, probe.variables(), "with --call"))
            .transpose()?;
        return Ok(Extra::Call(Box::new(CustomCheck {
            name: "call".into(),
            matcher: Match::default(),
            probe,
            expect,
            severity: Severity::Critical,
            interval: None,
            timeout: None,
        })));
    }
    match &args.expect {
        Some(e) => Ok(Extra::Expect(compile(
            e,
            BUILTIN_VARS,
            "without --call (add --call TOOL for result)",
        )?)),
        None => Ok(Extra::None),
    }
}

/// Run `mcp-scout check`; returns whether the server is healthy.
pub async fn run(args: &CheckArgs, shutdown: CancellationToken) -> Result<bool, CheckError> {
    let url = parse_url(&args.url)?;
    if args.timeout.is_zero() {
        return Err(CheckError::Timeout);
    }
    let extra = extra(args)?;
    let start = Instant::now();
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let addr = crate::probe::resolve(&host, port).await?;

    let plan = HealthPlan {
        timeout: args.timeout,
        ..HealthPlan::default()
    };
    let checker = Checker::try_new(&plan)?;
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path = format!("{path}?{q}");
    }
    let fp = Fingerprinter::new(FingerprintOptions {
        paths: vec![path.clone()],
        budget: args.timeout,
        http: HttpLimits {
            request_timeout: args.timeout.min(DEFAULT_REQUEST_TIMEOUT),
            ..HttpLimits::default()
        },
        credentials: Default::default(),
    })?;
    let probe = ProbeTarget {
        addr,
        https: Some(url.scheme() == "https"),
        path: Some(path),
        hint_path: None,
        // `check` sends its --bearer in its own exchange, after the fingerprint.
        credentials: false,
    };
    let work = async {
        let f = fp.fingerprint(&probe).await;
        let target = target_of(&url, &f);
        let builtin = checker
            .builtin(&target, args.bearer.as_deref(), args.timeout)
            .await;
        let mut reports = vec![builtin];
        match &extra {
            Extra::None => {}
            Extra::Call(c) => {
                reports.push(
                    checker
                        .custom(&target, c, args.bearer.as_deref(), args.timeout)
                        .await,
                );
            }
            Extra::Expect(cond) => {
                let r = expect_on(&reports[0], cond);
                reports.push(r);
            }
        }
        (f, reports)
    };
    let Some((f, reports)) = (tokio::select! {
        r = work => Some(r),
        () = shutdown.cancelled() => None,
    }) else {
        return Ok(false);
    };
    let checks: Vec<CheckEntry> = reports.iter().map(CheckEntry::of).collect();
    let doc = CheckDocument {
        url: args.url.clone(),
        healthy: checks.iter().all(|c| c.ok),
        fingerprint: FingerprintSummary {
            kind: f.verdict.as_str().to_string(),
            transport: f.transport.map(|t| t.as_str().to_string()),
            protocol_version: f.mcp.as_ref().and_then(|m| m.protocol_version.clone()),
            server_name: f.mcp.as_ref().and_then(|m| m.server_name.clone()),
        },
        checks,
        total_ms: ms(start.elapsed()),
    };
    let mut out = std::io::stdout().lock();
    let res = match args.output {
        CheckOutput::Table => write_table(&mut out, &doc),
        CheckOutput::Json => serde_json::to_writer_pretty(&mut out, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
    }
    .and_then(|()| out.flush())
    .map_err(WriteError::from);
    match res {
        Ok(()) | Err(WriteError::Closed) => Ok(doc.healthy),
        Err(e) => Err(CheckError::Write(e)),
    }
}

/// The target as a scan would have recorded it; an endpoint not recognised as MCP is
/// checked as a Streamable HTTP one.
fn target_of(url: &Url, f: &crate::fingerprint::Fingerprint) -> Target {
    let mcp = f.mcp.as_ref();
    let (kind, transport) = if f.verdict.is_mcp() {
        (f.verdict, f.transport)
    } else {
        (Verdict::Mcp, Some(Transport::StreamableHttp))
    };
    Target {
        url: f
            .url
            .as_deref()
            .filter(|_| f.verdict.is_mcp())
            .and_then(|u| Url::parse(u).ok())
            .unwrap_or_else(|| url.clone()),
        kind,
        transport,
        server_name: mcp.and_then(|m| m.server_name.clone()),
        jobs: Vec::new(),
        tools: mcp
            .map(|m| m.tools.iter().map(|t| t.name.clone()).collect())
            .unwrap_or_default(),
        protocol_version: mcp.and_then(|m| m.protocol_version.clone()),
        auth: f.auth.clone(),
    }
}

/// `--expect` without `--call`: the condition over what the built-in check saw.
fn expect_on(builtin: &Report, cond: &Condition) -> Report {
    let vars = CheckVars {
        latency_ms: builtin
            .result
            .latency
            .map_or(0.0, |l| l.as_secs_f64() * 1000.0),
        tools: builtin
            .tools
            .iter()
            .flatten()
            .map(|t| ToolVar {
                name: t.name.clone(),
                description: t.description.clone().unwrap_or_default(),
            })
            .collect(),
        server: builtin.server.clone(),
        ..CheckVars::default()
    };
    let result = if !builtin.result.ok {
        CheckResult::fail("expect", "not evaluated: the built-in check failed")
    } else {
        match cond.eval(&vars) {
            Ok(true) => CheckResult::pass("expect")
                .with_message(format!("expect {:?} holds", cond.source())),
            Ok(false) => {
                CheckResult::fail("expect", format!("expect {:?} is false", cond.source()))
            }
            Err(e) => CheckResult::fail("expect", format!("expect {:?}: {e}", cond.source())),
        }
    };
    Report {
        result,
        steps: Vec::new(),
        tools: None,
        server: builtin.server.clone(),
        total: Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(parse_url("http://127.0.0.1:8000/mcp").is_ok());
        for bad in ["127.0.0.1:8000", "ftp://h/x", "http://", "mcp"] {
            let e = parse_url(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid check URL {bad:?}")), "{e}");
        }
    }

    #[test]
    fn expect_without_call_cannot_use_result() {
        let e = compile("result.isError", BUILTIN_VARS, "without --call")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            e,
            "--expect: `result` has no value without --call; its variables are latency_ms, tools, server"
        );
        let e = compile("size(tools) >", BUILTIN_VARS, "x")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("--expect: syntax error in CEL expression \"size(tools) >\" at column"),
            "{e}"
        );
    }
}
