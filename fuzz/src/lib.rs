//! Fuzzing harness for mcp-scout's pure parsers: the library the targets in `fuzz_targets/`
//! link against.
//!
//! The parser modules are compiled here from the main crate's own source files (see
//! [`fingerprint`]) instead of depending on the `mcp-scout` crate. They need only serde_json
//! and thiserror, so the sanitizer-instrumented build stays small (no tokio, reqwest or rustls
//! under ASan on a two-core machine) and keeps working while unrelated parts of the main crate
//! are being edited. The price is a rule, stated in each module's doc: the parsers stay
//! self-contained, naming nothing else in the crate.

pub mod fingerprint;
