//! The sweep engine: every address × port of a [`TargetSet`] probed once with a TCP connect,
//! in a pseudo-random order, inside named limits.
//!
//! # Design
//! The index space `0..addresses×ports` is walked through a keyed [`Permutation`], so probes
//! spread across hosts and memory stays constant whatever the range size. The space is split
//! into `shards` interleaved slices (index `i` belongs to shard `i % shards`). Each shard runs
//! on its own OS thread with its own epoll instance ([`Connector`]): a connect scan is a
//! syscall-bound loop, and a thread-per-core layout without a shared reactor is what the C
//! reference loop in `scripts/bench/` does. Results cross to the async side through a bounded
//! tokio channel (`blocking_send`), and shutdown is a token the loop checks at least every
//! 50 ms.
//!
//! Within a shard:
//! - at most `window = concurrency / shards` connects are in flight (a descriptor each);
//! - an optional pacing gate spaces new probes `shards / rate` seconds apart;
//! - the per-attempt deadline adapts to measured round trips (RFC 6298 style:
//!   `srtt + 4·rttvar`), clamped to `[min_timeout, timeout]`;
//! - a timed-out probe is retried after one deadline's wait (never at once, so a congested
//!   link gets time to drain), up to `retries` times, or `max_retries` once a retry has been
//!   seen to succeed, which proves the path drops packets (nmap raises its retry cap the same
//!   way);
//! - running out of descriptors or ephemeral ports shrinks the window to what is in flight
//!   and re-queues the probe: the scan slows down, no probe is lost.
//!
//! The engine never prints. Results go to a bounded channel; counters to [`SweepStats`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::epoll::Connector;
use super::tcp::Outcome;
use crate::permute::Permutation;
use crate::ports::PortList;
use crate::target::TargetSet;
use crate::vocab::{PortState, ProbeResult};

/// Default ceiling of one connect attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default floor of the adaptive deadline: below this, scheduling jitter on a busy machine
/// would be mistaken for loss.
pub const DEFAULT_MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Default retries of a timed-out probe.
pub const DEFAULT_RETRIES: u8 = 1;
/// Default retry cap once the path is seen to drop packets.
pub const DEFAULT_MAX_RETRIES: u8 = 3;
/// Default probe rate (probes/s) when any target is off loopback: high enough to sweep a /24
/// on the MCP ports in well under a second, low enough not to flood a home router's
/// connection table. Loopback-only sweeps are unpaced.
pub const DEFAULT_LAN_RATE: u32 = 5_000;
/// Descriptors kept back from the window for stdout, the runtime, DNS and ICMP sockets.
pub const FD_RESERVE: u64 = 256;
/// Upper bound of the default window, even when the descriptor limit is huge. 4,096 connects
/// in flight sustain 4,096 probes/s even if every probe runs into the 1 s deadline (close to
/// the default LAN pace), and far more when hosts answer; on loopback larger windows measured
/// slower (more kernel socket-table and cache pressure), and on a LAN they only fill
/// connection-tracking tables. RustScan's default batch (4,500) is the same size.
pub const MAX_DEFAULT_CONCURRENCY: usize = 4_096;
/// Default window of a loopback-only sweep. By Little's law the window a sweep needs is rate
/// × round trip; loopback answers in tens of microseconds, so 512 in flight leave room for
/// millions of probes per second, and measured larger windows only slowed it down (more
/// sockets in the kernel's tables, a larger deadline heap): 1.1-1.3 s against 1.3-1.9 s at
/// 4,096 for 196,608 probes on 2 cores.
pub const LOOPBACK_DEFAULT_CONCURRENCY: usize = 512;
/// Wait before trying again when descriptors ran out and nothing is in flight to free one.
const EXHAUSTED_BACKOFF: Duration = Duration::from_millis(10);
/// Times one probe may fail to bind a local address (EADDRNOTAVAIL) before it is given up
/// as unreachable: ephemeral-port shortages pass, an address family this host cannot use
/// does not. Descriptor shortages are never capped: they always pass.
const MAX_DEFERRALS: u8 = 200;
/// How long a shard may go without opening a single socket before it gives up with an error
/// instead of waiting forever.
const STALL_LIMIT: Duration = Duration::from_secs(10);
/// Pacing debt a shard may catch up on at once. Sleeps have millisecond granularity, so
/// at 20,000 probes/s a wake must send every probe that came due while asleep; the cap keeps
/// a long stall (a full window) from turning into a burst above the configured rate.
pub(crate) const PACING_BURST: Duration = Duration::from_millis(5);
/// Longest a shard sleeps without checking for shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);
/// Round-trip samples needed before the deadline adapts.
const MIN_RTT_SAMPLES: u32 = 4;

