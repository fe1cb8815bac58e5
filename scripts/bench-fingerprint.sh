#!/usr/bin/env bash
# bench-fingerprint.sh - fingerprinting throughput and memory on 200 real MCP endpoints.
#
# Usage: scripts/bench-fingerprint.sh            (needs root: network namespaces)
#
# One real MCP server (official Python SDK, ${PEER:-py1-streamable}) listens on 0.0.0.0:8000
# inside a fresh network namespace, so it answers on every 127.x address of that namespace.
# mcp-scout then scans 200 of those addresses with fingerprinting at each concurrency in
# ${CONCURRENCY:-1 4 16 64} and prints wall time, endpoints/s, MCP verdicts found and peak RSS.
# Endpoints/s should grow with the setting until the single server process saturates.
#
# NETWORK SAFETY: every packet stays on the loopback interface of a namespace made here.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PEER="${PEER:-py1-streamable}"
CONCURRENCY="${CONCURRENCY:-1 4 16 64}"
COUNT=200
NS="msbf-$$"
OUT="${BENCH_OUT:-$ROOT/target/bench/fingerprint}"
BIN="${MCP_SCOUT_BIN:-$ROOT/target/release/mcp-scout}"
mkdir -p "$OUT"

[[ $(id -u) == 0 ]] || {
	echo "bench-fingerprint: needs root (network namespaces)" >&2
	exit 1
}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
scripts/peers/setup.sh >&2
[[ -x "$BIN" ]] || cargo build --release --locked

peer_pid=""
cleanup() {
	[[ -n "$peer_pid" ]] && kill "$peer_pid" 2>/dev/null || true
	for p in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
	ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
MCP_SCOUT_PEERS_ANY_ADDR=1 ip netns exec "$NS" scripts/peers/run.sh "$PEER" --host 0.0.0.0 --port 8000 >"$OUT/peer.out" 2>"$OUT/peer.err" &
peer_pid=$!
for _ in $(seq 1 150); do
	grep -q READY "$OUT/peer.out" 2>/dev/null && break
	kill -0 "$peer_pid" 2>/dev/null || { echo "bench-fingerprint: peer died: $(tail -3 "$OUT/peer.err")" >&2; exit 1; }
	sleep 0.1
done
grep -q READY "$OUT/peer.out" || { echo "bench-fingerprint: peer not ready in 15 s" >&2; exit 1; }

last=$((COUNT))
echo "== fingerprinting $COUNT endpoints of one $PEER server (127.10.0.1-$last:8000, netns $NS) =="
printf '%-12s %8s %12s %6s %14s\n' concurrency wall_s endpoints/s mcp peak_rss_MiB
for c in $CONCURRENCY; do
	ip netns exec "$NS" /usr/bin/time -v -o "$OUT/time.$c" "$BIN" scan "127.10.0.1-$last" -p 8000 \
		--fingerprint-concurrency "$c" -o json >"$OUT/scan.$c.json" 2>"$OUT/scan.$c.err" || true
	python3 - "$OUT/scan.$c.json" "$OUT/time.$c" "$c" <<'PY'
import json, re, sys
doc = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
wall = doc["scan"]["duration_s"]
mcp = sum(1 for f in doc["findings"] if f["kind"] == "mcp")
print(f"{sys.argv[3]:<12} {wall:8.2f} {len(doc['findings'])/wall:12.1f} {mcp:6d} {rss:14.1f}")
PY
done
echo "command: mcp-scout scan 127.10.0.1-$last -p 8000 --fingerprint-concurrency N -o json"
echo "raw outputs: $OUT"
