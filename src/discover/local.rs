//! The subnets attached to this machine's interfaces, for `targets: [local]` (a daemon job)
//! and `scan --local`: one filter, [`LocalFilter`], behind both.
//!
//! What `local` leaves out, each skip logged once per process with its reason and the key
//! that changes it ([`Skipped`]):
//! - loopback and link-local networks (`skip_loopback`, `skip_link_local`; default true):
//!   the first is not a LAN, the second is rarely what anyone means;
//! - interfaces whose name matches `skip_interfaces` (default [`DEFAULT_SKIP_INTERFACES`]:
//!   container bridges and CNI plumbing, whose /16s are never the node's LAN);
//! - any prefix wider than `max_local_prefix` (default /22 for IPv4) or
//!   `max_local_prefix_v6` (default /64): a user once waited 15 hours for a scan of a
//!   docker /16;
//! - IPv6 prefixes wider than /112, which cannot be swept whatever the settings.
//!
//! [`select`] is the pure part (tested with plain values); [`local_subnets`] feeds it from
//! getifaddrs(3).

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;

use ipnetwork::IpNetwork;

use crate::monitor::plan::glob;
use crate::target::MIN_IPV6_PREFIX;

/// Widest IPv4 prefix `local` sweeps by default (a /22 is 1,024 addresses).
pub const DEFAULT_MAX_LOCAL_PREFIX_V4: u8 = 22;
/// Widest IPv6 prefix `local` accepts by default (the /112 sweep limit still applies).
pub const DEFAULT_MAX_LOCAL_PREFIX_V6: u8 = 64;
/// Interfaces `local` skips by default: container bridges, CNI and overlay plumbing.
pub const DEFAULT_SKIP_INTERFACES: &[&str] = &[
    "docker*", "cni*", "flannel*", "cali*", "veth*", "cilium*", "kube-*",
];
/// Distinct skip messages remembered for [`first_time`]; past this every skip is logged
/// again rather than the memory growing with interface churn.
const MAX_REMEMBERED_SKIPS: usize = 1024;

/// What `local` keeps of the attached networks. The same for `scan --local` (flags) and a
/// daemon job (keys); validated by [`crate::plan::JobPlan::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFilter {
    /// IPv4 prefixes shorter (wider) than this are skipped.
    pub max_prefix_v4: u8,
    /// IPv6 prefixes shorter (wider) than this are skipped.
    pub max_prefix_v6: u8,
    /// Interface name patterns (`*` matches any run of characters) whose networks are skipped.
    pub skip_interfaces: Vec<String>,
    /// Skip loopback networks.
    pub skip_loopback: bool,
    /// Skip link-local networks (169.254.0.0/16, fe80::/10).
    pub skip_link_local: bool,
}

impl Default for LocalFilter {
    fn default() -> Self {
        Self {
            max_prefix_v4: DEFAULT_MAX_LOCAL_PREFIX_V4,
            max_prefix_v6: DEFAULT_MAX_LOCAL_PREFIX_V6,
            skip_interfaces: DEFAULT_SKIP_INTERFACES
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            skip_loopback: true,
            skip_link_local: true,
        }
    }
}

/// One attached subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNet {
    /// Interface name.
    pub interface: String,
    /// The network (address with its prefix).
    pub net: IpNetwork,
}

/// Why an attached network was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A loopback network.
    Loopback,
    /// A link-local network.
    LinkLocal,
    /// The interface matches a `skip_interfaces` pattern.
    Interface(String),
    /// The prefix is wider than the limit for its family.
    TooWide {
        /// The limit.
        max: u8,
    },
    /// An IPv6 prefix wider than the sweep limit.
    Unsweepable,
}