/// Limits and timing of a sweep (resolved, validated values).
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Connects in flight across all shards.
    pub concurrency: usize,
    /// Worker threads, each with its own reactor.
    pub shards: usize,
    /// Probes per second across all shards; `None` is unpaced.
    pub rate: Option<u32>,
    /// Ceiling of one attempt's deadline.
    pub timeout: Duration,
    /// Floor of the adaptive deadline; equal to `timeout` disables adaptation.
    pub min_timeout: Duration,
    /// Retries of a timed-out probe.
    pub retries: u8,
    /// Retry cap once packet loss has been observed.
    pub max_retries: u8,
    /// Which states are sent to the results channel (all are counted).
    pub report: StateFilter,
    /// Key of the probe-order permutation.
    pub seed: u64,
    /// A round trip measured before the sweep (ICMP), seeding the adaptive deadline.
    pub initial_rtt: Option<Duration>,
    /// `(index, count)`: probe only the indices `i` of the address×port space with
    /// `i % count == index` (a daemon job's shard). Cut before the permutation, so instances
    /// with different seeds still split the space exactly.
    pub partition: Option<(u64, u64)>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            concurrency: 1024,
            shards: 1,
            rate: None,
            timeout: DEFAULT_TIMEOUT,
            min_timeout: DEFAULT_MIN_TIMEOUT,
            retries: DEFAULT_RETRIES,
            max_retries: DEFAULT_MAX_RETRIES,
            report: StateFilter::OPEN,
            seed: 0,
            initial_rtt: None,
            partition: None,
        }
    }
}

/// A set of [`PortState`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateFilter(u8);

impl StateFilter {
    /// Only open ports.
    pub const OPEN: Self = Self(1);
    /// Every state.
    pub const ALL: Self = Self(0b1111);

    /// Whether `s` is in the set.
    pub fn contains(self, s: PortState) -> bool {
        self.0 & Self::bit(s) != 0
    }

    /// The set with `s` added.
    pub fn with(self, s: PortState) -> Self {
        Self(self.0 | Self::bit(s))
    }

    fn bit(s: PortState) -> u8 {
        match s {
            PortState::Open => 1,
            PortState::Closed => 2,
            PortState::Filtered => 4,
            PortState::Unreachable => 8,
        }
    }
}

/// Live counters, read by the progress display and the summary.
#[derive(Debug, Default)]
pub struct SweepStats {
    /// Probes planned (addresses × ports).
    pub total: AtomicU64,
    /// Probes concluded, including skipped ones.
    pub done: AtomicU64,
    /// Open ports.
    pub open: AtomicU64,
    /// Closed ports.
    pub closed: AtomicU64,
    /// Filtered ports.
    pub filtered: AtomicU64,
    /// Unreachable probes.
    pub unreachable: AtomicU64,
    /// Probes skipped because host discovery found the host down.
    pub skipped: AtomicU64,
    /// Retry attempts sent.
    pub retries: AtomicU64,
    /// Times a probe was put back because descriptors or ports ran out.
    pub exhausted: AtomicU64,
}

