//! Target specifications: what the user may name on the command line, and the resolved set of
//! addresses a sweep walks.
//!
//! A [`TargetSpec`] is one token as typed (`10.0.0.0/24`, `fd00::/120`, `10.0.0.5`,
//! `10.0.0.1-50`, `10.0.0.1-10.0.1.20`, `fd00::1-ff`, `host.example`, `@file`). [`expand`]
//! reads files and resolves hostnames once; [`TargetSet`] then holds the included addresses
//! minus the excluded ones as sorted, disjoint inclusive ranges. Its memory depends on how many
//! ranges were typed, never on how many addresses they cover, and [`TargetSet::addr`] maps a
//! dense index `0..len()` to an address so the sweep can walk it in permuted order.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

/// The narrowest IPv6 prefix a sweep accepts: a /112 is 65,536 addresses. Wider prefixes
/// (a /64 is 2^64 addresses) cannot be swept; mDNS or SRV discovery finds servers there.
pub const MIN_IPV6_PREFIX: u8 = 112;

/// Largest number of IPv6 addresses one range may cover (the size of a /112).
const MAX_IPV6_SPAN: u128 = 1 << (128 - MIN_IPV6_PREFIX as u32);

/// Forms accepted for a target, quoted in every parse error.
const ACCEPTED: &str = "accepted forms: 10.0.0.0/24, fd00::/120, 10.0.0.5, ::1, 10.0.0.1-50, \
                        10.0.0.1-10.0.1.20, fd00::1-ff, host.example, @FILE";

/// A target or exclusion that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The token matches no accepted form.
    #[error("invalid target {token:?}: {reason}; {ACCEPTED}")]
    Invalid {
        /// The token as typed.
        token: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An IPv6 prefix or range too wide to sweep.
    #[error("IPv6 target {token:?} is wider than /{MIN_IPV6_PREFIX} (65,536 addresses) and cannot be swept address by address; narrow it (for example fd00::/120) or find servers there with mDNS or DNS SRV")]
    Ipv6TooWide {
        /// The token as typed.
        token: String,
    },
    /// A `@FILE` that could not be read.
    #[error("cannot read target file {path:?}: {source}")]
    File {
        /// The path after `@`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A bad token inside a `@FILE`.
    #[error("{path}:{line}: {inner}")]
    InFile {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The error for the token on that line.
        #[source]
        inner: Box<Self>,
    },
}

/// One target token as typed by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A CIDR network (a host address with a prefix means its whole network, as in nmap).
    Net(IpNetwork),
    /// An inclusive address range of one family.
    Range(IpAddr, IpAddr),
    /// A hostname, resolved once before the sweep.
    Host(String),
    /// `@FILE`: one or more targets per line, `#` starts a comment.
    File(PathBuf),
}

