//! The scope wall: which addresses may be contacted at all.
//!
//! Every address that a discovery source hands us (an mDNS answer, an SRV target, a TXT hint)
//! passes [`Scope::allows`] before a single packet goes to it. Discovery never widens what may
//! be probed: a record pointing outside is reported as "out of scope, not probed".

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::target::{ip_to_u128, AddrRange};

/// Allowed networks (empty allows nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    allow: Vec<AddrRange>,
    labels: Vec<String>,
}

impl Scope {
    /// A scope of the given networks.
    pub fn new(nets: &[IpNetwork]) -> Self {
        let mut s = Self::default();
        for n in nets {
            s.add_net(*n);
        }
        s
    }

    /// Allow a network.
    pub fn add_net(&mut self, n: IpNetwork) {
        self.allow.push(AddrRange::from_net(n));
        self.labels.push(format!("{}/{}", n.network(), n.prefix()));
    }

    /// Allow address ranges (the explicit sweep targets).
    pub fn add_ranges(&mut self, ranges: &[AddrRange], label: &str) {
        self.allow.extend_from_slice(ranges);
        if !ranges.is_empty() {
            self.labels.push(label.to_string());
        }
    }

    /// Allow loopback (127.0.0.0/8 and ::1).
    pub fn add_loopback(&mut self) {
        self.add_net("127.0.0.0/8".parse().expect("valid"));
        self.add_net("::1/128".parse().expect("valid"));
    }

    /// Whether `ip` may be contacted.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let v = ip_to_u128(ip);
        let v6 = ip.is_ipv6();
        self.allow
            .iter()
            .any(|r| r.v6 == v6 && r.start <= v && v <= r.end)
    }

    /// What the scope holds, for messages.
    pub fn describe(&self) -> String {
        if self.labels.is_empty() {
            "nothing".into()
        } else {
            self.labels.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_only_listed_networks() {
        let mut s = Scope::new(&["10.99.0.0/24".parse().unwrap()]);
        assert!(s.allows("10.99.0.11".parse().unwrap()));
        assert!(!s.allows("10.99.1.1".parse().unwrap()));
        assert!(!s.allows("192.0.2.10".parse().unwrap()));
        assert!(!s.allows("127.0.0.1".parse().unwrap()));
        s.add_loopback();
        assert!(s.allows("127.0.0.1".parse().unwrap()) && s.allows("::1".parse().unwrap()));
        assert!(!s.allows("::2".parse().unwrap()));
        assert!(!Scope::default().allows("10.0.0.1".parse().unwrap()));
    }
}
