//! What one TCP connect probe can conclude, and how kernel errors map to it.
//!
//! A connect scan needs no privilege and works through any network stack, at the price of a
//! file descriptor per probe in flight. Every outcome the kernel can report is mapped to a
//! closed set ([`Outcome`]); running out of descriptors or ephemeral ports is reported as
//! [`Outcome::Exhausted`] so the engine can slow down and try the same probe again instead of
//! losing it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::vocab::{PortState, ProbeResult};

/// What one connect attempt observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handshake completed after this round trip.
    Open(Duration),
    /// Reset received after this round trip.
    Closed(Duration),
    /// The network reported the host unreachable after this long.
    Unreachable(Duration),
    /// Nothing came back before the deadline.
    TimedOut,
    /// The local system ran out of descriptors or buffers; nothing was sent. Always
    /// transient while other connects are in flight.
    Exhausted,
    /// No local address or port could be bound (EADDRNOTAVAIL): ephemeral ports ran out, or
    /// this host cannot send to that address family at all.
    NoLocalAddress,
}

pub(crate) fn classify_error(e: &io::Error, elapsed: Duration) -> Outcome {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Closed(elapsed),
        Some(libc::ETIMEDOUT) => Outcome::TimedOut,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => Outcome::Exhausted,
        Some(libc::EADDRNOTAVAIL | libc::EAGAIN) => Outcome::NoLocalAddress,
        // EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, EACCES/EPERM (broadcast, firewall reject)
        // and anything else: the network will not carry this probe.
        _ => Outcome::Unreachable(elapsed),
    }
}

/// One TCP connect outside the sweep engine (announced addresses, `probe`): a handful of
/// probes, where the engine's window, pacing and retries buy nothing.
pub async fn connect_once(addr: SocketAddr, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let (state, rtt) =
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => (PortState::Open, Some(start.elapsed())),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                (PortState::Closed, Some(start.elapsed()))
            }
            Ok(Err(_)) => (PortState::Unreachable, None),
            Err(_) => (PortState::Filtered, None),
        };
    ProbeResult {
        ip: addr.ip(),
        port: addr.port(),
        state,
        rtt,
        attempts: 1,
        seen_at: SystemTime::now(),
    }
}
