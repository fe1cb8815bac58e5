#!/usr/bin/env bash
# Install what mcp-scout needs on a fresh Debian 12 machine and build the release binary.
#
#   scripts/setup.sh            system packages + cargo build --release
#   scripts/setup.sh --deps     system packages only (used by scripts/test.sh)
#
# Idempotent: packages already present are not reinstalled. Needs root for apt-get (or
# sudo); the Rust toolchain (cargo) must already be installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

deps_only=0
[[ "${1:-}" == "--deps" ]] && deps_only=1

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# command -> Debian package that provides it
declare -A want=(
	[ip]=iproute2        # network namespaces for the test LAN
	[python3]=python3    # test listeners and the user-space link impairer
	[prlimit]=util-linux # descriptor-exhaustion test
	[setpriv]=util-linux # no-ICMP-permission test
	[cc]=gcc             # C crates and the benchmark's reference loop
)
missing=()
for cmd in "${!want[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
if ((${#missing[@]})); then
	echo "setup: installing ${missing[*]}" >&2
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u)
fi

if ! command -v cargo >/dev/null 2>&1; then
	echo "setup: cargo not found; install the Rust toolchain (https://rustup.rs) and re-run" >&2
	exit 1
fi

((deps_only)) && exit 0
cargo build --release --locked
echo "setup: built target/release/mcp-scout" >&2
