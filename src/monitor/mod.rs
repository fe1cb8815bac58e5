//! The health monitor's groundwork (issue 8): the pure parts, tested on their own, that the
//! daemon's monitor task will feed.
//!
//! What exists:
//! - [`state`]: the per-server health state machine, a pure function
//!   `(state, one check's results, thresholds, now) → (new state, optional transition)`,
//!   with the `unknown`, `healthy`, `degraded`, `unhealthy` and `gone` statuses, the
//!   consecutive-failure and recovery thresholds, degraded latency, flap damping and the
//!   `health` object every server will carry.
//! - [`cel`]: custom-check conditions (`expect:`) in CEL, the only module that touches the
//!   `cel` crate. Expressions are size- and depth-capped, compiled on a thread with a large
//!   stack, and checked against the variables a check provides, so a bad one is a config
//!   error; at run time an error is a failed check with a message, never a panic.
//!
//! What the daemon integration will add (not here yet):
//! - a scheduler that checks every known server each `health.interval`, spread over the
//!   interval by a stable offset (a hash of the server id modulo the interval, as Prometheus
//!   spreads its scrapes), with at most `health.concurrency` checks in flight (a semaphore)
//!   and never two of the same server at once;
//! - the built-in `mcp` check (the handshake and `tools/list`, then a DELETE of the session)
//!   and the `http`, `mcp_call` and `tcp` custom checks, whose results become
//!   [`cel::CheckVars`] for their `expect` and [`state::CheckResult`]s for [`state::step`];
//! - the config keys (`health.*`, each custom check's `match`, `severity`, `interval`),
//!   validated into [`state::Thresholds`] and compiled [`cel::Condition`]s at load time;
//! - history: every result kept in the store for `store.retention`, hourly rollups for
//!   90 days, uptime fractions, `health_changed` changes from each [`state::Transition`],
//!   the API's `checks` endpoint and the metrics.

pub mod cel;
pub mod check;
pub mod custom;
pub mod exchange;
pub mod plan;
pub mod state;
