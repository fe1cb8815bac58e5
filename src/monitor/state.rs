//! The per-server health state machine: a pure function from (state, the results of one
//! check of the server, thresholds, now) to (new state, optional transition).
//!
//! Nothing here sleeps, reads a clock or touches I/O: the scheduler feeds [`step`] and
//! publishes the [`Transition`]s it returns as `health_changed` changes. That is what lets
//! the rules be tested with plain values, one table row per rule.
//!
//! The rules (issue 8):
//! - **Start.** A server starts [`Status::Unknown`]; its first passing check makes it
//!   healthy (or degraded, when a warning check fails or it is slow).
//! - **Failing.** `unhealthy_threshold` consecutive checks with a critical failure make it
//!   unhealthy. Fewer leave the status as it was: one lost packet is not news.
//! - **Recovering.** From unhealthy it takes `healthy_threshold` consecutive passes; a
//!   failure in between starts the count again.
//! - **Degraded.** Every critical check passes, but a warning check fails or the latency is
//!   above `degraded_latency`. A warning failure alone never makes a server unhealthy.
//! - **Flapping.** When the status the rules give changed in more than `flap_threshold` of
//!   the last `flap_window` checks, the server is marked `flapping` and its last stable
//!   status stands (for the feed, the sinks and [`Health::status`]) until the change rate
//!   falls to [`FLAP_SETTLE_RATIO`] of the threshold. Settling lower than entering is
//!   hysteresis, as in Nagios: a rate hovering at the threshold must not toggle it.
//! - **Gone.** [`mark_gone`] (from the inventory, not from a check) makes it gone at once,
//!   flapping or not. Gone is terminal: results that arrive later are ignored, until
//!   [`seen_again`] starts it over as unknown.
//!
//! One *check of the server* is a batch of [`CheckResult`]s: the built-in `mcp` check and the
//! custom checks due at that time. The consecutive counters move once per batch, on the
//! critical results in it; a batch with no critical result (a warning check on its own
//! interval) leaves them as they were. A warning's last result stands until it runs again,
//! so a slow warning check keeps a server degraded between its runs. A critical check's
//! stale result is not counted again: the threshold counts observations, not time.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Consecutive checks with a critical failure that make a server unhealthy.
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
/// Consecutive passing checks that bring an unhealthy server back.
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Latency above which a passing server is degraded.
pub const DEFAULT_DEGRADED_LATENCY: Duration = Duration::from_secs(5);
/// Fraction of the window's checks that changed status above which a server flaps.
pub const DEFAULT_FLAP_THRESHOLD: f64 = 0.3;
/// Checks over which flapping is measured.
pub const DEFAULT_FLAP_WINDOW: usize = 20;
/// A flapping server settles when its change rate is at most this fraction of the flap
/// threshold (with the defaults: 3 changes in 20 checks, against 7 to start flapping).
pub const FLAP_SETTLE_RATIO: f64 = 0.5;

/// A server's health, as the feed, the API and the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not checked yet, or no verdict yet.
    #[default]
    Unknown,
    /// Every check passes.
    Healthy,
    /// Every critical check passes, but a warning check fails or it is slow.
    Degraded,
    /// Critical checks failed `unhealthy_threshold` times in a row.
    Unhealthy,
    /// Discovery no longer finds it.
    Gone,
}

impl Status {
    /// The name used in JSON, metrics labels and `--health-status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
            Self::Gone => "gone",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a failing check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Its failures count towards unhealthy (the default).
    #[default]
    Critical,
    /// Its failure makes a server degraded at worst.
    Warning,
}

/// The resolved thresholds of the rules (validated by the config: both counts at least 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// Consecutive critical failures that make a server unhealthy.
    pub unhealthy_threshold: u32,
    /// Consecutive passes that bring an unhealthy server back.
    pub healthy_threshold: u32,
    /// Latency above which a passing server is degraded.
    pub degraded_latency: Duration,
    /// Fraction (0 to 1) of the window's checks that changed status above which it flaps.
    pub flap_threshold: f64,
    /// Checks over which flapping is measured; 0 turns flap damping off.
    pub flap_window: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            healthy_threshold: DEFAULT_HEALTHY_THRESHOLD,
            degraded_latency: DEFAULT_DEGRADED_LATENCY,
            flap_threshold: DEFAULT_FLAP_THRESHOLD,
            flap_window: DEFAULT_FLAP_WINDOW,
        }
    }
}

