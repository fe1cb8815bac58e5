#!/usr/bin/env bash
# bench-daemon.sh - the daemon's figures of issue 7: rescan cost, API latency, store throughput.
#
# Usage: scripts/bench-daemon.sh [rescan|api|store|all]      (default: all; needs root)
#
#   rescan  one real MCP server (peer py1-streamable, FastMCP 1.x) on 0.0.0.0:8000 in a
#           fresh network namespace (lo only), so it answers on 1,000 loopback addresses
#           127.1.0.1-127.1.3.232. The release daemon runs in the same namespace with one
#           job over those addresses on port 8000, interval 60s, jitter 0%, for
#           BENCH_MINUTES (default 10). Its CPU time (utime+stime of /proc/PID/stat) and RSS
#           are sampled every BENCH_SAMPLE_S seconds. Prints average CPU % of one core, peak
#           RSS, RSS after the first completed run vs at the end, the runs and their
#           durations (GET /api/v1/runs) and the servers in the inventory (must be 1,000).
#           Targets: avg CPU < 5 % of one core, peak RSS < 60 MB, end RSS within 10 % of RSS
#           after the first run.
#   api     fills a fresh store with BENCH_SERVERS (default 10,000) MCP records through the
#           store's own upsert path (examples/fill_store.rs: Store::begin_run + finish_run,
#           one run), starts the release daemon on it (in a namespace; its only job scans
#           127.0.0.1 port 9 once an hour, which finds nothing and leaves the filled servers
#           alone), then loads the API with wrk at BENCH_CONNS (default 50) connections for
#           BENCH_API_SECONDS (default 20) each: GET /api/v1/servers?capability=<rare tool>
#           (1 % of the servers), GET /api/v1/servers/{id} (1,000 real ids, at random),
#           and, for information, the unfiltered GET /api/v1/servers. The targets are judged
#           on those closed-loop rows (each connection sends its next request as soon as the
#           last is answered). For information also: 1 connection (service time) and paced
#           rows (each connection waits a random 0..2x BENCH_PACE_CAP_MS / BENCH_PACE_ID_MS,
#           default 1000 / 100, before each request: about 50 and 500 requests/s).
#           Targets: capability p99 < 25 ms, by-id p99 < 5 ms.
#   store   the fill of the api part on its own: the time of one run upserting 10,000 new
#           records, and of a second, unchanged rescan of the same records.
#   all     rescan, then api (whose fill gives the store figures).
#
# Targets are reported PASS/FAIL; a missed target does not make the script fail. It exits
# non-zero only when the benchmark itself could not run.
#
# Environment:
#   MCP_SCOUT_BIN     daemon binary (default target/release/mcp-scout; built if absent)
#   BENCH_MINUTES     rescan: length of the window (default 10; a smoke run: 2)
#   BENCH_SAMPLE_S    rescan: seconds between CPU/RSS samples (default 2)
#   BENCH_SERVERS     api/store: records in the filled store (default 10000)
#   BENCH_CONNS       api: wrk connections (default 50); BENCH_WRK_THREADS (default 2)
#   BENCH_API_SECONDS api: seconds per measured row (default 20)
#   BENCH_PACE_CAP_MS, BENCH_PACE_ID_MS  api: per-connection pause of the paced rows
#   BENCH_OUT         raw outputs (default target/bench/daemon)
#   BENCH_KEEP=1      keep the temporary stores
#
# The machine's cores are shared by the daemon, the peer (rescan) and wrk (api): wrk's
# latencies include time the daemon waited for a core while wrk itself ran.
#
# NETWORK SAFETY: every packet stays inside network namespaces made here (lo only): the
# peer, the daemon, curl and wrk all run in them. Every wait is bounded.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PART="${1:-all}"
BIN="${MCP_SCOUT_BIN:-$ROOT/target/release/mcp-scout}"
FILL="$ROOT/target/release/examples/fill_store"
OUT="${BENCH_OUT:-$ROOT/target/bench/daemon}"
MINUTES="${BENCH_MINUTES:-10}"
SAMPLE_S="${BENCH_SAMPLE_S:-2}"
SERVERS="${BENCH_SERVERS:-10000}"
CONNS="${BENCH_CONNS:-50}"
WRK_THREADS="${BENCH_WRK_THREADS:-2}"
API_SECONDS="${BENCH_API_SECONDS:-20}"
PEER=py1-streamable
RESCAN_RANGE=127.1.0.1-127.1.3.232 # 1,000 addresses
RESCAN_COUNT=1000
API_PORT=19464
RARE_TOOL=rare_audit_log # what examples/fill_store.rs puts on 1 % of the servers
export PATH="$PATH:${HOME:-/root}/.cargo/bin"

