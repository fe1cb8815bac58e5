//! Writers for the inventory (`mcp-scout servers`): the scan record schema plus the
//! inventory's own fields (`id`, `status`, `first_seen`, `last_seen`, `jobs`).
//!
//! JSON is the API's own document, `{"servers": [...], "count": N}`; NDJSON one server per
//! line; CSV the scan columns after the inventory's; the table a summary per server, whose
//! HEALTH column is the monitor's status (`-` when never checked, `(flapping)` appended).

use std::io::{self, Write};

use super::{aligned, csv_row, json_line, Format, WriteError, CSV_HEADER};
use crate::store::StoredServer;

/// Write `servers` in `format`.
pub fn write_servers<W: Write>(
    out: &mut W,
    format: Format,
    servers: &[StoredServer],
) -> Result<(), WriteError> {
    match format {
        Format::Json => {
            let doc = crate::daemon::api::ServerList::new(servers);
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
        Format::Ndjson => {
            for s in servers {
                json_line(out, s)?;
            }
        }
        Format::Csv => {
            writeln!(out, "id,status,first_seen,last_seen,jobs,{CSV_HEADER}")?;
            for s in servers {
                writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    s.id,
                    s.status.as_str(),
                    s.first_seen,
                    s.last_seen,
                    s.jobs.join(";"),
                    csv_row(&s.record)
                )?;
            }
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = servers
                .iter()
                .map(|s| {
                    let r = &s.record;
                    vec![
                        s.id.to_string(),
                        s.status.as_str().to_string(),
                        health_cell(r.health.as_ref()),
                        r.kind.map_or("-", |k| k.as_str()).to_string(),
                        r.url
                            .clone()
                            .unwrap_or_else(|| format!("{}:{}", r.ip, r.port)),
                        r.transport.map_or("-", |t| t.as_str()).to_string(),
                        match (&r.server_name, &r.server_version) {
                            (Some(n), Some(v)) => format!("{n} {v}"),
                            (Some(n), None) => n.clone(),
                            _ => "-".into(),
                        },
                        r.tools.len().to_string(),
                        s.last_seen.clone(),
                        s.jobs.join(","),
                    ]
                })
                .collect();
            aligned(
                out,
                &[
                    "ID",
                    "STATUS",
                    "HEALTH",
                    "KIND",
                    "ENDPOINT",
                    "TRANSPORT",
                    "SERVER",
                    "TOOLS",
                    "LAST SEEN",
                    "JOBS",
                ],
                &rows,
            )?;
            writeln!(out, "\n{} server(s)", servers.len())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The HEALTH cell: the published status, `-` when never checked.
fn health_cell(h: Option<&crate::monitor::state::Health>) -> String {
    match h {
        None => "-".into(),
        Some(h) if h.flapping => format!("{} (flapping)", h.status),
        Some(h) => h.status.to_string(),
    }
}
