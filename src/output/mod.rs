//! Result writers: the only engine-side code that touches stdout.
//!
//! NDJSON and CSV stream each record as it arrives (a consumer piping into `jq` sees open
//! ports while the sweep runs); the table and the JSON document need the whole result and
//! are written at the end, sorted by address and port. A closed pipe (`| head`) is not an
//! error: [`WriteError::Closed`] tells the caller to stop quietly.

pub mod check;
pub mod inventory;
pub mod progress;
pub mod report;

use std::io::{self, Write};

use serde::Serialize;

use crate::finding::Record;
use crate::fingerprint::Verdict;
pub use crate::pipeline::{KindCounts, Summary};

/// Output formats for results on stdout (the command line's `-o` maps onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table with a summary.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line, streamed.
    Ndjson,
    /// Comma-separated values with a header row, streamed.
    Csv,
}

/// Writing results failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The reader went away (broken pipe); not worth reporting.
    #[error("output closed")]
    Closed,
    /// Any other I/O failure.
    #[error("cannot write results: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Self::Closed
        } else {
            Self::Io(e)
        }
    }
}

/// Write one value as a JSON line and flush (streaming outputs: NDJSON results, `watch`).
pub fn json_line<W: Write, T: Serialize>(out: &mut W, v: &T) -> Result<(), WriteError> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Writes records in one format.
pub struct ResultWriter<W: Write> {
    format: Format,
    out: W,
    buffered: Vec<Record>,
    wrote_header: bool,
}

pub(crate) const CSV_HEADER: &str = "ip,port,state,rtt_ms,kind,url,transport,protocol_version,server_name,server_version,tool_count,tools,auth_required,confidence,origins,seen_at";

impl<W: Write> ResultWriter<W> {
    /// A writer of `format` into `out`.
    pub fn new(format: Format, out: W) -> Self {
        Self {
            format,
            out,
            buffered: Vec::new(),
            wrote_header: false,
        }
    }

    /// Take one record: streamed formats write it now, others keep it.
    pub fn push(&mut self, rec: Record) -> Result<(), WriteError> {
        match self.format {
            Format::Ndjson => {
                serde_json::to_writer(&mut self.out, &rec).map_err(io::Error::from)?;
                self.out.write_all(b"\n")?;
                self.out.flush()?;
            }
            Format::Csv => {
                self.csv_header()?;
                writeln!(self.out, "{}", csv_row(&rec))?;
                self.out.flush()?;
            }
            Format::Table | Format::Json => self.buffered.push(rec),
        }
        Ok(())
    }

    fn csv_header(&mut self) -> Result<(), WriteError> {
        if !self.wrote_header {
            writeln!(self.out, "{CSV_HEADER}")?;
            self.wrote_header = true;
        }
        Ok(())
    }

    /// Write a single record's document (for `probe`): JSON is the bare record.
    pub fn finish_single(mut self) -> Result<(), WriteError> {
        match self.format {
            Format::Json => {
                if let Some(r) = self.buffered.first() {
                    serde_json::to_writer_pretty(&mut self.out, r).map_err(io::Error::from)?;
                    self.out.write_all(b"\n")?;
                }
            }
            Format::Csv => self.csv_header()?,
            Format::Ndjson | Format::Table => {}
        }
        self.out.flush()?;
        Ok(())
    }

    /// Write what was kept, and the summary where the format has room for it.
    pub fn finish(mut self, summary: &Summary) -> Result<(), WriteError> {
        // MCP servers first (verdicts order strongest first), then by address.
        self.buffered
            .sort_by_key(|r| (r.kind.unwrap_or(Verdict::Open), r.ip, r.port));
        match self.format {
            Format::Ndjson => {}
            Format::Csv => self.csv_header()?,
            Format::Json => {
                #[derive(Serialize)]
                struct Doc<'a> {
                    scan: &'a Summary,
                    findings: &'a [Record],
                }
                let doc = Doc {
                    scan: summary,
                    findings: &self.buffered,
                };
                serde_json::to_writer_pretty(&mut self.out, &doc).map_err(io::Error::from)?;
                self.out.write_all(b"\n")?;
            }
            Format::Table => write_table(&mut self.out, &self.buffered, summary)?,
        }
        self.out.flush()?;
        Ok(())
    }
}