BENCH_NAME=bench-daemon
# shellcheck source=scripts/bench/daemon-lib.sh
source "$ROOT/scripts/bench/daemon-lib.sh"

case $PART in
rescan | api | store | all) ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
*) die "unknown part '$PART' (rescan|api|store|all)" ;;
esac
check_common
[[ $SERVERS =~ ^[1-9][0-9]{0,6}$ ]] || die "BENCH_SERVERS must be 1..9999999"
[[ $CONNS =~ ^[1-9][0-9]{0,3}$ && $CONNS -le 200 ]] || die "BENCH_CONNS must be 1..200"
[[ $WRK_THREADS =~ ^[1-9]$ && $WRK_THREADS -le $CONNS ]] || die "BENCH_WRK_THREADS must be 1..9 and <= BENCH_CONNS"
[[ $API_SECONDS =~ ^[1-9][0-9]{0,2}$ ]] || die "BENCH_API_SECONDS must be 1..999"

# ------------------------------------------------------------------ tools

ensure_tools() { # ensure_tools PART
	local need=()
	command -v curl >/dev/null || need+=(curl)
	command -v python3 >/dev/null || need+=(python3)
	command -v timeout >/dev/null || need+=(coreutils)
	command -v ip >/dev/null || need+=(iproute2)
	[[ $1 != api ]] || command -v wrk >/dev/null || need+=(wrk)
	((${#need[@]} == 0)) || apt_install "${need[@]}"
	if [[ $1 == api ]] && ! command -v wrk >/dev/null; then
		die "wrk is not installed and apt-get could not install it"
	fi
	if [[ ! -x $BIN ]]; then
		log "building the release binary (cargo build --release --locked)"
		cargo build --release --locked >&2
	fi
	if [[ $1 == api || $1 == store ]]; then
		# Built once; rebuilt only when the example is newer than it.
		if [[ ! -x $FILL || $ROOT/examples/fill_store.rs -nt $FILL ]]; then
			log "building examples/fill_store.rs (cargo build --release --locked --example fill_store)"
			cargo build --release --locked --example fill_store >&2
		fi
	fi
	if [[ $1 == rescan ]]; then
		scripts/peers/setup.sh >&2
	fi
}

# ------------------------------------------------------------------ rescan

bench_rescan() {
	local ns="msbd-$$-r" d cfg peer_pid i a t0 t_end now s ps ticks rss first_done="" runs_json
	local window_s clk
	ensure_tools rescan
	tmp_dir rescan
	d=$TMP_DIR
	ns_fresh "$ns"
	clk=$(getconf CLK_TCK)
	window_s=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')

	# the peer: one FastMCP process on 0.0.0.0:8000 inside the namespace
	MCP_SCOUT_PEERS_ANY_ADDR=1 ip netns exec "$ns" scripts/peers/run.sh "$PEER" \
		--host 0.0.0.0 --port 8000 >"$OUT/rescan.peer.out" 2>"$OUT/rescan.peer.err" &
	peer_pid=$!
	STARTED_PIDS+=("$peer_pid")
	for ((i = 0; i < 900; i++)); do
		grep -q READY "$OUT/rescan.peer.out" 2>/dev/null && break
		kill -0 "$peer_pid" 2>/dev/null || die "peer died: $(tail -3 "$OUT/rescan.peer.err")"
		sleep 0.1
	done
	grep -q READY "$OUT/rescan.peer.out" || die "peer not ready within 90 s (a loaded machine starts python slowly)"
	# it answers on the first and the last address of the range
	for a in 127.1.0.1 127.1.3.232; do
		in_ns "$ns" timeout 5 bash -c "exec 3<>/dev/tcp/$a/8000" || die "peer does not answer on $a:8000"
	done

	cfg="$d/config.yaml"
	cat >"$cfg" <<EOF
# bench-daemon.sh rescan: 1,000 addresses of one FastMCP server, rescanned every 60 s
api:
  listen: 127.0.0.1:$API_PORT
store:
  path: $d/inventory.db
  retention: 30d
gone_after: 3
# the rescan cost alone: the health monitor's own cost is scripts/bench-health.sh's figure
health: { enabled: false }
jobs:
  - name: rescan
    targets: [$RESCAN_RANGE]
    ports: "8000"
    interval: 60s
    jitter: 0%
EOF
	log "rescan: daemon in $ns for $MINUTES min (samples every ${SAMPLE_S}s)"
	local m0
	m0=$(machine_stat)
	t0=$EPOCHREALTIME
	start_daemon "$ns" "$cfg" rescan
	wait_ready "$ns" "$DAEMON_PID"
	t_end=$(awk -v a="$t0" -v w="$window_s" 'BEGIN { printf "%.3f", a + w }')

	# sample until the window ends (bounded by its length: one sample per SAMPLE_S)
	local samples="$OUT/rescan.samples" peer_samples="$OUT/rescan.peer.samples" nmax
	: >"$samples"
	: >"$peer_samples"
	nmax=$((window_s / SAMPLE_S + 2))
	for ((i = 0; i < nmax; i++)); do
		now=$EPOCHREALTIME
		s=$(proc_sample "$DAEMON_PID") || die "the daemon (pid $DAEMON_PID) died; see $OUT/rescan.daemon.log"
		printf '%s %s\n' "$now" "$s" >>"$samples"
		if ps=$(proc_sample "$peer_pid"); then printf '%s %s\n' "$now" "$ps" >>"$peer_samples"; fi
		if [[ -z $first_done ]]; then
			# poll the API only until the first run has completed
			if [[ $(api "$ns" "/api/v1/runs?limit=5" 2>/dev/null || true) == *'"status":"completed"'* ]]; then
				first_done=$now
				read -r ticks rss < <(proc_sample "$DAEMON_PID")
				printf '%s\n' "$now $ticks $rss" >"$OUT/rescan.first"
				log "rescan: first run completed after $(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.1f", b - a }') s, RSS $((rss / 1024)) MiB"
			fi
		fi
		awk -v n="$EPOCHREALTIME" -v e="$t_end" 'BEGIN { exit !(n >= e) }' && break
		# sleep to the next sample, never past the window's end
		sleep "$(awk -v n="$EPOCHREALTIME" -v e="$t_end" -v p="$SAMPLE_S" \
			'BEGIN { r = e - n; if (r > p) r = p; if (r < 0.05) r = 0.05; printf "%.3f", r }')"
	done
	now=$EPOCHREALTIME
	s=$(proc_sample "$DAEMON_PID") || die "the daemon died at the end of the window"
	printf '%s %s\n' "$now" "$s" >>"$samples"
	local hwm threads mnote
	mnote=$(machine_note "$m0")
	hwm=$(hwm_kb "$DAEMON_PID")
	threads=$(awk '/^Threads:/ { print $2 }' "/proc/$DAEMON_PID/status")
	runs_json="$OUT/rescan.runs.json"
	api "$ns" "/api/v1/runs?limit=1000" >"$runs_json" || die "GET /api/v1/runs failed"
	api "$ns" "/api/v1/servers" >"$OUT/rescan.servers.json" || die "GET /api/v1/servers failed"
	api "$ns" "/metrics" >"$OUT/rescan.metrics.txt" || true
	stop_daemon
	kill_pids "$peer_pid"
	forget_pid "$peer_pid"
	ns_delete "$ns"

	echo
	echo "== rescan cost: 1,000 MCP endpoints of one $PEER server, rescanned every 60 s for $MINUTES min =="
	echo "setup: netns $ns (lo only); peer: MCP_SCOUT_PEERS_ANY_ADDR=1 scripts/peers/run.sh $PEER --host 0.0.0.0 --port 8000"
	echo "       daemon: mcp-scout daemon -c CONFIG --log-format json, in the same netns; CONFIG:"
	sed 's/^/         /' "$cfg"
	echo "       samples: utime+stime (/proc/PID/stat) and VmRSS every ${SAMPLE_S}s; $(nproc) cores, shared with the peer"
	echo "$mnote"
	python3 - "$samples" "$peer_samples" "$OUT/rescan.first" "$runs_json" "$OUT/rescan.servers.json" \
		"$t0" "$clk" "$hwm" "$threads" "$RESCAN_COUNT" <<'PY'
import json, sys
from datetime import datetime

samples_f, peer_f, first_f, runs_f, servers_f, t0, clk, hwm, threads, want = sys.argv[1:]
t0, clk, hwm, want = float(t0), int(clk), int(hwm), int(want)
rows = [tuple(map(float, l.split())) for l in open(samples_f) if l.strip()]
prow = [tuple(map(float, l.split())) for l in open(peer_f) if l.strip()]
t_end, ticks_end, rss_end = rows[-1]
wall = t_end - t0
cpu = ticks_end / clk
avg = 100 * cpu / wall
peak_sampled = max(r[2] for r in rows) / 1024
peak = max(hwm / 1024, peak_sampled)
try:
    tf, ticks_f, rss_f = map(float, open(first_f).read().split())
except (OSError, ValueError):
    tf = ticks_f = rss_f = None
runs = json.load(open(runs_f))["runs"]
servers = json.load(open(servers_f))


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


done = sorted((r for r in runs if r["status"] == "completed"), key=lambda r: r["id"])
other = [r for r in runs if r["status"] != "completed"]
durs = [ts(r["ended_at"]) - ts(r["started_at"]) for r in done]

# CPU inside runs vs between them: split each sample interval by the runs' spans
spans = [(ts(r["started_at"]), ts(r["ended_at"]) if r.get("ended_at") else t_end) for r in runs]
in_run = idle = 0.0
in_wall = 0.0
for (a, ta, _), (b, tb, _) in zip(rows, rows[1:]):
    overlap = sum(max(0.0, min(b, e) - max(a, s)) for s, e in spans)
    frac = min(1.0, overlap / (b - a)) if b > a else 0
    in_run += (tb - ta) / clk * frac
    idle += (tb - ta) / clk * (1 - frac)
    in_wall += (b - a) * frac
idle_wall = (t_end - rows[0][0]) - in_wall

print(f"window: {wall:.1f} s wall from daemon start; daemon CPU {cpu:.2f} s (user+system); threads at end: {threads}")
print(f"runs completed: {len(done)}" + (f"; other runs: {', '.join(r['status'] for r in other)}" if other else ""))
if durs:
    print("run durations (s): " + " ".join(f"{d:.2f}" for d in durs))
    print(f"  min {min(durs):.2f}  median {sorted(durs)[len(durs)//2]:.2f}  max {max(durs):.2f}")
    print("per run (id: mcp appeared updated gone probes open): " + "; ".join(
        f"{r['id']}: {r['mcp']} {r['appeared']} {r['updated']} {r['gone']} {r['probes']} {r['open']}" for r in done))
print(f"servers in the inventory (active): {servers['count']} (want {want})")
if in_wall > 0:
    print(f"CPU inside runs: {in_run:.2f} s over {in_wall:.1f} s of runs ({100*in_run/in_wall:.1f} % of a core while a run is on);"
          f" between runs: {idle:.2f} s over {idle_wall:.1f} s ({100*idle/max(idle_wall,1e-9):.2f} %)")
if len(done) > 0:
    print(f"CPU per run (inside runs / runs): {in_run/len(done):.2f} s")
if prow:
    pw = prow[-1][0] - prow[0][0]
    pc = (prow[-1][1] - prow[0][1]) / clk
    print(f"peer (python) for comparison: {pc:.1f} s CPU over {pw:.0f} s ({100*pc/max(pw,1e-9):.1f} % of a core), RSS at end {prow[-1][2]/1024:.1f} MiB")
print()
print(f"avg daemon CPU: {avg:.2f} % of one core                  target < 5 %   {'PASS' if avg < 5 else 'FAIL'}")
print(f"peak RSS: {peak:.1f} MiB (VmHWM {hwm/1024:.1f}, peak sampled {peak_sampled:.1f}) target < 60 MB {'PASS' if peak * 1048576 < 60e6 else 'FAIL'}")
if rss_f:
    diff = 100 * (rss_end - rss_f) / rss_f
    print(f"RSS after first run {rss_f/1024:.1f} MiB (at {tf - t0:.1f} s), at end {rss_end/1024:.1f} MiB: {diff:+.1f} %   target within 10 %  {'PASS' if abs(diff) <= 10 else 'FAIL'}")
else:
    print("RSS after first run: n/a (no run completed)                      FAIL")
ok = servers["count"] == want
print(f"servers in inventory: {servers['count']}                          want {want}       {'PASS' if ok else 'FAIL'}")
PY
	echo "raw outputs: $OUT/rescan.*"
}

# ------------------------------------------------------------------ fill (store throughput)

FILL_OUT=""
fill_store() { # fill_store DB: N records, 2 runs; FILL_OUT holds the output
	local db=$1
	FILL_OUT="$OUT/fill.out"
	log "store: $FILL $db --count $SERVERS --runs 2"
	timeout -k 5 900 "$FILL" "$db" --count "$SERVERS" --runs 2 >"$FILL_OUT" 2>"$OUT/fill.err" ||
		die "fill_store failed: $(tail -3 "$OUT/fill.err")"
}

report_store() {
	local fo=$FILL_OUT
	echo
	echo "== store throughput: $SERVERS records upserted in one run (Store::begin_run + finish_run) =="
	echo "command: target/release/examples/fill_store DB --count $SERVERS --runs 2 (fresh store in a temp dir, $(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 { print $2 }') filesystem)"
	echo "records: distinct 10.x.y.z:8000, http://IP:8000/mcp, 4 tools each (+$RARE_TOOL on 1 %), streamable HTTP"
	awk '
		/^run=/ {
			for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			what = (v["run"] == 1) ? "first run (all new)         " : "unchanged re-run (rescan)   "
			printf "  %s %7.3f s  %8.0f records/s  appeared=%s updated=%s gone=%s\n", what, v["seconds"], v["records_per_s"], v["appeared"], v["updated"], v["gone"]
		}
		/^db_bytes=/ { split($1, a, "="); split($2, b, "="); printf "  store file: %.1f MiB (+ WAL %.1f MiB)\n", a[2] / 1048576, b[2] / 1048576 }
		/^read_model / {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); m[kv[1]] = kv[2] }
			printf "  API read model (store/cache.rs): %d servers, %.1f MiB list JSON + %.1f MiB recent changes (%d servers with changes too long to keep)\n", m["servers"], m["json_bytes"] / 1048576, m["changes_bytes"] / 1048576, m["changes_uncached"]
		}
	' "$fo"
	echo "raw output: $fo"
}

