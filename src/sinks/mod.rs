//! Sinks: keep the registries people already run equal to the inventory.
//!
//! ```text
//!  store: changes (seq) ──▶ runner (one task per sink, runner.rs) ──▶ Sink::deliver ──▶ registry
//!    ▲   sink_state (cursor, entries, dead letters)   │  ▲ every `resync`, at start, after an
//!    └────────────── progress, through the writer ────┘  └ outage: Sink::reconcile (desired
//!                                                          = inventory ∩ only ∩ Sink::wants)
//! ```
//!
//! - **The change feed is the outbox.** Changes commit in the same transaction as the run
//!   that made them, with a strictly increasing `seq`; each sink keeps a durable cursor (the
//!   last seq it delivered) in the store's `sink_state` table. A crash between a delivery
//!   and its cursor write re-delivers from the old cursor: at least once, in seq order, so in
//!   order per server. This is the transactional outbox without one row per (change, sink):
//!   a sink that is far behind costs nothing but its cursor, and memory stays flat however
//!   long a registry is down.
//! - **State sinks** (Mesh, Kailash file, etcd, ContextForge, Consul, server.json) deliver a
//!   change by making the registry hold the server's *current* state ([`Sink::put`]) or not
//!   hold it ([`Sink::remove`]): every write is an idempotent upsert keyed by the ServerId,
//!   so a re-delivery, a second daemon or a resync changes nothing. **Event sinks** (the
//!   webhook) override [`Sink::deliver`] and send the change itself.
//! - **Reconciliation** ([`Sink::list_ours`] + put/remove) is what makes a registry that
//!   restarted empty, or a cursor older than the retained changes, converge. A sink only
//!   ever lists and removes entries it marked as its own (a tag, a key prefix or a metadata
//!   key), never someone else's.
//! - **Failures** never leave the sink's task: a transient error backs the sink off (capped,
//!   jittered exponential, `retry:`), a rejected delivery goes to the dead letters and the
//!   cursor moves on. Discovery, health and the other sinks never wait on a sink.
//!
//! Each type is one file: [`mesh`], `kailash`, `etcd`, `webhook`, `contextforge`, `consul`,
//! [`server_json`]. [`plan`] is the `sinks:` config, [`only`] the filter, [`http`] the
//! bounded HTTP client they share, [`files`] the atomic writes of the file sinks,
//! [`board`] and [`metrics`] what the API and `/metrics` show, [`runner`] the task, and
//! [`push`] the one-shot `scan --push`.

pub mod board;
pub mod consul;
pub mod contextforge;
pub mod etcd;
pub mod files;
pub mod http;
pub mod kailash;
pub mod mesh;
pub mod metrics;
pub mod only;
pub mod plan;
pub mod push;
pub mod runner;
pub mod server_json;
pub mod webhook;

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{Change, ServerStatus, StoredServer};

pub use board::{SinkBoard, SinkState, SinkStatus};
pub use plan::{SinkKind, SinkPlan};

/// What went wrong talking to a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying: the registry is down, slow, overloaded (408, 429, 5xx, 503 back-off)
    /// or the local file system failed.
    #[error("{0}")]
    Transient(String),
    /// The registry refused this one delivery for good (another 4xx): it goes to the dead
    /// letters and the sink moves on.
    #[error("rejected{}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Rejected {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What the registry said (bounded) or why.
        message: String,
    },
}

impl SinkError {
    /// A transient error with this message.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }
}

/// Whether a sink lists a server it is asked about (beyond the `only:` filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// It belongs in the registry.
    Yes,
    /// It does not belong there now (unhealthy, for instance): removed if it was listed.
    No,
    /// It cannot be listed (for instance no tools for Mesh): removed if listed, and the
    /// reason is counted in `mcp_scout_sink_skipped_total{sink,reason}`.
    Skip(&'static str),
}

/// What a periodic [`Sink::tick`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing to do.
    Fine,
    /// The registry lost (some of) our entries: reconcile now.
    Resync,
}

