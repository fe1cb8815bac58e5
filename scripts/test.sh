#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, property and integration tests (loopback
# listeners and a network-namespace LAN), then brief fuzzing. Needs root (network namespaces,
# raw ICMP, dnsmasq on port 53); CI runs it as root. It never skips a group: without root it
# stops here, and MCP_SCOUT_REQUIRE_ALL=1 makes every test that lacks root or a peer fail
# instead of returning early.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS

if [[ $(id -u) -ne 0 ]]; then
	echo "test: needs root: the namespace LAN, ICMP and DNS tests cannot run otherwise, and this" >&2
	echo "test: script never passes with a group skipped. Run it as root (sudo scripts/test.sh)." >&2
	exit 1
fi
export MCP_SCOUT_REQUIRE_ALL=1

scripts/setup.sh --deps
# Real MCP peers (official Python SDK 1.x and 2.x, TypeScript SDK) for the fingerprint tests,
# into ${MCP_SCOUT_PEERS:-target/peers}; the tests look there too.
scripts/peers/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# fuzz/ is a workspace of its own (it compiles the parser modules by path), so the commands
# above never see it: format-check and lint it separately. Plain stable clippy suffices; only
# `cargo fuzz` itself needs RUSTC_BOOTSTRAP=1 for its sanitizer flags.
(cd fuzz && cargo fmt --all -- --check && cargo clippy --all-targets --locked -- -D warnings)
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
took=$((SECONDS - started))
echo "test: all passed in $((took / 60)) min $((took % 60)) s" >&2
