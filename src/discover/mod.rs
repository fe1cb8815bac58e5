//! Discovery sources: where candidate address×port pairs come from.
//!
//! - [`sweep`]: every address × port of a target set, by TCP connect ([`tcp`]);
//! - [`icmp`]: echo-based host discovery that lets the sweep skip dead hosts;
//! - [`local`]: the subnets attached to this machine, for `--local`.

pub mod epoll;
pub mod icmp;
pub mod local;
pub mod sweep;
pub mod tcp;
