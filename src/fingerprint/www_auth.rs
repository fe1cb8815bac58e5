//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1 challenges).
//!
//! Owns the header grammar only. The authorization check hands it the `WWW-Authenticate`
//! values of a 401 and reads the `Bearer` challenge's RFC 9728 `resource_metadata` (and the
//! RFC 6750 `scope`, `error` and `realm`) through [`bearer`]; fetching the metadata document is
//! someone else's job. Pure: no I/O.
//!
//! The grammar, simplified:
//! ```text
//! header    = #challenge                      ; commas separate challenges AND parameters
//! challenge = scheme [ 1*SP ( token68 / #auth-param ) ]
//! auth-param = token BWS "=" BWS ( token / quoted-string )
//! ```
//! After a comma, what follows is a parameter when it is a token followed by `=`, and a new
//! challenge otherwise. Parsing is best effort: an element that fits neither is skipped up to
//! the next comma, and nothing here panics or fails.
//!
//! The module is self-contained (it names nothing else in the crate) because `fuzz/` compiles
//! it on its own.

use std::fmt;

/// Longest header value parsed; longer ones are ignored whole (a truncated URL would be worse
/// than none). Real challenges are a few hundred bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Most challenges kept from one header value; the rest are ignored.
pub const MAX_CHALLENGES: usize = 16;
/// Most parameters kept per challenge; the rest are ignored.
pub const MAX_PARAMS: usize = 32;

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as sent (compare with [`str::eq_ignore_ascii_case`]).
    pub scheme: String,
    /// Parameters in order, names lowercased, values unquoted and unescaped.
    pub params: Vec<(String, String)>,
    /// The token68 credentials form, as in `Basic dXNlcjpwYXNz==`.
    pub token68: Option<String>,
}

impl Challenge {
    /// The first value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a `Bearer` challenge (RFC 6750).
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }
}

/// Renders the challenge in canonical form (values always quoted); parsing the result yields
/// the same challenge. Useful in logs and reports.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        let mut sep = " ";
        if let Some(t) = &self.token68 {
            write!(f, " {t}")?;
            sep = ", ";
        }
        for (name, value) in &self.params {
            write!(f, "{sep}{name}=\"")?;
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
            sep = ", ";
        }
        Ok(())
    }
}

/// The fields of a `Bearer` challenge that tell where and how to authorize.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerChallenge {
    /// RFC 9728: URL of the protected resource metadata document.
    pub resource_metadata: Option<String>,
    /// RFC 6750: scopes the resource wants.
    pub scope: Option<String>,
    /// RFC 6750: why the request was refused (`invalid_token`...).
    pub error: Option<String>,
    /// RFC 9110: the protection space.
    pub realm: Option<String>,
}

/// Parse one header value (may hold several comma-separated challenges). Best effort:
/// malformed parts are skipped, never panics. Values over [`MAX_HEADER_BYTES`] yield nothing.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    if header.len() > MAX_HEADER_BYTES {
        return Vec::new();
    }
    let mut cur = Cursor::new(header);
    let mut out = Vec::new();
    while out.len() < MAX_CHALLENGES {
        cur.skip_ows_and_commas();
        match cur.element() {
            Element::End => break,
            Element::Challenge => out.push(cur.challenge()),
            // A parameter with no challenge before it, or junk.
            Element::Param | Element::Junk => cur.skip_element(),
        }
    }
    out
}

/// The first `Bearer` challenge among `headers` (one entry per `WWW-Authenticate` field), with
/// its RFC 9728 and RFC 6750 fields.
pub fn bearer(headers: &[&str]) -> Option<BearerChallenge> {
    let challenge = headers
        .iter()
        .flat_map(|h| parse_challenges(h))
        .find(Challenge::is_bearer)?;
    let get = |name: &str| challenge.param(name).map(str::to_owned);
    Some(BearerChallenge {
        resource_metadata: get("resource_metadata"),
        scope: get("scope"),
        error: get("error"),
        realm: get("realm"),
    })
}

/// What starts at the cursor, decided by looking ahead without consuming.
#[derive(Debug, PartialEq, Eq)]
enum Element {
    End,
    /// `token BWS "="`.
    Param,
    /// A token followed by anything but `=`.
    Challenge,
    /// Anything else: skipped to the next comma.
    Junk,
}