/// What one check said, as the scheduler hands it to [`step`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// The check's name (`mcp` for the built-in one).
    pub name: String,
    /// How much a failure counts.
    pub severity: Severity,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed, or a short note when it passed.
    pub message: String,
    /// How long it took, when it measured that.
    pub latency: Option<Duration>,
}

impl CheckResult {
    /// A passing critical check.
    pub fn pass(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            severity: Severity::Critical,
            ok: true,
            message: String::new(),
            latency: None,
        }
    }

    /// A failing critical check.
    pub fn fail(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
            ..Self::pass(name)
        }
    }

    /// The same result, for a warning check.
    #[must_use]
    pub fn warning(self) -> Self {
        Self {
            severity: Severity::Warning,
            ..self
        }
    }

    /// The same result, with this message.
    #[must_use]
    pub fn with_message(self, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..self
        }
    }

    /// The same result, with its latency.
    #[must_use]
    pub fn with_latency(self, latency: Duration) -> Self {
        Self {
            latency: Some(latency),
            ..self
        }
    }
}

/// The last result of one check, as shown in [`Health::checks`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Its message.
    pub message: String,
    /// When it ran (RFC 3339).
    #[serde(with = "rfc3339_serde")]
    pub at: SystemTime,
    /// Its severity: kept because a warning's last result decides `degraded`.
    pub severity: Severity,
}

/// A server's `health` object: what the API, the feed and `servers` show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The published status (while flapping, the last stable one).
    pub status: Status,
    /// When the published status last changed (RFC 3339).
    #[serde(with = "rfc3339_serde")]
    pub since: SystemTime,
    /// Why it has that status: the failing check and its message, for instance.
    pub reason: Option<String>,
    /// Whether the status changes too often to be published.
    pub flapping: bool,
    /// When it was last checked (RFC 3339).
    #[serde(with = "rfc3339_serde::option")]
    pub last_check_at: Option<SystemTime>,
    /// The slowest latency of its last check that measured one.
    pub latency_ms: Option<f64>,
    /// Checks in a row with a critical failure.
    pub consecutive_failures: u32,
    /// Checks in a row whose critical results all passed.
    pub consecutive_successes: u32,
    /// The last result of each check, in the order they first ran.
    pub checks: Vec<CheckRecord>,
}

/// A change of published status: a `health_changed` change in the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// The status before.
    pub from: Status,
    /// The status after.
    pub to: Status,
    /// When (RFC 3339).
    #[serde(with = "rfc3339_serde")]
    pub at: SystemTime,
    /// The check that caused it, when one did.
    pub check: Option<String>,
    /// Why, in words: the failing check and its message, for instance.
    pub reason: String,
}

/// One server's state: its [`Health`] plus what the rules need to remember.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthState {
    health: Health,
    /// The status the rules give, before flap damping; `health.status` is the damped one.
    current: Status,
    /// Whether `current` changed at each recent check, oldest first; at most `flap_window`
    /// long, so memory per server is bounded whatever the uptime.
    changes: VecDeque<bool>,
}

impl HealthState {
    /// A server first known at `now`: unknown, never checked.
    pub fn new(now: SystemTime) -> Self {
        Self {
            health: Health {
                status: Status::Unknown,
                since: now,
                reason: None,
                flapping: false,
                last_check_at: None,
                latency_ms: None,
                consecutive_failures: 0,
                consecutive_successes: 0,
                checks: Vec::new(),
            },
            current: Status::Unknown,
            changes: VecDeque::new(),
        }
    }

    /// A server's state as the store kept it, after a restart: its published status and
    /// counters stand; the flap history starts empty (it is not stored), so a flapping server
    /// is published as flapping until its next check re-measures.
    pub fn restore(health: Health) -> Self {
        let current = health.status;
        Self {
            health,
            current,
            changes: VecDeque::new(),
        }
    }

