#!/usr/bin/env bash
# bench-health.sh - the health monitor's figures of issue 8: load and detection.
#
# Usage: scripts/bench-health.sh [load|detect|all]      (default: all; needs root)
#
#   load    one real MCP server (peer py1-streamable, FastMCP 1.x) on 0.0.0.0:8000 in a
#           fresh network namespace (lo only), so it answers on 1,000 loopback addresses
#           127.1.0.1-127.1.3.232. The release daemon runs in the same namespace: one job
#           finds the 1,000 servers once (interval 24h), and the monitor checks each of
#           them every 30 s (health.interval 30s, timeout 10s, concurrency 16: the
#           defaults). After the first run has completed, the daemon's CPU time and RSS are
#           sampled for BENCH_MINUTES (default 10). Then every server's stored `mcp` check
#           results (GET /api/v1/servers/{id}/checks) give the actual period per server
#           and whether a check ever overlapped the previous one of the same server.
#           Targets: average CPU < 10 % of one core, peak RSS < 100 MB, the actual period
#           within 10 % of 30 s at p95, no check overlapping itself.
#   detect  one real server (py1-streamable) on 127.0.0.1:8000 in a fresh namespace, the
#           daemon with health.interval 2s and the default thresholds (3 failures to
#           unhealthy, 2 passes to healthy). BENCH_KILLS times (default 10): wait until it
#           is healthy and settled (8 passes in a row, not flapping: kills closer together
#           would trip the default flap damping, which holds the status on purpose), kill -9
#           the server, time until the API shows it unhealthy; start it again, time until it
#           is healthy (from the restart, and from the moment the server printed READY).
#           Prints p50 and p95 of each, and the flapping episodes seen.
#   all     load, then detect.
#
# Targets are reported PASS/FAIL; a missed target does not make the script fail. It exits
# non-zero only when the benchmark itself could not run.
#
# Environment:
#   MCP_SCOUT_BIN   daemon binary (default target/release/mcp-scout; built if absent)
#   BENCH_MINUTES   load: minutes sampled after the first run (default 10; a smoke run: 2)
#   BENCH_SAMPLE_S  load: seconds between CPU/RSS samples (default 2)
#   BENCH_KILLS     detect: kills (default 10)
#   BENCH_OUT       raw outputs (default target/bench/health)
#   BENCH_KEEP=1    keep the temporary stores
#
# NETWORK SAFETY: every packet stays inside network namespaces made here (lo only): the
# peer, the daemon and curl all run in them. Every wait is bounded.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PART="${1:-all}"
BIN="${MCP_SCOUT_BIN:-$ROOT/target/release/mcp-scout}"
OUT="${BENCH_OUT:-$ROOT/target/bench/health}"
MINUTES="${BENCH_MINUTES:-10}"
SAMPLE_S="${BENCH_SAMPLE_S:-2}"
KILLS="${BENCH_KILLS:-10}"
PEER=py1-streamable
RANGE=127.1.0.1-127.1.3.232 # 1,000 addresses
COUNT=1000
API_PORT=19465
BENCH_NAME=bench-health
export PATH="$PATH:${HOME:-/root}/.cargo/bin"
# shellcheck source=scripts/bench/daemon-lib.sh
source "$ROOT/scripts/bench/daemon-lib.sh"

case $PART in
load | detect | all) ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
*) die "unknown part '$PART' (load|detect|all)" ;;
esac
check_common
[[ $KILLS =~ ^[1-9][0-9]?$ ]] || die "BENCH_KILLS must be 1..99"


# start_peer NS HOST TAG: the peer in NS on HOST:8000; sets PEER_PID, waits for READY (90 s)
PEER_PID=""
start_peer() {
	local ns=$1 host=$2 tag=$3 i
	MCP_SCOUT_PEERS_ANY_ADDR=1 ip netns exec "$ns" scripts/peers/run.sh "$PEER" \
		--host "$host" --port 8000 >"$OUT/$tag.peer.out" 2>>"$OUT/$tag.peer.err" &
	PEER_PID=$!
	STARTED_PIDS+=("$PEER_PID")
	for ((i = 0; i < 900; i++)); do
		grep -q READY "$OUT/$tag.peer.out" 2>/dev/null && return 0
		kill -0 "$PEER_PID" 2>/dev/null || die "peer died: $(tail -3 "$OUT/$tag.peer.err")"
		sleep 0.1
	done
	die "peer not ready within 90 s"
}

