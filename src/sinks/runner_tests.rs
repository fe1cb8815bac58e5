//! The runner against a real store and an in-memory registry (a test double of a registry,
//! standing in for any sink type: the types have their own tests against real peers).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{run, Context};
use crate::fingerprint::Verdict;
use crate::sinks::metrics::SinkMetrics;
use crate::sinks::plan::{SinkKind, SinkPlan};
use crate::sinks::{Sink, SinkBoard, SinkError, SinkState};
use crate::store::testutil::{self, TempDir};
use crate::store::{Reader, RunEnd, Store, StoredServer};

#[derive(Debug, Default)]
struct Registry {
    /// id -> ours
    entries: BTreeMap<String, bool>,
    puts: Vec<String>,
    removes: Vec<String>,
    /// Attempts (puts, removes, lists) that fail transiently before one works.
    fail_next: u32,
    refuse: HashSet<String>,
    /// When each attempt was made (tokio's clock).
    attempts: Vec<Instant>,
    /// The tick period (None: a sink that does not tick) and how long one round takes.
    tick_every: Option<Duration>,
    tick_cost: Duration,
    /// When each round started.
    ticks: Vec<Instant>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Registry>>);

impl Fake {
    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    fn attempt(&self) -> Result<(), SinkError> {
        self.with(|r| {
            r.attempts.push(Instant::now());
            if r.fail_next > 0 {
                r.fail_next -= 1;
                return Err(SinkError::transient("HTTP 503 Service Unavailable"));
            }
            Ok(())
        })
    }

    fn ours(&self) -> Vec<String> {
        self.with(|r| {
            r.entries
                .iter()
                .filter(|(_, o)| **o)
                .map(|(k, _)| k.clone())
                .collect()
        })
    }
}

impl Sink for Fake {
    async fn put(&mut self, server: &StoredServer) -> Result<(), SinkError> {
        self.attempt()?;
        let id = server.id.as_str().to_string();
        self.with(|r| {
            if r.refuse.contains(&id) {
                return Err(SinkError::Rejected {
                    status: Some(422),
                    message: "HTTP 422: bad name".into(),
                });
            }
            r.puts.push(id.clone());
            r.entries.insert(id, true);
            Ok(())
        })
    }

    async fn remove(&mut self, id: &str) -> Result<(), SinkError> {
        self.attempt()?;
        self.with(|r| {
            r.removes.push(id.to_string());
            if r.entries.get(id) == Some(&true) {
                r.entries.remove(id);
            }
        });
        Ok(())
    }

    async fn list_ours(&mut self) -> Result<Vec<String>, SinkError> {
        self.attempt()?;
        Ok(self.ours())
    }

    fn tick_every(&self) -> Option<Duration> {
        self.with(|r| r.tick_every)
    }

    async fn tick(&mut self, _listed: &super::Listed) -> Result<crate::sinks::Tick, SinkError> {
        let cost = self.with(|r| {
            r.ticks.push(Instant::now());
            r.tick_cost
        });
        tokio::time::sleep(cost).await;
        Ok(crate::sinks::Tick::Fine)
    }
}

struct Bed {
    _dir: TempDir,
    store: Store,
    reader: Reader,
    board: SinkBoard,
    metrics: SinkMetrics,
}

impl Bed {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        let (store, _writer) = testutil::open(&dir.db(), 1);
        let reader = Reader::open(dir.db()).unwrap();
        Self {
            _dir: dir,
            store,
            reader,
            board: SinkBoard::default(),
            metrics: SinkMetrics::default(),
        }
    }

    fn cx(&self) -> Context {
        Context {
            store: self.store.clone(),
            reader: self.reader.clone(),
            board: self.board.clone(),
            metrics: self.metrics.clone(),
        }
    }

    fn start(
        &self,
        fake: &Fake,
        plan: SinkPlan,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let stop = CancellationToken::new();
        let t = tokio::spawn(run(fake.clone(), plan, self.cx(), stop.clone()));
        (stop, t)
    }

    fn status(&self) -> crate::sinks::SinkStatus {
        // Before the task's first step the board is empty: a fresh status then.
        self.board
            .snapshot()
            .into_iter()
            .next()
            .unwrap_or_else(|| crate::sinks::SinkStatus::new("fake", "fake", String::new()))
    }
}