    /// The `health` object.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The published status (the damped one while flapping).
    pub fn status(&self) -> Status {
        self.health.status
    }

    /// The status the rules give, before flap damping.
    pub fn current(&self) -> Status {
        self.current
    }
}

/// Why a status holds: the check behind it, if any, and the words.
struct Cause {
    check: Option<String>,
    reason: String,
}

impl Cause {
    fn of(r: &str, message: &str) -> Self {
        let reason = if message.is_empty() {
            format!("{r} failed")
        } else {
            format!("{r}: {message}")
        };
        Self {
            check: Some(r.to_owned()),
            reason,
        }
    }

    fn plain(reason: String) -> Self {
        Self {
            check: None,
            reason,
        }
    }
}

/// Apply one check of the server (a batch of results, all taken at `now`).
///
/// Returns the new state and, when the published status changed, the transition. A gone
/// server, or an empty batch, is returned unchanged.
pub fn step(
    state: &HealthState,
    results: &[CheckResult],
    th: &Thresholds,
    now: SystemTime,
) -> (HealthState, Option<Transition>) {
    if state.health.status == Status::Gone || results.is_empty() {
        return (state.clone(), None);
    }
    let mut s = state.clone();
    let h = &mut s.health;
    h.last_check_at = Some(now);
    for r in results {
        let rec = CheckRecord {
            name: r.name.clone(),
            ok: r.ok,
            message: r.message.clone(),
            at: now,
            severity: r.severity,
        };
        match h.checks.iter_mut().find(|c| c.name == r.name) {
            Some(c) => *c = rec,
            None => h.checks.push(rec),
        }
    }
    let latency = results.iter().filter_map(|r| r.latency).max();
    if let Some(l) = latency {
        h.latency_ms = Some(l.as_secs_f64() * 1000.0);
    }

    // The batch's verdict on its critical results: Some(false) if one failed, Some(true) if
    // all passed, None if it had none.
    let failing = results
        .iter()
        .find(|r| r.severity == Severity::Critical && !r.ok);
    let verdict = if failing.is_some() {
        Some(false)
    } else if results.iter().any(|r| r.severity == Severity::Critical) {
        Some(true)
    } else {
        None
    };
    match verdict {
        Some(false) => {
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            h.consecutive_successes = 0;
        }
        Some(true) => {
            h.consecutive_successes = h.consecutive_successes.saturating_add(1);
            h.consecutive_failures = 0;
        }
        None => {}
    }

    // What a passing server is: degraded by a warning's last result or by this latency.
    let degraded = h
        .checks
        .iter()
        .find(|c| c.severity == Severity::Warning && !c.ok)
        .map(|c| Cause::of(&c.name, &c.message))
        .or_else(|| {
            latency.filter(|l| *l > th.degraded_latency).map(|l| {
                Cause::plain(format!(
                    "latency {} ms above {} ms",
                    l.as_millis(),
                    th.degraded_latency.as_millis()
                ))
            })
        });
    let passing = |why: String| match &degraded {
        Some(d) => (
            Status::Degraded,
            Some(Cause {
                check: d.check.clone(),
                reason: d.reason.clone(),
            }),
        ),
        None => (Status::Healthy, Some(Cause::plain(why))),
    };
    let failing_cause = failing.map(|r| Cause::of(&r.name, &r.message));
    let unhealthy_after = th.unhealthy_threshold.max(1);
    let healthy_after = th.healthy_threshold.max(1);

    let (next, cause) = match (s.current, verdict) {
        (_, Some(false)) if h.consecutive_failures >= unhealthy_after => {
            (Status::Unhealthy, failing_cause)
        }
        (Status::Unhealthy, Some(true)) if h.consecutive_successes >= healthy_after => {
            passing(format!(
                "recovered: {} checks in a row passed",
                h.consecutive_successes
            ))
        }
        // Still unhealthy (recovering, or failing again: the count starts over).
        (Status::Unhealthy, _) => (Status::Unhealthy, failing_cause),
        (Status::Unknown, Some(true)) => passing("first check passed".to_owned()),
        (Status::Unknown, _) => (Status::Unknown, None),
        (Status::Healthy | Status::Degraded, Some(true)) => passing("all checks pass".to_owned()),
        // A warning-only batch after passing criticals: re-judge degraded on it.
        (Status::Healthy | Status::Degraded, None) if h.consecutive_failures == 0 => {
            passing("all checks pass".to_owned())
        }
        // A critical failure below the threshold: the status holds.
        (cur @ (Status::Healthy | Status::Degraded), _) => (cur, None),
        (Status::Gone, _) => unreachable!("a gone server returned early"),
    };

    let changed = next != s.current;
    s.current = next;
    let flapping = if th.flap_window == 0 {
        s.changes.clear();
        false
    } else {
        s.changes.push_back(changed);
        while s.changes.len() > th.flap_window {
            s.changes.pop_front();
        }
        let rate = s.changes.iter().filter(|c| **c).count() as f64 / th.flap_window as f64;
        if h.flapping {
            rate > th.flap_threshold * FLAP_SETTLE_RATIO
        } else {
            rate > th.flap_threshold
        }
    };
    let settled = h.flapping && !flapping;
    h.flapping = flapping;
    if flapping {
        // The last stable status stands, reason and all.
        return (s, None);
    }
    if next == h.status {
        // Same status: keep the reason current for a bad one (a new failure message).
        if matches!(next, Status::Unhealthy | Status::Degraded) {
            if let Some(c) = cause {
                h.reason = Some(c.reason);
            }
        }
        return (s, None);
    }
    let cause = cause.unwrap_or_else(|| Cause::plain(format!("now {next}")));
    let reason = if settled {
        format!("settled after flapping; {}", cause.reason)
    } else {
        cause.reason
    };
    let t = Transition {
        from: h.status,
        to: next,
        at: now,
        check: cause.check,
        reason: reason.clone(),
    };
    h.status = next;
    h.since = now;
    h.reason = Some(reason);
    (s, Some(t))
}

