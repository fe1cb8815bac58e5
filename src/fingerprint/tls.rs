//! What a fingerprint keeps of a server certificate: its subject and expiry.
//!
//! A minimal DER walk over `Certificate → tbsCertificate → {validity, subject}`; a full X.509
//! parser would be a large dependency for two fields. Anything unexpected yields `None`: the
//! certificate is evidence, never a reason to fail.

use serde::{Deserialize, Serialize};

/// The parts of a certificate worth reporting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The `tls` decoy's certificate (scripts/peers/decoys.py), made the same way: self-signed,
    /// CN decoy.test, P-256, notAfter 2030-01-01T00:00:00Z.
    const DECOY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tls/decoy-cert.der"
    ));

    /// One DER element, in the short or a long length form.
    fn der(tag: u8, content: &[u8], long_form: bool) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 && !long_form {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            let bytes = if bytes.is_empty() { vec![0] } else { bytes };
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// A Name with one RDN per (OID, value).
    fn name(attrs: &[(&[u8], &str)], long_form: bool) -> Vec<u8> {
        let mut rdns = Vec::new();
        for (oid, value) in attrs {
            let atv = [
                der(0x06, oid, false),
                der(0x0c, value.as_bytes(), long_form),
            ]
            .concat();
            rdns.extend(der(0x31, &der(0x30, &atv, long_form), long_form));
        }
        der(0x30, &rdns, long_form)
    }

    /// What a generated certificate holds, and what [`summarize`] must read back.
    #[derive(Debug, Clone)]
    struct Spec {
        version: bool,
        long_form: bool,
        cn: Option<String>,
        org: String,
        // (year, month, day, hour, minute, second)
        not_after: (u32, u32, u32, u32, u32, u32),
        generalized: bool,
        extra_after_subject: Vec<u8>,
    }

    fn build(s: &Spec) -> Vec<u8> {
        let (y, mo, d, h, mi, se) = s.not_after;
        let lf = s.long_form;
        let after = if s.generalized {
            der(
                0x18,
                format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{se:02}Z").as_bytes(),
                lf,
            )
        } else {
            der(
                0x17,
                format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{se:02}Z", y % 100).as_bytes(),
                lf,
            )
        };
        let before = der(0x17, b"250101000000Z", lf);
        let mut subject_attrs: Vec<(&[u8], &str)> = vec![(&[0x55, 0x04, 0x0a], s.org.as_str())];
        if let Some(cn) = &s.cn {
            subject_attrs.push((&[0x55, 0x04, 0x03], cn.as_str()));
        }
        let alg = der(
            0x30,
            &der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02], lf),
            lf,
        );
        let mut tbs = Vec::new();
        if s.version {
            tbs.extend(der(0xa0, &der(0x02, &[2], lf), lf));
        }
        tbs.extend(der(0x02, &[0x01, 0x02, 0x03], lf));
        tbs.extend(&alg);
        tbs.extend(name(&[(&[0x55, 0x04, 0x03], "issuer.test")], lf));
        tbs.extend(der(0x30, &[before, after].concat(), lf));
        tbs.extend(name(&subject_attrs, lf));
        tbs.extend(der(0x30, &s.extra_after_subject, lf)); // subjectPublicKeyInfo
        let cert = [der(0x30, &tbs, lf), alg, der(0x03, &[0, 1, 2, 3], lf)].concat();
        der(0x30, &cert, lf)
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of("\\PC{0,80}"),
            "\\PC{0,40}",
            (
                1950u32..2050,
                1u32..=12,
                1u32..=28,
                0u32..24,
                0u32..60,
                0u32..60,
            ),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(
                |(version, long_form, cn, org, not_after, generalized, extra)| Spec {
                    version,
                    long_form,
                    cn,
                    org,
                    not_after,
                    generalized,
                    extra_after_subject: extra,
                },
            )
    }

    fn is_rfc3339_utc(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 20
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    }

    #[test]
    fn reads_a_real_certificate() {
        assert_eq!(
            summarize(DECOY),
            Some(CertSummary {
                subject: "decoy.test".into(),
                not_after: "2030-01-01T00:00:00Z".into(),
            })
        );
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

        /// Generated certificates (with or without version, CN, long-form lengths, either
        /// time type): the subject and expiry come back exactly.
        #[test]
        fn reads_what_a_generated_certificate_holds(s in spec()) {
            let got = summarize(&build(&s)).expect("a well-formed certificate");
            let want_subject = s.cn.clone().unwrap_or_else(|| format!("O={}", s.org));
            prop_assert_eq!(got.subject, want_subject);
            let (y, mo, d, h, mi, se) = s.not_after;
            prop_assert_eq!(got.not_after, format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}Z"));
        }

        /// A real certificate with bytes changed, inserted or cut: never a panic, and any
        /// expiry still read is a well-formed RFC 3339 time.
        #[test]
        fn mutated_real_certificates_never_panic(
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
            cut in any::<proptest::sample::Index>(),
        ) {
            let mut b = DECOY.to_vec();
            for (at, byte, op) in edits {
                let i = at.index(b.len());
                match op {
                    0 => b[i] = byte,
                    1 => b.insert(i, byte),
                    _ => { b.remove(i); }
                }
            }
            b.truncate(cut.index(b.len() + 1).max(1));
            if let Some(c) = summarize(&b) {
                prop_assert!(is_rfc3339_utc(&c.not_after), "{:?}", c.not_after);
            }
        }

        /// Time values near the valid shapes (digits, `Z`, multi-byte UTF-8) and anything else:
        /// read as a well-formed time or refused, never a panic.
        #[test]
        fn any_time_value_is_read_or_refused(
            v in prop_oneof!["[0-9]{0,3}[é€][0-9]{6,10}Z", "[0-9Z]{10,16}", "\\PC{0,16}"],
            generalized in any::<bool>(),
        ) {
            let tag = if generalized { 0x18 } else { 0x17 };
            if let Some(t) = time_text(tag, v.as_bytes()) {
                prop_assert!(is_rfc3339_utc(&t), "{t:?}");
            }
        }
    }
}
