#!/usr/bin/env bash
# bench-sinks.sh - the sinks' figures of issue 9, with the real MCP Mesh registry
# (npm @mcpmesh/cli-linux-x64 3.7.1, scripts/peers/run.sh mesh-registry).
#
# Usage: scripts/bench-sinks.sh                          (needs root)
#
# One fresh network namespace (lo only) holds everything:
#   - one real MCP server (peer py1-streamable, FastMCP 1.x) on 0.0.0.0:8000, so it answers
#     on every loopback address: 987 of them (127.1.0.1-127.1.3.219) are the steady fleet;
#   - the churn set, 20 servers on 127.2.0.1-20 that change during the outage:
#       7 "go"     127.2.0.1-7:8001, one py1-streamable on 0.0.0.0:8001, killed;
#       6 "health" 127.2.0.15-20:8002, one py1-streamable on 0.0.0.0:8002, killed while
#                  their job does not run, so the monitor finds them unhealthy and they
#                  stay active (py1-control cannot serve many addresses: its Host check
#                  answers 421 to any but its own);
#       7 "appear" 127.2.0.8-14:8003, nothing there at first, then one py1-streamable on
#                  0.0.0.0:8003;
#     so 987 + 7 + 6 = 1,000 servers are up at the start;
#   - the MCP Mesh registry on 127.0.0.1:18000 (its data in a temp dir, removed when it
#     stops, so a restart is empty);
#   - the release daemon with one mcp-mesh sink (heartbeat 5 s, the default; retry.max 5s,
#     see below), the monitor on (interval 20s, unhealthy_threshold 2, timeout 5s).
#
# Figures:
#   initial sync  daemon start -> all 1,000 servers listed healthy with our tag in the
#                 registry (GET /agents?status=healthy polled every 0.5 s).
#   steady state  for BENCH_MINUTES (default 3) after the sync: HEAD /heartbeat requests
#                 per second (mcp_scout_sink_requests_total{request="heartbeat"}, and
#                 register/deregister, over the window) and the daemon's CPU (utime+stime
#                 over wall, % of one core).
#   failing sink  a webhook sink whose receiver answers 500 to everything for the whole run:
#                 its queue depth after the sync and at the end, its state, and the daemon's
#                 RSS after the sync, highest in the steady window and at the end (the
#                 outbox is on disk, so memory stays flat while the queue grows).
#   outage        SIGTERM the registry; at once kill the "go" and "health" servers, start the "appear" one, and trigger the churn jobs until the
#                 daemon's inventory shows all 20 changes (gone, unhealthy, appeared); keep
#                 the registry down for at least 60 s; start it again EMPTY, then time until
#                 the registry's healthy agents of ours equal exactly the servers the sink
#                 must list (active, not unhealthy, with tools). Target < 15 s.
#
# retry.max is 5 s here: a registry that comes back is noticed within it (the runner caps
# the jittered back-off at retry.max; the default is 10 s).
#
# Targets are reported PASS/FAIL; a missed target does not make the script fail. It exits
# non-zero only when the benchmark itself could not run.
#
# Environment:
#   MCP_SCOUT_BIN   daemon binary (default target/release/mcp-scout; built if absent)
#   BENCH_MINUTES   steady-state minutes (default 3)
#   BENCH_SAMPLE_S  seconds between CPU samples (default 2)
#   BENCH_OUTAGE_S  least outage length in seconds (default 60)
#   BENCH_FAILING   1 (default): with the failing webhook sink; 0: without it, the control
#                   run that tells the failing sink's memory from the rest of the daemon's
#   BENCH_OUT       raw outputs (default target/bench/sinks)
#   BENCH_KEEP=1    keep the temporary stores
#
# NETWORK SAFETY: every packet stays inside the network namespace made here (lo only): the
# peers, the registry, the daemon and every poll run in it. Every wait is bounded.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${MCP_SCOUT_BIN:-$ROOT/target/release/mcp-scout}"
OUT="${BENCH_OUT:-$ROOT/target/bench/sinks}"
MINUTES="${BENCH_MINUTES:-3}"
SAMPLE_S="${BENCH_SAMPLE_S:-2}"
OUTAGE_S="${BENCH_OUTAGE_S:-60}"
FAILING="${BENCH_FAILING:-1}"
FLEET=127.1.0.1-127.1.3.219 # 987 addresses
COUNT=1000
API_PORT=19466
REG_PORT=18000
HOOK_PORT=18001
TOKEN=bench-sinks-token-0123456789
BENCH_NAME=bench-sinks
export PATH="$PATH:${HOME:-/root}/.cargo/bin"
# shellcheck source=scripts/bench/daemon-lib.sh
source "$ROOT/scripts/bench/daemon-lib.sh"

