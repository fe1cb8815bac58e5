//! `mcp-scout export kailash|server-json --db FILE`: the documents the sinks write, made
//! from an inventory file instead of a running daemon. The same builders as the sinks
//! ([`crate::sinks::kailash`], [`crate::sinks::server_json`]), the same default filter
//! (confirmed servers; `--include-likely` adds `mcp-likely`), active servers only.

use std::io::Write as _;
use std::time::SystemTime;

use crate::cli::{ExportArgs, ExportFormat};
use crate::fingerprint::Verdict;
use crate::sinks::only::Only;
use crate::sinks::{files, kailash, server_json, SinkError};
use crate::store::{Reader, ServerFilter, StatusFilter, StoreError};

/// Why an export failed (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A document could not be written.
    #[error(transparent)]
    Write(#[from] SinkError),
    /// A flag is missing.
    #[error("{0}")]
    Usage(&'static str),
}

/// Run the export; the count of servers written.
pub fn run(args: &ExportArgs) -> Result<usize, ExportError> {
    let reader = Reader::open(&args.db)?;
    let mut only = Only::default();
    if args.include_likely {
        only.kinds.push(Verdict::McpLikely);
    }
    let servers: Vec<_> = reader
        .servers(&ServerFilter {
            status: StatusFilter::Active,
            ..ServerFilter::default()
        })?
        .into_iter()
        .filter(|s| only.matches(s))
        .collect();
    match args.format {
        ExportFormat::ServerJson => {
            let dir = args.dir.as_ref().ok_or(ExportError::Usage(
                "export server-json needs --dir DIR: one <id>.server.json is written per server",
            ))?;
            for s in &servers {
                if let Some(doc) = server_json::document(s) {
                    let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
                    files::write_atomic(
                        &dir.join(format!("{}{}", s.id.as_str(), server_json::SUFFIX)),
                        &bytes,
                    )?;
                }
            }
            eprintln!(
                "export: {} server.json file(s) written to {}",
                servers.len(),
                dir.display()
            );
        }
        ExportFormat::Kailash => {
            let doc = kailash::document(&servers, SystemTime::now());
            let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
            bytes.push(b'\n');
            match &args.output {
                Some(path) => {
                    files::write_atomic(path, &bytes)?;
                    eprintln!(
                        "export: {} server(s) written to {}",
                        servers.len(),
                        path.display()
                    );
                }
                None => {
                    let _ = std::io::stdout().lock().write_all(&bytes);
                }
            }
        }
    }
    Ok(servers.len())
}
