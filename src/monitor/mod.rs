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
//! - [`plan`]: the `health:` config section, validated at load into a [`plan::HealthPlan`]
//!   (intervals, limits, [`state::Thresholds`], credentials, custom checks with compiled
//!   conditions and their `match`).
//! - [`check`]: the engine. [`check::Checker`] runs the built-in `mcp` check (by verdict and
//!   transport: the strict [`exchange`], the fingerprint's legacy SSE, auth and signal
//!   probes) and the [`custom`] checks, each bounded by one timeout and the body cap, and
//!   returns a [`check::Report`] whose result feeds [`state::step`]. `mcp-scout check`
//!   runs it once.
//!
//! What the daemon integration will add (not here yet):
//! - a scheduler that checks every known server each `health.interval`, spread over the
//!   interval by a stable offset (a hash of the server id modulo the interval, as Prometheus
//!   spreads its scrapes), with at most `health.concurrency` checks in flight (a semaphore)
//!   and never two of the same server at once, built from [`check::Target::from_record`],
//!   [`plan::HealthPlan::checks_for`] and [`plan::HealthPlan::bearer_for`];
//! - history: every result kept in the store for `store.retention`, hourly rollups for
//!   90 days, uptime fractions, `health_changed` changes from each [`state::Transition`],
//!   tool drift from [`check::Report::tools`], the API's `checks` endpoint and the metrics.

pub mod cel;
pub mod check;
pub mod custom;
pub mod exchange;
pub mod plan;
pub mod state;
