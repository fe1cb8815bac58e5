//! The output of `mcp-scout check`: one [`CheckDocument`] per run, written as a readable
//! table of steps or as one JSON document (the same fields).

use std::io::{self, Write};

use serde::Serialize;

use crate::fingerprint::Tool;
use crate::monitor::check::{Report, Step};
use crate::monitor::state::Severity;

/// What `check` found, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckDocument {
    /// The URL checked.
    pub url: String,
    /// Whether every check passed (exit 0).
    pub healthy: bool,
    /// What the fingerprint said before the checks.
    pub fingerprint: FingerprintSummary,
    /// Each check, built-in first.
    pub checks: Vec<CheckEntry>,
    /// Fingerprint and checks, in milliseconds.
    pub total_ms: f64,
}

/// The fingerprint's verdict, in short.
#[derive(Debug, Clone, Serialize)]
pub struct FingerprintSummary {
    /// `mcp`, `mcp-auth-required`, `mcp-likely`, `http`, `open`.
    pub kind: String,
    /// `streamable-http` or `sse`.
    pub transport: Option<String>,
    /// The negotiated protocol version.
    pub protocol_version: Option<String>,
    /// `serverInfo.name`.
    pub server_name: Option<String>,
}

/// One check's result and steps.
#[derive(Debug, Clone, Serialize)]
pub struct CheckEntry {
    /// `mcp`, `call`, `expect`.
    pub name: String,
    /// `critical` or `warning`.
    pub severity: Severity,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed, or what it saw.
    pub message: String,
    /// How long it took.
    pub latency_ms: Option<f64>,
    /// Its requests.
    pub steps: Vec<Step>,
    /// The tools listed, when `tools/list` ran.
    pub tools: Option<Vec<Tool>>,
}

impl CheckEntry {
    /// The entry for an engine report.
    pub fn of(r: &Report) -> Self {
        Self {
            name: r.result.name.clone(),
            severity: r.result.severity,
            ok: r.result.ok,
            message: r.result.message.clone(),
            latency_ms: r.result.latency.map(ms),
            steps: r.steps.clone(),
            tools: r.tools.clone(),
        }
    }
}

/// Milliseconds, to the microsecond.
pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The readable form: the fingerprint, each check's steps, then the verdict.
pub fn write_table<W: Write>(out: &mut W, doc: &CheckDocument) -> io::Result<()> {
    let f = &doc.fingerprint;
    writeln!(out, "Checking {}", doc.url)?;
    let mut fp = format!("  fingerprint: {}", f.kind);
    for v in [&f.transport, &f.protocol_version, &f.server_name]
        .into_iter()
        .flatten()
    {
        fp.push_str(", ");
        fp.push_str(v);
    }
    writeln!(out, "{fp}")?;
    let rows: Vec<(String, &Step)> = doc
        .checks
        .iter()
        .flat_map(|c| {
            c.steps
                .iter()
                .map(move |s| (format!("{}: {}", c.name, s.name), s))
        })
        .collect();
    let w = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(out)?;
    writeln!(
        out,
        "  {:<w$}  {:<4}  {:>10}  MESSAGE",
        "STEP", "OK", "LATENCY"
    )?;
    for (name, s) in &rows {
        writeln!(
            out,
            "  {name:<w$}  {:<4}  {:>10}  {}",
            if s.ok { "ok" } else { "FAIL" },
            // The fingerprint-based checks log requests without timing them.
            if s.latency.is_zero() {
                "-".to_string()
            } else {
                format!("{:.1}ms", ms(s.latency))
            },
            s.message
        )?;
    }
    writeln!(out)?;
    for c in &doc.checks {
        writeln!(
            out,
            "  check {}: {} in {}: {}",
            c.name,
            if c.ok { "pass" } else { "FAIL" },
            c.latency_ms
                .map_or_else(|| "-".to_string(), |l| format!("{l:.1}ms")),
            c.message
        )?;
    }
    writeln!(
        out,
        "{} ({:.1}ms)",
        if doc.healthy { "healthy" } else { "unhealthy" },
        doc.total_ms
    )
}
