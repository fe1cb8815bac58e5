//! Port specifications: what `-p` accepts and the resolved, de-duplicated port list.
//!
//! Grammar (comma-separated, combinable): a port `8000`, a range `1-1024`, an open range
//! `-1024` / `8000-`, the named set `mcp`, or `-` alone for every port 1-65535. The result is
//! a sorted list without duplicates, so every address×port pair is probed exactly once.

use std::fmt;

/// The default MCP port list: where the official SDKs, the MCP Inspector, the Docker MCP
/// Gateway and common deployments listen (see MCP-WIRE.md, "Where servers live").
pub const MCP_PORTS: &[u16] = &[
    3000, 3001, 5000, 6277, 8000, 8001, 8080, 8081, 8787, 8811, 9000,
];

/// A port list that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port spec {token:?} in {spec:?}: {reason}; accepted forms: 8000, 1-1024, 8000-, -1024, mcp, - (all ports), comma-separated")]
pub struct PortSpecError {
    /// The whole `-p` argument.
    pub spec: String,
    /// The offending comma-separated item.
    pub token: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A sorted, de-duplicated, non-empty list of TCP ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList(Vec<u16>);

impl PortList {
    /// Parse a `-p` argument.
    pub fn parse(spec: &str) -> Result<Self, PortSpecError> {
        let err = |token: &str, reason: &str| PortSpecError {
            spec: spec.to_string(),
            token: token.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = spec.trim();
        if trimmed == "-" {
            return Ok(Self((1..=u16::MAX).collect()));
        }
        let mut ports = Vec::new();
        for raw in trimmed.split(',') {
            let token = raw.trim();
            if token.is_empty() {
                return Err(err(raw, "empty item"));
            }
            if token.eq_ignore_ascii_case("mcp") {
                ports.extend_from_slice(MCP_PORTS);
                continue;
            }
            let (lo, hi) = match token.split_once('-') {
                None => {
                    let p = parse_port(token).map_err(|r| err(token, &r))?;
                    (p, p)
                }
                Some((a, b)) => {
                    let lo = if a.trim().is_empty() {
                        1
                    } else {
                        parse_port(a).map_err(|r| err(token, &r))?
                    };
                    let hi = if b.trim().is_empty() {
                        u16::MAX
                    } else {
                        parse_port(b).map_err(|r| err(token, &r))?
                    };
                    if lo > hi {
                        return Err(err(token, "range start is above its end"));
                    }
                    (lo, hi)
                }
            };
            ports.extend(lo..=hi);
        }
        ports.sort_unstable();
        ports.dedup();
        Ok(Self(ports))
    }

    /// The default list, [`MCP_PORTS`].
    pub fn mcp() -> Self {
        let mut v = MCP_PORTS.to_vec();
        v.sort_unstable();
        Self(v)
    }

    /// The ports, ascending.
    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }

    /// Number of ports (never zero).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a parsed list holds at least one port.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for PortList {
    fn default() -> Self {
        Self::mcp()
    }
}

impl fmt::Display for PortList {
    /// Compact form with ranges folded, for summaries: `1-1024,8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a port number"));
    }
    match s.parse::<u32>() {
        Ok(0) => Err("port 0 cannot be scanned".into()),
        Ok(p) if p <= u32::from(u16::MAX) => Ok(p as u16),
        _ => Err(format!("{s} is above 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lists_ranges_and_named_set() {
        assert_eq!(
            PortList::parse("8000,8080").unwrap().as_slice(),
            &[8000, 8080]
        );
        assert_eq!(PortList::parse("1-3").unwrap().as_slice(), &[1, 2, 3]);
        assert_eq!(
            PortList::parse("65534-").unwrap().as_slice(),
            &[65534, 65535]
        );
        assert_eq!(PortList::parse("-2").unwrap().as_slice(), &[1, 2]);
        assert_eq!(PortList::parse("-").unwrap().len(), 65535);
        assert_eq!(PortList::parse("mcp").unwrap(), PortList::mcp());
        assert_eq!(
            PortList::parse("8000,mcp,8000").unwrap().len(),
            MCP_PORTS.len()
        );
        assert_eq!(PortList::parse(" 22 , 22 ").unwrap().as_slice(), &[22]);
    }

    #[test]
    fn rejects_bad_items_quoting_the_token() {
        for (spec, token) in [
            ("0", "0"),
            ("70000", "70000"),
            ("80,,81", ""),
            ("http", "http"),
            ("90-80", "90-80"),
            ("1-2-3", "1-2-3"),
            ("+5", "+5"),
        ] {
            let e = PortList::parse(spec).unwrap_err();
            assert_eq!(e.token.trim(), token, "{spec}");
            let msg = e.to_string();
            assert!(msg.contains("accepted forms"), "{msg}");
        }
    }

    #[test]
    fn display_folds_ranges() {
        assert_eq!(
            PortList::parse("1-3,5,7-8").unwrap().to_string(),
            "1-3,5,7-8"
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_results_are_sorted_unique(s in "\\PC{0,40}") {
            if let Ok(list) = PortList::parse(&s) {
                prop_assert!(!list.is_empty());
                prop_assert!(list.as_slice().windows(2).all(|w| w[0] < w[1]));
                prop_assert!(list.as_slice()[0] >= 1);
            }
        }

        #[test]
        fn ranges_round_trip(a in 1u16.., b in 1u16..) {
            let (lo, hi) = (a.min(b), a.max(b));
            let list = PortList::parse(&format!("{lo}-{hi}")).unwrap();
            prop_assert_eq!(list.len(), usize::from(hi - lo) + 1);
            prop_assert_eq!(PortList::parse(&list.to_string()).unwrap(), list);
        }
    }
}
