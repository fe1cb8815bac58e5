//! What a fingerprint keeps of a server certificate: its subject and expiry.
//!
//! A minimal DER walk over `Certificate → tbsCertificate → {validity, subject}`; a full X.509
//! parser would be a large dependency for two fields. Anything unexpected yields `None`: the
//! certificate is evidence, never a reason to fail.

use serde::Serialize;

/// The parts of a certificate worth reporting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Subject common name, or the whole subject as `OID=value` pairs when there is no CN.
    pub subject: String,
    /// notAfter, as RFC 3339 (UTC).
    pub not_after: String,
}

/// One DER element: (tag, content, rest).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Summarize a DER certificate.
pub fn summarize(der: &[u8]) -> Option<CertSummary> {
    let (_, cert, _) = element(der)?; // Certificate SEQUENCE
    let (_, tbs, _) = element(cert)?; // tbsCertificate SEQUENCE
    let mut rest = tbs;
    let (tag, _, r) = element(rest)?;
    rest = r;
    if tag == 0xa0 {
        rest = element(rest)?.2; // version [0] was present: next is serialNumber
    }
    rest = element(rest)?.2; // signature AlgorithmIdentifier
    rest = element(rest)?.2; // issuer
    let (_, validity, r) = element(rest)?;
    rest = r;
    let (_, subject, _) = element(rest)?;
    let (_, after_tail) = {
        let (_, _, r) = element(validity)?; // notBefore
        ((), r)
    };
    let (ttag, tval, _) = element(after_tail)?;
    Some(CertSummary {
        subject: subject_text(subject),
        not_after: time_text(ttag, tval)?,
    })
}

fn subject_text(mut name: &[u8]) -> String {
    let mut pairs = Vec::new();
    // Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue)
    while let Some((_, rdn, r)) = element(name) {
        name = r;
        let mut set = rdn;
        while let Some((_, atv, r2)) = element(set) {
            set = r2;
            let Some((_, oid, vrest)) = element(atv) else {
                continue;
            };
            let Some((_, val, _)) = element(vrest) else {
                continue;
            };
            let v = String::from_utf8_lossy(val).into_owned();
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                _ => "?",
            };
            pairs.push((key, v));
        }
    }
    if let Some((_, cn)) = pairs.iter().find(|(k, _)| *k == "CN") {
        return cn.clone();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as RFC 3339.
fn time_text(tag: u8, v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s.strip_suffix('Z')?;
    // Digits only before any slicing: a byte index inside a multi-byte character would panic.
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, s.len()) {
        (0x17, 12) => {
            let yy: u32 = s[..2].parse().ok()?;
            format!("{}{}", if yy >= 50 { 19 } else { 20 }, s)
        }
        (0x18, 14) => s.to_string(),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_times() {
        assert_eq!(
            time_text(0x17, b"261231235959Z").unwrap(),
            "2026-12-31T23:59:59Z"
        );
        assert_eq!(
            time_text(0x18, b"20991231000000Z").unwrap(),
            "2099-12-31T00:00:00Z"
        );
        assert!(time_text(0x17, b"2612").is_none());
    }

    #[test]
    fn a_non_digit_time_is_refused_not_sliced() {
        // Twelve bytes but not twelve characters: a UTCTime slice by byte index would panic.
        assert_eq!(time_text(0x17, "é1231235959Z".as_bytes()), None);
        assert_eq!(time_text(0x17, "2€31235959Z".as_bytes()), None);
        assert_eq!(time_text(0x18, "2099€231000Z".as_bytes()), None);
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = summarize(&b);
        }
    }
}
