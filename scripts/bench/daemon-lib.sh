# shellcheck shell=bash
# scripts/bench/daemon-lib.sh: shell helpers shared by the daemon benchmarks
# (bench-daemon.sh, bench-health.sh). Source it after setting BENCH_NAME (the log prefix),
# BIN (the daemon binary), OUT (raw outputs) and API_PORT. It installs an EXIT trap that
# kills what the benchmark started, deletes its namespaces and (unless BENCH_KEEP=1) its
# temporary directories.
#
# NETWORK SAFETY: the helpers run the daemon and curl inside namespaces made by ns_fresh
# (lo only); every wait is bounded.

log() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# check_common: root, and the settings every daemon benchmark reads (MINUTES, SAMPLE_S)
check_common() {
	[[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
	[[ $MINUTES =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v m="$MINUTES" 'BEGIN { exit !(m > 0 && m <= 120) }' ||
		die "BENCH_MINUTES must be a number of minutes in (0, 120]"
	[[ $SAMPLE_S =~ ^[1-9][0-9]?$ ]] || die "BENCH_SAMPLE_S must be 1..99"
}

# ------------------------------------------------------------------ cleanup

CREATED_NS=()   # namespaces made here (deleted on exit)
STARTED_PIDS=() # background processes started here
TMP_DIRS=()     # temporary stores (deleted on exit unless BENCH_KEEP=1)

kill_pids() { # TERM, wait up to ~15 s (the daemon may take 10), then KILL
	local pid i
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		for ((i = 0; i < 300; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

forget_pid() { # drop PID from STARTED_PIDS (it was stopped already)
	local keep=() p
	for p in "${STARTED_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	STARTED_PIDS=("${keep[@]}")
}

ns_delete() { # kill what runs in a namespace of ours, then delete it
	local ns=$1 pids
	# (no `grep -q` on pipes here: with pipefail an early exit's SIGPIPE reads as failure)
	ip netns list | awk -v n="$ns" '$1 == n { f = 1 } END { exit !f }' || return 0
	mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
	((${#pids[@]} == 0)) || kill_pids "${pids[@]}"
	ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
	local rc=$? ns d
	trap - EXIT INT TERM
	((${#STARTED_PIDS[@]} == 0)) || kill_pids "${STARTED_PIDS[@]}"
	for ns in "${CREATED_NS[@]}"; do ns_delete "$ns"; done
	if [[ ${BENCH_KEEP:-0} != 1 ]]; then
		for d in "${TMP_DIRS[@]}"; do rm -rf -- "$d"; done
	else
		for d in "${TMP_DIRS[@]}"; do log "kept $d"; done
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ns_fresh() { # ns_fresh NAME: a new namespace with only lo, up
	local ns=$1
	ip netns add "$ns"
	CREATED_NS+=("$ns")
	ip -n "$ns" link set lo up
	[[ $(ip -n "$ns" -o link show | wc -l) == 1 ]] || die "$ns has more than lo"
	[[ $(ip -n "$ns" route get 127.1.3.232) == local* ]] || die "127/8 is not local in $ns"
}

TMP_DIR=""
tmp_dir() { # tmp_dir TAG: a new temporary directory in TMP_DIR, removed on exit
	# (not a command substitution: TMP_DIRS must be set in this shell for the cleanup)
	TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mcp-scout-bench-$1-$$.XXXXXX")
	TMP_DIRS+=("$TMP_DIR")
}

# ------------------------------------------------------------------ tools

APT_UPDATED=0
apt_install() {
	if ((!APT_UPDATED)); then
		apt-get update -qq >&2 || log "apt-get update failed"
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}


# ------------------------------------------------------------------ helpers

# in NS CMD...: run CMD in namespace NS
in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# wait_ready NS PID: bounded (60 s) wait for GET /readyz = 200 while PID lives
wait_ready() {
	local ns=$1 pid=$2 i code
	for ((i = 0; i < 600; i++)); do
		kill -0 "$pid" 2>/dev/null || die "the daemon (pid $pid) died; see $OUT"
		code=$(in_ns "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
			"http://127.0.0.1:$API_PORT/readyz" || true)
		[[ $code == 200 ]] && return 0
		sleep 0.1
	done
	die "the daemon was not ready within 60 s"
}

# api NS PATH: GET PATH from the daemon in NS (bounded); body on stdout
api() {
	in_ns "$1" curl -sf --max-time 30 "http://127.0.0.1:$API_PORT$2"
}

# start_daemon NS CONFIG TAG: start the release daemon in NS; sets DAEMON_PID
DAEMON_PID=""
start_daemon() {
	local ns=$1 cfg=$2 tag=$3
	"$BIN" config check "$cfg" >"$OUT/$tag.config-check.txt" 2>&1 ||
		die "config check failed: $(cat "$OUT/$tag.config-check.txt")"
	# `ip netns exec` execs the command, so $! is the daemon itself (checked below).
	ip netns exec "$ns" "$BIN" daemon -c "$cfg" --log-format json \
		>"$OUT/$tag.daemon.log" 2>&1 &
	DAEMON_PID=$!
	STARTED_PIDS+=("$DAEMON_PID")
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(cat "/proc/$DAEMON_PID/comm" 2>/dev/null) == mcp-scout ]] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon exited at once: $(tail -3 "$OUT/$tag.daemon.log")"
		sleep 0.02
	done
	die "pid $DAEMON_PID is not mcp-scout"
}

stop_daemon() {
	[[ -n $DAEMON_PID ]] || return 0
	kill_pids "$DAEMON_PID"
	forget_pid "$DAEMON_PID"
	DAEMON_PID=""
}

# proc_sample PID: "ticks rss_kb" (utime+stime in clock ticks, VmRSS)
proc_sample() {
	local stat rest f rss
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	rest=${stat##*) } # fields from 3 on (comm may hold spaces)
	read -r -a f <<<"$rest"
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
	printf '%s %s\n' "$((f[11] + f[12]))" "${rss:-0}"
}

# machine_stat: "busy total" jiffies of all CPUs (/proc/stat), to show how loaded the
# shared machine was during a part
machine_stat() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }
# machine_note "BUSY0 TOTAL0": the machine's CPU use since then and the load average now
machine_note() {
	local b0 t0 b1 t1
	read -r b0 t0 <<<"$1"
	read -r b1 t1 < <(machine_stat)
	awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v n="$(nproc)" -v la="$(cut -d' ' -f1-3 /proc/loadavg)" \
		'BEGIN { printf "machine: all processes used %.0f %% of %d cores meanwhile (this benchmark and anything else); load average now %s\n", (t > 0 ? 100 * b / t : 0), n, la }'
}

hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

verdict() { # verdict COND-AWK-EXPR: PASS or FAIL
	if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi
}


# ensure_tools: curl, python3 and ip (apt if missing), the release binary at $BIN (built
# if absent) and the peers (scripts/peers/setup.sh), for bench-health.sh and bench-sinks.sh
ensure_tools() {
	local need=()
	command -v curl >/dev/null || need+=(curl)
	command -v python3 >/dev/null || need+=(python3)
	command -v ip >/dev/null || need+=(iproute2)
	((${#need[@]} == 0)) || apt_install "${need[@]}"
	if [[ ! -x $BIN ]]; then
		log "building the release binary (cargo build --release --locked)"
		cargo build --release --locked >&2
	fi
	scripts/peers/setup.sh >&2
}