/// Discovery no longer finds the server: it is gone at once, flapping or not.
pub fn mark_gone(state: &HealthState, now: SystemTime) -> (HealthState, Option<Transition>) {
    if state.health.status == Status::Gone {
        return (state.clone(), None);
    }
    let reason = "no longer found by discovery".to_owned();
    let t = Transition {
        from: state.health.status,
        to: Status::Gone,
        at: now,
        check: None,
        reason: reason.clone(),
    };
    let mut s = state.clone();
    s.current = Status::Gone;
    s.changes.clear();
    let h = &mut s.health;
    h.status = Status::Gone;
    h.since = now;
    h.reason = Some(reason);
    h.flapping = false;
    h.consecutive_failures = 0;
    h.consecutive_successes = 0;
    (s, Some(t))
}

/// Discovery found a gone server again: it starts over as unknown, with no history.
pub fn seen_again(state: &HealthState, now: SystemTime) -> (HealthState, Option<Transition>) {
    if state.health.status != Status::Gone {
        return (state.clone(), None);
    }
    let reason = "found again by discovery".to_owned();
    let mut s = HealthState::new(now);
    s.health.reason = Some(reason.clone());
    let t = Transition {
        from: Status::Gone,
        to: Status::Unknown,
        at: now,
        check: None,
        reason,
    };
    (s, Some(t))
}

/// `SystemTime` as fixed-width RFC 3339 UTC with milliseconds, the store's format.
pub(crate) mod rfc3339_serde {
    use std::time::SystemTime;