/// A shard's counts since its last flush into [`SweepStats`]. Shards count locally because
/// two threads bumping shared atomics on every probe bounce one cache line between cores.
#[derive(Debug, Default)]
struct Tally {
    by_state: [u64; 4],
    skipped: u64,
    retries: u64,
    exhausted: u64,
}

impl Tally {
    fn count(&mut self, s: PortState) {
        self.by_state[s as usize] += 1;
    }

    fn flush(&mut self, stats: &SweepStats) {
        let t = std::mem::take(self);
        let add = |c: &AtomicU64, v: u64| {
            if v > 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&stats.open, t.by_state[PortState::Open as usize]);
        add(&stats.closed, t.by_state[PortState::Closed as usize]);
        add(&stats.filtered, t.by_state[PortState::Filtered as usize]);
        add(
            &stats.unreachable,
            t.by_state[PortState::Unreachable as usize],
        );
        add(&stats.skipped, t.skipped);
        add(&stats.retries, t.retries);
        add(&stats.exhausted, t.exhausted);
        add(&stats.done, t.by_state.iter().sum::<u64>() + t.skipped);
    }
}

/// Hosts known to be up, by dense address index, from host discovery.
#[derive(Debug, Clone)]
pub struct HostMask {
    bits: Vec<u64>,
}

impl HostMask {
    /// All `n` hosts down.
    pub fn new(n: u64) -> Self {
        Self {
            bits: vec![0; usize::try_from(n.div_ceil(64)).unwrap_or(usize::MAX)],
        }
    }

    /// Mark host `i` up.
    pub fn set(&mut self, i: u64) {
        self.bits[(i / 64) as usize] |= 1 << (i % 64);
    }