case ${1:-} in
"") ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
*) die "no arguments expected (see --help)" ;;
esac
check_common
[[ $OUTAGE_S =~ ^[1-9][0-9]{0,3}$ ]] || die "BENCH_OUTAGE_S must be 1..9999"
[[ $FAILING == 0 || $FAILING == 1 ]] || die "BENCH_FAILING must be 0 or 1"


# start_peer NS NAME HOST PORT TAG: a peer in NS; prints its pid; waits for READY (120 s)
start_peer() {
	local ns=$1 name=$2 host=$3 port=$4 tag=$5 i pid
	shift 5 # the rest: the peer's own arguments
	MCP_SCOUT_PEERS_ANY_ADDR=1 ip netns exec "$ns" scripts/peers/run.sh "$name" \
		--host "$host" --port "$port" "$@" >"$OUT/$tag.out" 2>>"$OUT/$tag.err" &
	pid=$!
	STARTED_PIDS+=("$pid")
	for ((i = 0; i < 1200; i++)); do
		grep -q READY "$OUT/$tag.out" 2>/dev/null && {
			PEER_PID=$pid
			return 0
		}
		kill -0 "$pid" 2>/dev/null || die "peer $tag died: $(tail -3 "$OUT/$tag.err")"
		sleep 0.1
	done
	die "peer $tag not ready within 120 s"
}

# trigger NS JOB: start a run of JOB (a 409 while one runs is fine)
trigger() {
	in_ns "$1" curl -s -o /dev/null --max-time 10 -X POST -H "Authorization: Bearer $TOKEN" \
		"http://127.0.0.1:$API_PORT/api/v1/jobs/$2/run" || true
}

# metric NS REQUEST: mcp_scout_sink_requests_total{sink="mesh",request=REQUEST}
metric() {
	api "$1" /metrics | awk -v r="$2" '
		index($0, "mcp_scout_sink_requests_total{sink=\"mesh\",request=\"" r "\"}") == 1 { v = $2 }
		END { print v + 0 }'
}

# The poller (python, in the namespace): modes
#   count N LIMIT_S      until N healthy agents of ours; prints the seconds it took
#   equal LIMIT_S        until the healthy agents of ours equal the daemon's wanted set
#   wanted               prints the wanted set's size and its split
POLLER='
import json, sys, time, urllib.request
reg, api, mode = sys.argv[1], sys.argv[2], sys.argv[3]
def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)
def ours():
    try:
        agents = get(reg + "/agents?status=healthy").get("agents") or []
    except Exception:
        return None
    return {a["id"] for a in agents
            if any("mcp-scout" in (c.get("tags") or []) for c in (a.get("capabilities") or []))}
def wanted():
    out = set()
    for s in get(api + "/api/v1/servers")["servers"]:
        h = (s.get("health") or {}).get("status", "unknown")
        if s.get("status") == "active" and h not in ("unhealthy", "gone") and s.get("tools") \
                and s.get("kind") in ("mcp", "mcp-auth-required"):
            out.add(s["id"])
    return out
t0 = time.time()
if mode == "wanted":
    w = wanted()
    print(len(w))
    sys.exit(0)
limit = float(sys.argv[-1])
target = int(sys.argv[4]) if mode == "count" else None
want = wanted() if mode == "equal" else None
last = None
while time.time() - t0 < limit:
    o = ours()
    if o is not None:
        last = o
        if (mode == "count" and len(o) >= target) or (mode == "equal" and o == want):
            print(f"{time.time() - t0:.2f}")
            sys.exit(0)
    time.sleep(0.5)
if last is None:
    print("registry never answered", file=sys.stderr)
