//! The progress line on stderr: probes done/total, rate, ETA and open ports so far.
//!
//! Drawn only when stderr is a terminal (the caller decides), redrawn a few times a second
//! from the engine's atomic counters, and erased before results are printed.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::discover::icmp::PingStats;
use crate::discover::sweep::SweepStats;

/// Redraw interval: smooth enough to read, rare enough to cost nothing.
const REDRAW: Duration = Duration::from_millis(200);

/// What the line shows.
#[derive(Debug, Clone)]
pub enum Phase {
    /// ICMP host discovery.
    Ping(Arc<PingStats>),
    /// The TCP sweep.
    Sweep(Arc<SweepStats>),
}

/// Draw `phase` on stderr until `stop` fires, then erase the line.
pub async fn run(phase: Phase, stop: CancellationToken) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(REDRAW);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {
                let line = render(&phase, start.elapsed());
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
            }
        }
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K");
    let _ = err.flush();
}

fn render(phase: &Phase, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    match phase {
        Phase::Ping(s) => {
            let (done, total) = (
                s.done.load(Ordering::Relaxed),
                s.total.load(Ordering::Relaxed),
            );
            format!(
                "host discovery {} {done}/{total} hosts  {} up",
                bar(done, total),
                s.up.load(Ordering::Relaxed)
            )
        }
        Phase::Sweep(s) => {
            let (done, total) = (
                s.done.load(Ordering::Relaxed),
                s.total.load(Ordering::Relaxed),
            );
            let rate = done as f64 / secs;
            let eta = if rate > 0.0 && total > done {
                format!("{:.0}s", (total - done) as f64 / rate)
            } else {
                "-".into()
            };
            format!(
                "{} {done}/{total} probes  {rate:.0}/s  ETA {eta}  {} open",
                bar(done, total),
                s.open.load(Ordering::Relaxed)
            )
        }
    }
}

fn bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 24;
    let filled = (done.min(total) * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH);
    format!(
        "[{}{}]",
        "#".repeat(filled as usize),
        "-".repeat((WIDTH - filled) as usize)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_rate_and_eta() {
        let s = Arc::new(SweepStats::default());
        s.total.store(100, Ordering::Relaxed);
        s.done.store(50, Ordering::Relaxed);
        s.open.store(3, Ordering::Relaxed);
        let line = render(&Phase::Sweep(s), Duration::from_secs(1));
        assert!(line.contains("50/100 probes"), "{line}");
        assert!(
            line.contains("50/s") && line.contains("ETA 1s") && line.contains("3 open"),
            "{line}"
        );
        assert!(line.starts_with("[############------------]"), "{line}");
    }
}
