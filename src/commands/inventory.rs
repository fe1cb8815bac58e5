//! `mcp-scout servers` and `mcp-scout changes`: read the inventory through the daemon's API
//! or straight from the store file (read-only, safe while the daemon writes).
//!
//! Filters are validated here with the API's own parsers, so a bad value gets the same
//! message whichever way the inventory is read.

use std::io::Write;
use std::time::Duration;

use crate::cli::{ChangesArgs, InventorySource, ServersArgs};
use crate::daemon::api::{
    parse_health_status, parse_origin, parse_status, parse_transport, parse_verdict,
    HEALTH_STATUSES,
};
use crate::output::inventory::write_servers;
use crate::output::{json_line, WriteError};
use crate::store::{Change, Reader, ServerFilter, StoreError, StoredServer};

/// Deadline of one API request from these commands.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// How often `changes --follow --db` looks for new changes.
const POLL: Duration = Duration::from_secs(1);
/// Changes fetched per page.
const PAGE: usize = 1000;

/// Why the inventory could not be read (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A bad filter value.
    #[error("invalid --{flag} {value:?}; accepted values: {accepted}")]
    Filter {
        /// The flag.
        flag: &'static str,
        /// As typed.
        value: String,
        /// What is accepted.
        accepted: &'static str,
    },
    /// The store file.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API could not be reached or answered an error.
    #[error("API {url}: {reason}")]
    Api {
        /// The URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Output failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

fn choice<T>(
    flag: &'static str,
    v: Option<&String>,
    parse: fn(&str) -> Option<T>,
    accepted: &'static str,
) -> Result<Option<T>, InventoryError> {
    v.map(|s| {
        parse(s).ok_or_else(|| InventoryError::Filter {
            flag,
            value: s.clone(),
            accepted,
        })
    })
    .transpose()
}

fn filter(a: &ServersArgs) -> Result<ServerFilter, InventoryError> {
    Ok(ServerFilter {
        kind: choice(
            "kind",
            a.kind.as_ref(),
            parse_verdict,
            "mcp, mcp-auth-required, mcp-likely",
        )?,
        transport: choice(
            "transport",
            a.transport.as_ref(),
            parse_transport,
            "streamable-http, sse",
        )?,
        origin: choice(
            "origin",
            a.origin.as_ref(),
            parse_origin,
            "sweep, mdns, srv, static, catalog, kubernetes",
        )?,
        job: a.job.clone(),
        capability: a.capability.clone(),
        server_name: a.server_name.clone(),
        status: choice(
            "status",
            a.status.as_ref(),
            parse_status,
            "active, gone, all",
        )?
        .unwrap_or_default(),
        health_status: choice(
            "health-status",
            a.health_status.as_ref(),
            parse_health_status,
            HEALTH_STATUSES,
        )?,
    })
}

/// A small blocking-free client for the daemon's API.
struct Api {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    fn new(src: &InventorySource) -> Result<Self, InventoryError> {
        let client =
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| InventoryError::Api {
                    url: src.api.clone(),
                    reason: e.to_string(),
                })?;
        Ok(Self {
            base: src.api.trim_end_matches('/').to_string(),
            token: src.token.clone(),
            client,
        })
    }

    fn get(&self, path_and_query: &str) -> reqwest::RequestBuilder {
        let mut r = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    async fn json(&self, path_and_query: &str) -> Result<serde_json::Value, InventoryError> {
        let url = format!("{}{path_and_query}", self.base);
        let fail = |reason: String| InventoryError::Api {
            url: url.clone(),
            reason,
        };
        let res = self
            .get(path_and_query)
            .timeout(API_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                fail(format!(
                    "{e}; is the daemon running there? (--api URL, or --db FILE)"
                ))
            })?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| fail(e.to_string()))?;
        let body: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| fail(format!("not JSON: {e}")))?;
        if !status.is_success() {
            let msg = body["error"].as_str().unwrap_or("error").to_string();
            return Err(fail(format!("{status}: {msg}")));
        }
        Ok(body)
    }
}

