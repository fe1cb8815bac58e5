//! The human report of `mcp-scout probe`: every step tried, the verdict, what was learned.

use std::io::{self, Write};

use crate::finding::{PortState, Record};
use crate::fingerprint::Step;

/// Write the report for one probed endpoint.
pub fn write_report<W: Write>(
    out: &mut W,
    target: &str,
    steps: &[Step],
    r: &Record,
) -> io::Result<()> {
    writeln!(out, "Probing {target}")?;
    let w = steps
        .iter()
        .map(|s| s.request.chars().count())
        .max()
        .unwrap_or(0);
    for s in steps {
        writeln!(out, "  {:<w$}  → {}", s.request, s.outcome)?;
    }
    writeln!(out)?;
    match r.kind {
        Some(kind) => writeln!(
            out,
            "Verdict: {} (confidence {:.2})",
            kind.as_str(),
            r.confidence.unwrap_or(0.0)
        )?,
        // The port is not open: say what the connect found, not a verdict on nothing.
        None => {
            let at = std::net::SocketAddr::new(r.ip, r.port);
            let why = match r.state {
                PortState::Closed => format!("nothing listens on {at}"),
                PortState::Filtered => format!("no answer from {at} within the deadline"),
                PortState::Unreachable => format!("the network cannot reach {}", r.ip),
                PortState::Open => format!("{at} is open but was not fingerprinted"),
            };
            writeln!(out, "Verdict: {} ({why})", r.state.as_str())?;
        }
    }
    let field = |out: &mut W, k: &str, v: &str| writeln!(out, "  {k:<14}{v}");
    if let Some(u) = &r.url {
        field(out, "URL", u)?;
    }
    if let Some(t) = r.transport {
        field(out, "Transport", t.as_str())?;
    }
    if let Some(v) = &r.protocol_version {
        let also: Vec<&str> = r
            .protocol_versions
            .iter()
            .map(String::as_str)
            .filter(|x| x != v)
            .collect();
        let extra = if also.is_empty() {
            String::new()
        } else {
            format!(" (also speaks {})", also.join(", "))
        };
        field(out, "Protocol", &format!("{v}{extra}"))?;
    }
    if let Some(n) = &r.server_name {
        field(
            out,
            "Server",
            &format!("{n} {}", r.server_version.as_deref().unwrap_or("")),
        )?;
    }
    if let Some(c) = r.capabilities.as_ref().and_then(|c| c.as_object()) {
        let names: Vec<&str> = c.keys().map(String::as_str).collect();
        field(out, "Capabilities", &names.join(", "))?;
    }
    if let Some(i) = &r.instructions {
        field(out, "Instructions", i)?;
    }
    if r.confidence.is_some() && r.kind.is_some_and(|k| k.is_mcp()) && r.server_name.is_some() {
        field(out, "Tools", &r.tools.len().to_string())?;
        for t in &r.tools {
            let d = t
                .description
                .as_deref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default();
            writeln!(out, "    {}{d}", t.name)?;
        }
    }
    if let Some(n) = r.resources {
        field(out, "Resources", &n.to_string())?;
    }
    if let Some(n) = r.prompts {
        field(out, "Prompts", &n.to_string())?;
    }
    if let Some(a) = &r.auth {
        field(out, "Auth", if a.required { "required" } else { "none" })?;
        if let Some(m) = &a.resource_metadata {
            field(out, "  metadata", m)?;
        }
        if let Some(res) = &a.resource {
            field(out, "  resource", res)?;
        }
        if !a.authorization_servers.is_empty() {
            field(out, "  auth servers", &a.authorization_servers.join(", "))?;
        }
        if !a.scopes.is_empty() {
            field(out, "  scopes", &a.scopes.join(" "))?;
        }
    }
    if let Some(h) = &r.http {
        if let Some(s) = &h.server {
            field(out, "HTTP server", s)?;
        }
        if let Some(t) = &h.title {
            field(out, "HTML title", t)?;
        }
        if let Some(c) = &h.tls {
            field(
                out,
                "Certificate",
                &format!("{} (expires {})", c.subject, c.not_after),
            )?;
        }
    }
    for h in &r.health_endpoints {
        field(out, "Health", &format!("{} {}", h.path, h.status))?;
    }
    if let Some(c) = &r.server_card {
        if let Some(u) = &c.url {
            let who = [c.name.as_deref(), c.version.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            field(out, "Server card", &format!("{who} at {u} (advisory)"))?;
        }
        for e in &c.catalog {
            field(out, "Catalog", &format!("{} → {}", e.identifier, e.url))?;
        }
    }
    writeln!(out, "Evidence:")?;
    if r.evidence.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for e in &r.evidence {
        writeln!(out, "  - {e}")?;
    }
    Ok(())
}