pub(crate) fn csv_row(r: &Record) -> String {
    let origins: Vec<&str> = r.origins.iter().map(|o| o.as_str()).collect();
    let tools: Vec<&str> = r.tools.iter().map(|t| t.name.as_str()).collect();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        r.ip.to_string(),
        r.port.to_string(),
        r.state.as_str().to_string(),
        r.rtt_ms.map(|v| v.to_string()).unwrap_or_default(),
        r.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        opt(&r.url),
        r.transport
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        opt(&r.protocol_version),
        opt(&r.server_name),
        opt(&r.server_version),
        if r.confidence.is_some() {
            r.tools.len().to_string()
        } else {
            String::new()
        },
        tools.join(";"),
        r.auth
            .as_ref()
            .map(|a| a.required.to_string())
            .unwrap_or_default(),
        r.confidence.map(|c| c.to_string()).unwrap_or_default(),
        origins.join(";"),
        r.seen_at.clone(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_table<W: Write>(out: &mut W, recs: &[Record], s: &Summary) -> io::Result<()> {
    if recs.is_empty() {
        writeln!(out, "Nothing found.")?;
    } else if s.fingerprinted {
        let rows: Vec<Vec<String>> = recs.iter().map(fingerprint_row).collect();
        aligned(
            out,
            &[
                "KIND",
                "ENDPOINT",
                "TRANSPORT",
                "PROTOCOL",
                "SERVER",
                "TOOLS",
                "AUTH",
                "FOUND BY",
            ],
            &rows,
        )?;
    } else {
        let rows: Vec<Vec<String>> = recs
            .iter()
            .map(|r| {
                vec![
                    r.ip.to_string(),
                    r.port.to_string(),
                    r.state.as_str().to_string(),
                    r.rtt_ms
                        .map_or_else(|| "-".into(), |v| format!("{v:.2} ms")),
                    r.kind.map_or("-", |k| k.as_str()).to_string(),
                ]
            })
            .collect();
        aligned(out, &["ADDRESS", "PORT", "STATE", "RTT", "KIND"], &rows)?;
    }
    writeln!(out)?;
    writeln!(out, "{}", summary_line(s))
}

fn fingerprint_row(r: &Record) -> Vec<String> {
    let dash = || "-".to_string();
    let endpoint = r.url.clone().unwrap_or_else(|| match r.ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{}", r.port),
        std::net::IpAddr::V4(v4) => format!("{v4}:{}", r.port),
    });
    let server = match (&r.server_name, &r.server_version) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n.clone(),
        _ => r
            .http
            .as_ref()
            .and_then(|h| h.title.clone().or_else(|| h.server.clone()))
            .unwrap_or_else(dash),
    };
    let kind = r.kind.map_or(Verdict::Open, |k| k);
    vec![
        r.kind.map_or("-", |k| k.as_str()).to_string(),
        endpoint,
        r.transport.map_or_else(dash, |t| t.as_str().to_string()),
        r.protocol_version.clone().unwrap_or_else(dash),
        server,
        if kind == Verdict::Mcp {
            r.tools.len().to_string()
        } else {
            dash()
        },
        match &r.auth {
            Some(a) if a.required => "required".into(),
            _ if kind == Verdict::Mcp => "none".into(),
            _ => dash(),
        },
        {
            let o: Vec<&str> = r.origins.iter().map(|o| o.as_str()).collect();
            match r.announced_as.first() {
                Some(n) => format!("{} ({n})", o.join("+")),
                None => o.join("+"),
            }
        },
    ]
}

