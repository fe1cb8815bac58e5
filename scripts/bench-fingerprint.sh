#!/usr/bin/env bash
# bench-fingerprint.sh - fingerprinting throughput and memory on 200 real MCP endpoints, and
# a scan of the eight hostile servers.
#
# Usage: scripts/bench-fingerprint.sh [throughput|hostile|all]   (default throughput; root)
#
# throughput: one real MCP server (official Python SDK, ${PEER:-py1-streamable}) listens on
# 0.0.0.0:8000 inside a fresh network namespace, so it answers on every 127.x address of that
# namespace. mcp-scout then scans 200 of those addresses with fingerprinting at each
# concurrency in ${CONCURRENCY:-1 4 16 64} and prints wall time, endpoints/s, MCP verdicts
# found and peak RSS. Endpoints/s should grow with the setting until the single server
# process saturates.
#
# hostile: the eight hostile peers (trickled headers, endless stream, 100 MiB body, bad UTF-8,
# bad and deep JSON, a redirect loop, a stalled TLS handshake) on 127.11.0.1-8:8000 in a fresh
# namespace, scanned at once with default settings (`scan 127.11.0.1-8 -p 8000 --all -o json`);
# prints the wall time, peak RSS and verdicts, ${HOSTILE_REPEAT:-3} runs. The README's
# "hostile set" figures come from this mode.
#
# NETWORK SAFETY: every packet stays on the loopback interface of a namespace made here.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE="${1:-throughput}"
case "$MODE" in throughput | hostile | all) ;; *)
	echo "usage: $0 [throughput|hostile|all]" >&2
	exit 2
	;;
esac
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

hostile() {
	local names=(trickle-headers endless-sse-body huge-body bad-utf8 bad-json deep-json redirect-loop tls-stall)
	local i pids=()
	for i in "${!names[@]}"; do
		ip netns exec "$NS" scripts/peers/run.sh "${names[$i]}" --host "127.11.0.$((i + 1))" --port 8000 \
			>"$OUT/hostile.$i.out" 2>"$OUT/hostile.$i.err" &
		pids+=($!)
	done
	for i in "${!names[@]}"; do
		local n
		for n in $(seq 1 150); do
			grep -q READY "$OUT/hostile.$i.out" 2>/dev/null && break
			sleep 0.1
		done
		grep -q READY "$OUT/hostile.$i.out" || { echo "bench-fingerprint: ${names[$i]} not ready in 15 s" >&2; exit 1; }
	done
	echo "== the eight hostile servers at once (127.11.0.1-8:8000, netns $NS), default settings =="
	printf '%-4s %8s %14s  %s\n' run wall_s peak_rss_MiB verdicts
	local r
	for r in $(seq 1 "${HOSTILE_REPEAT:-3}"); do
		ip netns exec "$NS" /usr/bin/time -v -o "$OUT/time.hostile.$r" "$BIN" scan 127.11.0.1-8 -p 8000 --all \
			-o json >"$OUT/scan.hostile.$r.json" 2>"$OUT/scan.hostile.$r.err" || true
		python3 - "$OUT/scan.hostile.$r.json" "$OUT/time.hostile.$r" "$r" <<'PY'
import json, re, sys
doc = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", t)
secs = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
kinds = {}
for f in doc["findings"]:
    kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
print(f"{sys.argv[3]:<4} {secs:8.2f} {rss:14.1f}  {json.dumps(kinds, sort_keys=True)}")
PY
	done
	echo "command: mcp-scout scan 127.11.0.1-8 -p 8000 --all -o json (wall and RSS from /usr/bin/time -v)"
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
if [[ "$MODE" == hostile ]]; then
	hostile
	echo "raw outputs: $OUT"
	exit 0
fi

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
kill "$peer_pid" 2>/dev/null || true
peer_pid=""
if [[ "$MODE" == all ]]; then
	hostile
fi
echo "raw outputs: $OUT"