impl TargetSpec {
    /// Parse one token.
    pub fn parse(token: &str) -> Result<Self, TargetError> {
        let invalid = |reason: &str| TargetError::Invalid {
            token: token.to_string(),
            reason: reason.to_string(),
        };
        let t = token.trim();
        if t.is_empty() {
            return Err(invalid("empty target"));
        }
        if let Some(path) = t.strip_prefix('@') {
            if path.is_empty() {
                return Err(invalid("@ must be followed by a file path"));
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some((addr, prefix)) = t.split_once('/') {
            let ip = parse_ip(addr)
                .ok_or_else(|| invalid("the part before '/' is not an IP address"))?;
            let prefix: u8 = prefix
                .parse()
                .map_err(|_| invalid("the prefix length after '/' is not a number"))?;
            let net = IpNetwork::new(ip, prefix).map_err(|_| {
                invalid(if ip.is_ipv4() {
                    "an IPv4 prefix length is 0-32"
                } else {
                    "an IPv6 prefix length is 0-128"
                })
            })?;
            if net.is_ipv6() && prefix < MIN_IPV6_PREFIX {
                return Err(TargetError::Ipv6TooWide {
                    token: t.to_string(),
                });
            }
            return Ok(Self::Net(net));
        }
        if let Some(ip) = parse_ip(t) {
            return Ok(Self::Range(ip, ip));
        }
        if let Some((left, right)) = t.split_once('-') {
            if let Some(start) = parse_ip(left) {
                let end = parse_range_end(start, right).ok_or_else(|| {
                    invalid(if start.is_ipv4() {
                        "the range end must be an IPv4 address or a last octet 0-255"
                    } else {
                        "the range end must be an IPv6 address or a last hex group"
                    })
                })?;
                let (s, e) = (ip_to_u128(start), ip_to_u128(end));
                if s > e {
                    return Err(invalid("the range end is below its start"));
                }
                if start.is_ipv6() && e - s >= MAX_IPV6_SPAN {
                    return Err(TargetError::Ipv6TooWide {
                        token: t.to_string(),
                    });
                }
                return Ok(Self::Range(start, end));
            }
        }
        if is_hostname(t) {
            return Ok(Self::Host(t.to_string()));
        }
        Err(invalid("not an address, network, range, hostname or @file"))
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Net(n) => write!(f, "{}/{}", n.network(), n.prefix()),
            Self::Range(a, b) if a == b => write!(f, "{a}"),
            Self::Range(a, b) => write!(f, "{a}-{b}"),
            Self::Host(h) => f.write_str(h),
            Self::File(p) => write!(f, "@{}", p.display()),
        }
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn parse_range_end(start: IpAddr, right: &str) -> Option<IpAddr> {
    if let Some(ip) = parse_ip(right) {
        return (ip.is_ipv4() == start.is_ipv4()).then_some(ip);
    }
    let right = right.trim();
    match start {
        IpAddr::V4(v4) => {
            if right.is_empty() || right.len() > 3 || !right.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let last: u8 = right.parse().ok()?;
            let o = v4.octets();
            Some(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], last)))
        }
        IpAddr::V6(v6) => {
            if right.is_empty() || right.len() > 4 || !right.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return None;
            }
            let last = u16::from_str_radix(right, 16).ok()?;
            let mut seg = v6.segments();
            seg[7] = last;
            Some(IpAddr::V6(Ipv6Addr::from(seg)))
        }
    }
}

/// RFC 1123 host names (underscores tolerated, as resolvers do).
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        // All-numeric dotted names are malformed addresses, not hosts.
        && !s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An inclusive range of addresses of one family, as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AddrRange {
    /// IPv6 sorts after IPv4.
    pub v6: bool,
    /// First address.
    pub start: u128,
    /// Last address (inclusive).
    pub end: u128,
}

impl AddrRange {
    /// The range covering `a..=b` (same family).
    pub fn new(a: IpAddr, b: IpAddr) -> Self {
        Self {
            v6: a.is_ipv6(),
            start: ip_to_u128(a),
            end: ip_to_u128(b),
        }
    }

    /// The whole network of a CIDR.
    pub fn from_net(net: IpNetwork) -> Self {
        match net {
            IpNetwork::V4(n) => Self::new(n.network().into(), n.broadcast().into()),
            IpNetwork::V6(n) => {
                let start = u128::from(n.network());
                let host_bits = 128 - u32::from(n.prefix());
                let end = if host_bits == 128 {
                    u128::MAX
                } else {
                    start | ((1u128 << host_bits) - 1)
                };
                Self {
                    v6: true,
                    start,
                    end,
                }
            }
        }
    }

    /// Number of addresses (`end - start + 1`, saturating at u64::MAX).
    pub fn count(&self) -> u64 {
        u64::try_from(self.end - self.start).map_or(u64::MAX, |d| d.saturating_add(1))
    }

    fn addr_at(&self, offset: u64) -> IpAddr {
        let v = self.start + u128::from(offset);
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(v))
        } else {
            IpAddr::V4(Ipv4Addr::from(v as u32))
        }
    }
}

/// A warning produced while expanding targets: the sweep goes on without that target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetWarning(pub String);

