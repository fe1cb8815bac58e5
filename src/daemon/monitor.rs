//! The daemon's health monitor: the inventory's active servers, checked on schedule by
//! speaking MCP, their results stored and counted.
//!
//! ```text
//!  store broadcast ─▶ follow (debounced reload of active servers) ─▶ watch ─┐
//!                                                                           ▼
//!        McpProber (monitor::check: built-in `mcp` + custom checks) ◀── Scheduler
//!                                                                           │ Checked
//!                                       persist: metrics, Store::record_health ◀┘
//! ```
//!
//! Three tasks under one token: `follow` keeps the scheduler's membership in line with the
//! inventory, the [`Scheduler`] decides when and applies the state machine, and `persist`
//! writes each result (one at a time, in order) and feeds the metrics. A failing store is
//! logged and never stalls checks: the scheduler's queue to `persist` is bounded and drops
//! (and counts) when full. A SIGHUP that changes `health:` restarts the three tasks; states
//! come back from the store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::metrics::{CheckLabel, CheckResultLabel, Metrics};
use crate::monitor::check::{Checker, Target};
use crate::monitor::plan::HealthPlan;
use crate::monitor::scheduler::{
    BoxFuture, Checked, Outcome, Prober, Scheduler, Settings, Slot, Watched, UPDATE_QUEUE,
};
use crate::monitor::state::CheckResult;
use crate::store::{ChangeKind, HealthUpdate, Reader, ServerFilter, Store};

/// Changes are gathered this long before the server list is re-read.
pub const FOLLOW_DEBOUNCE: Duration = Duration::from_secs(1);
/// The server list is re-read at least this often (a lagging broadcast loses changes).
pub const FOLLOW_EVERY: Duration = Duration::from_secs(60);

/// A running monitor.
pub struct Monitor {
    plan: HealthPlan,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// What the monitor needs from the daemon.
#[derive(Clone)]
pub struct Context {
    /// The writer.
    pub store: Store,
    /// A reader.
    pub reader: Reader,
    /// Metrics.
    pub metrics: Metrics,
}

impl Monitor {
    /// Start checking, unless `health.enabled` is false (then nothing runs).
    pub fn start(plan: HealthPlan, cx: &Context, shutdown: &CancellationToken) -> Self {
        let stop = shutdown.child_token();
        let mut tasks = Vec::new();
        if plan.enabled {
            let (members_tx, members_rx) = watch::channel(Arc::new(Vec::new()));
            let (updates_tx, updates_rx) = mpsc::channel(UPDATE_QUEUE);
            let prober = Arc::new(McpProber {
                checker: Checker::new(&plan),
                plan: Arc::new(plan.clone()),
            });
            let settings = Settings {
                concurrency: plan.concurrency,
                thresholds: plan.thresholds.clone(),
            };
            tasks.push(tokio::spawn(follow(cx.clone(), members_tx, stop.clone())));
            let scheduler = Scheduler::new(prober, settings, members_rx, updates_tx)
                .with_in_flight(cx.metrics.health.in_flight.clone());
            let s = stop.clone();
            tasks.push(tokio::spawn(async move {
                let counters = scheduler.run(s).await;
                tracing::info!(
                    "monitor stopped: {} batches, {} slots skipped, {} results dropped",
                    counters.batches,
                    counters.skipped,
                    counters.dropped
                );
            }));
            tasks.push(tokio::spawn(persist(cx.clone(), updates_rx)));
            tracing::info!(
                "monitor: every {} s, timeout {} s, {} at once, {} custom check(s)",
                plan.interval.as_secs_f64(),
                plan.timeout.as_secs_f64(),
                plan.concurrency,
                plan.checks.len()
            );
        } else {
            tracing::info!("monitor: off (health.enabled: false)");
        }
        Self { plan, stop, tasks }
    }

    /// The plan it runs.
    pub fn plan(&self) -> &HealthPlan {
        &self.plan
    }

    /// Stop and wait for the tasks, at most `limit`.
    pub async fn stop(self, limit: Duration) {
        self.stop.cancel();
        let all = futures_util::future::join_all(self.tasks);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("monitor: tasks did not stop within {} s", limit.as_secs());
        }
    }
}