bench_store() {
	local d
	ensure_tools store
	tmp_dir store
	d=$TMP_DIR
	fill_store "$d/inventory.db"
	report_store
}

# ------------------------------------------------------------------ api

# wrk_run NAME CONNS SECONDS URL [LUA]: run wrk in the api namespace, save its output, and
# the CPU seconds the daemon and wrk used meanwhile
WRK_ROWS=()
wrk_run() {
	local name=$1 c=$2 secs=$3 url=$4 lua=${5:-} t=$WRK_THREADS f args=() t0 t1 d0 d1 TIMEFORMAT
	((t <= c)) || t=$c
	f="$OUT/api.wrk.$name.txt"
	args=(-t"$t" -c"$c" -d"${secs}s" --timeout 30s --latency)
	[[ -z $lua ]] || args+=(-s "$lua")
	log "api: wrk ${args[*]} $url"
	d0=$(proc_sample "$DAEMON_PID" | awk '{ print $1 }')
	t0=$EPOCHREALTIME
	TIMEFORMAT='%U %S'
	{ time in_ns "$API_NS" timeout -k 5 $((secs + 60)) wrk "${args[@]}" "$url" >"$f" 2>&1 ||
		log "api: wrk $name exited non-zero (see $f)"; } 2>"$f.cpu"
	t1=$EPOCHREALTIME
	d1=$(proc_sample "$DAEMON_PID" | awk '{ print $1 }')
	awk -v a="$d0" -v b="$d1" -v t0="$t0" -v t1="$t1" -v clk="$(getconf CLK_TCK)" \
		'NR == 1 { w = t1 - t0; printf "%.0f %.0f\n", 100 * (b - a) / clk / w, 100 * ($1 + $2) / w }' \
		"$f.cpu" >"$f.cpu.pct"
	WRK_ROWS+=("$name|$c|$f|wrk ${args[*]}${lua:+ (lua: $(basename "$lua"))} $url")
}

