//! `mcp-scout watch`: run the announce-based sources continuously and print what changes.
//!
//! The mDNS browser keeps running and reports instances as they announce, withdraw (goodbye
//! packets) or expire; SRV names are re-resolved every `--interval`. Each change is one JSON
//! line: `appeared`, `gone`, `out_of_scope` (announced outside the scope wall, never
//! contacted) and, with `--fingerprint`, `fingerprinted` carrying the same record as `scan`.
//! This is the continuous mode the daemon builds on.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cli::WatchArgs;
use crate::discover::candidate::{Candidate, DiscoveryEvent, Hints};
use crate::discover::dns_srv::SrvResolver;
use crate::discover::mdns::MdnsBrowser;
use crate::finding::{rfc3339, Origin, PortState, ProbeResult, Record};
use crate::fingerprint::{Fingerprinter, ProbeTarget};
use crate::gather::GatherError;
use crate::output::{json_line, WriteError};

/// Events buffered between the sources and the writer.
const EVENT_BUFFER: usize = 1024;

/// Why `watch` could not run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Nothing to watch.
    #[error("watch needs something to watch: --mdns [TYPE...], --mdns-all or --srv NAME")]
    Nothing,
    /// Discovery setup failed.
    #[error(transparent)]
    Gather(#[from] GatherError),
    /// Bad settings.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// Fingerprint options or client.
    #[error(transparent)]
    Fingerprint(#[from] crate::probe::ProbeError),
    /// Output failed.
    #[error(transparent)]
    Write(WriteError),
}

/// One line of `watch` output.
#[derive(Debug, Serialize)]
struct Event<'a> {
    event: &'a str,
    origin: Origin,
    name: &'a str,
    ip: Option<IpAddr>,
    port: Option<u16>,
    hints: Option<&'a Hints>,
    at: String,
    record: Option<&'a Record>,
}

fn line<'a>(event: &'static str, c: &'a Candidate) -> Event<'a> {
    Event {
        event,
        origin: c.origin,
        name: &c.name,
        ip: Some(c.addr.ip()),
        port: Some(c.addr.port()),
        hints: Some(&c.hints),
        at: rfc3339(SystemTime::now()),
        record: None,
    }
}

/// Run until Ctrl-C.
pub async fn run(args: WatchArgs, shutdown: CancellationToken) -> Result<(), WatchError> {
    let d = crate::gather::discovery(&args.discovery.spec().resolve()?, &[])?;
    if !d.any() {
        return Err(WatchError::Nothing);
    }
    let fingerprinter = if args.fingerprint {
        Some(
            Fingerprinter::new(args.fingerprint_args.spec().resolve()?)
                .map_err(crate::probe::ProbeError::from)?,
        )
    } else {
        None
    };
    let (tx, mut rx) = mpsc::channel(EVENT_BUFFER);
    let mut sources = JoinSet::new();
    if let Some(opts) = d.mdns.clone() {
        let browser = MdnsBrowser::new(&opts).map_err(GatherError::from)?;
        let (tx, stop) = (tx.clone(), shutdown.clone());
        sources.spawn(async move {
            if let Err(e) = browser.watch(&opts, tx, stop).await {
                tracing::warn!("{e}");
            }
        });
    }
    if !d.srv.is_empty() {
        let resolver = SrvResolver::new(d.srv_opts.clone()).map_err(GatherError::from)?;
        let (tx, stop, names, every) = (tx.clone(), shutdown.clone(), d.srv.clone(), args.interval);
        sources.spawn(async move { resolver.watch(&names, every, tx, stop).await });
    }
    drop(tx);
    let mut probes: JoinSet<Record> = JoinSet::new();
    let mut out = std::io::stdout().lock();
    let result = loop {
        tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            Some(Ok(rec)) = probes.join_next(), if !probes.is_empty() => {
                let e = Event {
                    event: "fingerprinted",
                    origin: rec.origins.first().copied().unwrap_or(Origin::Mdns),
                    name: rec.announced_as.first().map_or("", String::as_str),
                    ip: Some(rec.ip),
                    port: Some(rec.port),
                    hints: None,
                    at: rfc3339(SystemTime::now()),
                    record: Some(&rec),
                };
                if let Err(e) = json_line(&mut out, &e) { break Err(e) }
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break Ok(()) };
                let res = match &ev {
                    DiscoveryEvent::Appeared(c) => {
                        let scope = if c.origin == Origin::Mdns { &d.mdns_scope } else { &d.srv_scope };
                        if !scope.allows(c.addr.ip()) {
                            json_line(&mut out, &line("out_of_scope", c))
                        } else {
                            if let Some(fp) = fingerprinter.clone() {
                                // Admitted by the scope wall just above: the given
                                // credentials (--bearer, --header) may go to it.
                                let c = c.clone();
                                probes.spawn(async move {
                                    let target = ProbeTarget { addr: c.addr, https: None, path: None, hint_path: c.hints.path.clone(), credentials: true };
                                    let f = fp.fingerprint(&target).await;
                                    let mut r = Record::from(&ProbeResult { ip: c.addr.ip(), port: c.addr.port(), state: PortState::Open, rtt: None, attempts: 1, seen_at: SystemTime::now() }).with_fingerprint(f);
                                    r.origins = vec![c.origin];
                                    r.announced_as = vec![c.name.clone()];
                                    r
                                });
                            }
                            json_line(&mut out, &line("appeared", c))
                        }
                    }
                    DiscoveryEvent::Gone { origin, name } => json_line(&mut out, &Event {
                        event: "gone", origin: *origin, name, ip: None, port: None, hints: None,
                        at: rfc3339(SystemTime::now()), record: None,
                    }),
                };
                if let Err(e) = res { break Err(e) }
            }
        }
    };
    sources.abort_all();
    probes.abort_all();
    match result {
        Ok(()) | Err(WriteError::Closed) => Ok(()),
        Err(e) => Err(WatchError::Write(e)),
    }
}