pub(crate) fn aligned<W: Write>(
    out: &mut W,
    head: &[&str],
    rows: &[Vec<String>],
) -> io::Result<()> {
    let cols = rows
        .iter()
        .map(Vec::len)
        .chain([head.len()])
        .max()
        .unwrap_or(0);
    let mut w = vec![0usize; cols];
    for (i, h) in head.iter().enumerate() {
        w[i] = h.len();
    }
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        l.trim_end().to_string()
    };
    writeln!(out, "{}", line(head.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// One human line: counts, time and rate.
pub fn summary_line(s: &Summary) -> String {
    let rate = if s.duration_s > 0.0 {
        s.probes_done as f64 / s.duration_s
    } else {
        0.0
    };
    let mut line = format!(
        "{} open, {} closed, {} filtered, {} unreachable · {} of {} probes in {:.2} s ({:.0}/s)",
        s.open,
        s.closed,
        s.filtered,
        s.unreachable,
        s.probes_done,
        s.probes_total,
        s.duration_s,
        rate
    );
    if s.fingerprinted {
        let k = &s.kinds;
        line.push_str(&format!(
            " · {} MCP, {} MCP (auth required), {} MCP (likely), {} other HTTP, {} not HTTP",
            k.mcp, k.mcp_auth_required, k.mcp_likely, k.http, k.open
        ));
        if s.not_listed > 0 {
            line.push_str(&format!(" ({} not listed: --all)", s.not_listed));
        }
        if s.auth_walls > 0 {
            line.push_str(&format!(
                " · {} behind an authentication wall on MCP ports{}",
                s.auth_walls,
                if s.not_listed > 0 {
                    ": --all lists them"
                } else {
                    ""
                }
            ));
        }
    }
    if s.announced > 0 || !s.out_of_scope.is_empty() {
        line.push_str(&format!(
            " · {} announced, {} out of scope (not probed)",
            s.announced,
            s.out_of_scope.len()
        ));
    }
    if let Some(up) = s.hosts_up {
        line.push_str(&format!(
            " · {up} hosts up, {} probes skipped (host down)",
            s.skipped_host_down
        ));
    }
    if s.interrupted {
        line.push_str(" · INTERRUPTED");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{PortState, ProbeResult};
    use std::time::{Duration, SystemTime};

    fn rec(port: u16) -> Record {
        let mut r = Record::from(&ProbeResult {
            ip: "10.0.0.1".parse().unwrap(),
            port,
            state: PortState::Open,
            rtt: Some(Duration::from_micros(500)),
            attempts: 1,
            seen_at: SystemTime::now(),
        });
        r.seen_at = "2026-01-01T00:00:00.000Z".into();
        r
    }

    #[test]
    fn csv_has_header_and_rows() {
        let mut buf = Vec::new();
        let mut w = ResultWriter::new(Format::Csv, &mut buf);
        w.push(rec(80)).unwrap();
        w.finish(&Summary::default()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            format!(
                "{CSV_HEADER}\n10.0.0.1,80,open,0.5,open,,,,,,,,,,sweep,2026-01-01T00:00:00.000Z\n"
            )
        );
    }

    #[test]
    fn empty_csv_still_has_header() {
        let mut buf = Vec::new();
        ResultWriter::new(Format::Csv, &mut buf)
            .finish(&Summary::default())
            .unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), format!("{CSV_HEADER}\n"));
    }

    #[test]
    fn json_is_one_sorted_document() {
        let mut buf = Vec::new();
        let mut w = ResultWriter::new(Format::Json, &mut buf);
        w.push(rec(9000)).unwrap();
        w.push(rec(80)).unwrap();
        w.finish(&Summary::default()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["findings"][0]["port"], 80);
        assert_eq!(v["findings"][1]["port"], 9000);
        assert!(v["scan"]["probes_total"].is_number());
    }

    #[test]
    fn csv_quotes_fields_with_commas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("x\"y"), "\"x\"\"y\"");
    }
}