/// An attached network `local` left out, and why; its `Display` names the key to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Interface name.
    pub interface: String,
    /// The network.
    pub net: IpNetwork,
    /// Why.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (i, n) = (&self.interface, self.net);
        match &self.reason {
            SkipReason::Loopback => write!(
                f,
                "{i}: {n} skipped, loopback (set skip_loopback: false in the job to sweep it)"
            ),
            SkipReason::LinkLocal => write!(
                f,
                "{i}: {n} skipped, link-local (set skip_link_local: false in the job to sweep it)"
            ),
            SkipReason::Interface(p) => write!(
                f,
                "{i}: {n} skipped, interface matches {p:?} of skip_interfaces \
                 (change skip_interfaces in the job, or --skip-interfaces, to sweep it)"
            ),
            SkipReason::TooWide { max } => {
                let (key, flag) = if n.is_ipv4() {
                    ("max_local_prefix", "--max-local-prefix")
                } else {
                    ("max_local_prefix_v6", "--max-local-prefix-v6")
                };
                write!(
                    f,
                    "{i}: {n} skipped, /{} is wider than /{max} \
                     (raise {key} in the job, or {flag}, to {} to sweep it, or name the range in targets)",
                    n.prefix(),
                    n.prefix()
                )
            }
            SkipReason::Unsweepable => write!(
                f,
                "{i}: {n} skipped, IPv6 prefixes wider than /{MIN_IPV6_PREFIX} cannot be swept \
                 (name a narrower range in targets)"
            ),
        }
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Split attached `(interface, network)` pairs into those `filter` keeps (deduplicated, in
/// order) and those it skips, with the reason. Pure.
pub fn select(
    attached: &[(String, IpNetwork)],
    filter: &LocalFilter,
) -> (Vec<LocalNet>, Vec<Skipped>) {
    let mut nets: Vec<LocalNet> = Vec::new();
    let mut skipped = Vec::new();
    for (interface, net) in attached {
        let ip = net.ip();
        let reason = if ip.is_loopback() {
            filter.skip_loopback.then_some(SkipReason::Loopback)
        } else if is_link_local(ip) {
            filter.skip_link_local.then_some(SkipReason::LinkLocal)
        } else {
            None
        };
        let reason = reason
            .or_else(|| {
                filter
                    .skip_interfaces
                    .iter()
                    .find(|p| glob(p, interface))
                    .map(|p| SkipReason::Interface(p.clone()))
            })
            .or_else(|| {
                let max = if ip.is_ipv4() {
                    filter.max_prefix_v4
                } else {
                    filter.max_prefix_v6
                };
                (net.prefix() < max).then_some(SkipReason::TooWide { max })
            })
            .or_else(|| {
                (ip.is_ipv6() && net.prefix() < MIN_IPV6_PREFIX).then_some(SkipReason::Unsweepable)
            });
        match reason {
            Some(reason) => skipped.push(Skipped {
                interface: interface.clone(),
                net: *net,
                reason,
            }),
            None => {
                let n = LocalNet {
                    interface: interface.clone(),
                    net: *net,
                };
                if !nets.contains(&n) {
                    nets.push(n);
                }
            }
        }
    }
    (nets, skipped)
}

/// Attached subnets that `filter` keeps, and the ones it skipped.
pub fn local_subnets(filter: &LocalFilter) -> std::io::Result<(Vec<LocalNet>, Vec<Skipped>)> {
    let mut attached = Vec::new();
    for (interface, ip, mask) in interface_addrs()? {
        let prefix = match mask {
            IpAddr::V4(m) => u32::from(m).leading_ones() as u8,
            IpAddr::V6(m) => u128::from(m).leading_ones() as u8,
        };
        if let Ok(net) = IpNetwork::new(ip, prefix) {
            attached.push((interface, net));
        }
    }
    Ok(select(&attached, filter))
}

/// True the first time this process sees `message` (bounded): `local` is expanded at every
/// run of a daemon job, and a skip is news only once.
pub fn first_time(message: &str) -> bool {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let set = seen.get_or_insert_with(HashSet::new);
    if set.contains(message) {
        return false;
    }
    if set.len() < MAX_REMEMBERED_SKIPS {
        set.insert(message.to_string());
    }
    true
}

/// Every attached network (any width, link-local and loopback excluded) with its interface:
/// the default scope for announced addresses.
pub fn attached_networks() -> std::io::Result<Vec<(String, IpNetwork)>> {
    let mut out = Vec::new();
    for (interface, ip, mask) in interface_addrs()? {
        let prefix = match mask {
            IpAddr::V4(m) => u32::from(m).leading_ones() as u8,
            IpAddr::V6(m) => u128::from(m).leading_ones() as u8,
        };
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if ip.is_loopback() || link_local {
            continue;
        }
        if let Ok(net) = IpNetwork::new(ip, prefix) {
            out.push((interface, net));
        }
    }
    Ok(out)
}

/// (interface, address, netmask) for every configured IPv4/IPv6 address, via getifaddrs(3).
fn interface_addrs() -> std::io::Result<Vec<(String, IpAddr, IpAddr)>> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free with freeifaddrs below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list returned by getifaddrs and not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: pointers in the node are either null or valid sockaddrs / C strings.
        let (Some(ip), Some(mask)) = (unsafe { sockaddr_ip(ifa.ifa_addr) }, unsafe {
            sockaddr_ip(ifa.ifa_netmask)
        }) else {
            continue;
        };
        // SAFETY: ifa_name is a valid NUL-terminated string for every node.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        out.push((name, ip, mask));
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// # Safety
/// `sa` must be null or point to a valid sockaddr of the family it declares.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*sa.cast::<libc::sockaddr_in>();
            Some(IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ))
        }
        libc::AF_INET6 => {
            let sin6 = &*sa.cast::<libc::sockaddr_in6>();
            Some(IpAddr::from(sin6.sin6_addr.s6_addr))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn attached(list: &[(&str, &str)]) -> Vec<(String, IpNetwork)> {
        list.iter()
            .map(|(i, n)| ((*i).to_string(), net(n)))
            .collect()
    }

    #[test]
    fn never_lists_loopback() {
        let (nets, _) = local_subnets(&LocalFilter::default()).unwrap();
        assert!(nets.iter().all(|n| !n.net.ip().is_loopback()));
    }

    #[test]
    fn the_default_filter_keeps_the_lan_and_skips_the_rest_with_reasons() {
        let a = attached(&[
            ("lo", "127.0.0.1/8"),
            ("eth0", "192.168.1.10/24"),
            ("eth0", "169.254.3.4/16"),
            ("docker0", "172.17.0.1/16"),
            ("cni0", "10.244.0.1/24"),
            ("veth12ab", "10.1.0.1/30"),
            ("kube-ipvs0", "10.96.0.1/32"),
            ("ens3", "10.0.0.5/16"),
            ("ens4", "10.2.0.5/22"),
            ("eth0", "fe80::1/64"),
            ("eth0", "fd00::1/64"),
            ("eth0", "fd00:1::1/48"),
            ("eth0", "fd00:2::1/120"),
            ("eth0", "192.168.1.11/24"),
        ]);
        let (nets, skipped) = select(&a, &LocalFilter::default());
        let kept: Vec<String> = nets
            .iter()
            .map(|n| format!("{} {}", n.interface, n.net))
            .collect();
        assert_eq!(
            kept,
            [
                "eth0 192.168.1.10/24",
                "ens4 10.2.0.5/22",
                "eth0 fd00:2::1/120",
                "eth0 192.168.1.11/24"
            ]
        );
        let reasons: Vec<(String, SkipReason)> = skipped
            .iter()
            .map(|s| (s.net.to_string(), s.reason.clone()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("127.0.0.1/8".into(), SkipReason::Loopback),
                ("169.254.3.4/16".into(), SkipReason::LinkLocal),
                (
                    "172.17.0.1/16".into(),
                    SkipReason::Interface("docker*".into())
                ),
                ("10.244.0.1/24".into(), SkipReason::Interface("cni*".into())),
                ("10.1.0.1/30".into(), SkipReason::Interface("veth*".into())),
                (
                    "10.96.0.1/32".into(),
                    SkipReason::Interface("kube-*".into())
                ),
                ("10.0.0.5/16".into(), SkipReason::TooWide { max: 22 }),
                ("fe80::1/64".into(), SkipReason::LinkLocal),
                ("fd00::1/64".into(), SkipReason::Unsweepable),
                ("fd00:1::1/48".into(), SkipReason::TooWide { max: 64 }),
            ]
        );
    }

    #[test]
    fn every_skip_message_names_the_key_that_changes_it() {
        let a = attached(&[
            ("lo", "127.0.0.1/8"),
            ("eth0", "169.254.3.4/16"),
            ("docker0", "172.17.0.1/16"),
            ("ens3", "10.0.0.5/16"),
            ("ens3", "fd00:1::1/48"),
            ("ens3", "fd00::1/64"),
        ]);
        let (_, skipped) = select(&a, &LocalFilter::default());
        let text: Vec<String> = skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "lo: 127.0.0.1/8 skipped, loopback (set skip_loopback: false in the job to sweep it)",
                "eth0: 169.254.3.4/16 skipped, link-local (set skip_link_local: false in the job to sweep it)",
                "docker0: 172.17.0.1/16 skipped, interface matches \"docker*\" of skip_interfaces (change skip_interfaces in the job, or --skip-interfaces, to sweep it)",
                "ens3: 10.0.0.5/16 skipped, /16 is wider than /22 (raise max_local_prefix in the job, or --max-local-prefix, to 16 to sweep it, or name the range in targets)",
                "ens3: fd00:1::1/48 skipped, /48 is wider than /64 (raise max_local_prefix_v6 in the job, or --max-local-prefix-v6, to 48 to sweep it, or name the range in targets)",
                "ens3: fd00::1/64 skipped, IPv6 prefixes wider than /112 cannot be swept (name a narrower range in targets)",
            ]
        );
    }

    #[test]
    fn settings_widen_or_narrow_what_is_kept() {
        let a = attached(&[
            ("lo", "127.0.0.1/8"),
            ("docker0", "172.17.0.1/16"),
            ("ens3", "10.0.0.5/16"),
            ("eth1", "10.3.0.5/24"),
        ]);
        let f = LocalFilter {
            max_prefix_v4: 8,
            skip_interfaces: vec!["eth*".into()],
            skip_loopback: false,
            ..LocalFilter::default()
        };
        let (nets, skipped) = select(&a, &f);
        let kept: Vec<&str> = nets.iter().map(|n| n.interface.as_str()).collect();
        assert_eq!(kept, ["lo", "docker0", "ens3"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].reason, SkipReason::Interface("eth*".into()));
    }

    #[test]
    fn a_skip_is_news_once() {
        let m = "test-only: eth9 10.9.9.9/16 skipped";
        assert!(first_time(m));
        assert!(!first_time(m));
    }
}
