//! Fuzz target: the `WWW-Authenticate` parser on arbitrary text.
//!
//! Input: the header value (invalid UTF-8 is replaced, as a header value arrives as `&str`).
//! Oracles beyond "no panic": the caps hold, and the canonical rendering of what was parsed
//! parses back to the same challenges.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_scout_fuzz::fingerprint::www_auth::{
    bearer, parse_challenges, MAX_CHALLENGES, MAX_HEADER_BYTES, MAX_PARAMS,
};

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let challenges = parse_challenges(&header);
    assert!(challenges.len() <= MAX_CHALLENGES);
    for c in &challenges {
        assert!(!c.scheme.is_empty());
        assert!(c.params.len() <= MAX_PARAMS);
        assert!(c.params.iter().all(|(name, _)| !name.is_empty()));
    }
    let rendered: Vec<String> = challenges.iter().map(ToString::to_string).collect();
    let rendered = rendered.join(", ");
    if rendered.len() <= MAX_HEADER_BYTES {
        assert_eq!(
            parse_challenges(&rendered),
            challenges,
            "rendered: {rendered}"
        );
    }
    let found = bearer(&[&header]);
    assert_eq!(found.is_some(), challenges.iter().any(|c| c.is_bearer()));
});
