#!/usr/bin/env bash
# bench-dashboard.sh: the web dashboard's first render with a large inventory, and the bytes
# of its first load, measured in real headless Chromium.
#
#   scripts/bench-dashboard.sh
#
# Fills a fresh store with BENCH_SERVERS (default 10,000) MCP records and BENCH_CHECKS
# rounds of health checks through the store's own paths (examples/fill_store.rs), starts the
# daemon on it (one idle job, health monitor off, so the inventory stays as filled), and
# loads `/#/servers` BENCH_RUNS times (default 5), each in a fresh browser (empty cache),
# with scripts/peers/dashboard_check.py bench. Prints:
#   first render: performance.now() when the servers table is first drawn, counted from
#                 navigation start (document, script, style, the API page of 100 rows);
#                 the median of the runs, target < 1000 ms (PASS/FAIL);
#   first load:   the sum of transferSize (headers + encoded body) of the document and every
#                 resource of the first run (Performance API), and of their encodedBodySize.
# A screenshot of the first run goes to target/screenshots/bench-10k.png.
#
# Environment:
#   MCP_SCOUT_BIN   daemon binary (default target/release/mcp-scout; built if absent)
#   MCP_SCOUT_FILL  filler (default target/release/examples/fill_store; built if absent)
#   BENCH_SERVERS (10000), BENCH_CHECKS (3), BENCH_RUNS (5)
# Needs root (a network namespace), chromium + chromium-driver and the `browser` venv
# (scripts/peers/setup.sh installs them).
#
# NETWORK SAFETY: the daemon and the browser run in a network namespace made here that has
# only its loopback interface; Chromium also has every background service off and a proxy on
# a closed loopback port. Every wait is bounded.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${MCP_SCOUT_BIN:-$ROOT/target/release/mcp-scout}"
FILL="${MCP_SCOUT_FILL:-$ROOT/target/release/examples/fill_store}"
SERVERS="${BENCH_SERVERS:-10000}"
CHECKS="${BENCH_CHECKS:-3}"
RUNS="${BENCH_RUNS:-5}"
PEERS="${MCP_SCOUT_PEERS:-$ROOT/target/peers}"
PY="$PEERS/browser/bin/python"
PORT=18931
TARGET_MS=1000

log() { echo "bench-dashboard: $*" >&2; }
die() {
	log "$*"
	exit 2
}

[[ $(id -u) == 0 ]] || die "needs root (for its network namespace)"
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver && -x $PY ]] ||
	die "chromium, chromium-driver or $PY missing: run scripts/peers/setup.sh"
if [[ ! -x $BIN || ! -x $FILL ]]; then
	log "building (cargo build --release --locked --bin mcp-scout --example fill_store)"
	cargo build --release --locked --bin mcp-scout --example fill_store >&2
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mcp-scout-bench-dashboard-$$.XXXXXX")
NS="msdash-$$"
DAEMON_PID=""
cleanup() {
	[[ -n $DAEMON_PID ]] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

log "filling $SERVERS servers with $CHECKS rounds of checks"
timeout -k 5 900 "$FILL" "$TMP/inventory.db" --count "$SERVERS" --runs 1 --checks "$CHECKS" >"$TMP/fill.out" 2>"$TMP/fill.err" ||
	die "fill_store failed: $(tail -3 "$TMP/fill.err")"

cat >"$TMP/config.yaml" <<EOF
# bench-dashboard.sh: a store of $SERVERS filled servers; the one job finds nothing
api:
  listen: 127.0.0.1:$PORT
store:
  path: $TMP/inventory.db
  retention: 30d
jobs:
  - name: idle
    targets: [127.0.0.1]
    ports: "9"
    interval: 1h
    jitter: 0%
health:
  enabled: false
EOF
"$BIN" config check "$TMP/config.yaml" >/dev/null || die "config check failed"

ip netns add "$NS"
ip -n "$NS" link set lo up
[[ $(ip -n "$NS" -o link show | wc -l) == 1 ]] || die "$NS has more than lo"

# `ip netns exec` execs the command, so $! is the daemon itself.
ip netns exec "$NS" "$BIN" daemon -c "$TMP/config.yaml" >"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
for ((i = 0; i < 600; i++)); do
	kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon died: $(tail -3 "$TMP/daemon.log")"
	code=$(ip netns exec "$NS" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/readyz" || true)
	[[ $code == 200 ]] && break
	sleep 0.1
done
[[ $code == 200 ]] || die "the daemon was not ready within 60 s"
count=$(ip netns exec "$NS" curl -sf --max-time 30 "http://127.0.0.1:$PORT/api/v1/dashboard/servers?limit=1" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])')
[[ $count == "$SERVERS" ]] || die "the inventory holds $count servers, not $SERVERS"

log "loading the servers view $RUNS times in headless Chromium"
out=$(timeout -k 5 600 ip netns exec "$NS" "$PY" scripts/peers/dashboard_check.py bench \
	--url "http://127.0.0.1:$PORT" --runs "$RUNS" --screenshots "$ROOT/target/screenshots")
line=$(grep '^BENCH ' <<<"$out" | head -1) || die "no BENCH line: $out"
python3 - "${line#BENCH }" "$TARGET_MS" "$BIN" <<'PY'
import json, sys
b = json.loads(sys.argv[1])
target = float(sys.argv[2])
med = b["first_render_ms_median"]
verdict = "PASS" if med < target else "FAIL"
print(f"binary: {sys.argv[3]}")
print(f"servers in the inventory: {b['servers']:,}")
print(f"first render of the servers view: median {med:.0f} ms over {b['runs']} fresh browsers "
      f"(runs: {', '.join(f'{x:.0f}' for x in b['first_render_ms'])} ms); target < {target:.0f} ms: {verdict}")
print(f"first load: {b['first_load_transfer_bytes']:,} bytes transferred "
      f"({b['first_load_body_bytes']:,} bytes of bodies) in {len(b['entries'])} requests")
for name, transfer, body in b["entries"]:
    print(f"  {transfer:>8,} B  {name}")
PY
