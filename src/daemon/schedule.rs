//! When a job runs: at start, then every `interval` ± `jitter`, or at once when triggered;
//! never twice at once.
//!
//! The next start is computed from the *planned* start, not from the end of the run, so a
//! job's runs do not drift later by their own duration. A run that outlasts its slot is an
//! overrun: it is reported, and the next run starts right after it (never beside it). A
//! manual trigger runs the job now without moving its planned schedule.
//!
//! [`next_start`] is a pure function and [`drive`] only feeds it, so both are tested with
//! tokio's paused clock rather than by sleeping.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A job's timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Time between planned starts.
    pub interval: Duration,
    /// Spread of each start as a fraction of `interval` (0 to 0.5).
    pub jitter: f64,
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its planned time came (or the daemon started).
    Scheduled,
    /// `POST /api/v1/jobs/{name}/run`.
    Manual,
}

/// The planned start after the one at `planned`; `unit` in `[0, 1)` picks the jitter.
/// Returns the start and whether the run that began at `planned` overran it (`now` is
/// already past it), in which case the start is `now`.
pub fn next_start(planned: Instant, t: Timing, unit: f64, now: Instant) -> (Instant, bool) {
    let spread = t.interval.as_secs_f64() * t.jitter.clamp(0.0, 0.5);
    let offset = spread * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
    let base = planned + t.interval;
    let next = if offset >= 0.0 {
        base + Duration::from_secs_f64(offset)
    } else {
        base.checked_sub(Duration::from_secs_f64(-offset))
            .unwrap_or(base)
    };
    if now > next {
        (now, true)
    } else {
        (next, false)
    }
}

/// A small, seedable source of jitter (xorshift64*): no crate needed for spreading starts.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeded from `seed` (the job name's hash and the clock, say); never zero.
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A job's schedule: its timing, its jitter source and what to do on an overrun.
pub struct Schedule {
    /// Interval and jitter.
    pub timing: Timing,
    /// Jitter source.
    pub jitter: Jitter,
    /// Called each time a run outlasted its slot (counted in metrics).
    pub on_overrun: Box<dyn FnMut() + Send>,
    /// Called with the next planned start after each run (the API shows it).
    pub on_planned: Box<dyn FnMut(Instant) + Send>,
}