# ------------------------------------------------------------------ load

bench_load() {
	local ns="msbh-$$-l" d cfg i now s t0 t_end first="" window_s clk hwm mnote m0
	ensure_tools
	tmp_dir load
	d=$TMP_DIR
	ns_fresh "$ns"
	clk=$(getconf CLK_TCK)
	window_s=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
	start_peer "$ns" 0.0.0.0 load
	local peer_pid=$PEER_PID
	cfg="$d/config.yaml"
	cat >"$cfg" <<EOF
# bench-health.sh load: 1,000 addresses of one FastMCP server, each checked every 30 s
api:
  listen: 127.0.0.1:$API_PORT
store:
  path: $d/inventory.db
  retention: 30d
gone_after: 3
health:
  interval: 30s
  timeout: 10s
  concurrency: 16
jobs:
  - name: find
    targets: [$RANGE]
    ports: "8000"
    interval: 24h
    jitter: 0%
EOF
	start_daemon "$ns" "$cfg" load
	wait_ready "$ns" "$DAEMON_PID"
	# the first run (the discovery of the 1,000 servers), bounded at 5 min
	for ((i = 0; i < 3000; i++)); do
		[[ $(api "$ns" "/api/v1/runs?limit=5" 2>/dev/null || true) == *'"status":"completed"'* ]] && {
			first=1
			break
		}
		kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon died; see $OUT/load.daemon.log"
		sleep 0.1
	done
	[[ -n $first ]] || die "the first run did not complete within 5 min"
	log "load: first run completed; sampling for $MINUTES min"
	m0=$(machine_stat)
	t0=$EPOCHREALTIME
	t_end=$(awk -v a="$t0" -v w="$window_s" 'BEGIN { printf "%.3f", a + w }')
	local samples="$OUT/load.samples"
	: >"$samples"
	for ((i = 0; i < window_s / SAMPLE_S + 2; i++)); do
		now=$EPOCHREALTIME
		s=$(proc_sample "$DAEMON_PID") || die "the daemon died; see $OUT/load.daemon.log"
		printf '%s %s\n' "$now" "$s" >>"$samples"
		awk -v n="$now" -v e="$t_end" 'BEGIN { exit !(n >= e) }' && break
		sleep "$(awk -v n="$EPOCHREALTIME" -v e="$t_end" -v p="$SAMPLE_S" \
			'BEGIN { r = e - n; if (r > p) r = p; if (r < 0.05) r = 0.05; printf "%.3f", r }')"
	done
	mnote=$(machine_note "$m0")
	hwm=$(hwm_kb "$DAEMON_PID")
	api "$ns" "/metrics" >"$OUT/load.metrics.txt" || true
	# every server's mcp results, fetched inside the namespace
	in_ns "$ns" python3 - "$API_PORT" "$OUT/load.checks.json" <<'PY' || die "reading the check results failed"
import json, sys, urllib.request
port, out = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
def get(p):
    with urllib.request.urlopen(base + p, timeout=30) as r:
        return json.load(r)
servers = get("/api/v1/servers")["servers"]
res = {s["id"]: get(f"/api/v1/servers/{s['id']}/checks?check=mcp&limit=1000")["checks"] for s in servers}
json.dump({"servers": len(servers), "health": [s.get("health") for s in servers], "checks": res}, open(out, "w"))
PY
	stop_daemon
	kill_pids "$peer_pid"
	forget_pid "$peer_pid"
	ns_delete "$ns"

	echo
	echo "== monitor load: 1,000 MCP endpoints of one $PEER server, checked every 30 s for $MINUTES min =="
	echo "setup: netns $ns (lo only); peer: MCP_SCOUT_PEERS_ANY_ADDR=1 scripts/peers/run.sh $PEER --host 0.0.0.0 --port 8000"
	echo "       daemon: mcp-scout daemon -c CONFIG --log-format json, in the same netns; CONFIG:"
	sed 's/^/         /' "$cfg"
	echo "       sampled from the end of the first (discovery) run: utime+stime and VmRSS every ${SAMPLE_S}s; $(nproc) cores, shared with the peer"
	echo "$mnote"
	python3 - "$samples" "$OUT/load.checks.json" "$clk" "$hwm" "$COUNT" "$OUT/load.metrics.txt" <<'PY'
import json, sys
from datetime import datetime
samples_f, checks_f, clk, hwm, want, metrics_f = sys.argv[1:]
clk, hwm, want = int(clk), int(hwm), int(want)
rows = [tuple(map(float, l.split())) for l in open(samples_f) if l.strip()]
(t0, k0, _), (t1, k1, _) = rows[0], rows[-1]
avg = 100 * (k1 - k0) / clk / (t1 - t0)
peak = max(hwm / 1024, max(r[2] for r in rows) / 1024)
data = json.load(open(checks_f))
def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
periods, overlaps, checked, fails = [], 0, 0, 0
for sid, checks in data["checks"].items():
    pts = sorted((ts(c["at"]), (c.get("latency_ms") or 0) / 1000, c["ok"]) for c in checks)
    # only the sampled window (the first checks ran during the discovery run)
    pts = [p for p in pts if t0 <= p[0] <= t1]
    if pts:
        checked += 1
    fails += sum(1 for p in pts if not p[2])
    for (a, _, _), (b, lat, _) in zip(pts, pts[1:]):
        periods.append(b - a)
        if b - lat < a:
            overlaps += 1
dev = sorted(abs(p - 30) for p in periods)
p95 = dev[int(0.95 * (len(dev) - 1))] if dev else float("nan")
pp = sorted(periods)
q = lambda x: pp[int(x * (len(pp) - 1))] if pp else float("nan")
statuses = {}
for h in data["health"]:
    s = (h or {}).get("status", "never checked")
    statuses[s] = statuses.get(s, 0) + 1
in_flight = [l for l in open(metrics_f) if l.startswith("mcp_scout_checks_in_flight ")] if metrics_f else []
print(f"servers: {data['servers']} (want {want}); checked in the window: {checked}; statuses at the end: {statuses}")
print(f"mcp check results in the window: {len(periods) + checked}, failed: {fails}")
print(f"period per server: p5 {q(0.05):.2f} s, p50 {q(0.5):.2f} s, p95 {q(0.95):.2f} s, max {q(1):.2f} s over {len(periods)} periods")
print()
print(f"avg daemon CPU: {avg:.2f} % of one core                  target < 10 %   {'PASS' if avg < 10 else 'FAIL'}")
print(f"peak RSS: {peak:.1f} MiB (VmHWM)                     target < 100 MB {'PASS' if peak * 1048576 < 100e6 else 'FAIL'}")
print(f"period deviation from 30 s at p95: {p95:.2f} s             target < 3 s    {'PASS' if p95 < 3 else 'FAIL'}")
print(f"checks overlapping the previous one of their server: {overlaps}  target 0   {'PASS' if overlaps == 0 and periods else 'FAIL'}")
PY
}