fn query(a: &ServersArgs) -> String {
    let pairs = [
        ("kind", &a.kind),
        ("transport", &a.transport),
        ("origin", &a.origin),
        ("job", &a.job),
        ("capability", &a.capability),
        ("server_name", &a.server_name),
        ("status", &a.status),
        ("health_status", &a.health_status),
    ];
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| {
                format!(
                    "{k}={}",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                )
            })
        })
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// Run `mcp-scout servers`; returns whether anything matched.
pub async fn servers(a: &ServersArgs) -> Result<bool, InventoryError> {
    let f = filter(a)?;
    let servers: Vec<StoredServer> = match &a.source.db {
        Some(path) => {
            let reader = Reader::open(path.clone())?;
            tokio::task::spawn_blocking(move || reader.servers(&f))
                .await
                .map_err(|_| StoreError::Closed)??
        }
        None => {
            let api = Api::new(&a.source)?;
            let path = format!("/api/v1/servers{}", query(a));
            let mut v = api.json(&path).await?;
            serde_json::from_value(v["servers"].take()).map_err(|e| InventoryError::Api {
                url: format!("{}{path}", api.base),
                reason: format!("unexpected answer: {e}"),
            })?
        }
    };
    let mut out = std::io::stdout().lock();
    match write_servers(&mut out, a.output.into(), &servers) {
        Ok(()) | Err(WriteError::Closed) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(!servers.is_empty())
}

/// Run `mcp-scout changes`; returns whether anything was printed.
pub async fn changes(
    a: &ChangesArgs,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<bool, InventoryError> {
    let mut out = std::io::stdout().lock();
    let mut p = Printed {
        since: a.since,
        any: false,
    };
    match &a.source.db {
        Some(path) => {
            let reader = Reader::open(path.clone())?;
            loop {
                let r = reader.clone();
                let from = p.since;
                let (batch, _) = tokio::task::spawn_blocking(move || r.changes(from, PAGE))
                    .await
                    .map_err(|_| StoreError::Closed)??;
                let full = batch.len() == PAGE;
                if !p.emit(batch, &mut out)? {
                    break;
                }
                if full {
                    continue;
                }
                if !a.follow {
                    break;
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
        None => {
            let api = Api::new(&a.source)?;
            loop {
                let mut v = api
                    .json(&format!("/api/v1/changes?since={}&limit={PAGE}", p.since))
                    .await?;
                let batch: Vec<Change> =
                    serde_json::from_value(v["changes"].take()).unwrap_or_default();
                let full = batch.len() == PAGE;
                if !p.emit(batch, &mut out)? {
                    return Ok(p.any);
                }
                if !full {
                    break;
                }
            }
            if a.follow {
                follow_stream(&api, p.since, &mut out, shutdown).await?;
            }
        }
    }
    Ok(p.any)
}

/// The cursor of `changes`: the last seq printed, and whether anything was.
struct Printed {
    since: i64,
    any: bool,
}

impl Printed {
    /// Print `batch`; false when stdout went away.
    fn emit(&mut self, batch: Vec<Change>, out: &mut impl Write) -> Result<bool, InventoryError> {
        for c in batch {
            self.since = self.since.max(c.seq);
            self.any = true;
            match json_line(out, &c) {
                Ok(()) => {}
                Err(WriteError::Closed) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
}

/// Follow `/api/v1/changes/stream` from `since`, printing each change's data line.
async fn follow_stream(
    api: &Api,
    since: i64,
    out: &mut std::io::StdoutLock<'_>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), InventoryError> {
    let url = format!("{}/api/v1/changes/stream", api.base);
    let fail = |reason: String| InventoryError::Api {
        url: url.clone(),
        reason,
    };
    let mut res = api
        .get("/api/v1/changes/stream")
        .header("Last-Event-ID", since.to_string())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !res.status().is_success() {
        return Err(fail(res.status().to_string()));
    }
    let mut buf = String::new();
    loop {
        let chunk = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            c = res.chunk() => c.map_err(|e| fail(e.to_string()))?,
        };
        let Some(chunk) = chunk else { return Ok(()) };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            if let Some(data) = line.trim_end().strip_prefix("data:") {
                match writeln!(out, "{}", data.trim_start()).and_then(|()| out.flush()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(WriteError::from(e).into()),
                }
            }
        }
    }
}