/// Run `run` at start, then on schedule or on trigger, until `stop` fires (`triggers` is the
/// receiver or a borrow of it, which an `owner: leader` job keeps across terms). Triggers carry a
/// reply sender that `run` answers (the API's `202` with a run id). `retire` ends the loop
/// between runs (a reloaded job's old task finishes its current run first); `stop` is
/// also what each run watches, so it interrupts a run.
pub async fn drive<T, F, Fut>(
    mut sched: Schedule,
    mut triggers: impl std::borrow::BorrowMut<mpsc::Receiver<T>>,
    stops: (CancellationToken, CancellationToken),
    mut run: F,
) where
    F: FnMut(Reason, Option<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (stop, retire) = stops;
    let timing = sched.timing;
    let mut planned = Instant::now();
    loop {
        let (reason, trigger) = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = retire.cancelled() => return,
            t = triggers.borrow_mut().recv() => match t {
                Some(t) => (Reason::Manual, Some(t)),
                None => (Reason::Scheduled, None),
            },
            () = tokio::time::sleep_until(planned) => (Reason::Scheduled, None),
        };
        run(reason, trigger).await;
        if reason == Reason::Scheduled {
            let (next, overrun) = next_start(planned, timing, sched.jitter.unit(), Instant::now());
            if overrun {
                (sched.on_overrun)();
                tracing::warn!(
                    "run outlasted its interval ({:?}); the next one starts now",
                    timing.interval
                );
            }
            planned = next;
        } else if Instant::now() > planned {
            // A manual run that ran past the planned start: that start happens now.
            planned = Instant::now();
        }
        (sched.on_planned)(planned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn t(interval: u64, jitter: f64) -> Timing {
        Timing {
            interval: Duration::from_secs(interval),
            jitter,
        }
    }

    #[test]
    fn next_start_counts_from_the_planned_start_within_the_jitter() {
        let p = Instant::now();
        let (n, over) = next_start(p, t(60, 0.0), 0.7, p + Duration::from_secs(5));
        assert_eq!((n - p, over), (Duration::from_secs(60), false));
        let (lo, _) = next_start(p, t(100, 0.1), 0.0, p);
        let (hi, _) = next_start(p, t(100, 0.1), 0.999_999, p);
        assert_eq!(lo - p, Duration::from_secs(90));
        assert!(hi - p > Duration::from_millis(109_999) && hi - p <= Duration::from_secs(110));
    }

    #[test]
    fn an_overrun_starts_the_next_run_at_once() {
        let p = Instant::now();
        let late = p + Duration::from_secs(75);
        assert_eq!(next_start(p, t(60, 0.0), 0.5, late), (late, true));
    }

    #[test]
    fn jitter_units_stay_in_range_and_spread() {
        let mut j = Jitter::new(42);
        let v: Vec<f64> = (0..1000).map(|_| j.unit()).collect();
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(v.iter().any(|x| *x < 0.1) && v.iter().any(|x| *x > 0.9));
    }

    fn sched(interval: u64) -> Schedule {
        Schedule {
            timing: t(interval, 0.0),
            jitter: Jitter::new(1),
            on_overrun: Box::new(|| {}),
            on_planned: Box::new(|_| {}),
        }
    }

    /// Drive a fake job whose runs take `took` each; return the start times (seconds).
    async fn starts(interval: u64, took: u64, horizon: u64) -> Vec<u64> {
        let begin = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (_tx, rx) = mpsc::channel::<()>(1);
        let s2 = seen.clone();
        let task = tokio::spawn(drive(
            sched(interval),
            rx,
            (stop.clone(), CancellationToken::new()),
            move |_, _| {
                let s2 = s2.clone();
                async move {
                    s2.lock().unwrap().push((Instant::now() - begin).as_secs());
                    tokio::time::sleep(Duration::from_secs(took)).await;
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(horizon)).await;
        stop.cancel();
        let _ = task.await;
        let v = seen.lock().unwrap().clone();
        v
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_start_then_every_interval_without_drift() {
        assert_eq!(starts(60, 10, 250).await, [0, 60, 120, 180, 240]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_overrunning_job_never_overlaps_and_restarts_after_each_run() {
        // Each run takes 90 s of a 60 s slot: runs start back to back, never two at once.
        assert_eq!(starts(60, 90, 400).await, [0, 90, 180, 270, 360]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trigger_runs_now_without_moving_the_schedule() {
        let begin = Instant::now();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel::<u32>(1);
        let s2 = seen.clone();
        let task = tokio::spawn(drive(
            sched(60),
            rx,
            (stop.clone(), CancellationToken::new()),
            move |reason, trig| {
                let s2 = s2.clone();
                async move {
                    s2.lock()
                        .unwrap()
                        .push(((Instant::now() - begin).as_secs(), reason, trig));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(25)).await;
        tx.send(7).await.unwrap();
        tokio::time::sleep(Duration::from_secs(100)).await;
        stop.cancel();
        let _ = task.await;
        let v = seen.lock().unwrap().clone();
        assert_eq!(
            v,
            [
                (0, Reason::Scheduled, None),
                (25, Reason::Manual, Some(7)),
                (60, Reason::Scheduled, None),
                (120, Reason::Scheduled, None),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retiring_waits_for_the_current_run() {
        let stop = CancellationToken::new();
        let retire = CancellationToken::new();
        let (_tx, rx) = mpsc::channel::<()>(1);
        let finished = Arc::new(Mutex::new(0));
        let f2 = finished.clone();
        let r2 = retire.clone();
        let task = tokio::spawn(drive(sched(60), rx, (stop, retire), move |_, _| {
            let (f2, r2) = (f2.clone(), r2.clone());
            async move {
                r2.cancel(); // retired while running
                tokio::time::sleep(Duration::from_secs(30)).await;
                *f2.lock().unwrap() += 1;
            }
        }));
        task.await.unwrap();
        assert_eq!(
            *finished.lock().unwrap(),
            1,
            "the run finished, no second one"
        );
    }
}
