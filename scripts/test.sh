#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and integration tests (loopback
# listeners and a network-namespace LAN; those need root, which CI has).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh --deps
# Real MCP peers (official Python SDK 1.x and 2.x, TypeScript SDK) for the fingerprint tests.
scripts/peers/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked -- --test-threads "${TEST_THREADS:-4}"
# Brief fuzzing of the SSE, WWW-Authenticate and JSON-RPC parsers (longer by hand:
# scripts/fuzz.sh 300). cargo-fuzz runs on stable with RUSTC_BOOTSTRAP=1 (set by fuzz.sh).
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version 0.13.2
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
# Namespaces left behind by a crashed run would collide with the next one.
leftover=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^mt[0-9]+x[0-9]+-' || true)
if [[ -n "$leftover" ]]; then
	echo "test: namespaces left behind: $leftover" >&2
	exit 1
fi
echo "test: all passed" >&2
