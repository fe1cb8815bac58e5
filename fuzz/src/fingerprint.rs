//! The main crate's parser modules, by path, under the same module names as in
//! `mcp_scout::fingerprint` (so their intra-doc links resolve the same way).

#[path = "../../src/fingerprint/jsonrpc.rs"]
pub mod jsonrpc;
#[path = "../../src/fingerprint/sse.rs"]
pub mod sse;
#[path = "../../src/fingerprint/www_auth.rs"]
pub mod www_auth;
