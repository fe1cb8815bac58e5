//! What each running sink reports about itself, for `GET /api/v1/sinks` and the
//! `mcp_scout_sink_*` metrics: one shared map, written by the sinks' runners, read by the
//! API (a snapshot, never held across an await).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Consecutive failed attempts after which a retrying sink is `failing`.
pub const FAILING_AFTER: u32 = 5;

/// Where a sink is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkState {
    /// Its last attempt worked.
    Ok,
    /// Its last attempt failed; it backs off and tries again.
    Retrying,
    /// [`FAILING_AFTER`] attempts in a row failed; it still tries, at the longest back-off.
    Failing,
}

/// One sink's status, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// Its type (`mcp-mesh`…).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where it writes (credentials removed).
    pub target: String,
    /// `ok`, `retrying` or `failing`.
    pub state: SinkState,
    /// Changes committed and not yet delivered.
    pub queue_depth: u64,
    /// The seq of the last change delivered.
    pub cursor: i64,
    /// RFC 3339 time of the last successful delivery, reconciliation or tick.
    pub last_success: Option<String>,
    /// The last error, until an attempt succeeds.
    pub last_error: Option<String>,
    /// RFC 3339 time of the last completed reconciliation.
    pub last_resync: Option<String>,
    /// Attempts in a row that failed.
    pub consecutive_failures: u32,
    /// Servers it lists now.
    pub listed: u64,
    /// Deliveries the registry refused for good (see `dead_letters` in the API).
    pub dead_letter_count: u64,
}

impl SinkStatus {
    /// The status of a sink that has not run yet.
    pub fn new(name: &str, kind: &'static str, target: String) -> Self {
        Self {
            name: name.into(),
            kind,
            target,
            state: SinkState::Ok,
            queue_depth: 0,
            cursor: 0,
            last_success: None,
            last_error: None,
            last_resync: None,
            consecutive_failures: 0,
            listed: 0,
            dead_letter_count: 0,
        }
    }
}

/// Every sink's status, by name (cheap clone).
#[derive(Debug, Clone, Default)]
pub struct SinkBoard {
    inner: Arc<Mutex<BTreeMap<String, SinkStatus>>>,
}

impl SinkBoard {
    /// Put or replace a sink's status.
    pub fn set(&self, status: SinkStatus) {
        self.lock().insert(status.name.clone(), status);
    }

    /// Change a sink's status in place (nothing when it is not on the board).
    pub fn update(&self, name: &str, f: impl FnOnce(&mut SinkStatus)) {
        if let Some(s) = self.lock().get_mut(name) {
            f(s);
        }
    }

    /// Forget the sinks not in `keep` (after a reload removed them).
    pub fn retain(&self, keep: &[String]) {
        self.lock().retain(|name, _| keep.contains(name));
    }

    /// Every status, by name.
    pub fn snapshot(&self) -> Vec<SinkStatus> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SinkStatus>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