# to_ms VALUE: wrk's 1.23ms / 456.00us / 1.50s as milliseconds
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else print "n/a" }'
}

wrk_field() { # wrk_field FILE PCT: the latency at PCT% (50, 75, 90, 99); n/a without requests
	local v
	[[ $(wrk_requests "$1") != 0 ]] || {
		echo n/a
		return
	}
	v=$(awk -v p="$2%" '$1 == p { print $2; exit }' "$1")
	if [[ -n $v ]]; then to_ms "$v"; else echo n/a; fi
}
wrk_requests() { awk '/ requests in / { print $1; exit }' "$1" | grep . || echo 0; }

API_NS=""
bench_api() {
	local d cfg n id_count rare_count rss_ready hwm lua pace_cap pace_id
	pace_cap=${BENCH_PACE_CAP_MS:-1000}
	pace_id=${BENCH_PACE_ID_MS:-100}
	[[ $pace_cap =~ ^[1-9][0-9]{0,4}$ && $pace_id =~ ^[1-9][0-9]{0,4}$ ]] ||
		die "BENCH_PACE_CAP_MS and BENCH_PACE_ID_MS must be 1..99999"
	ensure_tools api
	tmp_dir api
	d=$TMP_DIR
	fill_store "$d/inventory.db"

	API_NS="msbd-$$-a"
	ns_fresh "$API_NS"
	cfg="$d/config.yaml"
	cat >"$cfg" <<EOF
# bench-daemon.sh api: a store of $SERVERS filled servers; the one job scans nothing of them
api:
  listen: 127.0.0.1:$API_PORT
store:
  path: $d/inventory.db
  retention: 30d
gone_after: 3
jobs:
  - name: idle
    targets: [127.0.0.1]
    ports: "9"
    interval: 1h
    jitter: 0%
EOF
	start_daemon "$API_NS" "$cfg" api
	wait_ready "$API_NS" "$DAEMON_PID"
	rss_ready=$(proc_sample "$DAEMON_PID" | awk '{ print $2 }')
	# the idle job's first run finds nothing; wait for it so it does not overlap the load
	for ((n = 0; n < 300; n++)); do
		[[ $(api "$API_NS" "/api/v1/runs?limit=5" || true) == *'"job":"idle",'*'"status":"completed"'* ]] && break
		sleep 0.1
	done

	# real ids and the expected counts, from the API itself
	local rss_one_rare rss_one_all
	api "$API_NS" "/api/v1/servers?capability=$RARE_TOOL" >"$d/rare.json" || die "capability query failed"
	rss_one_rare=$(proc_sample "$DAEMON_PID" | awk '{ print $2 }')
	api "$API_NS" "/api/v1/servers" >"$d/all.json" || die "GET /api/v1/servers failed"
	rss_one_all=$(proc_sample "$DAEMON_PID" | awk '{ print $2 }')
	read -r id_count rare_count < <(
		python3 - "$d/all.json" "$d/rare.json" "$d/ids.lua" <<'PY'
import json, random, sys
all_ = json.load(open(sys.argv[1]))
rare = json.load(open(sys.argv[2]))
ids = [s["id"] for s in all_["servers"]]
random.seed(7)
pick = random.sample(ids, min(1000, len(ids)))
with open(sys.argv[3], "w") as f:
    f.write("-- 1,000 real server ids, requested in random order (bench-daemon.sh)\n")
    f.write("local ids = {" + ",".join(json.dumps(i) for i in pick) + "}\n")
    f.write("math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))\n")
    f.write('request = function()\n  return wrk.format("GET", "/api/v1/servers/" .. ids[math.random(#ids)])\nend\n')
print(all_["count"], rare["count"])
PY
	)
	[[ $id_count == "$SERVERS" ]] || die "the daemon lists $id_count active servers, not $SERVERS"
	lua="$d/ids.lua"
	# paced variants: each connection waits before each request (wrk's delay() hook), a
	# uniform random 0..2*P ms, so the connections do not fire in step
	printf 'delay = function() return math.random(0, %d) end\n' "$((2 * pace_cap))" >"$d/pace_cap.lua"
	{
		cat "$lua"
		printf 'delay = function() return math.random(0, %d) end\n' "$((2 * pace_id))"
	} >"$d/ids_paced.lua"
	local all_bytes rare_bytes one_bytes first_id
	all_bytes=$(stat -c %s "$d/all.json")
	rare_bytes=$(stat -c %s "$d/rare.json")
	first_id=$(sed -n 's/^local ids = {"\([a-z0-9-]*\)".*/\1/p' "$lua")
	[[ -n $first_id ]] || die "no server id in $lua"
	one_bytes=$(api "$API_NS" "/api/v1/servers/$first_id" | wc -c)

	local base="http://127.0.0.1:$API_PORT" m0 mnote
	m0=$(machine_stat)
	wrk_run capability "$CONNS" "$API_SECONDS" "$base/api/v1/servers?capability=$RARE_TOOL"
	wrk_run by-id "$CONNS" "$API_SECONDS" "$base/api/v1/servers/$first_id" "$lua"
	wrk_run capability-c1 1 "$API_SECONDS" "$base/api/v1/servers?capability=$RARE_TOOL"
	wrk_run by-id-c1 1 "$API_SECONDS" "$base/api/v1/servers/$first_id" "$lua"
	wrk_run capability-paced "$CONNS" "$API_SECONDS" "$base/api/v1/servers?capability=$RARE_TOOL" "$d/pace_cap.lua"
	wrk_run by-id-paced "$CONNS" "$API_SECONDS" "$base/api/v1/servers/$first_id" "$d/ids_paced.lua"
	local rss_after_targets
	rss_after_targets=$(proc_sample "$DAEMON_PID" | awk '{ print $2 }')
	wrk_run unfiltered-c1 1 "$API_SECONDS" "$base/api/v1/servers"
	wrk_run unfiltered "$CONNS" "$API_SECONDS" "$base/api/v1/servers"
	mnote=$(machine_note "$m0")
	hwm=$(hwm_kb "$DAEMON_PID")
	local rss_end threads
	rss_end=$(proc_sample "$DAEMON_PID" | awk '{ print $2 }')
	threads=$(awk '/^Threads:/ { print $2 }' "/proc/$DAEMON_PID/status")
	stop_daemon
	ns_delete "$API_NS"

	echo
	echo "== API latency: $SERVERS servers, wrk at $CONNS connections, ${API_SECONDS}s per endpoint =="
	echo "setup: store filled by examples/fill_store.rs ($SERVERS records, one run); daemon in netns $API_NS (lo only), CONFIG:"
	sed 's/^/         /' "$cfg"
	echo "       $(nproc) cores shared by the daemon and wrk ($WRK_THREADS threads); wrk $(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')"
	echo "$mnote"
	echo "responses: unfiltered $((all_bytes / 1024)) KiB ($id_count servers); capability=$RARE_TOOL $((rare_bytes / 1024)) KiB ($rare_count servers); one server $one_bytes B"
	echo "rows: closed loop (each connection sends its next request when the last one is answered), except"
	echo "      *-paced (each connection waits 0..$((2 * pace_cap)) ms (capability) / 0..$((2 * pace_id)) ms (by-id), uniform, before each request)"
	echo "      and *-c1 (1 connection: the service time)"
	printf '%-17s %5s %9s %9s %9s %9s %9s %8s %6s %6s %7s %s\n' endpoint conns p50_ms p75_ms p90_ms p99_ms req/s requests d_cpu% wrk% non2xx errors
	local row name c f cmd p50 p99 rps non2xx errs cpu
	local cap_p99="" id_p99="" cap_p50="" id_p50=""
	for row in "${WRK_ROWS[@]}"; do
		IFS='|' read -r name c f cmd <<<"$row"
		p50=$(wrk_field "$f" 50)
		p99=$(wrk_field "$f" 99)
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
		non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$f")
		errs=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$f")
		cpu=$(cat "$f.cpu.pct" 2>/dev/null || echo "? ?")
		# shellcheck disable=SC2086 # cpu is two fields
		printf '%-17s %5s %9s %9s %9s %9s %9s %8s %6s %6s %7s %s\n' "$name" "$c" "$p50" "$(wrk_field "$f" 75)" \
			"$(wrk_field "$f" 90)" "$p99" "${rps:-n/a}" "$(wrk_requests "$f")" $cpu "${non2xx:-0}" "${errs:-none}"
		case $name in
		capability) cap_p99=$p99 cap_p50=$p50 ;;
		by-id) id_p99=$p99 id_p50=$p50 ;;
		esac
	done
	echo "(d_cpu% and wrk%: CPU of the daemon and of wrk during the row, in % of one core; requests"
	echo " still in flight when a row ends are not counted, so a row whose requests all outlast it shows n/a)"
	echo "commands (in netns $API_NS):"
	for row in "${WRK_ROWS[@]}"; do
		IFS='|' read -r name c f cmd <<<"$row"
		echo "  $name: $cmd"
	done
	echo "daemon RSS (MiB): $((rss_ready / 1024)) when ready, $((rss_one_rare / 1024)) after one capability request,"
	echo "  $((rss_one_all / 1024)) after one unfiltered request, $((rss_after_targets / 1024)) after the capability and by-id rows,"
	echo "  $((rss_end / 1024)) at the end; peak (VmHWM) $((hwm / 1024)); threads at the end: $threads"
	echo
	echo "capability p50 ${cap_p50} ms, p99 ${cap_p99} ms ($CONNS connections, closed loop)  target p99 < 25 ms  $(verdict "\"$cap_p99\" != \"n/a\" && $cap_p99 + 0 < 25")"
	echo "by-id      p50 ${id_p50} ms, p99 ${id_p99} ms ($CONNS connections, closed loop)  target p99 < 5 ms   $(verdict "\"$id_p99\" != \"n/a\" && $id_p99 + 0 < 5")"
	echo "raw outputs: $OUT/api.*"
	report_store
}

# ------------------------------------------------------------------ main

mkdir -p "$OUT"
log "binary: $BIN; raw outputs: $OUT"
case $PART in
rescan) bench_rescan ;;
api) bench_api ;;
store) bench_store ;;
all)
	bench_rescan
	bench_api
	;;
esac
