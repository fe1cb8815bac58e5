//! ICMP echo host discovery: find which hosts are up so the sweep can skip dead ones.
//!
//! On a large sweep most addresses are usually empty, and every probe to an empty address
//! holds a descriptor until its deadline (and again for each retry). One echo request per host
//! (a few, staggered, against loss) costs no descriptor: surge-ping multiplexes them over one
//! socket, unprivileged (`SOCK_DGRAM`) when `net.ipv4.ping_group_range` allows, raw otherwise.
//!
//! Without either permission, discovery reports [`IcmpError::Unavailable`] and the caller
//! says so once and sweeps every host. Loopback addresses are always up and never pinged.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use surge_ping::{Client, Config, PingIdentifier, PingSequence, SurgeError, ICMP};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::sweep::{next_gate, HostMask};
use crate::target::TargetSet;

/// Echo requests per host, staggered: one lost request must not hide a live host.
pub const DEFAULT_PING_ATTEMPTS: u8 = 3;
/// Gap between the staggered requests to one host.
pub const DEFAULT_PING_SPACING: Duration = Duration::from_millis(200);
/// How long to wait for a reply after the last request to a host. The requests to a host on
/// the local link whose ARP (or NDP) entry is cold wait in the kernel behind one
/// resolution, which Linux retries every second (`retrans_time_ms` 1000, three tries): a
/// wait ending 2.2 s after the first request lets two lost ARP exchanges in a row still
/// find the host. With the 1 s of the connect timeout it missed a live host in 2 of 100
/// cold-cache sweeps at 2 % loss each way, and in none of 100 with this wait.
pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_millis(1800);
/// Hosts pinged at once. Echo requests share one socket, so this bounds memory and the
/// reply-matching table, not descriptors.
pub const DEFAULT_PING_CONCURRENCY: usize = 4096;

/// Host discovery settings.
#[derive(Debug, Clone)]
pub struct PingOptions {
    /// Requests per host.
    pub attempts: u8,
    /// Gap between requests to one host.
    pub spacing: Duration,
    /// Wait for a reply after the last request.
    pub timeout: Duration,
    /// Hosts in flight.
    pub concurrency: usize,
    /// Echo requests per second (None: unpaced).
    pub rate: Option<u32>,
}

/// Why discovery could not run.
#[derive(Debug, thiserror::Error)]
pub enum IcmpError {
    /// Neither an unprivileged nor a raw ICMP socket could be opened or used.
    #[error("ICMP echo is not permitted ({0}); host discovery falls back to TCP only (run as root, grant CAP_NET_RAW, or widen net.ipv4.ping_group_range)")]
    Unavailable(String),
}

/// What discovery found.
#[derive(Debug)]
pub struct Discovery {
    /// Hosts up (loopback ones included).
    pub mask: HostMask,
    /// Hosts that were pinged (not loopback).
    pub pinged: u64,
    /// Hosts that answered.
    pub answered: u64,
    /// Median echo round trip of the hosts that answered: a first estimate for the sweep's
    /// adaptive deadline before any TCP answer is measured.
    pub median_rtt: Option<Duration>,
}

/// Round-trip samples kept for the median (the first answers are as good as any).
const MAX_RTT_SAMPLES: usize = 1024;

/// Progress counters for discovery.
#[derive(Debug, Default)]
pub struct PingStats {
    /// Hosts to ping.
    pub total: AtomicU64,
    /// Hosts concluded.
    pub done: AtomicU64,
    /// Hosts that answered.
    pub up: AtomicU64,
}

