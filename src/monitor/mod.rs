//! The health monitor's groundwork (issue 8): the pure parts, tested on their own, that the
//! daemon's monitor task will feed.
//!
//! What exists:
//! - [`state`]: the per-server health state machine, a pure function
//!   `(state, one check's results, thresholds, now) → (new state, optional transition)`,
//!   with the `unknown`, `healthy`, `degraded`, `unhealthy` and `gone` statuses, the
//!   consecutive-failure and recovery thresholds, degraded latency, flap damping and the
//!   `health` object every server will carry.
//!
//! What the daemon integration will add (not here yet):
//! - a scheduler that checks every known server each `health.interval`, spread over the
//!   interval by a stable offset (a hash of the server id modulo the interval, as Prometheus
//!   spreads its scrapes), with at most `health.concurrency` checks in flight (a semaphore)
//!   and never two of the same server at once;
//! - the built-in `mcp` check (the handshake and `tools/list`, then a DELETE of the session)
//!   and the custom checks, whose results become [`state::CheckResult`]s for [`state::step`];
//! - the config keys (`health.*`), validated into [`state::Thresholds`] at load time;
//! - history: every result kept in the store for `store.retention`, hourly rollups for
//!   90 days, uptime fractions, `health_changed` changes from each [`state::Transition`],
//!   the API's `checks` endpoint and the metrics.

pub mod state;