/// Keep the scheduler's membership equal to the inventory's active servers.
async fn follow(cx: Context, members: watch::Sender<Arc<Vec<Watched>>>, stop: CancellationToken) {
    let mut changes = cx.store.subscribe();
    loop {
        match load(&cx.reader).await {
            Ok(list) => {
                let keep: HashSet<String> = list.iter().map(|w| w.id.clone()).collect();
                cx.metrics.health.retain(&keep);
                members.send_replace(Arc::new(list));
            }
            Err(e) => tracing::warn!("monitor: cannot read the inventory: {e}"),
        }
        // Wait for a change that adds, alters or removes a server, or the backstop.
        let backstop = tokio::time::sleep(FOLLOW_EVERY);
        tokio::pin!(backstop);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = &mut backstop => break,
                c = changes.recv() => match c {
                    Ok(c) if c.kind == ChangeKind::HealthChanged => {}
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(FOLLOW_DEBOUNCE) => {}
                        }
                        while changes.try_recv().is_ok() {}
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

/// The active servers, as the scheduler watches them.
async fn load(reader: &Reader) -> Result<Vec<Watched>, crate::store::StoreError> {
    let reader = reader.clone();
    let servers = tokio::task::spawn_blocking(move || reader.servers(&ServerFilter::default()))
        .await
        .map_err(|_| crate::store::StoreError::Closed)??;
    Ok(servers
        .into_iter()
        .map(|s| Watched {
            id: s.id.as_str().to_owned(),
            health: s.record.health.clone(),
            jobs: s.jobs,
            record: Arc::new(s.record),
        })
        .collect())
}

/// Count each result and store it, in order.
async fn persist(cx: Context, mut updates: mpsc::Receiver<Checked>) {
    let mut last_error: Option<String> = None;
    while let Some(c) = updates.recv().await {
        cx.metrics
            .health
            .set(&c.server_id, c.server_name.as_deref(), c.health.status);
        for r in &c.results {
            let result = if r.ok { "pass" } else { "fail" };
            cx.metrics
                .check_runs
                .get_or_create(&CheckResultLabel {
                    check: r.name.clone(),
                    result: result.into(),
                })
                .inc();
            cx.metrics
                .check_duration
                .get_or_create(&CheckLabel {
                    check: r.name.clone(),
                })
                .observe(r.latency.unwrap_or(c.took).as_secs_f64());
        }
        if let Some(t) = &c.transition {
            tracing::info!(
                server = %c.server_id,
                "health {} → {}: {}",
                t.from,
                t.to,
                t.reason
            );
        }
        let update = HealthUpdate {
            server_id: c.server_id,
            at: c.at,
            results: c.results,
            health: c.health,
            transition: c.transition,
            tools: c.tools,
        };
        match cx.store.record_health(update).await {
            Ok(_) => last_error = None,
            Err(e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(&msg) {
                    tracing::warn!("monitor: cannot store a health result: {msg}");
                }
                last_error = Some(msg);
            }
        }
    }
}

/// The daemon's prober: the built-in `mcp` check and the plan's custom checks.
struct McpProber {
    checker: Checker,
    plan: Arc<HealthPlan>,
}

impl McpProber {
    fn target(server: &Watched) -> Option<Target> {
        Target::from_record(&server.record, &server.jobs)
    }

    fn name(&self, slot: Slot) -> String {
        match slot {
            Slot::Builtin => "mcp".to_owned(),
            Slot::Custom(i) => self
                .plan
                .checks
                .get(i)
                .map_or_else(|| format!("check {i}"), |c| c.name.clone()),
        }
    }

    fn slot_timeout(&self, slot: Slot) -> Duration {
        match slot {
            Slot::Builtin => self.plan.timeout,
            Slot::Custom(i) => self
                .plan
                .checks
                .get(i)
                .and_then(|c| c.timeout)
                .unwrap_or(self.plan.timeout),
        }
    }
}

impl Prober for McpProber {
    fn slots(&self, server: &Watched) -> Vec<(Slot, Duration)> {
        let Some(target) = Self::target(server) else {
            return Vec::new();
        };
        let mut slots = vec![(Slot::Builtin, self.plan.interval)];
        for (i, c) in self.plan.checks.iter().enumerate() {
            if c.matcher.matches(&target) {
                slots.push((Slot::Custom(i), c.interval.unwrap_or(self.plan.interval)));
            }
        }
        slots
    }

    fn timeout(&self, _: &Watched, slots: &[Slot]) -> Duration {
        // The checks of a batch run side by side.
        slots
            .iter()
            .map(|s| self.slot_timeout(*s))
            .max()
            .unwrap_or(self.plan.timeout)
    }

    fn timed_out(&self, slot: Slot, after: Duration) -> CheckResult {
        let r = CheckResult::fail(
            self.name(slot),
            format!("no result within {} ms", after.as_millis()),
        );
        match slot {
            Slot::Custom(i)
                if self.plan.checks.get(i).map(|c| c.severity)
                    == Some(crate::monitor::state::Severity::Warning) =>
            {
                r.warning()
            }
            _ => r,
        }
    }

    fn check(&self, server: Arc<Watched>, slots: Vec<Slot>) -> BoxFuture<Outcome> {
        let checker = self.checker.clone();
        let plan = self.plan.clone();
        let timeouts: Vec<Duration> = slots.iter().map(|s| self.slot_timeout(*s)).collect();
        Box::pin(async move {
            let Some(target) = Self::target(&server) else {
                return Outcome::default();
            };
            let bearer = plan.bearer_for(&target);
            let runs = slots.iter().zip(timeouts).map(|(slot, timeout)| {
                let checker = &checker;
                let target = &target;
                let plan = &plan;
                async move {
                    match slot {
                        Slot::Builtin => checker.builtin(target, bearer, timeout).await,
                        Slot::Custom(i) => {
                            checker
                                .custom(target, &plan.checks[*i], bearer, timeout)
                                .await
                        }
                    }
                }
            });
            let reports = futures_util::future::join_all(runs).await;
            let mut outcome = Outcome::default();
            for (slot, report) in slots.iter().zip(reports) {
                if *slot == Slot::Builtin {
                    outcome.tools = report.tools;
                }
                outcome.results.push(report.result);
            }
            outcome
        })
    }
}