/// Ping every non-loopback host of `targets`.
pub async fn discover(
    targets: &TargetSet,
    opts: &PingOptions,
    stats: Arc<PingStats>,
    shutdown: CancellationToken,
) -> Result<Discovery, IcmpError> {
    let mut mask = HostMask::new(targets.len());
    // Shared through Arc, never cloned: every `Client` clone's Drop marks the shared reply
    // map destroyed (surge-ping 0.8), which would fail every later ping with ClientDestroyed.
    let mut v4: Option<Arc<Client>> = None;
    let mut v6: Option<Arc<Client>> = None;
    let n = targets.len();
    stats.total.store(n, Ordering::Relaxed);
    let mut inflight = FuturesUnordered::new();
    let mut next = 0u64;
    let mut pinged = 0u64;
    let mut answered = 0u64;
    let mut send_failures = 0u64;
    let mut rtts: Vec<Duration> = Vec::new();
    let mut last_send_error = String::new();
    let interval = opts
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
    let mut gate = Instant::now();
    let ident_base: u16 = rand_u16();

    loop {
        let now = Instant::now();
        while inflight.len() < opts.concurrency && next < n && gate <= now {
            if shutdown.is_cancelled() {
                break;
            }
            let i = next;
            let ip = targets.addr(i);
            next += 1;
            if ip.is_loopback() {
                mask.set(i);
                stats.done.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let client = match ip {
                IpAddr::V4(_) => client_for(&mut v4, ICMP::V4)?,
                IpAddr::V6(_) => client_for(&mut v6, ICMP::V6)?,
            };
            if let Some(iv) = interval {
                let iv = iv * u32::from(opts.attempts.max(1));
                gate = next_gate(Some(gate.into_std()), now.into_std(), iv).into();
            }
            pinged += 1;
            let ident = PingIdentifier(ident_base.wrapping_add(i as u16));
            let o = opts.clone();
            inflight.push(async move { (i, ping_host(client, ip, ident, &o).await) });
        }
        if inflight.is_empty() && (next >= n || shutdown.is_cancelled()) {
            break;
        }
        // Paced and out of budget: wake when the gate opens, unless replies come first.
        let paced = next < n && gate > now;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(gate), if paced => {}
            Some((i, res)) = inflight.next(), if !inflight.is_empty() => {
                stats.done.fetch_add(1, Ordering::Relaxed);
                match res {
                    HostReply::Up(rtt) => {
                        if rtts.len() < MAX_RTT_SAMPLES {
                            rtts.push(rtt);
                        }
                        mask.set(i);
                        answered += 1;
                        stats.up.fetch_add(1, Ordering::Relaxed);
                    }
                    HostReply::Silent => {}
                    HostReply::SendFailed(e) => {
                        send_failures += 1;
                        last_send_error = e;
                    }
                }
            }
        }
    }
    // Every send refused (EPERM from a policy, for example): no usable ICMP at all.
    if pinged > 0 && send_failures == pinged {
        return Err(IcmpError::Unavailable(last_send_error));
    }
    rtts.sort_unstable();
    Ok(Discovery {
        mask,
        pinged,
        answered,
        median_rtt: rtts.get(rtts.len() / 2).copied(),
    })
}

fn client_for(slot: &mut Option<Arc<Client>>, kind: ICMP) -> Result<Arc<Client>, IcmpError> {
    if let Some(c) = slot {
        return Ok(c.clone());
    }
    let config = Config::builder().kind(kind).build();
    let client = Arc::new(Client::new(&config).map_err(|e| IcmpError::Unavailable(e.to_string()))?);
    *slot = Some(client.clone());
    Ok(client)
}

enum HostReply {
    Up(Duration),
    Silent,
    SendFailed(String),
}

/// Send `attempts` staggered echo requests; the first reply wins.
async fn ping_host(
    client: Arc<Client>,
    ip: IpAddr,
    ident: PingIdentifier,
    opts: &PingOptions,
) -> HostReply {
    let payload = [0u8; 16];
    let mut tries = FuturesUnordered::new();
    for k in 0..opts.attempts.max(1) {
        let client = client.clone();
        let delay = opts.spacing * u32::from(k);
        let timeout = opts.timeout + opts.spacing * u32::from(opts.attempts.max(1) - 1 - k);
        tries.push(async move {
            tokio::time::sleep(delay).await;
            let mut pinger = client.pinger(ip, ident).await;
            pinger.timeout(timeout);
            pinger.ping(PingSequence(u16::from(k)), &payload).await
        });
    }
    let mut failed = None;
    while let Some(r) = tries.next().await {
        match r {
            Ok((_, rtt)) => return HostReply::Up(rtt),
            Err(SurgeError::Timeout { .. }) => {}
            Err(SurgeError::IOError(e)) => failed = Some(e.to_string()),
            // Malformed replies and internal errors: not an answer, but worth seeing when
            // debugging a discovery that finds too little.
            Err(e) => tracing::debug!(%ip, "ping failed: {e}"),
        }
    }
    failed.map_or(HostReply::Silent, HostReply::SendFailed)
}

fn rand_u16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (t ^ std::process::id()) as u16
}
