//! The health monitor (issue 8): what a check is, how it runs, when it runs, and what its
//! results do to a server's health. Each part is tested on its own.
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
//! - [`plan`]: the `health:` config section, validated at load into a [`plan::HealthPlan`]
//!   (intervals, limits, [`state::Thresholds`], credentials, custom checks with compiled
//!   conditions and their `match`).
//! - [`check`]: the engine. [`check::Checker`] runs the built-in `mcp` check (by verdict and
//!   transport: the strict [`exchange`], the fingerprint's legacy SSE, auth and signal
//!   probes) and the [`custom`] checks, each bounded by one timeout and the body cap, and
//!   returns a [`check::Report`] whose result feeds [`state::step`]. `mcp-scout check`
//!   runs it once.
//!
//! - [`scheduler`]: when each server is checked: a stable phase per server (a hash of its
//!   id modulo the interval, as Prometheus spreads its scrapes), no drift, at most
//!   `health.concurrency` batches in flight, never two batches of one server at once; it
//!   owns each server's state and applies [`state::step`], and hands every result to a
//!   channel (the store, the metrics) so a slow store never stalls a check.
//!
//! The daemon runs them in `daemon::monitor`: the inventory's active servers feed the
//! scheduler, and each result goes to the store (history, rollups, uptime,
//! `health_changed`, tool drift from [`check::Report::tools`]) and the metrics.

pub mod cel;
pub mod check;
pub mod custom;
pub mod exchange;
pub mod plan;
pub mod scheduler;
pub mod state;