elif mode == "count":
    print(f"{len(last)} of {target} listed", file=sys.stderr)
else:
    print(f"missing {len(want - last)}, extra {len(last - want)}", file=sys.stderr)
sys.exit(1)
'
poll() { # poll NS ARGS...: run the poller in NS
	local ns=$1
	shift
	in_ns "$ns" python3 -c "$POLLER" "http://127.0.0.1:$REG_PORT" "http://127.0.0.1:$API_PORT" "$@"
}

# inventory_changed NS: whether the 20 churn servers have all changed (7 gone, 6 unhealthy,
# 7 active with tools on 127.2.0.8-14)
inventory_changed() {
	api "$1" "/api/v1/servers?status=all" | python3 -c '
import json, sys
s = {x["ip"]: x for x in json.load(sys.stdin)["servers"] if x["ip"].startswith("127.2.0.")}
n = lambda a, b: range(a, b + 1)
gone = all(s.get(f"127.2.0.{i}", {}).get("status") == "gone" for i in n(1, 7))
sick = all((s.get(f"127.2.0.{i}", {}).get("health") or {}).get("status") == "unhealthy" for i in n(15, 20))
new = all(s.get(f"127.2.0.{i}", {}).get("status") == "active" for i in n(8, 14))
at = lambda i: s.get("127.2.0.%d" % i, {})
g = sum(at(i).get("status") == "gone" for i in n(1, 7))
u = sum((at(i).get("health") or {}).get("status") == "unhealthy" for i in n(15, 20))
a = sum(at(i).get("status") == "active" for i in n(8, 14))
print("gone %d/7, unhealthy %d/6, appeared %d/7" % (g, u, a))
sys.exit(0 if gone and sick and new else 1)'
}

# hook_queue NS: the failing webhook sink's queue depth
hook_queue() {
	api "$1" /api/v1/sinks | python3 -c 'import json,sys; print([x for x in json.load(sys.stdin)["sinks"] if x["name"]=="failing"][0]["queue_depth"])' 2>/dev/null || echo "?"
}