# ------------------------------------------------------------------ detect

# status NS ID: the server's published health status, or "none"
status() {
	api "$1" "/api/v1/servers/$2" 2>/dev/null |
		python3 -c 'import json,sys; print(((json.load(sys.stdin).get("health") or {}).get("status")) or "none")' 2>/dev/null ||
		echo none
}

# wait_settled NS ID LIMIT_S: poll until the server is healthy, not flapping, with at least
# SETTLE_PASSES passes in a row: kills closer together than that trip the flap damping
# (default: more than 30 % of the last 20 checks changed status), which holds the status on
# purpose and would be measured instead of the detection.
SETTLE_PASSES=8
wait_settled() {
	local ns=$1 id=$2 limit=$3 t_end
	t_end=$(awk -v a="$EPOCHREALTIME" -v l="$limit" 'BEGIN { printf "%.3f", a + l }')
	while awk -v n="$EPOCHREALTIME" -v e="$t_end" 'BEGIN { exit !(n < e) }'; do
		api "$ns" "/api/v1/servers/$id" 2>/dev/null | python3 -c '
import json, sys
h = json.load(sys.stdin).get("health") or {}
ok = h.get("status") == "healthy" and not h.get("flapping") and h.get("consecutive_successes", 0) >= int(sys.argv[1])
sys.exit(0 if ok else 1)' "$SETTLE_PASSES" 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# wait_status NS ID WANT LIMIT_S: poll every 50 ms; prints the time it was seen, or fails
wait_status() {
	local ns=$1 id=$2 want=$3 limit=$4 t_end
	t_end=$(awk -v a="$EPOCHREALTIME" -v l="$limit" 'BEGIN { printf "%.3f", a + l }')
	while awk -v n="$EPOCHREALTIME" -v e="$t_end" 'BEGIN { exit !(n < e) }'; do
		if [[ $(status "$ns" "$id") == "$want" ]]; then
			echo "$EPOCHREALTIME"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

bench_detect() {
	local ns="msbh-$$-d" d cfg i id t_kill t_down t_start t_ready t_up times="$OUT/detect.times"
	ensure_tools
	tmp_dir detect
	d=$TMP_DIR
	ns_fresh "$ns"
	start_peer "$ns" 127.0.0.1 detect
	cfg="$d/config.yaml"
	cat >"$cfg" <<EOF
# bench-health.sh detect: one FastMCP server checked every 2 s, default thresholds
api:
  listen: 127.0.0.1:$API_PORT
store:
  path: $d/inventory.db
gone_after: 3
health:
  interval: 2s
jobs:
  - name: find
    targets: [127.0.0.1]
    ports: "8000"
    interval: 24h
    jitter: 0%
EOF
	start_daemon "$ns" "$cfg" detect
	wait_ready "$ns" "$DAEMON_PID"
	for ((i = 0; i < 600; i++)); do
		id=$(api "$ns" "/api/v1/servers" 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin)["servers"]; print(s[0]["id"] if s else "")' 2>/dev/null || true)
		[[ -n $id ]] && break
		sleep 0.1
	done
	[[ -n $id ]] || die "the server was not found within 60 s"
	log "detect: server $id; $KILLS kills"
	: >"$times"
	for ((i = 1; i <= KILLS; i++)); do
		wait_settled "$ns" "$id" 120 || die "kill $i: not healthy and settled within 120 s"
		t_kill=$EPOCHREALTIME
		kill -KILL "$PEER_PID"
		wait "$PEER_PID" 2>/dev/null || true
		forget_pid "$PEER_PID"
		t_down=$(wait_status "$ns" "$id" unhealthy 60) || die "kill $i: not unhealthy within 60 s"
		t_start=$EPOCHREALTIME
		start_peer "$ns" 127.0.0.1 detect
		t_ready=$EPOCHREALTIME
		t_up=$(wait_status "$ns" "$id" healthy 60) || die "kill $i: not healthy again within 60 s"
		printf '%s %s %s %s %s\n' "$t_kill" "$t_down" "$t_start" "$t_ready" "$t_up" >>"$times"
		log "detect: kill $i: unhealthy after $(awk -v a="$t_kill" -v b="$t_down" 'BEGIN { printf "%.2f", b - a }') s, healthy $(awk -v a="$t_ready" -v b="$t_up" 'BEGIN { printf "%.2f", b - a }') s after READY"
	done
	api "$ns" "/api/v1/changes?limit=1000" >"$OUT/detect.changes.json" || true
	stop_daemon
	ns_delete "$ns"

	echo
	echo "== detection: one $PEER server checked every 2 s (default thresholds), killed $KILLS times =="
	echo "setup: netns $ns (lo only); the server killed with SIGKILL, then started again with scripts/peers/run.sh"
	sed 's/^/         /' "$cfg"
	python3 - "$times" "$OUT/detect.changes.json" <<'PY'
import sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
down = [r[1] - r[0] for r in rows]
up_ready = [r[4] - r[3] for r in rows]
up_start = [r[4] - r[2] for r in rows]
for name, xs in [("kill -> unhealthy", down), ("READY -> healthy", up_ready), ("restart -> healthy (incl. python start)", up_start)]:
    print(f"{name:42s} p50 {q(xs, .5):6.2f} s   p95 {q(xs, .95):6.2f} s   (n={len(xs)}, min {min(xs):.2f}, max {max(xs):.2f})")
import json
try:
    ch = json.load(open(sys.argv[2]))["changes"]
    flaps = sum(1 for c in ch if "flapping" in (c["detail"].get("reason") or ""))
    print(f"health_changed changes: {sum(1 for c in ch if c['kind'] == 'health_changed')}; ones ending a flapping episode: {flaps}")
except (OSError, KeyError, ValueError):
    pass
print("expected by the rules: unhealthy on the 3rd failed check (2 intervals after the first failure, 4-6 s after the kill);")
print("healthy on the 2nd passing check after the restart (2-4 s after READY)")
PY
}

mkdir -p "$OUT"
log "binary: $BIN; raw outputs: $OUT"
case $PART in
load) bench_load ;;
detect) bench_detect ;;
all)
	bench_load
	bench_detect
	;;
esac