fn plan() -> SinkPlan {
    let mut p = SinkPlan::with_defaults(
        "fake",
        SinkKind::ServerJson {
            dir: "/nonexistent".into(),
        },
    );
    p.retry_initial = Duration::from_millis(100);
    p.retry_max = Duration::from_secs(2);
    p
}

/// Poll `cond` (the runner works on other threads too: the store's) for up to 10 s of
/// real time.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn id_of(ip: &str) -> String {
    crate::store::ServerId::from_url(&format!("http://{ip}:8000/mcp")).into_string()
}

#[tokio::test]
async fn delivers_changes_keeps_its_cursor_and_only_removes_its_own() {
    let bed = Bed::new("runner-deliver");
    let fake = Fake::default();
    fake.with(|r| {
        r.entries.insert("theirs".into(), false);
        // Marked as ours, but this inventory never heard of it: another daemon's.
        r.entries.insert("another-daemons".into(), true);
    });
    let (stop, task) = bed.start(&fake, plan());
    let a = testutil::mcp("127.0.0.1", 8000, vec![testutil::tool("t", "h")]);
    let b = testutil::mcp("127.0.0.2", 8000, vec![]);
    let mut likely = testutil::mcp("127.0.0.3", 8000, vec![]);
    likely.kind = Some(Verdict::McpLikely);
    testutil::run(
        &bed.store,
        "lan",
        vec![a.clone(), b.clone(), likely],
        RunEnd::Completed,
    )
    .await;
    until("both servers listed", || fake.ours().len() == 3).await;
    assert_eq!(
        fake.ours(),
        vec![
            id_of("127.0.0.1"),
            id_of("127.0.0.2"),
            "another-daemons".to_string()
        ],
        "mcp-likely is not pushed; another daemon's entry is kept"
    );
    until("the cursor saved", || {
        bed.reader
            .sink_state("fake")
            .unwrap()
            .is_some_and(|s| s.cursor >= 3)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        bed.reader.sink_entries("fake").unwrap(),
        vec![id_of("127.0.0.1"), id_of("127.0.0.2")]
    );

    // A run without b (gone_after 1) while the sink is stopped; at restart the sink
    // resumes from its cursor, removes b and keeps someone else's entry.
    testutil::run(&bed.store, "lan", vec![a], RunEnd::Completed).await;
    let (stop, task) = bed.start(&fake, plan());
    until("b removed", || {
        fake.ours() == vec![id_of("127.0.0.1"), "another-daemons".to_string()]
    })
    .await;
    until("the queue drained", || {
        bed.status().queue_depth == 0 && bed.status().cursor > 3
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    fake.with(|r| {
        assert!(
            r.entries.contains_key("theirs"),
            "someone else's entry is kept"
        );
        assert!(!r.removes.contains(&"theirs".to_string()));
    });
    assert_eq!(
        bed.reader.sink_entries("fake").unwrap(),
        vec![id_of("127.0.0.1")]
    );
    assert_eq!(bed.status().state, SinkState::Ok);
}

#[tokio::test(start_paused = true)]
async fn backs_off_while_failing_then_reconciles_when_the_registry_answers() {
    let bed = Bed::new("runner-backoff");
    let fake = Fake::default();
    // The first reconciliation's list and every retry fail: 7 attempts in a row.
    fake.with(|r| r.fail_next = 7);
    let p = plan();
    let (initial, max) = (p.retry_initial, p.retry_max);
    testutil::run(
        &bed.store,
        "lan",
        vec![testutil::mcp("127.0.0.1", 8000, vec![])],
        RunEnd::Completed,
    )
    .await;
    let (stop, task) = bed.start(&fake, p);
    until("failing after 5 attempts", || {
        let s = bed.status();
        s.state == SinkState::Failing && s.consecutive_failures >= 5
    })
    .await;
    assert!(bed.status().last_error.unwrap().contains("503"));
    until("listed after the outage", || {
        fake.ours() == vec![id_of("127.0.0.1")]
    })
    .await;
    until("ok again", || bed.status().state == SinkState::Ok).await;
    let attempts = fake.with(|r| r.attempts.clone());
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).take(7).collect();
    // Capped, jittered, exponential: never below the first delay, never above the cap
    // (jitter included), and growing overall.
    for g in &gaps {
        assert!(*g >= initial && *g <= max, "gap {g:?} in {gaps:?}");
    }
    assert!(gaps[5] > gaps[0] * 2, "grows: {gaps:?}");
    assert!(
        bed.metrics
            .resyncs
            .get_or_create(&SinkMetrics::label("fake"))
            .get()
            >= 1
    );
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_refused_delivery_is_a_dead_letter_and_the_others_go_on() {
    let bed = Bed::new("runner-dead");
    let fake = Fake::default();
    let (stop, task) = bed.start(&fake, plan());
    until("the first reconciliation", || {
        bed.status().last_resync.is_some()
    })
    .await;
    fake.with(|r| {
        r.refuse.insert(id_of("127.0.0.2"));
    });
    testutil::run(
        &bed.store,
        "lan",
        vec![
            testutil::mcp("127.0.0.1", 8000, vec![]),
            testutil::mcp("127.0.0.2", 8000, vec![]),
            testutil::mcp("127.0.0.3", 8000, vec![]),
        ],
        RunEnd::Completed,
    )
    .await;
    until("the others listed", || fake.ours().len() == 2).await;
    until("one dead letter", || bed.status().dead_letter_count == 1).await;
    let (letters, total) = bed.reader.dead_letters("fake", 10).unwrap();
    assert_eq!(total, 1);
    assert_eq!(letters[0].server_id, id_of("127.0.0.2"));
    assert_eq!(letters[0].status, Some(422));
    assert_eq!(
        bed.status().state,
        SinkState::Ok,
        "a refusal is not an outage"
    );
    assert_eq!(bed.status().queue_depth, 0);
    stop.cancel();
    task.await.unwrap();
}

/// The gaps between `n + 1` rounds of a sink ticking every `every` whose rounds take `cost`,
/// on the paused clock, from the second round on. The first round may start late: while the
/// runner's start-up reads the store on a blocking thread, the paused clock auto-advances to
/// the next timer. The runner then plans from that round's slot, not from its late start (as
/// it should), so the first gap is short by the delay and is left out.
async fn tick_gaps(tag: &str, every: Duration, cost: Duration, n: usize) -> Vec<Duration> {
    let bed = Bed::new(tag);
    let fake = Fake::default();
    fake.with(|r| {
        r.tick_every = Some(every);
        r.tick_cost = cost;
    });
    let (stop, task) = bed.start(&fake, plan());
    until("the rounds", || fake.with(|r| r.ticks.len() > n + 1)).await;
    stop.cancel();
    task.await.unwrap();
    let ticks = fake.with(|r| r.ticks.clone());
    ticks
        .windows(2)
        .skip(1)
        .map(|w| w[1] - w[0])
        .take(n)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_tick_period_is_planned_from_the_last_plan_not_from_the_end_of_the_round() {
    // A 5 s heartbeat whose rounds take 2 s: one round every 5 s (not every 7 s).
    let every = Duration::from_secs(5);
    let gaps = tick_gaps("runner-tick", every, Duration::from_secs(2), 6).await;
    assert_eq!(gaps.len(), 6);
    for g in &gaps {
        let off = g.abs_diff(every);
        assert!(off < Duration::from_millis(50), "gap {g:?} in {gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_round_longer_than_the_period_skips_the_missed_slot_instead_of_ticking_back_to_back() {
    // Rounds of 7 s against a 5 s period: the next slot after the overrun is at 10 s.
    let every = Duration::from_secs(5);
    let gaps = tick_gaps("runner-overrun", every, Duration::from_secs(7), 4).await;
    for g in &gaps {
        let off = g.abs_diff(every * 2);
        assert!(off < Duration::from_millis(50), "gap {g:?} in {gaps:?}");
    }
}