impl fmt::Display for TargetWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Expand specs into address ranges: read `@FILE`s, resolve hostnames once.
///
/// A hostname that does not resolve is a warning, not an error: the rest of the sweep is
/// still worth running.
pub async fn expand(
    specs: &[TargetSpec],
) -> Result<(Vec<AddrRange>, Vec<TargetWarning>), TargetError> {
    let mut ranges = Vec::new();
    let mut warnings = Vec::new();
    let mut flat = Vec::new();
    for spec in specs {
        match spec {
            TargetSpec::File(path) => flat.extend(read_target_file(path)?),
            other => flat.push(other.clone()),
        }
    }
    for spec in flat {
        match spec {
            TargetSpec::Net(net) => ranges.push(AddrRange::from_net(net)),
            TargetSpec::Range(a, b) => ranges.push(AddrRange::new(a, b)),
            TargetSpec::Host(name) => match tokio::net::lookup_host((name.as_str(), 0)).await {
                Ok(addrs) => {
                    let mut n = 0;
                    for a in addrs {
                        ranges.push(AddrRange::new(a.ip(), a.ip()));
                        n += 1;
                    }
                    if n == 0 {
                        warnings.push(TargetWarning(format!(
                            "hostname {name:?} has no addresses; skipped"
                        )));
                    }
                }
                Err(e) => warnings.push(TargetWarning(format!(
                    "hostname {name:?} does not resolve ({e}); skipped"
                ))),
            },
            TargetSpec::File(p) => {
                return Err(TargetError::Invalid {
                    token: format!("@{}", p.display()),
                    reason: "a target file cannot include another file".into(),
                })
            }
        }
    }
    Ok((ranges, warnings))
}

/// Parse a target file: tokens separated by whitespace or commas, `#` comments.
pub fn read_target_file(path: &Path) -> Result<Vec<TargetSpec>, TargetError> {
    let text = std::fs::read_to_string(path).map_err(|source| TargetError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for tok in line.split(|c: char| c.is_whitespace() || c == ',') {
            if tok.is_empty() {
                continue;
            }
            let spec = TargetSpec::parse(tok).map_err(|e| TargetError::InFile {
                path: path.display().to_string(),
                line: i + 1,
                inner: Box::new(e),
            })?;
            out.push(spec);
        }
    }
    Ok(out)
}

