//! Discovery sources: where candidate address×port pairs come from.
//!
//! - [`sweep`]: every address × port of a target set, by TCP connect ([`tcp`]);
//! - [`icmp`]: echo-based host discovery that lets the sweep skip dead hosts;
//! - [`local`]: the subnets attached to this machine, for `--local`;
//! - [`mdns`]: DNS-SD browsing, once or continuously;
//! - [`dns_srv`]: DNS SRV (and TXT) resolution, once or on an interval.
//!
//! Announce-based sources produce [`candidate::Candidate`]s that pass the
//! [`crate::scope::Scope`] wall before anything is sent to them.

pub mod candidate;
pub mod dns_srv;
pub mod epoll;
pub mod icmp;
pub mod local;
pub mod mdns;
pub mod sweep;
pub mod tcp;
