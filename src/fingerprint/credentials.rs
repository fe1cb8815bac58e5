//! Credentials the user handed `scan` and `probe` (`--header 'NAME: VALUE'`, `--bearer`).
//!
//! They exist so that a user who holds the key can confirm a server behind an
//! authentication wall. Two rules shape this file:
//!
//! - **They never leak into output.** Values are marked sensitive for the HTTP stack, the
//!   `Debug` form prints header names only, and parse errors name the header, never its
//!   value: a typo in a token must not print the token to a terminal or a CI log.
//! - **They go only where the user pointed.** The fingerprinter sends them only on targets
//!   marked [`super::ProbeTarget::credentials`] (named on the command line, or admitted
//!   through the scope wall), and only to the probed origin: redirects, SSE endpoints and
//!   metadata documents off the origin are never contacted at all.

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};

/// Headers no credential may set: they describe the request itself, and overriding them
/// would break the probe (or smuggle a second request).
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
];

/// Why a `--header` or `--bearer` was refused. Messages name the header, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No `:` between name and value.
    #[error(
        "invalid --header #{index}: expected 'NAME: VALUE', for example --header 'X-Api-Key: KEY'"
    )]
    NoColon {
        /// 1-based position among the `--header` flags.
        index: usize,
    },
    /// The name is not an HTTP token.
    #[error(
        "invalid --header #{index}: {name:?} is not a valid header name (letters, digits and -)"
    )]
    Name {
        /// 1-based position.
        index: usize,
        /// The name as typed.
        name: String,
    },
    /// The value holds bytes a header cannot carry (line breaks, control characters).
    #[error("invalid --header {name:?}: its value holds a line break or control character; pass the value on one line")]
    Value {
        /// The header name.
        name: String,
    },
    /// A header the probe sets itself.
    #[error("invalid --header {name:?}: mcp-scout sets this header itself; remove it")]
    Reserved {
        /// The header name.
        name: String,
    },
    /// `--bearer` empty or not one line.
    #[error("invalid --bearer: the token must be non-empty, on one line, without spaces")]
    Bearer,
    /// `--bearer` and an `Authorization` header together.
    #[error("--bearer and --header 'Authorization: ...' both set Authorization; keep one")]
    TwoAuthorizations,
}

/// Credentials as typed (`--header` items and `--bearer`), before validation. `Debug`
/// shows how many there are, never what they are.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RawCredentials {
    /// `NAME: VALUE` items.
    pub headers: Vec<String>,
    /// A bearer token.
    pub bearer: Option<String>,
}

impl std::fmt::Debug for RawCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RawCredentials({} headers, bearer: {})",
            self.headers.len(),
            self.bearer.is_some()
        )
    }
}

impl RawCredentials {
    /// Validate.
    pub fn resolve(&self) -> Result<Credentials, CredentialError> {
        Credentials::parse(&self.headers, self.bearer.as_deref())
    }
}

/// Extra request headers, values marked sensitive.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.names().iter().map(|n| format!("{n}: <redacted>")))
            .finish()
    }
}

impl Credentials {
    /// Parse `--header 'NAME: VALUE'` items and a `--bearer` token.
    pub fn parse(headers: &[String], bearer: Option<&str>) -> Result<Self, CredentialError> {
        let mut out = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            let index = i + 1;
            let (name, value) = h
                .split_once(':')
                .ok_or(CredentialError::NoColon { index })?;
            let name = name.trim();
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| CredentialError::Name {
                    index,
                    name: name.to_string(),
                })?;
            if RESERVED.contains(&name.as_str()) {
                return Err(CredentialError::Reserved {
                    name: name.to_string(),
                });
            }
            let mut value =
                HeaderValue::from_str(value.trim()).map_err(|_| CredentialError::Value {
                    name: name.to_string(),
                })?;
            value.set_sensitive(true);
            out.push((name, value));
        }
        if let Some(token) = bearer {
            let t = token.trim();
            if t.is_empty() || t.contains(char::is_whitespace) {
                return Err(CredentialError::Bearer);
            }
            if out.iter().any(|(n, _)| n == AUTHORIZATION) {
                return Err(CredentialError::TwoAuthorizations);
            }
            let mut value = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| CredentialError::Bearer)?;
            value.set_sensitive(true);
            out.push((AUTHORIZATION, value));
        }
        Ok(Self { headers: out })
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The header names (safe to print).
    pub fn names(&self) -> Vec<String> {
        self.headers.iter().map(|(n, _)| n.to_string()).collect()
    }

    /// The headers, for the HTTP client.
    pub(crate) fn header_map(&self) -> reqwest::header::HeaderMap {
        let mut m = reqwest::header::HeaderMap::new();
        for (n, v) in &self.headers {
            m.append(n.clone(), v.clone());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn parses_headers_and_a_bearer_token() {
        let c = Credentials::parse(&s(&["X-Api-Key: k1", "x-tenant:blue"]), Some("tok")).unwrap();
        assert_eq!(c.names(), ["x-api-key", "x-tenant", "authorization"]);
        let m = c.header_map();
        assert_eq!(m["authorization"], "Bearer tok");
        assert_eq!(m["x-tenant"], "blue");
        assert!(m["x-api-key"].is_sensitive());
    }

    #[test]
    fn debug_and_errors_never_show_values() {
        let c = Credentials::parse(&s(&["X-Api-Key: secret-1"]), Some("secret-2")).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("secret"), "{d}");
        assert!(d.contains("x-api-key"), "{d}");
        let table: &[(&[&str], Option<&str>, &str)] = &[
            (
                &["secret-3"],
                None,
                "invalid --header #1: expected 'NAME: VALUE', for example --header 'X-Api-Key: KEY'",
            ),
            (
                &["bad name: secret-4"],
                None,
                "invalid --header #1: \"bad name\" is not a valid header name (letters, digits and -)",
            ),
            (
                &["Host: secret-5"],
                None,
                "invalid --header \"host\": mcp-scout sets this header itself; remove it",
            ),
            (
                &["X-Key: secret-6\u{7}"],
                None,
                "invalid --header \"x-key\": its value holds a line break or control character; pass the value on one line",
            ),
            (
                &[],
                Some("secret 7"),
                "invalid --bearer: the token must be non-empty, on one line, without spaces",
            ),
            (
                &["Authorization: Basic secret-8"],
                Some("secret-9"),
                "--bearer and --header 'Authorization: ...' both set Authorization; keep one",
            ),
        ];
        for (h, b, want) in table {
            let e = Credentials::parse(&s(h), *b).unwrap_err().to_string();
            assert_eq!(&e, want);
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
