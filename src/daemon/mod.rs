//! `mcp-scout daemon`: the scanner as a service.
//!
//! ```text
//!  config ──▶ jobs (one task each, schedule.rs) ──▶ pipeline::run ──▶ records ─┐
//!   ▲  SIGHUP  └─ mDNS browser kept between runs ──▶ fingerprint ──▶ observe ──┤
//!   │                                                                          ▼
//!   │                               store (one writer: servers, changes, runs, outbox)
//!   │                                      │ broadcast of committed changes
//!   ├──── api.rs (axum, read-only connections) ◀─┤  /api/v1, /metrics, /readyz
//!   ├──── monitor.rs: active servers ──▶ health checks ──▶ record_health ──┘
//!   └──── sinks.rs: one task per sink, from its cursor in the change feed ──▶ registries
//! ```
//!
//! Start-up: load and validate the config (a bad one exits 2 before anything runs), open
//! the store (corrupt, foreign or locked files exit 2 and are left untouched), bind the API,
//! start the jobs. SIGHUP re-reads the config and applies it only when the whole file is
//! valid. SIGTERM or SIGINT: stop accepting API connections, cancel the jobs (their runs are
//! recorded as interrupted), let the writer drain its queue and commit, exit 0, all within
//! [`SHUTDOWN_DEADLINE`].

pub mod api;
pub mod cached;
pub mod cluster;
pub mod jobs;
pub mod metrics;
pub mod monitor;
pub mod pods;
pub mod schedule;
pub mod server;
pub mod sinks;
pub mod web;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::store::{Reader, Store, StoreError, StoreOptions};
use api::{AppState, Auth, Readiness};
use jobs::{Context, Jobs};
use metrics::{Metrics, ResultLabel};
use monitor::Monitor;
use server::ServeLimits;
use sinks::Sinks;

/// Everything stops within this after SIGTERM.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Time jobs get to record their interrupted runs.
const JOBS_DEADLINE: Duration = Duration::from_secs(5);
/// Time the Lease elector gets to release the Lease at shutdown.
const LEASE_RELEASE_DEADLINE: Duration = Duration::from_secs(2);
/// Time sinks get to save their cursors at shutdown (a sink in the middle of a request
/// ends it at its own timeout or here, whichever is first).
const SINKS_DEADLINE: Duration = Duration::from_secs(2);

/// Why the daemon could not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A bad config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The API address could not be bound.
    #[error("cannot listen on {addr} (api.listen): {source}; is another daemon running there? choose another address")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Run until SIGTERM/SIGINT (`shutdown`).
