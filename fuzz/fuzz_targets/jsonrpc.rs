//! Fuzz target: the JSON-RPC reply classifier on arbitrary bytes.
//!
//! Input: one control byte, then the body. The control byte picks the expected reply (its
//! value mod 6) and, with bit 7 set, wraps the body as `{"jsonrpc":"2.0","id":1,"result":…}`
//! so that mutations reach the result-shape checks instead of dying in the envelope.
//! Oracles beyond "no panic": what a reply keeps respects the documented rules and caps.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_scout_fuzz::fingerprint::jsonrpc::{
    classify, is_known_protocol_version, Expect, Reply, MAX_NAME_CHARS, MAX_REASON_CHARS,
    MAX_TEXT_CHARS, MAX_TOOLS_PER_PAGE, MAX_VERSIONS,
};

const EXPECTS: [Expect; 6] = [
    Expect::Initialize,
    Expect::Discover,
    Expect::Tools,
    Expect::Resources,
    Expect::Prompts,
    Expect::Call,
];
const ENVELOPE_HEAD: &[u8] = br#"{"jsonrpc":"2.0","id":1,"result":"#;

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let expect = EXPECTS[usize::from(control) % EXPECTS.len()];
    let reply = if control & 0x80 == 0 {
        classify(body, expect)
    } else {
        let mut wrapped = Vec::with_capacity(ENVELOPE_HEAD.len() + body.len() + 1);
        wrapped.extend_from_slice(ENVELOPE_HEAD);
        wrapped.extend_from_slice(body);
        wrapped.push(b'}');
        classify(&wrapped, expect)
    };
    check(&reply, expect);
});

fn chars_within(s: &str, max: usize) -> bool {
    s.chars().count() <= max
}

fn check(reply: &Reply, expect: Expect) {
    match reply {
        Reply::Initialize(info) => {
            assert_eq!(expect, Expect::Initialize);
            assert!(info.known_version && is_known_protocol_version(&info.protocol_version));
            assert!(info.capabilities.is_object());
            assert!(chars_within(&info.server_name, MAX_NAME_CHARS));
            assert!(chars_within(&info.server_version, MAX_NAME_CHARS));
            assert!(info
                .instructions
                .iter()
                .all(|i| chars_within(i, MAX_TEXT_CHARS)));
        }
        Reply::Discover(d) => {
            assert_eq!(expect, Expect::Discover);
            assert!(d.supported_versions.len() <= MAX_VERSIONS);
            assert!(d
                .supported_versions
                .iter()
                .any(|v| is_known_protocol_version(v)));
            assert!(d.capabilities.is_object());
        }
        Reply::Tools(page) => {
            assert_eq!(expect, Expect::Tools);
            assert!(page.tools.len() <= MAX_TOOLS_PER_PAGE);
            for tool in &page.tools {
                assert!(chars_within(&tool.name, MAX_NAME_CHARS));
                assert!(tool
                    .description
                    .iter()
                    .all(|d| chars_within(d, MAX_TEXT_CHARS)));
            }
        }
        Reply::CallResult(v) => {
            assert_eq!(expect, Expect::Call);
            assert!(v.is_object());
        }
        Reply::Listing { .. } => {
            assert!(matches!(expect, Expect::Resources | Expect::Prompts));
        }
        Reply::Error(e) => {
            assert!(chars_within(&e.message, MAX_TEXT_CHARS));
            assert!(!(e.data.is_some() && e.data_truncated));
        }
        Reply::Malformed(reason) => assert!(chars_within(reason, MAX_REASON_CHARS)),
        Reply::OtherResult | Reply::NotJsonRpc => {}
    }
}