/// A position in the header. All delimiters are ASCII, so every position the cursor stops at
/// is a char boundary of the original `&str`.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skip spaces and tabs; returns how many.
    fn skip_ows(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// RFC 9110 list rule: empty elements (`a, , b`) are allowed.
    fn skip_ows_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn element(&self) -> Element {
        let mut probe = Cursor {
            s: self.s,
            pos: self.pos,
        };
        if probe.peek().is_none() {
            return Element::End;
        }
        if probe.token().is_none() {
            return Element::Junk;
        }
        probe.skip_ows();
        if probe.peek() == Some(b'=') {
            Element::Param
        } else {
            Element::Challenge
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        // Tokens are ASCII, so this cannot fail; `ok()` keeps it panic-free regardless.
        (self.pos > start)
            .then(|| std::str::from_utf8(&self.s[start..self.pos]).ok())
            .flatten()
    }

    /// At an [`Element::Challenge`]: the scheme, then token68 or parameters.
    fn challenge(&mut self) -> Challenge {
        let scheme = self.token().unwrap_or_default().to_owned();
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
            token68: None,
        };
        // Credentials are separated from the scheme by at least one space.
        if self.skip_ows() > 0 {
            challenge.token68 = self.token68();
        }
        loop {
            self.skip_ows_and_commas();
            match self.element() {
                Element::End | Element::Challenge => break,
                Element::Junk => self.skip_element(),
                Element::Param => match self.param() {
                    Some(param) if challenge.params.len() < MAX_PARAMS => {
                        challenge.params.push(param);
                    }
                    Some(_) => {}
                    None => self.skip_element(),
                },
            }
        }
        challenge
    }

    /// `token68` when the text up to the next comma is exactly one (with `=` padding);
    /// otherwise nothing is consumed, because it is the first parameter.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        let mut end = start;
        while self.s.get(end).is_some_and(|&b| is_token68_char(b)) {
            end += 1;
        }
        if end == start {
            return None;
        }
        while self.s.get(end) == Some(&b'=') {
            end += 1;
        }
        let mut after = end;
        while matches!(self.s.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        if !matches!(self.s.get(after), None | Some(b',')) {
            return None;
        }
        self.pos = after;
        std::str::from_utf8(&self.s[start..end])
            .ok()
            .map(str::to_owned)
    }

    /// At an [`Element::Param`]: `name = value`, or `None` when the value is missing or an
    /// unterminated quoted-string.
    fn param(&mut self) -> Option<(String, String)> {
        let name = self.token()?.to_ascii_lowercase();
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return None;
        }
        self.pos += 1;
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted_string()?
        } else {
            self.token()?.to_owned()
        };
        Some((name, value))
    }

    /// At a `"`: the unescaped content, or `None` if the closing quote is missing.
    fn quoted_string(&mut self) -> Option<String> {
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                // A quoted-pair: the next byte stands for itself. Only the ASCII backslash is
                // dropped, so a multi-byte character after it is still copied whole and the
                // content stays valid UTF-8.
                b'\\' => {
                    let escaped = self.peek()?;
                    self.pos += 1;
                    out.push(escaped);
                }
                _ => out.push(b),
            }
        }
        None
    }

    /// Skip to the next comma outside a quoted-string (or the end).
    fn skip_element(&mut self) {
        let mut quoted = false;
        while let Some(b) = self.peek() {
            match b {
                b',' if !quoted => return,
                b'"' => quoted = !quoted,
                b'\\' if quoted => self.pos += 1,
                _ => {}
            }
            self.pos += 1;
        }
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token68` characters, `=` padding aside.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ch(scheme: &str, params: &[(&str, &str)], token68: Option<&str>) -> Challenge {
        Challenge {
            scheme: scheme.into(),
            params: params
                .iter()
                .map(|(n, v)| ((*n).into(), (*v).into()))
                .collect(),
            token68: token68.map(Into::into),
        }
    }

    #[test]
    fn python_sdk_challenge_from_a_real_401() {
        // Captured from mcp 1.30 with AuthSettings (tests/fixtures/wire/py1-auth.*).
        let h = r#"Bearer error="invalid_token", error_description="Authentication required", resource_metadata="http://127.0.0.209:8000/.well-known/oauth-protected-resource/mcp""#;
        assert_eq!(
            bearer(&[h]),
            Some(BearerChallenge {
                resource_metadata: Some(
                    "http://127.0.0.209:8000/.well-known/oauth-protected-resource/mcp".into()
                ),
                scope: None,
                error: Some("invalid_token".into()),
                realm: None,
            })
        );
        assert_eq!(
            parse_challenges(h)[0].param("error_description"),
            Some("Authentication required")
        );
    }

    #[test]
    fn bearer_scope_with_spaces() {
        let h = r#"Bearer realm="mcp", scope="mcp:read mcp:write""#;
        let got = bearer(&[h]).unwrap();
        assert_eq!(got.scope.as_deref(), Some("mcp:read mcp:write"));
        assert_eq!(got.realm.as_deref(), Some("mcp"));
    }

    #[test]
    fn several_challenges_in_one_value() {
        let h = r#"Basic realm="x", Bearer realm="y", resource_metadata="https://h/.well-known/oauth-protected-resource/mcp""#;
        assert_eq!(
            parse_challenges(h),
            vec![
                ch("Basic", &[("realm", "x")], None),
                ch(
                    "Bearer",
                    &[
                        ("realm", "y"),
                        (
                            "resource_metadata",
                            "https://h/.well-known/oauth-protected-resource/mcp"
                        )
                    ],
                    None
                ),
            ]
        );
        assert_eq!(bearer(&[h]).unwrap().realm.as_deref(), Some("y"));
    }

    #[test]
    fn rfc_9110_example_with_escapes_and_commas_in_quotes() {
        let h = r#"Newauth realm="apps", type=1, title="Login to \"apps\", please", Basic realm="simple""#;
        assert_eq!(
            parse_challenges(h),
            vec![
                ch(
                    "Newauth",
                    &[
                        ("realm", "apps"),
                        ("type", "1"),
                        ("title", r#"Login to "apps", please"#)
                    ],
                    None
                ),
                ch("Basic", &[("realm", "simple")], None),
            ]
        );
    }

    #[test]
    fn token68_forms() {
        assert_eq!(
            parse_challenges("Basic dXNlcjpwYXNz=="),
            vec![ch("Basic", &[], Some("dXNlcjpwYXNz=="))]
        );
        assert_eq!(
            parse_challenges("Negotiate a/b+c ,Bearer"),
            vec![ch("Negotiate", &[], Some("a/b+c")), ch("Bearer", &[], None)]
        );
        // `abc=` then `def` is a parameter, not token68.
        assert_eq!(
            parse_challenges("X abc=def"),
            vec![ch("X", &[("abc", "def")], None)]
        );
    }

    #[test]
    fn whitespace_and_case_variations() {
        let h = "\tbEaReR   Realm = \"r\" ,\t,  SCOPE=read ,";
        let got = parse_challenges(h);
        assert_eq!(
            got,
            vec![ch("bEaReR", &[("realm", "r"), ("scope", "read")], None)]
        );
        assert!(got[0].is_bearer());
        assert_eq!(got[0].param("Scope"), Some("read"));
    }

    #[test]
    fn bare_schemes_are_challenges() {
        assert_eq!(
            parse_challenges("Basic, Bearer"),
            vec![ch("Basic", &[], None), ch("Bearer", &[], None)]
        );
    }

    #[test]
    fn malformed_parts_are_skipped() {
        let h = r#"@@@, Bearer error="x", realm=, =junk, scope="unterminated"#;
        assert_eq!(
            parse_challenges(h),
            vec![ch("Bearer", &[("error", "x")], None)]
        );
        // Right after the scheme, `realm=` alone is token68 by the grammar.
        assert_eq!(
            parse_challenges("Bearer realm=, error=x"),
            vec![ch("Bearer", &[("error", "x")], Some("realm="))]
        );
        assert_eq!(parse_challenges(""), vec![]);
        assert_eq!(parse_challenges(" , ,"), vec![]);
        assert_eq!(parse_challenges("realm=\"orphan\""), vec![]);
    }

    #[test]
    fn non_ascii_in_quoted_values_survives() {
        assert_eq!(
            parse_challenges("Bearer realm=\"caf\\é ✓\""),
            vec![ch("Bearer", &[("realm", "café ✓")], None)]
        );
    }

    #[test]
    fn limits_are_enforced() {
        let long = format!("Bearer realm=\"{}\"", "x".repeat(MAX_HEADER_BYTES));
        assert!(parse_challenges(&long).is_empty());
        let many = vec!["Basic"; MAX_CHALLENGES + 5].join(", ");
        assert_eq!(parse_challenges(&many).len(), MAX_CHALLENGES);
        let params: Vec<String> = (0..MAX_PARAMS + 5).map(|i| format!("p{i}=v")).collect();
        let got = parse_challenges(&format!("Bearer {}, Basic", params.join(", ")));
        assert_eq!(got[0].params.len(), MAX_PARAMS);
        // Parameters past the cap are still consumed, not mistaken for challenges.
        assert_eq!(got[1], ch("Basic", &[], None));
    }

    #[test]
    fn bearer_is_found_across_header_fields() {
        let got = bearer(&["Basic realm=\"a\"", "Bearer scope=\"s\""]).unwrap();
        assert_eq!(got.scope.as_deref(), Some("s"));
        assert_eq!(bearer(&["Basic realm=\"a\""]), None);
        assert_eq!(bearer(&[]), None);
    }

    #[test]
    fn display_renders_canonically() {
        let c = ch("Bearer", &[("realm", "a\"b\\c"), ("scope", "")], None);
        assert_eq!(c.to_string(), r#"Bearer realm="a\"b\\c", scope="""#);
        let t = ch("Basic", &[], Some("abc=="));
        assert_eq!(t.to_string(), "Basic abc==");
    }

    /// How a generated challenge's parameter value is written.
    #[derive(Debug, Clone, Copy)]
    enum Style {
        Quoted,
        TokenIfPossible,
    }

    fn challenge_strategy() -> impl Strategy<Value = Challenge> {
        let scheme = "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,10}";
        let name = "[a-z][a-z0-9_.-]{0,10}";
        let value = "[ -~éü✓\t]{0,16}";
        let token68 = "[A-Za-z0-9._~+/-]{1,16}={0,2}";
        let params = proptest::collection::vec((name, value), 0..5);
        (
            scheme,
            prop_oneof![
                params.prop_map(|p| (p, None)),
                token68.prop_map(|t| (Vec::new(), Some(t))),
            ],
        )
            .prop_map(|(scheme, (params, token68))| Challenge {
                scheme,
                params,
                token68,
            })
    }

    fn render(challenges: &[Challenge], styles: &[(Style, &str)]) -> String {
        let mut pick = styles.iter().cycle();
        let mut out = String::new();
        for (i, c) in challenges.iter().enumerate() {
            let (_, ws) = pick.next().unwrap();
            if i > 0 {
                out.push_str(&format!("{ws},{ws}"));
            }
            out.push_str(&c.scheme);
            if let Some(t) = &c.token68 {
                out.push_str(&format!(" {ws}{t}{ws}"));
            }
            for (j, (name, value)) in c.params.iter().enumerate() {
                let (style, ws) = pick.next().unwrap();
                out.push_str(if j == 0 { " " } else { "," });
                let is_token = !value.is_empty() && value.bytes().all(is_tchar);
                let rendered = match style {
                    Style::TokenIfPossible if is_token => value.clone(),
                    _ => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
                };
                out.push_str(&format!("{ws}{name}{ws}={ws}{rendered}{ws}"));
            }
        }
        out
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
            let got = parse_challenges(&s);
            prop_assert!(got.len() <= MAX_CHALLENGES);
            let _ = bearer(&[&s]);
        }

        #[test]
        fn never_panics_on_header_like_text(s in "[A-Za-z =,\"\\\\/+:\t]{0,120}") {
            let _ = parse_challenges(&s);
        }

        #[test]
        fn rendered_challenges_parse_back(
            challenges in proptest::collection::vec(challenge_strategy(), 0..5),
            styles in proptest::collection::vec(
                (
                    prop_oneof![Just(Style::Quoted), Just(Style::TokenIfPossible)],
                    prop_oneof![Just(""), Just(" "), Just("\t"), Just("  ")],
                ),
                1..8,
            ),
        ) {
            let header = render(&challenges, &styles);
            prop_assert_eq!(&parse_challenges(&header), &challenges, "header: {}", header);
        }

        #[test]
        fn display_then_parse_is_identity(challenges in proptest::collection::vec(challenge_strategy(), 0..5)) {
            let header = challenges.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            prop_assert_eq!(parse_challenges(&header), challenges);
        }
    }
}