    use serde::{de, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::vocab::rfc3339(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "{text:?} is not an RFC 3339 UTC time such as 2026-01-01T00:00:00.000Z"
            ))
        })
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff…]Z`, the only form we write.
    pub(crate) fn parse(text: &str) -> Option<SystemTime> {
        let b = text.as_bytes();
        if b.len() < 20 || !text.is_ascii() || b[b.len() - 1] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<u32>().ok();
        let fixed = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if fixed.iter().any(|(i, c)| b[*i] != *c) {
            return None;
        }
        let year = i32::try_from(num(0..4)?).ok()?;
        let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
        let date =
            time::Date::from_calendar_date(year, month, u8::try_from(num(8..10)?).ok()?).ok()?;
        let nanos = match &text[19..text.len() - 1] {
            "" => 0,
            frac if frac.len() >= 2 && frac.len() <= 10 && frac.starts_with('.') => {
                let digits = &frac[1..];
                let n: u32 = digits.parse().ok()?;
                n * 10u32.pow(9 - u32::try_from(digits.len()).ok()?)
            }
            _ => return None,
        };
        let clock = time::Time::from_hms_nano(
            u8::try_from(num(11..13)?).ok()?,
            u8::try_from(num(14..16)?).ok()?,
            u8::try_from(num(17..19)?).ok()?,
            nanos,
        )
        .ok()?;
        Some(
            time::PrimitiveDateTime::new(date, clock)
                .assume_utc()
                .into(),
        )
    }

    pub(super) mod option {
        use std::time::SystemTime;

        use serde::{de, Deserialize, Deserializer, Serializer};

        pub(in crate::monitor::state) fn serialize<S: Serializer>(
            t: &Option<SystemTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub(in crate::monitor::state) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| {
                    super::parse(&text).ok_or_else(|| {
                        de::Error::custom(format!("{text:?} is not an RFC 3339 UTC time"))
                    })
                })
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const T0: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn at(i: usize) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + 30 * i as u64)
    }

    /// One step of a scripted run, spelled as a letter.
    fn batch(c: char) -> Vec<CheckResult> {
        let mcp = CheckResult::pass("mcp").with_latency(Duration::from_millis(120));
        let db_fail = CheckResult::fail("db", "HTTP 503").warning();
        let db_ok = CheckResult::pass("db").warning();
        match c {
            'P' => vec![mcp],
            'F' => vec![CheckResult::fail("mcp", "connection refused")],
            'T' => vec![CheckResult::fail("mcp", "timed out after 10 s")],
            'W' => vec![mcp, db_fail],
            'w' => vec![mcp, db_ok],
            'S' => vec![mcp.with_latency(Duration::from_millis(6_200))],
            'L' => vec![mcp.with_latency(DEFAULT_DEGRADED_LATENCY)],
            'x' => vec![db_fail],
            'o' => vec![db_ok],
            'N' => vec![],
            other => panic!("no batch {other:?}"),
        }
    }

    fn letter(s: Status) -> char {
        match s {
            Status::Unknown => 'U',
            Status::Healthy => 'H',
            Status::Degraded => 'D',
            Status::Unhealthy => 'X',
            Status::Gone => 'G',
        }
    }

    /// Run a script (`G` marks gone, `A` seen again, other letters are [`batch`]es) and
    /// return the published statuses and the transitions as `index:from>to`.
    fn run(th: &Thresholds, script: &str) -> (String, Vec<String>, HealthState) {
        let mut s = HealthState::new(at(0));
        let (mut statuses, mut moves) = (String::new(), Vec::new());
        for (i, c) in script.chars().filter(|c| *c != ' ').enumerate() {
            let (next, t) = match c {
                'G' => mark_gone(&s, at(i)),
                'A' => seen_again(&s, at(i)),
                c => step(&s, &batch(c), th, at(i)),
            };
            if let Some(t) = t {
                assert_eq!(t.from, s.status(), "step {i}: from is the old status");
                assert_eq!(t.to, next.status(), "step {i}: to is the new status");
                assert_eq!(next.health().since, at(i), "step {i}: since moves");
                moves.push(format!("{i}:{}>{}", letter(t.from), letter(t.to)));
            } else {
                assert_eq!(
                    next.status(),
                    s.status(),
                    "step {i}: no transition, no change"
                );
            }
            statuses.push(letter(next.status()));
            s = next;
        }
        (statuses, moves, s)
    }

    #[test]
    fn each_rule_gives_the_statuses_of_its_script() {
        let d = Thresholds::default();
        let quick = Thresholds {
            unhealthy_threshold: 1,
            healthy_threshold: 1,
            ..Thresholds::default()
        };
        #[rustfmt::skip]
        let table: &[(&str, &Thresholds, &str, &str)] = &[
            ("a server starts unknown; its first pass makes it healthy", &d, "P", "H"),
            ("an empty batch changes nothing", &d, "N N P N", "UUHH"),
            ("failures below the threshold leave the status as it was", &d, "P F F P", "HHHH"),
            ("three consecutive critical failures make it unhealthy", &d, "P F F F", "HHHX"),
            ("never passing, it goes from unknown to unhealthy", &d, "F F F", "UUX"),
            ("non-consecutive failures never add up", &d, "P F F P F F P", "HHHHHHH"),
            ("from unhealthy it takes two passes to recover", &d, "F F F P P", "UUXXH"),
            ("recovering starts over on a failure", &d, "F F F P F P P", "UUXXXXH"),
            ("failing again while unhealthy stays unhealthy", &d, "F F F T F", "UUXXX"),
            ("a warning failure never makes it unhealthy", &d, "W W W W W W", "DDDDDD"),
            ("a warning failure after healthy is degraded", &d, "P W w", "HDH"),
            ("latency above degraded_latency is degraded", &d, "P S P", "HDH"),
            ("latency exactly at degraded_latency is not", &d, "P L", "HH"),
            ("a critical failure while degraded holds degraded until the threshold", &d, "W F F F", "DDDX"),
            ("recovering with a failing warning lands on degraded", &d, "F F F W W", "UUXXD"),
            ("a warning-only batch re-judges degraded", &d, "P x o", "HDH"),
            ("a warning-only batch does not reset a failure count", &d, "P F x F F", "HHHHX"),
            ("a warning-only batch gives no verdict on an unknown server", &d, "x o P", "UUH"),
            ("a warning's last result stands until it runs again", &d, "P x P P o P", "HDDDHH"),
            ("with thresholds of 1 one result decides", &quick, "P F P", "HXH"),
            ("gone is immediate and ignores later results", &d, "P G P F F F", "HGGGGG"),
            ("gone is terminal until seen again, then starts over", &d, "P G A P", "HGUH"),
            ("gone from unhealthy; seen again it needs a pass, not two", &d, "F F F G A P", "UUXGUH"),
            ("seen again on a server not gone changes nothing", &d, "P A", "HH"),
            ("marking a gone server gone again changes nothing", &d, "G G", "GG"),
        ];
        for (rule, th, script, want) in table {
            let (got, _, _) = run(th, script);
            assert_eq!(&got, want, "{rule}: script {script:?}");
        }
    }

    #[test]
    fn transitions_carry_from_to_and_the_failing_check_with_its_message() {
        let th = Thresholds::default();
        let (_, moves, _) = run(&th, "P F F T P P");
        assert_eq!(moves, ["0:U>H", "3:H>X", "5:X>H"]);

        let mut s = HealthState::new(at(0));
        let mut ts = Vec::new();
        for (i, c) in "PFFTPPWS".chars().enumerate() {
            let (next, t) = step(&s, &batch(c), &th, at(i));
            ts.extend(t);
            s = next;
        }
        let got: Vec<_> = ts
            .iter()
            .map(|t| (t.from, t.to, t.check.as_deref(), t.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Status::Unknown, Status::Healthy, None, "first check passed"),
                (
                    Status::Healthy,
                    Status::Unhealthy,
                    Some("mcp"),
                    "mcp: timed out after 10 s"
                ),
                (
                    Status::Unhealthy,
                    Status::Healthy,
                    None,
                    "recovered: 2 checks in a row passed"
                ),
                (
                    Status::Healthy,
                    Status::Degraded,
                    Some("db"),
                    "db: HTTP 503"
                ),
            ]
        );
        assert_eq!(ts[1].at, at(3));
    }

    #[test]
    fn degraded_by_latency_says_how_slow() {
        let th = Thresholds::default();
        let (s, t) = step(&HealthState::new(at(0)), &batch('S'), &th, at(0));
        let t = t.expect("unknown to degraded");
        assert_eq!((t.to, t.check), (Status::Degraded, None));
        assert_eq!(t.reason, "latency 6200 ms above 5000 ms");
        assert_eq!(s.health().latency_ms, Some(6200.0));
    }

    #[test]
    fn the_reason_follows_the_latest_failure_while_unhealthy() {
        let th = Thresholds::default();
        let (_, _, s) = run(&th, "F F F T");
        assert_eq!(
            s.health().reason.as_deref(),
            Some("mcp: timed out after 10 s")
        );
        assert_eq!(s.health().since, at(2), "since stays at the transition");
    }

    #[test]
    fn the_health_object_keeps_counters_times_and_each_checks_last_result() {
        let th = Thresholds::default();
        let (_, _, s) = run(&th, "W F F");
        let h = s.health();
        assert_eq!(h.consecutive_failures, 2);
        assert_eq!(h.consecutive_successes, 0);
        assert_eq!(h.last_check_at, Some(at(2)));
        assert_eq!(
            h.latency_ms,
            Some(120.0),
            "kept from the last check that measured"
        );
        let checks: Vec<_> = h
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.ok, c.message.as_str(), c.at))
            .collect();
        assert_eq!(
            checks,
            [
                ("mcp", false, "connection refused", at(2)),
                ("db", false, "HTTP 503", at(0)),
            ]
        );
        let (_, _, s) = run(&th, "F P P P");
        assert_eq!(
            (
                s.health().consecutive_failures,
                s.health().consecutive_successes
            ),
            (0, 3)
        );
    }

    /// Alternate pass and fail with thresholds of 1, so the rules' status changes at every
    /// check; then pass steadily.
    fn flapping_run(alternations: usize, steady: usize) -> Vec<(Status, Status, bool)> {
        let th = Thresholds {
            unhealthy_threshold: 1,
            healthy_threshold: 1,
            ..Thresholds::default()
        };
        let mut s = HealthState::new(at(0));
        let mut out = Vec::new();
        let script = "PF"
            .chars()
            .cycle()
            .take(alternations)
            .chain(std::iter::repeat_n('P', steady));
        for (i, c) in script.enumerate() {
            s = step(&s, &batch(c), &th, at(i)).0;
            out.push((s.status(), s.current(), s.health().flapping));
        }
        out
    }

    #[test]
    fn more_than_the_threshold_of_changes_marks_flapping_and_holds_the_stable_status() {
        let run = flapping_run(12, 0);
        // Changes 1..=6 (steps 0..=5) are published; the 7th (35% of 20) is not.
        let published: String = run.iter().map(|r| letter(r.0)).collect();
        assert_eq!(published, "HXHXHXXXXXXX");
        assert!(!run[5].2 && run[6].2, "flapping from the 7th change");
        assert_eq!(run[6].1, Status::Healthy, "the rules still say healthy");
        assert!(run[6..].iter().all(|r| r.2 && r.0 == Status::Unhealthy));
    }

    #[test]
    fn flapping_settles_below_half_the_threshold_and_publishes_the_status_then() {
        let run = flapping_run(12, 30);
        // Changes at steps 0..=12 (step 12 is the recovery); steady passes after. The window
        // (20) holds at most 3 changes (15%) once steps 0..=9 have left it: at step 29.
        let settle = (12..run.len()).find(|i| !run[*i].2);
        assert_eq!(settle, Some(29));
        assert!(run[12..29].iter().all(|r| r.2 && r.0 == Status::Unhealthy));
        assert!(run[29..].iter().all(|r| !r.2 && r.0 == Status::Healthy));
    }

    #[test]
    fn a_settling_transition_says_it_settled() {
        let th = Thresholds {
            unhealthy_threshold: 1,
            healthy_threshold: 1,
            ..Thresholds::default()
        };
        let mut s = HealthState::new(at(0));
        let mut last = None;
        for (i, c) in "PFPFPFPFPFPF"
            .chars()
            .chain("P".repeat(20).chars())
            .enumerate()
        {
            let (next, t) = step(&s, &batch(c), &th, at(i));
            if t.is_some() {
                last = t;
            }
            s = next;
        }
        let t = last.expect("a settling transition");
        assert_eq!((t.from, t.to), (Status::Unhealthy, Status::Healthy));
        assert_eq!(t.reason, "settled after flapping; all checks pass");
    }

    #[test]
    fn a_window_of_zero_turns_flap_damping_off() {
        let th = Thresholds {
            unhealthy_threshold: 1,
            healthy_threshold: 1,
            flap_window: 0,
            ..Thresholds::default()
        };
        let (got, moves, s) = run(&th, "PFPFPFPFPFPFPF");
        assert_eq!(got, "HXHXHXHXHXHXHX");
        assert_eq!(moves.len(), 14);
        assert!(!s.health().flapping);
    }

    #[test]
    fn a_few_changes_at_start_never_count_as_flapping() {
        // The rate's denominator is the whole window, not the checks seen so far.
        let th = Thresholds::default();
        let (_, _, s) = run(&th, "P F F F P P");
        assert!(!s.health().flapping);
    }

    #[test]
    fn gone_ends_flapping_at_once() {
        let th = Thresholds {
            unhealthy_threshold: 1,
            healthy_threshold: 1,
            ..Thresholds::default()
        };
        let (_, _, s) = run(&th, "PFPFPFPF");
        assert!(s.health().flapping);
        let (g, t) = mark_gone(&s, at(9));
        assert_eq!(t.map(|t| t.to), Some(Status::Gone));
        assert!(!g.health().flapping);
        assert_eq!(
            g.health().reason.as_deref(),
            Some("no longer found by discovery")
        );
    }

    #[test]
    fn zero_thresholds_count_as_one() {
        let th = Thresholds {
            unhealthy_threshold: 0,
            healthy_threshold: 0,
            ..Thresholds::default()
        };
        assert_eq!(run(&th, "P F P").0, "HXH");
    }

    #[test]
    fn the_health_object_serializes_as_the_issue_lists_it() {
        let th = Thresholds::default();
        let (_, _, s) = run(&th, "P F");
        let v = serde_json::to_value(s.health()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "status": "healthy",
                "since": "2026-01-01T00:00:00.000Z",
                "reason": "first check passed",
                "flapping": false,
                "last_check_at": "2026-01-01T00:00:30.000Z",
                "latency_ms": 120.0,
                "consecutive_failures": 1,
                "consecutive_successes": 0,
                "checks": [{
                    "name": "mcp", "ok": false, "message": "connection refused",
                    "at": "2026-01-01T00:00:30.000Z", "severity": "critical"
                }]
            })
        );
        let back: Health = serde_json::from_value(v).unwrap();
        assert_eq!(&back, s.health());
        let fresh = serde_json::to_value(HealthState::new(at(0)).health()).unwrap();
        assert_eq!(fresh["status"], "unknown");
        assert_eq!(fresh["last_check_at"], serde_json::Value::Null);
    }

    #[test]
    fn statuses_and_severities_are_snake_case() {
        for s in [
            Status::Unknown,
            Status::Healthy,
            Status::Degraded,
            Status::Unhealthy,
            Status::Gone,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(serde_json::to_value(Severity::Warning).unwrap(), "warning");
        assert_eq!(Severity::default(), Severity::Critical);
    }

    #[test]
    fn times_parse_only_in_the_form_we_write() {
        let t = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
        assert_eq!(rfc3339_serde::parse("2026-01-01T00:00:00.123Z"), Some(t));
        assert_eq!(
            rfc3339_serde::parse("2026-01-01T00:00:00Z"),
            Some(UNIX_EPOCH + Duration::from_secs(T0))
        );
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01 00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00+01:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00.1234567890Z",
        ] {
            assert_eq!(rfc3339_serde::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn defaults_are_the_issues() {
        let d = Thresholds::default();
        assert_eq!(
            (d.unhealthy_threshold, d.healthy_threshold, d.flap_window),
            (3, 2, 20)
        );
        assert_eq!(d.degraded_latency, Duration::from_secs(5));
        assert!((d.flap_threshold - 0.3).abs() < f64::EPSILON);
    }
}
