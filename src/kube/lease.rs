//! Leader election over one `coordination.k8s.io/v1` Lease, for `owner: leader` jobs: the
//! DaemonSet's pods agree on one holder through the API server, with no protocol of ours.
//!
//! The rules, as [`decide`] applies them to what was read:
//! - **acquire** when the Lease is absent (create it), has no holder (released), or has
//!   expired: `renewTime + leaseDurationSeconds < now`;
//! - **renew** (write `renewTime`) every `kubernetes.lease.renew` while holding it;
//! - **follow** otherwise, re-reading every renew period (sooner when the holder's term ends
//!   before that).
//!
//! Every write is a create (409 AlreadyExists: someone was first) or a replace carrying the
//! resourceVersion that was read (409 Conflict: someone wrote in between). A 409 is never an
//! error: the elector re-reads at once and decides again, so two pods can never both win.
//!
//! **Losing it.** A holder that reads another holder (its term expired while it was cut off)
//! stops being leader at once. A holder that cannot reach the API server steps down when its
//! renew deadline passes, `duration - renew` after its last successful renewal: before the
//! Lease expires in the others' eyes, so no two pods run leader jobs at once (clock skew
//! between nodes aside, as in client-go). **Shutdown** releases the Lease (clears the holder)
//! so the next pod takes over at its next read instead of after a full term.
//!
//! Time: the elector's wall clock is the wall time at its start plus the monotonic time
//! since ([`Clock`]), so a stepped system clock cannot extend a term, and paused-clock tests
//! drive the whole state machine. The API is behind [`LeaseApi`]; [`KubeLeases`] is the real
//! one, tests use an in-memory store with the same conflict rules.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Conflicts re-read at once in a row before waiting a renew period: a storm of writers
/// cannot spin the elector.
const MAX_CONFLICT_RETRIES: u32 = 4;
/// Waited past a holder's expiry before reading again, so the read lands after it.
const EXPIRY_SLACK: Duration = Duration::from_millis(100);
/// Shortest wait between two reads.
const MIN_WAIT: Duration = Duration::from_millis(10);

/// What was read of the Lease (its spec and resourceVersion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// `spec.holderIdentity`; `None` (or empty) when released.
    pub holder: Option<String>,
    /// `spec.acquireTime`.
    pub acquired: Option<SystemTime>,
    /// `spec.renewTime`.
    pub renewed: Option<SystemTime>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Duration,
    /// `spec.leaseTransitions`.
    pub transitions: i32,
    /// `metadata.resourceVersion`: sent back on a replace.
    pub version: Option<String>,
}

impl LeaseView {
    /// When the current term ends: `renewTime + leaseDurationSeconds` (`acquireTime` when
    /// never renewed; `None` when neither is set: expired).
    pub fn expires(&self) -> Option<SystemTime> {
        self.renewed.or(self.acquired).map(|t| t + self.duration)
    }

    fn held_by(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// What to do after a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No Lease: create it, holding it.
    Create,
    /// Released or expired: take it over.
    Take,
    /// Ours: renew it.
    Renew,
    /// Someone else's, valid until `until`.
    Follow {
        /// The holder.
        holder: String,
        /// The end of its term.
        until: SystemTime,
    },
}

/// The election rule, pure: what `me` does about `lease` at `now`.
pub fn decide(me: &str, lease: Option<&LeaseView>, now: SystemTime) -> Decision {
    let Some(l) = lease else {
        return Decision::Create;
    };
    match l.held_by() {
        None => Decision::Take,
        Some(h) if h == me => Decision::Renew,
        Some(h) => match l.expires() {
            Some(until) if until >= now => Decision::Follow {
                holder: h.to_string(),
                until,
            },
            _ => Decision::Take,
        },
    }
}

/// Why a Lease request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// 409: someone else wrote first; re-read.
    #[error("the Lease changed since it was read (409)")]
    Conflict,
    /// Anything else (unreachable, 403, 5xx), with the explanation for the log.
    #[error("{0}")]
    Api(String),
}

/// The three Lease requests the elector makes. Implemented by [`KubeLeases`] and by tests.
pub trait LeaseApi: Send + Sync + 'static {
    /// Read the Lease; `None` when it does not exist.
    fn get(&self) -> impl Future<Output = Result<Option<LeaseView>, LeaseError>> + Send;
    /// Create it (409 [`LeaseError::Conflict`] when it exists).
    fn create(&self, l: &LeaseView) -> impl Future<Output = Result<LeaseView, LeaseError>> + Send;
    /// Replace it if its resourceVersion is still `l.version` (else 409).
    fn replace(&self, l: &LeaseView) -> impl Future<Output = Result<LeaseView, LeaseError>> + Send;
}

