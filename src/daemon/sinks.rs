//! The daemon's sinks: one task per configured sink ([`crate::sinks::runner`]), started
//! after the store opens, restarted as a set when SIGHUP changes `sinks:` (their cursors
//! are in the store, so a restart loses and doubles nothing), stopped in order at shutdown.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sinks::runner::Context;
use crate::sinks::{self, SinkPlan};

/// The running sinks.
pub struct Sinks {
    stop: CancellationToken,
    tasks: Vec<(String, JoinHandle<()>)>,
}

impl Sinks {
    /// Start every sink of `plans` under a child of `parent`. A sink that cannot start is
    /// logged and shown as failing; the others run.
    pub fn start(plans: &[SinkPlan], cx: &Context, parent: &CancellationToken) -> Self {
        let stop = parent.child_token();
        let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
        cx.board.retain(&names);
        let mut tasks = Vec::new();
        for plan in plans {
            let name = plan.name.clone();
            match sinks::spawn(plan.clone(), cx.clone(), stop.clone()) {
                Ok(t) => {
                    tracing::info!(sink = %name, "sink started: {}", plan.describe());
                    tasks.push((name, t));
                }
                Err(e) => {
                    tracing::error!(sink = %name, "sink not started: {e}");
                    let mut status = crate::sinks::SinkStatus::new(
                        &name,
                        plan.kind.type_name(),
                        plan.kind.target(),
                    );
                    status.state = crate::sinks::SinkState::Failing;
                    status.last_error = Some(format!("not started: {e}"));
                    cx.board.set(status);
                }
            }
        }
        Self { stop, tasks }
    }

    /// Stop every sink (each saves its cursor) and wait at most `deadline`.
    pub async fn stop(self, deadline: Duration) {
        self.stop.cancel();
        let until = tokio::time::Instant::now() + deadline;
        for (name, t) in self.tasks {
            if tokio::time::timeout_at(until, t).await.is_err() {
                tracing::warn!(sink = %name, "the sink did not stop within the deadline");
            }
        }
    }
}