/// Sort and merge overlapping or adjacent ranges.
fn normalize(mut v: Vec<AddrRange>) -> Vec<AddrRange> {
    v.sort_unstable();
    let mut out: Vec<AddrRange> = Vec::with_capacity(v.len());
    for r in v {
        if let Some(last) = out.last_mut() {
            if last.v6 == r.v6 && r.start <= last.end.saturating_add(1) {
                last.end = last.end.max(r.end);
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// The addresses to sweep: included minus excluded, as sorted disjoint ranges, indexable.
#[derive(Debug, Clone, Default)]
pub struct TargetSet {
    ranges: Vec<AddrRange>,
    /// `starts[i]` is the dense index of `ranges[i].start`; binary search maps index → range.
    starts: Vec<u64>,
    len: u64,
}

impl TargetSet {
    /// Build the set of `include` minus `exclude`.
    pub fn new(include: Vec<AddrRange>, exclude: Vec<AddrRange>) -> Self {
        let include = normalize(include);
        let exclude = normalize(exclude);
        let mut ranges = Vec::with_capacity(include.len());
        for r in include {
            let mut pieces = vec![r];
            for x in exclude
                .iter()
                .filter(|x| x.v6 == r.v6 && x.start <= r.end && x.end >= r.start)
            {
                let mut next = Vec::with_capacity(pieces.len() + 1);
                for p in pieces {
                    if x.end < p.start || x.start > p.end {
                        next.push(p);
                        continue;
                    }
                    if x.start > p.start {
                        next.push(AddrRange {
                            end: x.start - 1,
                            ..p
                        });
                    }
                    if x.end < p.end {
                        next.push(AddrRange {
                            start: x.end + 1,
                            ..p
                        });
                    }
                }
                pieces = next;
            }
            ranges.extend(pieces);
        }
        let mut starts = Vec::with_capacity(ranges.len());
        let mut len: u64 = 0;
        for r in &ranges {
            starts.push(len);
            len = len.saturating_add(r.count());
        }
        Self {
            ranges,
            starts,
            len,
        }
    }

    /// Number of addresses.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing is left to sweep.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The disjoint ranges, sorted.
    pub fn ranges(&self) -> &[AddrRange] {
        &self.ranges
    }

    /// The address with dense index `i` (`i < len()`).
    pub fn addr(&self, i: u64) -> IpAddr {
        let k = match self.starts.binary_search(&i) {
            Ok(k) => k,
            Err(k) => k - 1,
        };
        self.ranges[k].addr_at(i - self.starts[k])
    }

    /// The dense index of `ip`, if the set holds it.
    pub fn index_of(&self, ip: IpAddr) -> Option<u64> {
        let v = ip_to_u128(ip);
        let v6 = ip.is_ipv6();
        let k = self.ranges.partition_point(|r| (r.v6, r.end) < (v6, v));
        let r = self.ranges.get(k)?;
        (r.v6 == v6 && r.start <= v && v <= r.end).then(|| self.starts[k] + (v - r.start) as u64)
    }

    /// Whether every address is a loopback address (no ping, no rate limit needed).
    pub fn all_loopback(&self) -> bool {
        self.ranges.iter().all(|r| {
            if r.v6 {
                r.start == 1 && r.end == 1
            } else {
                (r.start >> 24) == 127 && (r.end >> 24) == 127
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(inc: &[&str], exc: &[&str]) -> TargetSet {
        let r = |v: &[&str]| {
            v.iter()
                .map(|t| match TargetSpec::parse(t).unwrap() {
                    TargetSpec::Net(n) => AddrRange::from_net(n),
                    TargetSpec::Range(a, b) => AddrRange::new(a, b),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        TargetSet::new(r(inc), r(exc))
    }

    fn all(s: &TargetSet) -> Vec<String> {
        (0..s.len()).map(|i| s.addr(i).to_string()).collect()
    }

    #[test]
    fn parses_every_form() {
        assert!(matches!(
            TargetSpec::parse("10.0.0.0/24").unwrap(),
            TargetSpec::Net(_)
        ));
        assert!(matches!(
            TargetSpec::parse("fd00::/120").unwrap(),
            TargetSpec::Net(_)
        ));
        assert_eq!(
            TargetSpec::parse("10.0.0.1-50").unwrap(),
            TargetSpec::Range("10.0.0.1".parse().unwrap(), "10.0.0.50".parse().unwrap())
        );
        assert_eq!(
            TargetSpec::parse("10.0.0.250-10.0.1.2").unwrap(),
            TargetSpec::Range("10.0.0.250".parse().unwrap(), "10.0.1.2".parse().unwrap())
        );
        assert_eq!(
            TargetSpec::parse("fd00::1-ff").unwrap(),
            TargetSpec::Range("fd00::1".parse().unwrap(), "fd00::ff".parse().unwrap())
        );
        assert_eq!(
            TargetSpec::parse("[::1]").unwrap(),
            TargetSpec::Range("::1".parse().unwrap(), "::1".parse().unwrap())
        );
        assert_eq!(
            TargetSpec::parse("my-host.lan").unwrap(),
            TargetSpec::Host("my-host.lan".into())
        );
        assert_eq!(
            TargetSpec::parse("@list.txt").unwrap(),
            TargetSpec::File("list.txt".into())
        );
    }

    #[test]
    fn rejects_bad_tokens_with_accepted_forms() {
        for t in [
            "10.0.0.0/33",
            "10.0.0/24",
            "10.0.0.5-3",
            "10.0.0.1-256",
            "10.0.0.1-::5",
            "300.1.1.1",
            "1.2.3",
            "-host",
            "a..b",
            "@",
            "",
            "10.0.0.0/",
            "fd00::/x",
            "bad_host!",
        ] {
            let e = TargetSpec::parse(t).unwrap_err().to_string();
            assert!(e.contains("accepted forms"), "{t}: {e}");
            assert!(e.contains(&format!("{:?}", t)), "{t}: {e}");
        }
    }

    #[test]
    fn refuses_ipv6_wider_than_112() {
        let e = TargetSpec::parse("fd00::/64").unwrap_err();
        assert!(matches!(e, TargetError::Ipv6TooWide { .. }));
        assert!(e.to_string().contains("/112"));
        assert!(TargetSpec::parse("fd00::/112").is_ok());
        assert!(matches!(
            TargetSpec::parse("fd00::-fd00::1:0").unwrap_err(),
            TargetError::Ipv6TooWide { .. }
        ));
    }

    #[test]
    fn host_address_with_prefix_means_its_network() {
        let s = set(&["10.1.2.3/30"], &[]);
        assert_eq!(all(&s), ["10.1.2.0", "10.1.2.1", "10.1.2.2", "10.1.2.3"]);
    }

    #[test]
    fn overlaps_merge_and_excludes_subtract() {
        let s = set(
            &["10.0.0.0/29", "10.0.0.4-10", "10.0.0.3"],
            &["10.0.0.2-5", "10.0.0.9"],
        );
        assert_eq!(
            all(&s),
            [
                "10.0.0.0",
                "10.0.0.1",
                "10.0.0.6",
                "10.0.0.7",
                "10.0.0.8",
                "10.0.0.10"
            ]
        );
        let s = set(&["::1", "127.0.0.1"], &[]);
        assert_eq!(all(&s), ["127.0.0.1", "::1"]);
        assert!(s.all_loopback());
        assert!(set(&["10.0.0.0/24"], &["10.0.0.0/16"]).is_empty());
    }

    #[test]
    fn index_of_inverts_addr() {
        let s = set(&["10.0.0.0/30", "10.0.1.5-7", "::1"], &["10.0.0.2"]);
        for i in 0..s.len() {
            assert_eq!(s.index_of(s.addr(i)), Some(i));
        }
        assert_eq!(s.index_of("10.0.0.2".parse().unwrap()), None);
        assert_eq!(s.index_of("10.0.1.8".parse().unwrap()), None);
        assert_eq!(s.index_of("::2".parse().unwrap()), None);
    }

    #[test]
    fn whole_ipv4_space_counts_right() {
        let s = set(&["0.0.0.0/0"], &[]);
        assert_eq!(s.len(), 1 << 32);
        assert_eq!(s.addr((1 << 32) - 1).to_string(), "255.255.255.255");
    }

    #[test]
    fn target_file_reports_line_of_bad_token() {
        let dir = std::env::temp_dir().join(format!("mcp-scout-t-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("targets.txt");
        std::fs::write(&p, "# lab\n10.0.0.1, 10.0.0.2\n\nnot/valid\n").unwrap();
        let e = read_target_file(&p).unwrap_err().to_string();
        assert!(e.contains(":4:") && e.contains("not/valid"), "{e}");
        std::fs::write(&p, "10.0.0.1 10.0.0.2 # two\n10.0.1.0/30\n").unwrap();
        assert_eq!(read_target_file(&p).unwrap().len(), 3);
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,60}") {
            let _ = TargetSpec::parse(&s);
        }

        #[test]
        fn parser_never_panics_on_addressy_input(s in "[0-9a-f:.\\-/\\[\\]@]{0,40}") {
            let _ = TargetSpec::parse(&s);
        }

        #[test]
        fn set_contains_exactly_included_minus_excluded(
            inc in proptest::collection::vec((0u32..300, 0u32..40), 1..5),
            exc in proptest::collection::vec((0u32..300, 0u32..40), 0..4),
        ) {
            let mk = |v: &[(u32, u32)]| v.iter().map(|&(s, l)| AddrRange { v6: false, start: u128::from(s), end: u128::from(s + l) }).collect::<Vec<_>>();
            let s = TargetSet::new(mk(&inc), mk(&exc));
            let mut want: Vec<u32> = (0..400).filter(|a| inc.iter().any(|&(s, l)| (s..=s + l).contains(a)) && !exc.iter().any(|&(s, l)| (s..=s + l).contains(a))).collect();
            want.sort_unstable();
            let got: Vec<u32> = (0..s.len()).map(|i| match s.addr(i) { IpAddr::V4(v) => u32::from(v), IpAddr::V6(_) => unreachable!() }).collect();
            prop_assert_eq!(got, want);
        }
    }
}