/// Settings of one elector.
#[derive(Debug, Clone)]
pub struct ElectorOptions {
    /// This pod's identity (`kubernetes.pod`).
    pub me: String,
    /// Term written into the Lease (`kubernetes.lease.duration`).
    pub duration: Duration,
    /// Renew and re-read period (`kubernetes.lease.renew`, below `duration`).
    pub renew: Duration,
    /// Deadline of one request (`kubernetes.timeout`).
    pub timeout: Duration,
    /// First and longest back-off while the API fails (`kubernetes.retry`).
    pub retry: (Duration, Duration),
    /// For messages: `namespace/name` of the Lease.
    pub lease: String,
}

/// Wall time derived from the monotonic clock: the wall time at creation plus the
/// `tokio::time::Instant` elapsed since (paused in tests).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    /// A clock reading the current wall time now.
    pub fn new() -> Self {
        Self {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// The current wall time by this clock.
    pub fn now(&self) -> SystemTime {
        self.wall + self.mono.elapsed()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What one attempt ended with.
enum Attempt {
    Held,
    Follow { holder: String, until: SystemTime },
}

async fn attempt<A: LeaseApi>(
    api: &A,
    opts: &ElectorOptions,
    now: SystemTime,
) -> Result<Attempt, LeaseError> {
    let cur = api.get().await?;
    let mine = |acquired, transitions, version| LeaseView {
        holder: Some(opts.me.clone()),
        acquired: Some(acquired),
        renewed: Some(now),
        duration: opts.duration,
        transitions,
        version,
    };
    match (decide(&opts.me, cur.as_ref(), now), cur) {
        (Decision::Create, _) => api.create(&mine(now, 0, None)).await.map(|_| Attempt::Held),
        (Decision::Take, Some(c)) => api
            .replace(&mine(now, c.transitions.saturating_add(1), c.version))
            .await
            .map(|_| Attempt::Held),
        (Decision::Renew, Some(c)) => api
            .replace(&mine(c.acquired.unwrap_or(now), c.transitions, c.version))
            .await
            .map(|_| Attempt::Held),
        (Decision::Follow { holder, until }, _) => Ok(Attempt::Follow { holder, until }),
        // decide answers Create exactly when nothing was read.
        (Decision::Take | Decision::Renew, None) => Err(LeaseError::Conflict),
    }
}

/// Run the election until `shutdown`, publishing on `leader` whether this pod holds the
/// Lease; at shutdown, release it if held. Never returns an error: a failing API is logged
/// and retried with back-off (and, while holding, ends leadership at the renew deadline).
pub async fn run<A: LeaseApi>(
    api: Arc<A>,
    opts: ElectorOptions,
    leader: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let clock = Clock::new();
    let renew_deadline = opts.duration.saturating_sub(opts.renew).max(MIN_WAIT);
    let mut last_renewal: Option<Instant> = None;
    let mut conflicts = 0u32;
    let mut backoff = opts.retry.0;
    let mut failing = false;
    let mut following: Option<String> = None;
    let set = |v: bool| {
        leader.send_if_modified(|cur| std::mem::replace(cur, v) != v);
    };
    loop {
        let now = clock.now();
        let res = match tokio::time::timeout(opts.timeout, attempt(&*api, &opts, now)).await {
            Ok(r) => r,
            Err(_) => Err(LeaseError::Api(format!(
                "no answer within {:?} (kubernetes.timeout)",
                opts.timeout
            ))),
        };
        let mut wait = opts.renew;
        match res {
            Ok(Attempt::Held) => {
                if last_renewal.is_none() {
                    tracing::info!(
                        "leader: this pod ({}) holds the Lease {}; owner: leader jobs start",
                        opts.me,
                        opts.lease
                    );
                }
                last_renewal = Some(Instant::now());
                following = None;
                set(true);
                conflicts = 0;
                backoff = opts.retry.0;
                failing = false;
            }
            Ok(Attempt::Follow { holder, until }) => {
                if last_renewal.take().is_some() {
                    tracing::warn!(
                        "leader: the Lease {} is held by {holder} now; owner: leader jobs stop",
                        opts.lease
                    );
                }
                set(false);
                if following.as_deref() != Some(holder.as_str()) {
                    tracing::info!("leader: {holder} holds the Lease {}", opts.lease);
                    following = Some(holder);
                }
                conflicts = 0;
                backoff = opts.retry.0;
                failing = false;
                let left = until.duration_since(now).unwrap_or_default() + EXPIRY_SLACK;
                wait = wait.min(left);
            }
            Err(LeaseError::Conflict) if conflicts < MAX_CONFLICT_RETRIES => {
                conflicts += 1;
                continue;
            }
            Err(LeaseError::Conflict) => conflicts = 0,
            Err(LeaseError::Api(e)) => {
                if !failing {
                    tracing::warn!(
                        "leader: Lease {}: {e}; retrying with back-off up to {:?}",
                        opts.lease,
                        opts.retry.1
                    );
                    failing = true;
                }
                wait = backoff;
                backoff = (backoff * 2).min(opts.retry.1);
            }
        }
        if let Some(t) = last_renewal {
            let held_for = t.elapsed();
            if held_for >= renew_deadline {
                tracing::warn!(
                    "leader: the Lease {} was not renewed for {held_for:?} (renew deadline {renew_deadline:?}); owner: leader jobs stop",
                    opts.lease
                );
                last_renewal = None;
                set(false);
            } else {
                wait = wait.min(renew_deadline - held_for);
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait.max(MIN_WAIT)) => {}
        }
    }
    let held = *leader.borrow();
    set(false);
    if held {
        match tokio::time::timeout(opts.timeout, release(&*api, &opts.me)).await {
            Ok(Ok(true)) => tracing::info!("leader: released the Lease {}", opts.lease),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(
                "leader: cannot release the Lease {}: {e}; it expires after its term",
                opts.lease
            ),
            Err(_) => tracing::warn!(
                "leader: the release of the Lease {} took longer than {:?}; it expires after its term",
                opts.lease,
                opts.timeout
            ),
        }
    }
}

/// Clear the holder if it is still `me`; true when released.
async fn release<A: LeaseApi>(api: &A, me: &str) -> Result<bool, LeaseError> {
    for _ in 0..=MAX_CONFLICT_RETRIES {
        let Some(cur) = api.get().await? else {
            return Ok(false);
        };
        if cur.held_by() != Some(me) {
            return Ok(false);
        }
        let released = LeaseView {
            holder: None,
            ..cur
        };
        match api.replace(&released).await {
            Ok(_) => return Ok(true),
            Err(LeaseError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(LeaseError::Conflict)
}

/// The real Lease through the API server.
pub struct KubeLeases {
    api: Api<Lease>,
    name: String,
    namespace: String,
}

impl KubeLeases {
    /// The Lease `name` in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }

    fn to_lease(&self, l: &LeaseView) -> Lease {
        let micro = |t: Option<SystemTime>| {
            t.and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok())
                .map(MicroTime)
        };
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                resource_version: l.version.clone(),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: l.holder.clone(),
                acquire_time: micro(l.acquired),
                renew_time: micro(l.renewed),
                lease_duration_seconds: Some(
                    i32::try_from(l.duration.as_secs().max(1)).unwrap_or(i32::MAX),
                ),
                lease_transitions: Some(l.transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    fn error(&self, verb: &str, e: &kube::Error) -> LeaseError {
        match e {
            kube::Error::Api(s) if s.code == 409 => LeaseError::Conflict,
            _ => LeaseError::Api(super::explain(
                verb,
                "leases.coordination.k8s.io",
                &format!(
                    "in the namespace {:?} (Lease {:?})",
                    self.namespace, self.name
                ),
                e,
            )),
        }
    }
}

/// What a Lease object says, as the elector reads it.
pub fn view(l: &Lease) -> LeaseView {
    let spec = l.spec.clone().unwrap_or_default();
    let wall = |t: Option<MicroTime>| t.map(|t| SystemTime::from(t.0));
    LeaseView {
        holder: spec.holder_identity,
        acquired: wall(spec.acquire_time),
        renewed: wall(spec.renew_time),
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        ),
        transitions: spec.lease_transitions.unwrap_or(0),
        version: l.metadata.resource_version.clone(),
    }
}

impl LeaseApi for KubeLeases {
    async fn get(&self) -> Result<Option<LeaseView>, LeaseError> {
        match self.api.get_opt(&self.name).await {
            Ok(l) => Ok(l.as_ref().map(view)),
            Err(e) => Err(self.error("get", &e)),
        }
    }

    async fn create(&self, l: &LeaseView) -> Result<LeaseView, LeaseError> {
        self.api
            .create(&PostParams::default(), &self.to_lease(l))
            .await
            .map(|l| view(&l))
            .map_err(|e| self.error("create", &e))
    }

    async fn replace(&self, l: &LeaseView) -> Result<LeaseView, LeaseError> {
        self.api
            .replace(&self.name, &PostParams::default(), &self.to_lease(l))
            .await
            .map(|l| view(&l))
            .map_err(|e| self.error("update", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(s)
    }

    fn held(by: &str, renewed: u64) -> LeaseView {
        LeaseView {
            holder: Some(by.into()),
            acquired: Some(at(0)),
            renewed: Some(at(renewed)),
            duration: Duration::from_secs(15),
            transitions: 0,
            version: Some("7".into()),
        }
    }

    #[test]
    fn the_rule_acquires_absent_released_or_expired_leases_and_follows_live_ones() {
        assert_eq!(decide("a", None, at(0)), Decision::Create);
        let released = LeaseView {
            holder: None,
            ..held("b", 0)
        };
        assert_eq!(decide("a", Some(&released), at(1)), Decision::Take);
        let empty = LeaseView {
            holder: Some(String::new()),
            ..held("b", 0)
        };
        assert_eq!(decide("a", Some(&empty), at(1)), Decision::Take);
        assert_eq!(decide("a", Some(&held("a", 10)), at(11)), Decision::Renew);
        // Expired: renewTime + leaseDurationSeconds < now (the boundary itself is live).
        assert_eq!(
            decide("a", Some(&held("b", 10)), at(25)),
            Decision::Follow {
                holder: "b".into(),
                until: at(25)
            }
        );
        assert_eq!(decide("a", Some(&held("b", 10)), at(26)), Decision::Take);
        let never = LeaseView {
            acquired: None,
            renewed: None,
            ..held("b", 0)
        };
        assert_eq!(decide("a", Some(&never), at(0)), Decision::Take);
        // Our own Lease is renewed even when it has expired.
        assert_eq!(decide("a", Some(&held("a", 0)), at(100)), Decision::Renew);
    }

    /// An in-memory Lease with the API server's conflict rules, a request log and a switch
    /// that cuts one pod off.
    #[derive(Default)]
    struct Store {
        lease: Option<LeaseView>,
        rv: u64,
        cut_off: Vec<String>,
        writes: Vec<(String, Option<String>)>,
    }

    #[derive(Clone)]
    struct Fake {
        who: String,
        store: Arc<Mutex<Store>>,
    }

    impl Fake {
        fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
            self.store.lock().unwrap()
        }

        fn check(&self) -> Result<(), LeaseError> {
            if self.lock().cut_off.contains(&self.who) {
                return Err(LeaseError::Api("connection refused".into()));
            }
            Ok(())
        }

        fn stored(&self, l: &LeaseView) -> LeaseView {
            let mut s = self.lock();
            s.rv += 1;
            let v = LeaseView {
                version: Some(s.rv.to_string()),
                ..l.clone()
            };
            s.lease = Some(v.clone());
            s.writes.push((self.who.clone(), l.holder.clone()));
            v
        }
    }

    impl LeaseApi for Fake {
        async fn get(&self) -> Result<Option<LeaseView>, LeaseError> {
            self.check()?;
            Ok(self.lock().lease.clone())
        }

        async fn create(&self, l: &LeaseView) -> Result<LeaseView, LeaseError> {
            self.check()?;
            if self.lock().lease.is_some() {
                return Err(LeaseError::Conflict);
            }
            Ok(self.stored(l))
        }

        async fn replace(&self, l: &LeaseView) -> Result<LeaseView, LeaseError> {
            self.check()?;
            let cur = self.lock().lease.as_ref().and_then(|c| c.version.clone());
            if cur.is_none() || cur != l.version {
                return Err(LeaseError::Conflict);
            }
            Ok(self.stored(l))
        }
    }

    struct Pod {
        leader: watch::Receiver<bool>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(name: &str, store: &Arc<Mutex<Store>>) -> Pod {
        let api = Arc::new(Fake {
            who: name.into(),
            store: store.clone(),
        });
        let (tx, leader) = watch::channel(false);
        let stop = CancellationToken::new();
        let opts = ElectorOptions {
            me: name.into(),
            duration: Duration::from_secs(15),
            renew: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retry: (Duration::from_secs(1), Duration::from_secs(4)),
            lease: "mcp-scout/mcp-scout-leader".into(),
        };
        let task = tokio::spawn(run(api, opts, tx, stop.clone()));
        Pod { leader, stop, task }
    }

    /// Advance the paused clock in 100 ms steps for `secs`, checking at every step that at
    /// most one pod believes it leads; returns who led at the end.
    async fn step(pods: &[&Pod], secs: u64) -> Vec<bool> {
        for _ in 0..secs * 10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let n = pods.iter().filter(|p| *p.leader.borrow()).count();
            assert!(n <= 1, "{n} pods lead at once");
        }
        pods.iter().map(|p| *p.leader.borrow()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn one_pod_acquires_and_renews_every_period_the_other_follows() {
        let store = Arc::new(Mutex::new(Store::default()));
        let a = start("a", &store);
        assert_eq!(step(&[&a], 1).await, [true]);
        let b = start("b", &store);
        assert_eq!(step(&[&a, &b], 31).await, [true, false]);
        let s = store.lock().unwrap();
        // One create and a renewal every 5 s over 32 s; b never wrote.
        assert!(s
            .writes
            .iter()
            .all(|(w, h)| w == "a" && h.as_deref() == Some("a")));
        assert_eq!(s.writes.len(), 7, "{:?}", s.writes);
        assert_eq!(s.lease.as_ref().unwrap().transitions, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_off_holder_steps_down_before_the_follower_takes_over() {
        let store = Arc::new(Mutex::new(Store::default()));
        let a = start("a", &store);
        assert_eq!(step(&[&a], 1).await, [true]);
        let b = start("b", &store);
        assert_eq!(step(&[&a, &b], 2).await, [true, false]);
        store.lock().unwrap().cut_off.push("a".into());
        // a's last renewal was at 0 s: it steps down at the renew deadline (15 - 5 = 10 s),
        // b takes over after the term (15 s) plus at most one re-read; step() asserts that
        // the two never lead at once.
        assert_eq!(step(&[&a, &b], 8).await, [false, false]);
        assert_eq!(step(&[&a, &b], 8).await, [false, true]);
        let l = store.lock().unwrap().lease.clone().unwrap();
        assert_eq!((l.holder.as_deref(), l.transitions), (Some("b"), 1));
        // a comes back: it reads b's live Lease and follows.
        store.lock().unwrap().cut_off.clear();
        assert_eq!(step(&[&a, &b], 10).await, [false, true]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_releases_the_lease_and_the_next_pod_takes_over_at_once() {
        let store = Arc::new(Mutex::new(Store::default()));
        let a = start("a", &store);
        assert_eq!(step(&[&a], 1).await, [true]);
        let b = start("b", &store);
        assert_eq!(step(&[&a, &b], 1).await, [true, false]);
        a.stop.cancel();
        a.task.await.unwrap();
        assert!(!*a.leader.borrow());
        assert_eq!(store.lock().unwrap().lease.as_ref().unwrap().holder, None);
        // b re-reads within one renew period (5 s), not after the 15 s term.
        assert_eq!(step(&[&b], 6).await, [true]);
        b.stop.cancel();
        b.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_taken_by_another_stops_the_old_holder_at_its_next_read() {
        let store = Arc::new(Mutex::new(Store::default()));
        let a = start("a", &store);
        assert_eq!(step(&[&a], 1).await, [true]);
        // Someone else writes the Lease (as after an expiry a never noticed).
        {
            let mut s = store.lock().unwrap();
            s.rv += 1;
            let v = Some(s.rv.to_string());
            let l = s.lease.as_mut().unwrap();
            l.holder = Some("z".into());
            l.renewed = Some(SystemTime::now() + Duration::from_secs(3600));
            l.version = v;
        }
        assert_eq!(step(&[&a], 6).await, [false]);
        a.stop.cancel();
        a.task.await.unwrap();
        // Not ours: the shutdown leaves it alone.
        assert_eq!(
            store
                .lock()
                .unwrap()
                .lease
                .as_ref()
                .unwrap()
                .holder
                .as_deref(),
            Some("z")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn racing_creators_resolve_by_conflict_to_one_holder() {
        let store = Arc::new(Mutex::new(Store::default()));
        let pods: Vec<Pod> = ["a", "b", "c"].iter().map(|n| start(n, &store)).collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let led = step(&refs, 20).await;
        assert_eq!(led.iter().filter(|l| **l).count(), 1, "{led:?}");
        let creates = store
            .lock()
            .unwrap()
            .writes
            .iter()
            .filter(|(_, h)| h.is_some())
            .count();
        assert!(creates >= 1);
    }
}