pub async fn run(config: Option<PathBuf>, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let cfg = match &config {
        Some(p) => Config::load(p)?,
        None => Config::embedded_default(),
    };
    tracing::info!(
        "config {}: {} job(s), store {}, API on {}",
        cfg.source,
        cfg.jobs.len(),
        cfg.store.path.display(),
        cfg.api.listen
    );
    let opts = StoreOptions {
        retention: cfg.store.retention,
        gone_after: cfg.gone_after,
        ..StoreOptions::new(cfg.store.path.clone())
    };
    let (store, writer) = tokio::task::spawn_blocking(move || Store::open(opts))
        .await
        .map_err(|_| StoreError::Closed)??;
    let reader = Reader::open(cfg.store.path.clone())?;
    let listener =
        TcpListener::bind(cfg.api.listen)
            .await
            .map_err(|source| DaemonError::Listen {
                addr: cfg.api.listen,
                source,
            })?;
    let metrics = Metrics::new(reader.clone());
    let jobs_stop = CancellationToken::new();
    let cluster = cfg
        .kubernetes
        .clone()
        .map(|k| cluster::Cluster::new(k, metrics.leader.clone()));
    let ready = Arc::new(Readiness::default());
    let jobs = Arc::new(Jobs::new(Context {
        cluster: cluster.clone(),
        store: store.clone(),
        reader: reader.clone(),
        metrics: metrics.clone(),
        shutdown: jobs_stop.clone(),
        kube: cfg.kubernetes.clone().map(Arc::new),
        ready: ready.clone(),
    }));
    let sink_cx = crate::sinks::runner::Context {
        store: store.clone(),
        reader: reader.clone(),
        board: crate::sinks::SinkBoard::default(),
        metrics: metrics.sinks.clone(),
    };
    let auth = Arc::new(RwLock::new(Auth {
        token: cfg.api.token.clone(),
        read_token: cfg.api.read_token.clone(),
    }));
    let config_doc = Arc::new(RwLock::new(api::ResolvedConfig::of(&cfg)));
    let api_stop = CancellationToken::new();
    let monitor_reader = reader.clone();
    let state = AppState {
        reader,
        store: store.clone(),
        jobs: jobs.clone(),
        metrics: metrics.clone(),
        auth: auth.clone(),
        ready: ready.clone(),
        shutdown: api_stop.clone(),
        lists: Arc::new(tokio::sync::Semaphore::new(api::MAX_CONCURRENT_LISTS)),
        sinks: sink_cx.board.clone(),
        config: config_doc.clone(),
    };
    let router = api::router(state, cfg.api.body_limit as usize, cfg.api.request_timeout);
    let limits = ServeLimits {
        max_connections: cfg.api.max_connections as usize,
        header_timeout: cfg.api.header_timeout,
    };
    let api_task = tokio::spawn(server::serve(listener, router, limits, api_stop.clone()));
    jobs.apply(&cfg.jobs);
    let monitor_cx = monitor::Context {
        store: store.clone(),
        reader: monitor_reader,
        metrics: metrics.clone(),
    };
    let health = Monitor::start(cfg.health.clone(), &monitor_cx, &jobs_stop);
    let sinks_stop = CancellationToken::new();
    let running_sinks = Sinks::start(&cfg.sinks, &sink_cx, &sinks_stop);
    ready.scheduler.store(true, Ordering::Relaxed);
    tracing::info!("ready: API on http://{}", cfg.api.listen);

    let reload = Reload {
        path: config,
        current: cfg,
        jobs: jobs.clone(),
        auth,
        config_doc,
        metrics,
        monitor: Some(health),
        monitor_cx,
        monitor_stop: jobs_stop.clone(),
        sinks: Some(running_sinks),
        sink_cx,
        sinks_stop: sinks_stop.clone(),
    };
    let reloader_stop = CancellationToken::new();
    let reloader = tokio::spawn(reload.run(reloader_stop.clone()));

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    let deadline = tokio::time::Instant::now() + SHUTDOWN_DEADLINE;
    ready.scheduler.store(false, Ordering::Relaxed);
    reloader_stop.cancel();
    api_stop.cancel();
    jobs_stop.cancel();
    // The reloader hands back the monitor and sinks it runs, to stop them in order.
    let running = tokio::time::timeout(JOBS_DEADLINE, reloader).await;
    let (monitor, sinks) = match running {
        Ok(Ok((m, s))) => (m, s),
        _ => (None, None),
    };
    if let Some(m) = monitor {
        m.stop(JOBS_DEADLINE).await;
    }
    jobs.shutdown(JOBS_DEADLINE).await;
    // After the jobs: release the Lease so the next pod takes over at its next read.
    if let Some(c) = &cluster {
        c.stop(LEASE_RELEASE_DEADLINE).await;
    }
    // Sinks stop after the jobs and the monitor, so the last changes they committed are
    // still delivered when the registry answers quickly; their cursors are saved either way.
    if let Some(s) = sinks {
        s.stop(SINKS_DEADLINE).await;
    }
    sinks_stop.cancel();
    drop(jobs);
    let _ = tokio::time::timeout_at(deadline, api_task).await;
    drop(store);
    match tokio::time::timeout_at(deadline, writer.wait()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("store: {e}"),
        Err(_) => tracing::error!("the store did not finish its writes before the deadline"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: re-read and validate the config; apply it only when valid.
struct Reload {
    path: Option<PathBuf>,
    current: Config,
    jobs: Arc<Jobs>,
    auth: Arc<RwLock<Auth>>,
    /// What `GET /api/v1/config` shows.
    config_doc: Arc<RwLock<api::ResolvedConfig>>,
    metrics: Metrics,
    /// The running monitor, restarted when `health:` changes.
    monitor: Option<Monitor>,
    monitor_cx: monitor::Context,
    monitor_stop: CancellationToken,
    /// The running sinks, restarted when `sinks:` changes.
    sinks: Option<Sinks>,
    sink_cx: crate::sinks::runner::Context,
    sinks_stop: CancellationToken,
}

/// What the reloader hands back at shutdown: the monitor and sinks it runs.
type Running = (Option<Monitor>, Option<Sinks>);

impl Reload {
    /// Reload on each SIGHUP until `stop`; hands back the monitor and sinks it runs.
    async fn run(mut self, stop: CancellationToken) -> Running {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload by restarting");
            stop.cancelled().await;
            return (self.monitor.take(), self.sinks.take());
        };
        loop {
            tokio::select! {
                () = stop.cancelled() => return (self.monitor.take(), self.sinks.take()),
                s = hup.recv() => if s.is_none() { stop.cancelled().await; return (self.monitor.take(), self.sinks.take()) },
            }
            let Some((health, sinks_changed)) = self.once() else {
                continue;
            };
            if let Some(health) = health {
                if let Some(old) = self.monitor.take() {
                    old.stop(JOBS_DEADLINE).await;
                }
                self.monitor = Some(Monitor::start(health, &self.monitor_cx, &self.monitor_stop));
                tracing::info!("SIGHUP: the health monitor restarted with the new health: section");
            }
            if sinks_changed {
                if let Some(old) = self.sinks.take() {
                    old.stop(SINKS_DEADLINE).await;
                }
                self.sinks = Some(Sinks::start(
                    &self.current.sinks,
                    &self.sink_cx,
                    &self.sinks_stop,
                ));
                tracing::info!(
                    "SIGHUP: the sinks restarted with the new sinks: section ({} sink(s))",
                    self.current.sinks.len()
                );
            }
        }
    }

    /// Apply the config file once. `None` when nothing was applied; otherwise the new
    /// `health:` plan when it changed, and whether `sinks:` changed.
    fn once(&mut self) -> Option<(Option<crate::monitor::plan::HealthPlan>, bool)> {
        let count = |result: &str| {
            self.metrics
                .config_reloads
                .get_or_create(&ResultLabel {
                    result: result.into(),
                })
                .inc();
        };
        let Some(path) = &self.path else {
            tracing::info!("SIGHUP: running the embedded default config; nothing to re-read");
            count("ok");
            return None;
        };
        let new = match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("SIGHUP: config not applied, the old one keeps running: {e}");
                count("error");
                return None;
            }
        };
        if new.api.listen != self.current.api.listen {
            tracing::warn!(
                "SIGHUP: api.listen changed from {} to {}; it takes effect after a restart",
                self.current.api.listen,
                new.api.listen
            );
        }
        if new.store != self.current.store || new.gone_after != self.current.gone_after {
            tracing::warn!("SIGHUP: store and gone_after changes take effect after a restart");
        }
        if new.kubernetes != self.current.kubernetes {
            // The watchers, the Lease elector and the peer view are built from this section
            // at start; jobs added now still use the running one.
            tracing::warn!(
                "SIGHUP: kubernetes: changes (API, node, pod, Lease) take effect after a restart"
            );
        }
        *self
            .auth
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Auth {
            token: new.api.token.clone(),
            read_token: new.api.read_token.clone(),
        };
        *self
            .config_doc
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = api::ResolvedConfig::of(&new);
        let (added, removed, changed) = self.jobs.apply(&new.jobs);
        tracing::info!(
            "SIGHUP: config applied: {added} job(s) added, {removed} removed, {changed} changed"
        );
        count("ok");
        let health_changed = new.health != self.current.health;
        let sinks_changed = new.sinks != self.current.sinks;
        self.current = new;
        Some((
            health_changed.then(|| self.current.health.clone()),
            sinks_changed,
        ))
    }
}
