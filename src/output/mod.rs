//! Result writers: the only engine-side code that touches stdout.
//!
//! NDJSON and CSV stream each record as it arrives (a consumer piping into `jq` sees open
//! ports while the sweep runs); the table and the JSON document need the whole result and
//! are written at the end, sorted by address and port. A closed pipe (`| head`) is not an
//! error: [`WriteError::Closed`] tells the caller to stop quietly.

pub mod progress;

use std::io::{self, Write};

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::finding::{PortState, Record};

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

/// End-of-scan facts printed with the results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// When the sweep started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// Wall time in seconds.
    pub duration_s: f64,
    /// Targets as typed (after defaults and --local).
    pub targets: Vec<String>,
    /// Port list, folded.
    pub ports: String,
    /// Addresses swept.
    pub addresses: u64,
    /// Planned probes (addresses × ports).
    pub probes_total: u64,
    /// Probes concluded (less than total when interrupted).
    pub probes_done: u64,
    /// Open ports.
    pub open: u64,
    /// Closed ports.
    pub closed: u64,
    /// Filtered ports (no answer after retries).
    pub filtered: u64,
    /// Unreachable probes.
    pub unreachable: u64,
    /// Probes skipped because host discovery found the host down.
    pub skipped_host_down: u64,
    /// Hosts that answered ICMP echo (null when discovery did not run).
    pub hosts_up: Option<u64>,
    /// Retry attempts sent.
    pub retries: u64,
    /// Whether the scan was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// Writes records in one format.
pub struct ResultWriter<W: Write> {
    format: OutputFormat,
    out: W,
    buffered: Vec<Record>,
    wrote_header: bool,
}

const CSV_HEADER: &str = "ip,port,state,rtt_ms,kind,origins,seen_at";

impl<W: Write> ResultWriter<W> {
    /// A writer of `format` into `out`.
    pub fn new(format: OutputFormat, out: W) -> Self {
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
            OutputFormat::Ndjson => {
                serde_json::to_writer(&mut self.out, &rec).map_err(io::Error::from)?;
                self.out.write_all(b"\n")?;
                self.out.flush()?;
            }
            OutputFormat::Csv => {
                self.csv_header()?;
                writeln!(self.out, "{}", csv_row(&rec))?;
                self.out.flush()?;
            }
            OutputFormat::Table | OutputFormat::Json => self.buffered.push(rec),
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

    /// Write what was kept, and the summary where the format has room for it.
    pub fn finish(mut self, summary: &Summary) -> Result<(), WriteError> {
        self.buffered.sort_by_key(|r| (r.ip, r.port));
        match self.format {
            OutputFormat::Ndjson => {}
            OutputFormat::Csv => self.csv_header()?,
            OutputFormat::Json => {
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
            OutputFormat::Table => write_table(&mut self.out, &self.buffered, summary)?,
        }
        self.out.flush()?;
        Ok(())
    }
}

fn csv_row(r: &Record) -> String {
    let origins: Vec<&str> = r.origins.iter().map(|o| o.as_str()).collect();
    [
        r.ip.to_string(),
        r.port.to_string(),
        r.state.as_str().to_string(),
        r.rtt_ms.map(|v| v.to_string()).unwrap_or_default(),
        r.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
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
        writeln!(out, "No ports found in state(s) asked for.")?;
    } else {
        let rows: Vec<[String; 5]> = recs
            .iter()
            .map(|r| {
                [
                    r.ip.to_string(),
                    r.port.to_string(),
                    r.state.as_str().to_string(),
                    r.rtt_ms
                        .map_or_else(|| "-".into(), |v| format!("{v:.2} ms")),
                    r.kind.map_or("-", |k| k.as_str()).to_string(),
                ]
            })
            .collect();
        let head = ["ADDRESS", "PORT", "STATE", "RTT", "KIND"];
        let mut w = head.map(str::len);
        for row in &rows {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |cells: [&str; 5]| {
            format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {:>w3$}  {}",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3]
            )
        };
        writeln!(out, "{}", line(head))?;
        for row in &rows {
            writeln!(
                out,
                "{}",
                line([&row[0], &row[1], &row[2], &row[3], &row[4]])
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", summary_line(s))
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

/// Whether `state` is worth a line by default.
pub fn is_finding(state: PortState) -> bool {
    state == PortState::Open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Kind, Origin};

    fn rec(port: u16) -> Record {
        Record {
            ip: "10.0.0.1".parse().unwrap(),
            port,
            state: PortState::Open,
            rtt_ms: Some(0.5),
            kind: Some(Kind::Open),
            origins: vec![Origin::Sweep],
            seen_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn csv_has_header_and_rows() {
        let mut buf = Vec::new();
        let mut w = ResultWriter::new(OutputFormat::Csv, &mut buf);
        w.push(rec(80)).unwrap();
        w.finish(&Summary::default()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            format!("{CSV_HEADER}\n10.0.0.1,80,open,0.5,open,sweep,2026-01-01T00:00:00.000Z\n")
        );
    }

    #[test]
    fn empty_csv_still_has_header() {
        let mut buf = Vec::new();
        ResultWriter::new(OutputFormat::Csv, &mut buf)
            .finish(&Summary::default())
            .unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), format!("{CSV_HEADER}\n"));
    }

    #[test]
    fn json_is_one_sorted_document() {
        let mut buf = Vec::new();
        let mut w = ResultWriter::new(OutputFormat::Json, &mut buf);
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