/// One registry type. The runner calls these from one task, one at a time (`&mut self`),
/// so an implementation keeps its connection state (a lease, a session) in plain fields.
/// Every method is bounded by the sink's request timeout and body cap ([`http::Client`]).
pub trait Sink: Send + Sync + 'static {
    /// Whether `server` (active, and matching `only:`) belongs in this registry now.
    fn wants(&self, server: &StoredServer) -> Wanted {
        let _ = server;
        Wanted::Yes
    }

    /// Make the registry hold `server`'s current state: create or update, idempotent.
    fn put(&mut self, server: &StoredServer) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Make the registry not hold the server `id` (one of ours): idempotent, so an entry
    /// already absent is a success.
    fn remove(&mut self, id: &str) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// The ids of the entries in the registry that are ours (by our tag, prefix or
    /// metadata key), for reconciliation.
    fn list_ours(&mut self) -> impl Future<Output = Result<Vec<String>, SinkError>> + Send;

    /// Put many servers (a reconciliation, an initial sync). The default puts them one by
    /// one and stops at the first error; a registry that takes parallel requests overrides
    /// it.
    fn put_all(
        &mut self,
        servers: &[StoredServer],
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        async move {
            for s in servers {
                self.put(s).await?;
            }
            Ok(())
        }
    }

    /// Called after each batch of deliveries and after a reconciliation: a file sink writes
    /// its file here.
    fn flush(&mut self) -> impl Future<Output = Result<(), SinkError>> + Send {
        async { Ok(()) }
    }

    /// How often [`Sink::tick`] runs (heartbeats, lease keep-alives, refreshed timestamps);
    /// `None`: never.
    fn tick_every(&self) -> Option<Duration> {
        None
    }

    /// Periodic work over the servers this sink currently lists (`listed`, by id).
    fn tick(
        &mut self,
        listed: &runner::Listed,
    ) -> impl Future<Output = Result<Tick, SinkError>> + Send {
        let _ = listed;
        async { Ok(Tick::Fine) }
    }

    /// Whether [`Sink::reconcile`]-style resyncs apply (an event sink has no state to
    /// reconcile).
    fn reconciles(&self) -> bool {
        true
    }

    /// Deliver one change. `server` is the server's current state (`None` when it was
    /// deleted from the inventory) and `wanted` whether it belongs in the registry now. A
    /// state sink keeps the default: put when wanted, remove otherwise.
    fn deliver(
        &mut self,
        change: &Change,
        server: Option<&StoredServer>,
        wanted: bool,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        async move {
            match server {
                Some(s) if wanted => self.put(s).await,
                _ => self.remove(&change.server_id).await,
            }
        }
    }
}

/// Whether `server` is active (a gone one is never wanted).
pub fn is_active(server: &StoredServer) -> bool {
    server.status == ServerStatus::Active
}

/// The tag, metadata value and key prefix that mark an entry as ours in every registry.
pub const OURS: &str = "mcp-scout";

/// This machine's host name (`localhost` when it cannot be read): how a sink names this
/// daemon in what it writes (etcd's `scanner`, the webhook's `source`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// What to do with a sink once [`build`] made it: start its task ([`spawn`]) or push a
/// scan's servers through it once ([`push`]). Generic over the type, so the one `match`
/// from plan to type is written once, in [`build`].
pub trait Visitor {
    /// What the visit gives back.
    type Out;
    /// Use `sink`, built from `plan`.
    fn visit<S: Sink>(self, sink: S, plan: SinkPlan) -> Self::Out;
    /// The metrics a sink built for this visit counts its requests in (none for a push).
    fn metrics(&self) -> Option<metrics::SinkMetrics> {
        None
    }
}

/// Build the sink `plan` describes and hand it to `v`.
pub fn build<V: Visitor>(plan: SinkPlan, v: V) -> Result<V::Out, SinkError> {
    let metrics = v.metrics();
    Ok(match &plan.kind {
        SinkKind::ServerJson { dir } => {
            let sink = server_json::ServerJson::new(dir.clone());
            v.visit(sink, plan)
        }
        SinkKind::Etcd {
            endpoints,
            prefix,
            lease_ttl,
            user,
        } => {
            let settings = etcd::Settings {
                endpoints: endpoints.clone(),
                prefix: prefix.clone(),
                lease_ttl: *lease_ttl,
                user: user.clone(),
                scanner: etcd::scanner_name(),
            };
            let sink = etcd::Etcd::new(settings, plan.timeout)?;
            v.visit(sink, plan)
        }
        SinkKind::Webhook {
            url,
            secret,
            headers,
        } => {
            let settings = webhook::Settings {
                url: url.clone(),
                secret: secret.clone(),
                headers: headers.clone(),
                source: webhook::source_name(),
            };
            let sink = webhook::Webhook::new(settings, plan.timeout)?;
            v.visit(sink, plan)
        }
        SinkKind::KailashFile { path, refresh } => {
            let sink = kailash::KailashFile::new(path.clone(), *refresh);
            v.visit(sink, plan)
        }
        SinkKind::Consul { url, token, ttl } => {
            let sink = consul::Consul::new(consul::Options {
                url: url.clone(),
                token: token.clone(),
                ttl: *ttl,
                timeout: plan.timeout,
                concurrency: plan.concurrency,
            })?;
            v.visit(sink, plan)
        }
        SinkKind::ContextForge { url, token } => {
            let sink = contextforge::ContextForge::new(url.clone(), token.clone(), plan.timeout)?;
            v.visit(sink, plan)
        }
        SinkKind::Mesh { .. } => {
            let sink = mesh::Mesh::new(&plan, metrics)?;
            v.visit(sink, plan)
        }
    })
}

struct Spawner {
    cx: runner::Context,
    stop: CancellationToken,
}

impl Visitor for Spawner {
    type Out = JoinHandle<()>;
    fn visit<S: Sink>(self, sink: S, plan: SinkPlan) -> JoinHandle<()> {
        tokio::spawn(runner::run(sink, plan, self.cx, self.stop))
    }
    fn metrics(&self) -> Option<metrics::SinkMetrics> {
        Some(self.cx.metrics.clone())
    }
}

/// Start the sink `plan` describes as a task under `stop`.
pub fn spawn(
    plan: SinkPlan,
    cx: runner::Context,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, SinkError> {
    build(plan, Spawner { cx, stop })
}