main() {
	local ns="msbs-$$" d cfg i t_start t_sync s0 s1 k0 k1 clk window_s hb0 hb1 rg0 rg1 t0 t1
	local reg_pid go_pid health_pid appear_pid mnote m0 t_down t_changed t_up eq wanted
	ensure_tools
	mkdir -p "$OUT"
	tmp_dir sinks
	d=$TMP_DIR
	ns_fresh "$ns"
	clk=$(getconf CLK_TCK)
	window_s=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
	log "starting the peers and the registry in $ns"
	start_peer "$ns" py1-streamable 0.0.0.0 8000 fleet
	start_peer "$ns" py1-streamable 0.0.0.0 8001 go
	go_pid=$PEER_PID
	start_peer "$ns" py1-streamable 0.0.0.0 8002 health
	health_pid=$PEER_PID
	start_peer "$ns" mesh-registry 127.0.0.1 "$REG_PORT" registry
	reg_pid=$PEER_PID
	# A second sink whose registry answers 500 to every delivery for the whole run: its
	# changes must wait on disk (memory flat) while the Mesh sink stays current.
	local failing_sink=""
	if [[ $FAILING == 1 ]]; then
		start_peer "$ns" webhook-receiver 127.0.0.1 "$HOOK_PORT" hook --secret bench-secret
		in_ns "$ns" curl -sf --max-time 5 -X POST "http://127.0.0.1:$HOOK_PORT/control/fail" >/dev/null ||
			die "cannot put the webhook receiver in fail mode"
		failing_sink="  - name: failing
    type: webhook
    url: http://127.0.0.1:$HOOK_PORT/events
    secret: bench-secret
    only: { kind: [mcp, mcp-auth-required, mcp-likely] }"
	fi
	cfg="$d/config.yaml"
	cat >"$cfg" <<EOF
# bench-sinks.sh: 1,000 MCP endpoints fed into the real MCP Mesh registry
api:
  listen: 127.0.0.1:$API_PORT
  token: $TOKEN
store:
  path: $d/inventory.db
gone_after: 2
health:
  interval: 20s
  timeout: 5s
  unhealthy_threshold: 2
sinks:
  - name: mesh
    type: mcp-mesh
    url: http://127.0.0.1:$REG_PORT
    retry: {initial: 500ms, max: 5s}
$failing_sink
jobs:
  - name: fleet
    targets: [$FLEET]
    ports: "8000"
    interval: 24h
    jitter: 0%
  - name: churn-go
    targets: [127.2.0.1-127.2.0.7]
    ports: "8001"
    interval: 24h
    jitter: 0%
  - name: churn-health
    targets: [127.2.0.15-127.2.0.20]
    ports: "8002"
    interval: 24h
    jitter: 0%
  - name: churn-appear
    targets: [127.2.0.8-127.2.0.14]
    ports: "8003"
    interval: 24h
    jitter: 0%
EOF
	t_start=$EPOCHREALTIME
	start_daemon "$ns" "$cfg" sinks
	wait_ready "$ns" "$DAEMON_PID"
	log "initial sync: waiting until $COUNT servers are listed healthy (at most 10 min)"
	t_sync=$(poll "$ns" count "$COUNT" 600) || die "initial sync incomplete: see $OUT"
	t_sync=$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	log "initial sync: $t_sync s after the daemon started"
	local rss_sync q_sync t_fail0
	read -r _ rss_sync < <(proc_sample "$DAEMON_PID")
	q_sync=none
	[[ $FAILING == 1 ]] && q_sync=$(hook_queue "$ns")
	t_fail0=$EPOCHREALTIME

	log "steady state: $MINUTES min"
	m0=$(machine_stat)
	hb0=$(metric "$ns" heartbeat)
	rg0=$(metric "$ns" register)
	read -r k0 _ < <(proc_sample "$DAEMON_PID")
	t0=$EPOCHREALTIME
	local samples="$OUT/steady.samples"
	: >"$samples"
	for ((i = 0; i < window_s / SAMPLE_S; i++)); do
		s0=$(proc_sample "$DAEMON_PID") || die "the daemon died; see $OUT/sinks.daemon.log"
		printf '%s %s\n' "$EPOCHREALTIME" "$s0" >>"$samples"
		sleep "$SAMPLE_S"
	done
	read -r k1 _ < <(proc_sample "$DAEMON_PID")
	t1=$EPOCHREALTIME
	hb1=$(metric "$ns" heartbeat)
	rg1=$(metric "$ns" register)
	mnote=$(machine_note "$m0")
	local healthy_after
	healthy_after=$(poll "$ns" count "$COUNT" 5 >/dev/null 2>&1 && echo yes || echo no)
	log "steady: heartbeats $hb0 -> $hb1, registers $rg0 -> $rg1, cpu ticks $k0 -> $k1 over $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s (CLK_TCK $clk); all healthy: $healthy_after"
	log "outage: registry down for at least $OUTAGE_S s while 20 servers change"
	t_down=$EPOCHREALTIME
	kill_pids "$reg_pid"
	forget_pid "$reg_pid"
	kill_pids "$go_pid"
	forget_pid "$go_pid"
	kill_pids "$health_pid"
	forget_pid "$health_pid"
	start_peer "$ns" py1-streamable 0.0.0.0 8003 appear
	appear_pid=$PEER_PID
	t_changed=""
	local seen=""
	for ((i = 0; i < 180; i++)); do
		trigger "$ns" churn-go
		trigger "$ns" churn-appear
		if seen=$(inventory_changed "$ns"); then
			t_changed=$EPOCHREALTIME
			break
		fi
		sleep 1
	done
	log "outage: changes in the inventory: $seen"
	[[ -n $t_changed ]] || {
		log "outage: not all 20 changes reached the inventory within 3 min; going on"
		t_changed=$EPOCHREALTIME
	}
	local left
	left=$(awk -v a="$t_down" -v n="$EPOCHREALTIME" -v o="$OUTAGE_S" 'BEGIN { r = a + o - n; printf "%.2f", (r > 0 ? r : 0) }')
	sleep "$left"
	wanted=$(poll "$ns" wanted)
	start_peer "$ns" mesh-registry 127.0.0.1 "$REG_PORT" registry2
	reg_pid=$PEER_PID
	t_up=$EPOCHREALTIME
	local outage_len
	outage_len=$(awk -v a="$t_down" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }')
	eq=$(poll "$ns" equal 120) || eq="not within 120 s"
	local from_up=$eq pass=FAIL
	[[ $eq =~ ^[0-9]+([.][0-9]+)?$ ]] && pass=$(verdict "$eq < 15")
	api "$ns" /metrics >"$OUT/metrics.txt" || true
	api "$ns" /api/v1/sinks >"$OUT/sinks.json" || true
	local rss_end q_end hook_state fail_s rss_max
	read -r _ rss_end < <(proc_sample "$DAEMON_PID")
	q_end=none
	[[ $FAILING == 1 ]] && q_end=$(hook_queue "$ns")
	hook_state="no failing sink (BENCH_FAILING=0, the control run)"
	[[ $FAILING == 1 ]] && hook_state=$(python3 -c 'import json,sys; s=[x for x in json.load(open(sys.argv[1]))["sinks"] if x["name"]=="failing"][0]; print(s["state"], s["consecutive_failures"], "failures in a row")' "$OUT/sinks.json" 2>/dev/null || echo "?")
	fail_s=$(awk -v a="$t_fail0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
	rss_max=$(awk '{ if ($3 > m) m = $3 } END { print m + 0 }' "$OUT/steady.samples")
	# RSS (MiB) at the first sample of each minute of the steady window, then its last one.
	local rss_trace
	rss_trace=$(awk 'NR == 1 { t0 = $1 } { m = int(($1 - t0) / 60); if (!(m in seen)) { seen[m] = 1; printf "%d ", $3 / 1024 } last = $3 } END { printf "%d", last / 1024 }' "$OUT/steady.samples")
	stop_daemon
	kill_pids "$reg_pid" "$appear_pid"
	ns_delete "$ns"

	local cpu hb_rate rg_rate span
	span=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	cpu=$(awk -v k="$((k1 - k0))" -v c="$clk" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", 100 * k / c / (b - a) }')
	hb_rate=$(awk -v x="$((hb1 - hb0))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", x / (b - a) }')
	rg_rate=$(awk -v x="$((rg1 - rg0))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", x / (b - a) }')
	echo
	echo "== sinks: $COUNT MCP endpoints fed into the real MCP Mesh registry 3.7.1 =="
	echo "setup: netns $ns (lo only); one py1-streamable on 0.0.0.0:8000 answering on $FLEET (987),"
	echo "       the 20-server churn set on 127.2.0.1-20 (ports 8001-8003); the registry on 127.0.0.1:$REG_PORT;"
	echo "       daemon: mcp-scout daemon -c CONFIG --log-format json, in the same netns; CONFIG:"
	sed 's/^/         /' "$cfg"
	echo "$mnote"
	echo
	echo "initial sync: $t_sync s from the daemon's start until all $COUNT servers were listed healthy (discovery included)"
	echo "steady state over $span s: $hb_rate HEAD /heartbeat per second (expected ~$((COUNT / 5)) for $COUNT servers every 5 s),"
	echo "       $rg_rate POST /heartbeat per second; all $COUNT still healthy at the end: $healthy_after"
	echo "steady state daemon CPU: $cpu % of one core (utime+stime over wall, monitor on: 1,000 checks every 20 s)"
	echo "outage: changes seen: $seen"
	echo "outage: registry down $outage_len s (20 changes in the inventory $(awk -v a="$t_down" -v b="$t_changed" 'BEGIN { printf "%.1f", b - a }') s into it),"
	echo "        restarted EMPTY; wanted set: $wanted servers"
	echo "registry equals the inventory $from_up s after the restart (READY)   target < 15 s  $pass"
	echo "failing sink (webhook answering 500 all along, $fail_s s since the sync): $hook_state;"
	echo "       its queue $q_sync -> $q_end changes (on disk); daemon RSS $((rss_sync / 1024)) MiB after the sync,"
	echo "       $((rss_max / 1024)) MiB highest in the steady window, $((rss_end / 1024)) MiB at the end"
	echo "       steady-window RSS by minute (MiB): $rss_trace"
}

main
