#!/usr/bin/env bash
# fuzz.sh - build and run every cargo-fuzz target in fuzz/ (libFuzzer) for a while.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]          (default 20)
#
# Each target grows its corpus in fuzz/corpus/<target>/ (gitignored, kept between runs) and
# also reads the committed seeds in fuzz/seeds/<target>/. A crash leaves its input in
# fuzz/artifacts/<target>/; the script then runs the remaining targets anyway and exits 1.
# Reproduce a crash with
#   (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -a <target> artifacts/<target>/<crash-file>)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler (libFuzzer is
# built from source). No nightly toolchain is needed: cargo fuzz passes nightly-only rustc
# flags (-Zsanitizer=address and friends), and RUSTC_BOOTSTRAP=1 lets stable accept them.
#
# Environment:
#   FUZZ_TARGETS    space-separated subset of targets (default: all, from `cargo fuzz list`)
#   FUZZ_MAX_LEN    longest generated input in bytes (default 16384: above the 8 KiB
#                   WWW-Authenticate cap, so the over-limit path is reached)
#   FUZZ_SANITIZER  address (default) or none (faster, finds only panics and aborts)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

secs=${1:-20}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
	echo "fuzz: SECONDS_PER_TARGET must be a positive integer, got '$secs'" >&2
	exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "fuzz: cargo-fuzz is missing; install it with: cargo install cargo-fuzz --locked" >&2
	exit 2
fi

export RUSTC_BOOTSTRAP=1
max_len=${FUZZ_MAX_LEN:-16384}
sanitizer=${FUZZ_SANITIZER:-address}
read -r -a targets <<<"${FUZZ_TARGETS:-$(cargo fuzz list | tr '\n' ' ')}"

# -a: debug assertions (integer overflow checks) in the optimized build.
build_flags=(-a --sanitizer "$sanitizer")
cargo fuzz build "${build_flags[@]}"

failed=()
for target in "${targets[@]}"; do
	mkdir -p "corpus/$target" "seeds/$target"
	echo "fuzz: $target for ${secs}s" >&2
	# The first directory receives new inputs; the seeds directory is only read.
	if ! cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" "seeds/$target" -- \
		-max_total_time="$secs" -max_len="$max_len" \
		-print_final_stats=1; then
		failed+=("$target")
	fi
done

if ((${#failed[@]})); then
	echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
	exit 1
fi
echo "fuzz: all targets ran ${secs}s without a crash" >&2