    /// Whether host `i` is up.
    pub fn get(&self, i: u64) -> bool {
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Hosts marked up.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// What the engine could not do (expected network outcomes are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A worker thread or its runtime could not start.
    #[error("cannot start sweep worker: {0}")]
    Worker(#[source] std::io::Error),
    /// The probe space does not fit in 64 bits.
    #[error("the sweep has more than 2^64 probes")]
    TooLarge,
    /// No socket could be opened for a long time: the descriptor limit is too low for
    /// anything to run.
    #[error("no socket could be opened for {0:?} (descriptor limit too low?); raise `ulimit -n` or lower --concurrency")]
    NoDescriptors(Duration),
}

/// A sweep: what to probe and how.
#[derive(Debug, Clone)]
pub struct Sweep {
    targets: Arc<TargetSet>,
    ports: Arc<PortList>,
    alive: Option<Arc<HostMask>>,
    opts: SweepOptions,
}

impl Sweep {
    /// A sweep of `targets` × `ports`; `alive` (from host discovery) skips hosts found down.
    pub fn new(
        targets: Arc<TargetSet>,
        ports: PortList,
        alive: Option<Arc<HostMask>>,
        opts: SweepOptions,
    ) -> Self {
        Self {
            targets,
            ports: Arc::new(ports),
            alive,
            opts,
        }
    }

    /// Number of probes: addresses × ports, or this partition's share of them.
    pub fn total(&self) -> Result<u64, SweepError> {
        let space = self
            .targets
            .len()
            .checked_mul(self.ports.len() as u64)
            .ok_or(SweepError::TooLarge)?;
        Ok(match self.opts.partition {
            Some((index, count)) if count > 1 => space.saturating_sub(index).div_ceil(count),
            _ => space,
        })
    }

    /// The address×port index of the `local`-th probe of this partition.
    fn global(&self, local: u64) -> u64 {
        match self.opts.partition {
            Some((index, count)) if count > 1 => local * count + index,
            _ => local,
        }
    }

    /// Run to completion or until `shutdown` fires. Results matching `opts.report` are sent
    /// to `tx`; returns whether the sweep was interrupted.
    pub async fn run(
        self,
        tx: mpsc::Sender<ProbeResult>,
        stats: Arc<SweepStats>,
        shutdown: CancellationToken,
    ) -> Result<bool, SweepError> {
        let total = self.total()?;
        stats.total.store(total, Ordering::Relaxed);
        let shards = self.opts.shards.clamp(1, 256) as u64;
        // Few probes or a slow rate: more shards than work only adds threads.
        let shards = shards
            .min(total.max(1))
            .min(self.opts.rate.map_or(u64::MAX, |r| u64::from(r).max(1)));
        let window = (self.opts.concurrency as u64 / shards).max(1) as usize;
        let perm = Arc::new(Permutation::new(total, self.opts.seed));
        let loss_seen = Arc::new(AtomicBool::new(false));
        let mut done_rx = Vec::new();
        // Every shard's epoll instance is made before any shard starts: once one runs, it may
        // take every descriptor left and starve a later shard's setup.
        let connectors = (0..shards)
            .map(|_| Connector::new())
            .collect::<Result<Vec<_>, _>>()
            .map_err(SweepError::Worker)?;
        for (k, conn) in (0..shards).zip(connectors) {
            let (done_tx, rx) = oneshot::channel();
            let shard = Shard {
                sweep: self.clone(),
                perm: perm.clone(),
                first: k,
                step: shards,
                window,
                interval: self
                    .opts
                    .rate
                    .map(|r| Duration::from_secs_f64(shards as f64 / f64::from(r.max(1)))),
                tx: tx.clone(),
                stats: stats.clone(),
                loss_seen: loss_seen.clone(),
                shutdown: shutdown.clone(),
            };
            std::thread::Builder::new()
                .name(format!("sweep-{k}"))
                .spawn(move || {
                    let _ = done_tx.send(shard.drive(conn));
                })
                .map_err(SweepError::Worker)?;
            done_rx.push(rx);
        }
        drop(tx);
        let mut interrupted = false;
        for rx in done_rx {
            // A worker that panicked drops its sender: report it as interrupted, not success.
            interrupted |= rx.await.unwrap_or(Ok(true))?;
        }
        Ok(interrupted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Probe {
    idx: u64,
    attempt: u8,
    /// Times this probe was put back for lack of descriptors or ports.
    deferrals: u8,
}

/// Smoothed round-trip estimate (RFC 6298), in seconds.
#[derive(Debug, Default)]
struct RttEstimator {
    srtt: f64,
    rttvar: f64,
    samples: u32,
}

impl RttEstimator {
    /// An estimate that starts from a round trip measured elsewhere, as if that many
    /// samples had been seen: the deadline adapts from the first probe on.
    fn seeded(rtt: Option<Duration>) -> Self {
        match rtt {
            Some(r) => Self {
                srtt: r.as_secs_f64(),
                rttvar: r.as_secs_f64() / 2.0,
                samples: MIN_RTT_SAMPLES,
            },
            None => Self::default(),
        }
    }

    fn sample(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        if self.samples == 0 {
            self.srtt = r;
            self.rttvar = r / 2.0;
        } else {
            self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - r).abs();
            self.srtt = 0.875 * self.srtt + 0.125 * r;
        }
        self.samples = self.samples.saturating_add(1);
    }

    fn deadline(&self, floor: Duration, ceil: Duration) -> Duration {
        if self.samples < MIN_RTT_SAMPLES {
            return ceil;
        }
        Duration::from_secs_f64(self.srtt + 4.0 * self.rttvar).clamp(floor, ceil.max(floor))
    }
}

/// What a shard's loop mutates while concluding probes.
struct ShardState {
    rtt: RttEstimator,
    retries: BinaryHeap<Reverse<(Instant, Probe)>>,
    deferred: VecDeque<Probe>,
    /// Current window: shrinks when descriptors run out, grows back one by one.
    window: usize,
    tally: Tally,
}

struct Shard {
    sweep: Sweep,
    perm: Arc<Permutation>,
    first: u64,
    step: u64,
    window: usize,
    interval: Option<Duration>,
    tx: mpsc::Sender<ProbeResult>,
    stats: Arc<SweepStats>,
    loss_seen: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl Shard {
    fn socket_addr(&self, idx: u64) -> SocketAddr {
        let idx = self.sweep.global(idx);
        let np = self.sweep.ports.len() as u64;
        let port = self.sweep.ports.as_slice()[(idx % np) as usize];
        let ip: IpAddr = self.sweep.targets.addr(idx / np);
        SocketAddr::new(ip, port)
    }

    /// Drive this shard's slice on the current thread; returns true when interrupted.
    fn drive(self, mut conn: Connector<Probe>) -> Result<bool, SweepError> {
        let opts = &self.sweep.opts;
        let mut st = ShardState {
            rtt: RttEstimator::seeded(opts.initial_rtt),
            retries: BinaryHeap::new(),
            deferred: VecDeque::new(),
            window: self.window,
            tally: Tally::default(),
        };
        let mut next = self.first;
        let total = self.perm.len();
        let mut gate: Option<Instant> = None;
        let mut backoff_until: Option<Instant> = None;
        let mut done: Vec<(Probe, Outcome)> = Vec::with_capacity(1024);
        let mut last_progress = Instant::now();

        let interrupted = loop {
            st.tally.flush(&self.stats);
            if self.shutdown.is_cancelled() {
                break true;
            }
            let now = Instant::now();
            // Fill the window: due retries first, then re-queued probes, then new indices.
            while conn.in_flight() < st.window && backoff_until.is_none_or(|b| now >= b) {
                if gate.is_some_and(|g| now < g) {
                    break;
                }
                let probe = if st
                    .retries
                    .peek()
                    .is_some_and(|Reverse((due, _))| *due <= now)
                {
                    st.retries.pop().map(|Reverse((_, p))| p)
                } else if let Some(p) = st.deferred.pop_front() {
                    Some(p)
                } else {
                    self.next_live_index(&mut next, total, &mut st.tally)
                        .map(|idx| Probe {
                            idx,
                            attempt: 0,
                            deferrals: 0,
                        })
                };
                let Some(probe) = probe else { break };
                let deadline = st.rtt.deadline(opts.min_timeout, opts.timeout);
                if let Some(concluded) = conn.start(self.socket_addr(probe.idx), deadline, probe) {
                    done.push(concluded);
                }
                if let Some(iv) = self.interval {
                    gate = Some(next_gate(gate, now, iv));
                }
                if done.len() >= 64 {
                    break; // conclude synchronous answers before starting more
                }
            }
            let finished = conn.in_flight() == 0
                && done.is_empty()
                && st.retries.is_empty()
                && st.deferred.is_empty()
                && next >= total;
            if finished {
                break false;
            }
            if done.is_empty() {
                // Sleep until an answer, a deadline, a due retry, the pacing gate or the end
                // of a back-off; at most SHUTDOWN_POLL so cancellation is noticed.
                let mut wake = now + SHUTDOWN_POLL;
                if conn.in_flight() < st.window {
                    let due = st.retries.peek().map(|Reverse((due, _))| *due);
                    for t in [due, gate, backoff_until].into_iter().flatten() {
                        wake = wake.min(t);
                    }
                }
                conn.poll(wake.saturating_duration_since(now), &mut done)
                    .map_err(SweepError::Worker)?;
            }
            backoff_until = backoff_until.filter(|b| *b > Instant::now());
            for (probe, outcome) in done.drain(..) {
                self.conclude(&mut st, probe, outcome);
                if matches!(outcome, Outcome::Exhausted | Outcome::NoLocalAddress) {
                    if conn.in_flight() == 0 {
                        // Nothing in flight will free a descriptor: wait a little instead.
                        backoff_until = Some(Instant::now() + EXHAUSTED_BACKOFF);
                        if last_progress.elapsed() > STALL_LIMIT {
                            return Err(SweepError::NoDescriptors(STALL_LIMIT));
                        }
                    }
                } else {
                    last_progress = Instant::now();
                }
            }
            if conn.in_flight() > 0 {
                last_progress = Instant::now(); // in-flight connects will free descriptors
            }
        };
        st.tally.flush(&self.stats);
        Ok(interrupted)
    }

    /// Next index of this shard whose host is up (skipped ones are counted as done).
    fn next_live_index(&self, next: &mut u64, total: u64, tally: &mut Tally) -> Option<u64> {
        while *next < total {
            let idx = self.perm.apply(*next);
            *next += self.step;
            if let Some(mask) = &self.sweep.alive {
                if !mask.get(self.sweep.global(idx) / self.sweep.ports.len() as u64) {
                    tally.skipped += 1;
                    continue;
                }
            }
            return Some(idx);
        }
        None
    }

    fn conclude(&self, st: &mut ShardState, probe: Probe, outcome: Outcome) {
        let opts = &self.sweep.opts;
        let (state, took) = match outcome {
            Outcome::Open(d) => (PortState::Open, Some(d)),
            Outcome::Closed(d) => (PortState::Closed, Some(d)),
            Outcome::Unreachable(d) => (PortState::Unreachable, Some(d)),
            Outcome::Exhausted | Outcome::NoLocalAddress
                if outcome == Outcome::Exhausted || probe.deferrals < MAX_DEFERRALS =>
            {
                // Nothing was sent: put it back and shrink the window to what the system bears.
                st.tally.exhausted += 1;
                st.deferred.push_front(Probe {
                    deferrals: probe.deferrals.saturating_add(1),
                    ..probe
                });
                st.window = (st.window / 2).max(1);
                return;
            }
            // EADDRNOTAVAIL MAX_DEFERRALS times in a row: not a passing shortage but an
            // address this host cannot send to (an IPv6 target with IPv6 disabled, say).
            Outcome::Exhausted | Outcome::NoLocalAddress => (PortState::Unreachable, None),
            Outcome::TimedOut => {
                let budget = if self.loss_seen.load(Ordering::Relaxed) {
                    opts.max_retries.max(opts.retries)
                } else {
                    opts.retries
                };
                if probe.attempt < budget {
                    st.tally.retries += 1;
                    let spacing = st.rtt.deadline(opts.min_timeout, opts.timeout);
                    let retry = Probe {
                        attempt: probe.attempt + 1,
                        ..probe
                    };
                    st.retries.push(Reverse((Instant::now() + spacing, retry)));
                    return;
                }
                (PortState::Filtered, None)
            }
        };
        if st.window < self.window {
            st.window += 1; // additive recovery after an exhaustion back-off
        }
        if matches!(state, PortState::Open | PortState::Closed) {
            if let Some(d) = took {
                st.rtt.sample(d);
            }
            if probe.attempt > 0 && !self.loss_seen.load(Ordering::Relaxed) {
                self.loss_seen.store(true, Ordering::Relaxed);
            }
        }
        st.tally.count(state);
        if opts.report.contains(state) {
            let addr = self.socket_addr(probe.idx);
            let result = ProbeResult {
                ip: addr.ip(),
                port: addr.port(),
                state,
                rtt: took.filter(|_| state != PortState::Filtered),
                attempts: probe.attempt + 1,
                seen_at: SystemTime::now(),
            };
            // Blocks when the writer is behind (backpressure). The receiver only goes away on
            // shutdown; then the result has nowhere to go.
            let _ = self.tx.blocking_send(result);
        }
    }
}

/// The send time of the next paced probe: one interval after the previous one, but never
/// more than [`PACING_BURST`] in the past.
pub(crate) fn next_gate(gate: Option<Instant>, now: Instant, interval: Duration) -> Instant {
    let floor = now.checked_sub(PACING_BURST).unwrap_or(now);
    gate.map_or(now, |g| g.max(floor)) + interval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_catches_up_after_a_coarse_sleep_but_not_beyond_the_burst() {
        let iv = Duration::from_micros(100);
        let t0 = Instant::now();
        let mut gate = Some(next_gate(None, t0, iv));
        // Asleep for 1 ms: ten probes are due at once.
        let now = t0 + Duration::from_millis(1);
        let mut sent = 1;
        while gate.is_some_and(|g| g <= now) {
            gate = Some(next_gate(gate, now, iv));
            sent += 1;
        }
        assert_eq!(sent, 11);
        // Stalled for a second: only the burst is caught up, not 10,000 probes.
        let later = now + Duration::from_secs(1);
        let mut burst = 0;
        while gate.is_some_and(|g| g <= later) {
            gate = Some(next_gate(gate, later, iv));
            burst += 1;
        }
        assert_eq!(burst, 51);
    }

    #[test]
    fn adaptive_deadline_stays_within_bounds() {
        let floor = Duration::from_millis(100);
        let ceil = Duration::from_secs(1);
        let mut e = RttEstimator::default();
        assert_eq!(e.deadline(floor, ceil), ceil, "no samples: the ceiling");
        for _ in 0..10 {
            e.sample(Duration::from_micros(50));
        }
        assert_eq!(e.deadline(floor, ceil), floor);
        for _ in 0..50 {
            e.sample(Duration::from_millis(400));
        }
        let d = e.deadline(floor, ceil);
        assert!(d > Duration::from_millis(400) && d <= ceil, "{d:?}");
    }

    #[test]
    fn a_seeded_estimate_adapts_from_the_first_probe() {
        let (floor, ceil) = (Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(RttEstimator::seeded(None).deadline(floor, ceil), ceil);
        assert_eq!(
            RttEstimator::seeded(Some(Duration::from_millis(20))).deadline(floor, ceil),
            floor
        );
        let slow = RttEstimator::seeded(Some(Duration::from_millis(300))).deadline(floor, ceil);
        assert!(
            slow > Duration::from_millis(300) && slow <= ceil,
            "{slow:?}"
        );
    }

    #[test]
    fn partitions_cover_the_space_exactly_once_whatever_the_count() {
        let targets = Arc::new(TargetSet::new(
            vec![crate::target::AddrRange::new(
                "127.0.0.1".parse().unwrap(),
                "127.0.0.7".parse().unwrap(),
            )],
            Vec::new(),
        ));
        let ports = PortList::parse("1-5").unwrap();
        let space = 7 * 5;
        for count in 1..=8u64 {
            let mut seen = vec![0u32; space];
            for index in 0..count {
                let opts = SweepOptions {
                    partition: Some((index, count)),
                    ..SweepOptions::default()
                };
                let s = Sweep::new(targets.clone(), ports.clone(), None, opts);
                for local in 0..s.total().unwrap() {
                    seen[s.global(local) as usize] += 1;
                }
            }
            assert!(seen.iter().all(|n| *n == 1), "count {count}: {seen:?}");
        }
    }

    #[test]
    fn host_mask_sets_and_counts() {
        let mut m = HostMask::new(130);
        for i in [0, 63, 64, 129] {
            m.set(i);
        }
        assert!(m.get(63) && m.get(129) && !m.get(1));
        assert_eq!(m.count(), 4);
    }

    #[test]
    fn state_filter() {
        assert!(StateFilter::OPEN.contains(PortState::Open));
        assert!(!StateFilter::OPEN.contains(PortState::Closed));
        assert!(StateFilter::OPEN
            .with(PortState::Closed)
            .contains(PortState::Closed));
        assert!(StateFilter::ALL.contains(PortState::Unreachable));
    }
}
