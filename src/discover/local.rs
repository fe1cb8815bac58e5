//! The subnets attached to this machine's interfaces, for `--local`.
//!
//! Loopback and link-local networks are left out (the first is not a LAN, the second is
//! rarely what anyone means and is excluded by default scope rules). IPv6 prefixes wider than
//! /112 cannot be swept and are reported as skipped rather than silently dropped.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::target::MIN_IPV6_PREFIX;

/// One attached subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNet {
    /// Interface name.
    pub interface: String,
    /// The network (address with its prefix).
    pub net: IpNetwork,
}

/// Attached subnets usable as sweep targets, plus human-readable notes on the ones skipped.
pub fn local_subnets() -> std::io::Result<(Vec<LocalNet>, Vec<String>)> {
    let mut nets = Vec::new();
    let mut skipped = Vec::new();
    for (interface, ip, mask) in interface_addrs()? {
        let prefix = match mask {
            IpAddr::V4(m) => u32::from(m).leading_ones() as u8,
            IpAddr::V6(m) => u128::from(m).leading_ones() as u8,
        };
        let Ok(net) = IpNetwork::new(ip, prefix) else {
            continue;
        };
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if ip.is_loopback() || link_local {
            continue;
        }
        if ip.is_ipv6() && prefix < MIN_IPV6_PREFIX {
            skipped.push(format!(
                "{interface}: {net} skipped, IPv6 prefixes wider than /{MIN_IPV6_PREFIX} cannot be swept"
            ));
            continue;
        }
        nets.push(LocalNet { interface, net });
    }
    nets.dedup();
    Ok((nets, skipped))
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

    #[test]
    fn never_lists_loopback() {
        let (nets, _) = local_subnets().unwrap();
        assert!(nets.iter().all(|n| !n.net.ip().is_loopback()));
    }
}
