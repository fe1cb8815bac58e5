#!/usr/bin/env bash
# bench-sweep.sh - speed and accuracy figures for mcp-scout's TCP sweep engine.
#
# Usage: scripts/bench-sweep.sh [loopback|lan|mem|all]      (default: all; needs root)
#
#   loopback  a fresh network namespace with only lo: 300 listeners over
#             127.77.0.0/16 x {3000,8000,8080} (196,608 probes), swept by mcp-scout,
#             the C connect loop (1 and 2 threads), nmap -sT and RustScan.
#   lan       scripts/testnet.sh LAN (6 hosts, 20 ms delay, 2 % loss), 20 listeners on
#             MCP ports; recall and wall time per run of mcp-scout, RustScan, nmap.
#   mem       peak RSS of mcp-scout sweeping 10.0.0.0/12 vs 10.0.0.0/16 inside an
#             EMPTY namespace (lo only, no route: every connect fails at once with
#             ENETUNREACH and nothing leaves the machine).
#
# Environment:
#   MCP_SCOUT_BIN       mcp-scout binary (default ./target/release/mcp-scout; skipped if absent)
#   BENCH_BUILD=1       run `cargo build --release` first if the binary is absent
#   BENCH_PREFIX        namespace prefix (default msb)
#   BENCH_TOOL_TIMEOUT  seconds any single tool run may take (default 600)
#   BENCH_REPEAT        loopback: runs per tool, the fastest is reported (default 1)
#   CLOOP_WINDOWS       C-loop in-flight windows to try (default "256 1000 4000")
#   CLOOP_TIMEOUT_MS    C-loop connect timeout (default 1000)
#   NMAP_CIDR           restrict nmap to this slice of 127.77.0.0/16, e.g. 127.77.0.0/20,
#                       when nmap is too slow on the /16 (its wall time is then
#                       extrapolated linearly to the /16 for the ratios)
#   LAN_RUNS            runs per tool in the lan section (default 5)
#   LAN_DELAY_MS, LAN_LOSS  impairment of the scanner's link (default 20, 2)
#   MEM_SCOUT_ARGS      extra mcp-scout args for the mem section, e.g. "--rate 200000"
#                       (at the default off-loopback rate the /12 takes ~4 min)
#   BENCH_OUT           directory for raw outputs (default target/bench/last-run)
#
# NETWORK SAFETY: every probe goes to 127.77.0.0/16 inside a namespace created here,
# to the testnet LAN's namespaces, or (mem) to a namespace with no route at all.

set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECTION="${1:-all}"
PREFIX="${BENCH_PREFIX:-msb}"
MCP_SCOUT_BIN="${MCP_SCOUT_BIN:-./target/release/mcp-scout}"
TOOL_TIMEOUT="${BENCH_TOOL_TIMEOUT:-600}"
CLOOP_WINDOWS="${CLOOP_WINDOWS:-256 1000 4000}"
REPEAT="${BENCH_REPEAT:-1}"
CLOOP_TIMEOUT_MS="${CLOOP_TIMEOUT_MS:-1000}"
BENCH_DIR="$ROOT/target/bench"
CLOOP="$BENCH_DIR/connect_loop"
LISTENERS="$ROOT/scripts/bench/listeners.py"
OUT="${BENCH_OUT:-$BENCH_DIR/last-run}"

LO_CIDR=127.77.0.0/16
LO_PORTS=3000,8000,8080
LO_COUNT=300
LAN_PORTS=3000,3001,5000,6277,8000,8001,8080,8081,8787,8811,9000
LAN_HOSTS=6
LAN_COUNT=20

export PATH="$PATH:${HOME:-/root}/.cargo/bin"

log() { printf 'bench-sweep: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

case $SECTION in
loopback | lan | mem | all) ;;
-h | --help)
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
*) die "unknown section '$SECTION' (loopback|lan|mem|all)" ;;
esac
[[ "$PREFIX" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$ ]] || die "bad BENCH_PREFIX '$PREFIX'"
[[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
[[ $REPEAT =~ ^[1-9]$ ]] || die "BENCH_REPEAT must be 1..9"

# ------------------------------------------------------------------ cleanup

CREATED_NS=()    # namespaces this script created (deleted on exit)
STARTED_PIDS=()  # processes this script started in the background
TESTNET_UP=0

kill_pids() { # TERM, wait up to ~3 s, then KILL
	local pid i
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# stop_started PID...: stop processes we started and forget them (no stale pids at exit)
stop_started() {
	local pid keep=() p
	kill_pids "$@"
	for p in "${STARTED_PIDS[@]}"; do
		for pid in "$@"; do [[ $p == "$pid" ]] && continue 2; done
		keep+=("$p")
	done
	STARTED_PIDS=("${keep[@]}")
}

ns_delete() { # kill what runs in a namespace of ours, then delete it
	local ns=$1 pids
	ip netns list | awk '{print $1}' | grep -qx -- "$ns" || return 0
	mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null || true)
	((${#pids[@]} == 0)) || kill_pids "${pids[@]}"
	ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
	local rc=$? ns
	trap - EXIT INT TERM
	((${#STARTED_PIDS[@]} == 0)) || kill_pids "${STARTED_PIDS[@]}"
	STARTED_PIDS=()
	for ns in "${CREATED_NS[@]}"; do ns_delete "$ns"; done
	CREATED_NS=()
	if ((TESTNET_UP)); then
		scripts/testnet.sh --prefix "$PREFIX" down >/dev/null 2>&1 || log "testnet down failed"
		TESTNET_UP=0
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ns_fresh() { # ns_fresh NAME: a new namespace with lo up
	local ns=$1
	ns_delete "$ns" # stale one from an earlier, killed run
	ip netns add "$ns"
	CREATED_NS+=("$ns")
	ip -n "$ns" link set lo up
}

# ------------------------------------------------------------------ tools

APT_UPDATED=0
apt_install() {
	if ((!APT_UPDATED)); then
		apt-get update -qq >&2 || log "apt-get update failed"
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_tools() { # ensure_tools SECTION
	local need=()
	command -v python3 >/dev/null || need+=(python3)
	command -v gcc >/dev/null || need+=(gcc libc6-dev)
	command -v timeout >/dev/null || need+=(coreutils)
	if [[ $1 == loopback || $1 == lan ]]; then
		command -v nmap >/dev/null || need+=(nmap)
	fi
	[[ $1 != mem || -x /usr/bin/time ]] || need+=(time)
	((${#need[@]} == 0)) || apt_install "${need[@]}"
	if [[ $1 == loopback || $1 == lan ]] && ! command -v rustscan >/dev/null; then
		log "installing rustscan (cargo install rustscan --locked, ~2-4 min)"
		cargo install rustscan --locked >&2
	fi
	mkdir -p "$BENCH_DIR"
	if [[ ! -x "$CLOOP" || "$ROOT/scripts/bench/connect_loop.c" -nt "$CLOOP" ]]; then
		gcc -O2 -Wall -pthread -o "$CLOOP" "$ROOT/scripts/bench/connect_loop.c"
	fi
	if [[ ! -x "$MCP_SCOUT_BIN" && "${BENCH_BUILD:-0}" == 1 ]]; then
		cargo build --release >&2
	fi
}

have_scout() { [[ -x "$MCP_SCOUT_BIN" ]]; }

# ------------------------------------------------------------------ helpers

LAST_RC=0
LAST_WALL=0
SEP=$'\x1f' # field separator of result rows (not whitespace: empty fields survive read)
join_row() {
	local IFS=$SEP
	printf '%s' "$*"
}
# timed OUT ERR CMD...: run CMD (bounded by the caller's `timeout`), set LAST_WALL/LAST_RC
timed() {
	local out=$1 err=$2 t0 t1
	shift 2
	LAST_RC=0
	t0=$EPOCHREALTIME
	"$@" >"$out" 2>"$err" || LAST_RC=$?
	t1=$EPOCHREALTIME
	LAST_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

# extract FORMAT FILE: print the open set as sorted ip:port lines
#   FORMAT: ndjson (mcp-scout), gnmap (nmap -oG), rustscan (-g), plain (ip:port lines)
extract() {
	python3 - "$1" "$2" <<'PY' | sort -u
import json, re, sys
fmt, path = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8", errors="replace") as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        if fmt == "ndjson":
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if isinstance(o, dict) and "ip" in o and "port" in o and o.get("state", "open") == "open":
                print(f"{o['ip']}:{o['port']}")
        elif fmt == "gnmap":
            m = re.match(r"Host: (\S+) .*\tPorts: (.*)", line)
            if m:
                for p in re.finditer(r"(\d+)/open/tcp", m.group(2)):
                    print(f"{m.group(1)}:{p.group(1)}")
        elif fmt == "rustscan":
            m = re.match(r"(\S+) -> \[([\d, ]*)\]", line)
            if m:
                for p in m.group(2).split(","):
                    if p.strip():
                        print(f"{m.group(1)}:{p.strip()}")
        elif fmt == "plain":
            if re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+", line):
                print(line)
PY
}

# in_cidr CIDR < lines: keep the ip:port lines whose ip is inside CIDR
in_cidr() {
	python3 -c '
import ipaddress, sys
net = ipaddress.ip_network(sys.argv[1], strict=False)
for line in sys.stdin:
    line = line.strip()
    if line and ipaddress.ip_address(line.rsplit(":", 1)[0]) in net:
        print(line)' "$1"
}

count_lines() { if [[ -s $1 ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
only_in() { comm -23 "$1" "$2" | wc -l | tr -d ' '; } # lines in $1 not in $2
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf f, a / b }'; }

# wait_ready FILE PID...: bounded wait (<= 15 s) for FILE while the PIDs live
wait_ready() {
	local f=$1 i pid
	shift
	for ((i = 0; i < 300; i++)); do
		[[ -s $f ]] && return 0
		for pid in "$@"; do
			kill -0 "$pid" 2>/dev/null || die "listener pid $pid died (see $OUT)"
		done
		sleep 0.05
	done
	die "listeners not ready after 15 s ($f)"
}

# ------------------------------------------------------------------ (a) loopback

# rows (fields joined by SEP): label, command, wall, probes, rc, found-file, scope-cidr, note
LO_ROWS=()

lo_row() { LO_ROWS+=("$(join_row "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8")"); }

RUNS_NOTE=""
# best_of FORMAT BASE CMD...: run CMD BENCH_REPEAT times; the fastest run becomes
# BASE.out/.err/.set and sets LAST_WALL/LAST_RC; RUNS_NOTE lists every run's wall and open count
best_of() {
	local fmt=$1 base=$2 i best=0 best_wall="" best_rc=0 walls="" opens=""
	shift 2
	for ((i = 1; i <= REPEAT; i++)); do
		timed "$base.run$i.out" "$base.run$i.err" "$@"
		extract "$fmt" "$base.run$i.out" >"$base.run$i.set"
		walls+="${walls:+ }$LAST_WALL"
		opens+="${opens:+ }$(count_lines "$base.run$i.set")"
		if ((best == 0)) || awk -v a="$LAST_WALL" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
			best=$i best_wall=$LAST_WALL best_rc=$LAST_RC
		fi
	done
	for i in out err set; do cp "$base.run$best.$i" "$base.$i"; done
	LAST_WALL=$best_wall LAST_RC=$best_rc
	RUNS_NOTE=""
	((REPEAT == 1)) || RUNS_NOTE="best of $REPEAT; walls: $walls s; open: $opens"
}

bench_loopback() {
	local ns="$PREFIX-lo" d="$OUT/loopback" nx=(ip netns exec "$PREFIX-lo" timeout -k 5 "$TOOL_TIMEOUT")
	local full_probes=$((65536 * 3)) pid t w ul cmd nmap_cidr nmap_probes label
	mkdir -p "$d"
	ensure_tools loopback
	ns_fresh "$ns"
	# safety: the namespace has lo only, and 127.77.0.0/16 is local there
	[[ $(ip -n "$ns" -o link show | wc -l) == 1 ]] || die "$ns has more than lo"
	ip -n "$ns" route get 127.77.1.1 | grep -q '^local ' || die "127.77/16 not local in $ns"

	rm -f "$d/ready"
	ip netns exec "$ns" python3 "$LISTENERS" --cidr "$LO_CIDR" --ports "$LO_PORTS" \
		--count "$LO_COUNT" --seed 1 --expect "$d/expected.txt" --ready-file "$d/ready" \
		--max-seconds 3600 >"$d/listeners.log" 2>&1 &
	pid=$!
	STARTED_PIDS+=("$pid")
	wait_ready "$d/ready" "$pid"
	[[ $(count_lines "$d/expected.txt") == "$LO_COUNT" ]] || die "expected set is not $LO_COUNT lines"
	log "loopback: $LO_COUNT listeners up in $ns"

	# mcp-scout
	cmd="mcp-scout scan $LO_CIDR -p $LO_PORTS --no-fingerprint --no-ping -o ndjson"
	if have_scout; then
		log "loopback: $cmd"
		best_of ndjson "$d/scout" "${nx[@]}" "$MCP_SCOUT_BIN" scan "$LO_CIDR" \
			-p "$LO_PORTS" --no-fingerprint --no-ping -o ndjson
		lo_row mcp-scout "$cmd" "$LAST_WALL" "$full_probes" "$LAST_RC" "$d/scout.set" "$LO_CIDR" "$RUNS_NOTE"
	else
		log "loopback: $MCP_SCOUT_BIN not found: mcp-scout skipped"
		lo_row mcp-scout "$cmd" "" "$full_probes" "absent" "" "$LO_CIDR" ""
	fi

	# the C loop, 1 and 2 threads, each window
	for t in 1 2; do
		for w in $CLOOP_WINDOWS; do
			cmd="connect_loop -t $t -w $w -T $CLOOP_TIMEOUT_MS -p $LO_PORTS $LO_CIDR"
			log "loopback: $cmd"
			best_of plain "$d/cloop-$t-$w" "${nx[@]}" "$CLOOP" -t "$t" -w "$w" \
				-T "$CLOOP_TIMEOUT_MS" -p "$LO_PORTS" "$LO_CIDR"
			lo_row "C loop ${t}t w$w" "$cmd" "$LAST_WALL" "$full_probes" "$LAST_RC" \
				"$d/cloop-$t-$w.set" "$LO_CIDR" "$RUNS_NOTE"
		done
	done

	# nmap (optionally on a slice)
	nmap_cidr="${NMAP_CIDR:-$LO_CIDR}"
	nmap_probes=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1], strict=False).num_addresses * 3)' "$nmap_cidr")
	python3 -c 'import ipaddress,sys; a,b=(ipaddress.ip_network(x, strict=False) for x in sys.argv[1:]); sys.exit(not a.subnet_of(b))' \
		"$nmap_cidr" "$LO_CIDR" || die "NMAP_CIDR $nmap_cidr is not inside $LO_CIDR"
	cmd="nmap -sT -Pn -n -T4 -p $LO_PORTS --max-retries 1 -oG - $nmap_cidr"
	log "loopback: $cmd"
	best_of gnmap "$d/nmap" "${nx[@]}" nmap -sT -Pn -n -T4 -p "$LO_PORTS" \
		--max-retries 1 -oG - "$nmap_cidr"
	label=nmap
	[[ $nmap_cidr == "$LO_CIDR" ]] || label="nmap (${nmap_cidr} only)"
	lo_row "$label" "$cmd" "$LAST_WALL" "$nmap_probes" "$LAST_RC" "$d/nmap.set" "$nmap_cidr" "$RUNS_NOTE"

	# RustScan: a pure port scan (-g: greppable, never calls nmap)
	ul=$(ulimit -Hn)
	[[ $ul == unlimited || $ul -gt 65535 ]] && ul=65535
	cmd="rustscan -a $LO_CIDR -p $LO_PORTS -g --ulimit $ul"
	log "loopback: $cmd"
	best_of rustscan "$d/rustscan" "${nx[@]}" rustscan -a "$LO_CIDR" -p "$LO_PORTS" \
		-g --ulimit "$ul"
	lo_row RustScan "$cmd" "$LAST_WALL" "$full_probes" "$LAST_RC" "$d/rustscan.set" "$LO_CIDR" "$RUNS_NOTE"

	stop_started "$pid"
	report_loopback "$d" "$nmap_cidr"
}

report_loopback() {
	local d=$1 nmap_cidr=$2 row label cmd wall probes rc set scope pps open miss extra vsn
	local exp nset scout_wall="" scout_pps="" nmap_wall="" rs_wall="" c2_wall="" c2_pps="" c2_label=""
	echo
	echo "== (a) loopback sweep: $LO_COUNT listeners, $LO_CIDR x {$LO_PORTS} = 196608 probes, netns $PREFIX-lo =="
	printf '%-26s %9s %9s %11s %6s %8s %6s %10s\n' tool wall_s probes probes/s open missing extra vs_nmap
	for row in "${LO_ROWS[@]}"; do
		IFS=$SEP read -r label cmd wall probes rc set scope _ <<<"$row"
		if [[ $rc == absent ]]; then
			printf '%-26s %9s   (skipped: %s not built)\n' "$label" - "$MCP_SCOUT_BIN"
			continue
		fi
		# compare within the tool's scope (nmap may have swept only a slice)
		exp="$d/expected.scope.$$"
		in_cidr "$scope" <"$d/expected.txt" | sort >"$exp"
		open=$(count_lines "$set")
		miss=$(only_in "$exp" "$set")
		extra=$(only_in "$set" "$exp")
		nset="$d/nmap.scope.$$"
		if [[ -f $d/nmap.set ]]; then
			# both sets restricted to the common scope (nmap's)
			in_cidr "$nmap_cidr" <"$set" | sort >"$nset.t"
			if [[ $label == nmap* ]]; then
				vsn="-"
			elif cmp -s "$nset.t" "$d/nmap.set"; then
				vsn="="
			else
				vsn="+$(only_in "$nset.t" "$d/nmap.set")/-$(only_in "$d/nmap.set" "$nset.t")"
			fi
			rm -f "$nset.t"
		else
			vsn="n/a"
		fi
		rm -f "$exp"
		pps=$(fdiv "$probes" "$wall" "%.0f")
		[[ $rc == 0 ]] || label="$label [rc=$rc]"
		printf '%-26s %9s %9s %11s %6s %8s %6s %10s\n' "$label" "$wall" "$probes" "$pps" "$open" "$miss" "$extra" "$vsn"
		case $label in
		mcp-scout*) scout_wall=$wall scout_pps=$pps ;;
		nmap*) nmap_wall=$(awk -v w="$wall" -v p="$probes" 'BEGIN { printf "%.3f", w * 196608 / p }') ;;
		RustScan*) rs_wall=$wall ;;
		"C loop 2t"*)
			if [[ -z $c2_pps ]] || awk -v a="$pps" -v b="$c2_pps" 'BEGIN { exit !(a > b) }'; then
				c2_wall=$wall c2_pps=$pps c2_label=${label%% \[*}
			fi
			;;
		esac
	done
	echo "(vs_nmap: =  same set as nmap; +a/-b  a ports only this tool found, b only nmap found;"
	echo " compared inside nmap's scope $nmap_cidr. open/missing/extra are vs the expected set.)"
	if [[ $nmap_cidr != "$LO_CIDR" ]]; then
		echo "NOTE: nmap swept only $nmap_cidr (NMAP_CIDR); its probes/s is measured on that slice and"
		echo "      its wall time is extrapolated linearly to the /16 (${nmap_wall} s) for the ratios."
	fi
	echo "commands:"
	for row in "${LO_ROWS[@]}"; do
		IFS=$SEP read -r label cmd _ _ _ _ _ note <<<"$row"
		printf '  %-24s %s\n' "$label:" "$cmd"
		[[ -z $note ]] || printf '  %-24s (%s)\n' "" "$note"
	done
	echo "machine's limit = best 2-thread C loop: ${c2_label:-n/a} (${c2_pps:-n/a} probes/s)"
	if [[ -n $scout_wall ]]; then
		echo "mcp-scout wall time ratios (lower is faster for mcp-scout):"
		echo "  mcp-scout / nmap      = $(fdiv "$scout_wall" "${nmap_wall:-0}")"
		echo "  mcp-scout / RustScan  = $(fdiv "$scout_wall" "${rs_wall:-0}")"
		echo "  mcp-scout / C loop 2t = $(fdiv "$scout_wall" "${c2_wall:-0}")"
		echo "C-loop throughput ratio: mcp-scout probes/s / C loop 2t probes/s = $(fdiv "$scout_pps" "${c2_pps:-0}")"
	else
		echo "mcp-scout ratios: n/a (binary not built)"
	fi
	echo "raw outputs: $d"
}

# ------------------------------------------------------------------ (b) lossy LAN
# Contract: scripts/testnet.sh --prefix P --hosts 6 --delay-ms 20 --loss 2 up makes
# namespaces P-scan (10.99.0.2/24) and P-h1..P-h6 (10.99.0.11..16); 10.99.0.200-254 dead.

bench_lan() {
	local d="$OUT/lan" runs="${LAN_RUNS:-5}" i r pid ips="" scan="$PREFIX-scan" tool
	local pids=() nx=(ip netns exec "$PREFIX-scan" timeout -k 5 "$TOOL_TIMEOUT")
	mkdir -p "$d"
	ensure_tools lan
	[[ $runs =~ ^[1-9][0-9]?$ ]] || die "LAN_RUNS must be 1..99"
	log "lan: scripts/testnet.sh --prefix $PREFIX --hosts $LAN_HOSTS --delay-ms ${LAN_DELAY_MS:-20} --loss ${LAN_LOSS:-2} up"
	TESTNET_UP=1
	scripts/testnet.sh --prefix "$PREFIX" --hosts "$LAN_HOSTS" --delay-ms "${LAN_DELAY_MS:-20}" \
		--loss "${LAN_LOSS:-2}" up >"$d/testnet.log" 2>&1 || die "testnet up failed (see $d/testnet.log)"
	# safety: the scanner namespace must have no default route (10.99/16 stays inside the LAN)
	[[ -z $(ip -n "$scan" route show default) ]] || die "$scan has a default route; refusing to scan"

	for ((i = 1; i <= LAN_HOSTS; i++)); do ips+="${ips:+,}10.99.0.$((10 + i))"; done
	for ((i = 1; i <= LAN_HOSTS; i++)); do
		rm -f "$d/ready.$i"
		ip netns exec "$PREFIX-h$i" python3 "$LISTENERS" --ips "$ips" --ports "$LAN_PORTS" \
			--count "$LAN_COUNT" --seed 1 --bind-ip "10.99.0.$((10 + i))" \
			--expect "$d/expected.$i.txt" --ready-file "$d/ready.$i" --max-seconds 3600 \
			>"$d/listeners.$i.log" 2>&1 &
		pids+=("$!")
		STARTED_PIDS+=("$!")
	done
	for ((i = 1; i <= LAN_HOSTS; i++)); do wait_ready "$d/ready.$i" "${pids[@]}"; done
	cp "$d/expected.1.txt" "$d/expected.txt"
	for ((i = 2; i <= LAN_HOSTS; i++)); do
		cmp -s "$d/expected.$i.txt" "$d/expected.txt" || die "listener plans disagree"
	done
	log "lan: $LAN_COUNT listeners up on $LAN_HOSTS hosts"

	# rows (fields joined by SEP): tool, run, wall, found, extra, rc
	local rows=() set found extra
	for ((r = 1; r <= runs; r++)); do
		for tool in mcp-scout RustScan nmap; do
			case $tool in
			mcp-scout)
				have_scout || continue
				timed "$d/scout.$r.out" "$d/scout.$r.err" "${nx[@]}" "$MCP_SCOUT_BIN" scan \
					10.99.0.0/24 --no-fingerprint -o ndjson
				extract ndjson "$d/scout.$r.out" >"$d/scout.$r.set"
				set="$d/scout.$r.set"
				;;
			RustScan)
				timed "$d/rustscan.$r.out" "$d/rustscan.$r.err" "${nx[@]}" rustscan \
					-a 10.99.0.0/24 -p "$LAN_PORTS" -g
				extract rustscan "$d/rustscan.$r.out" >"$d/rustscan.$r.set"
				set="$d/rustscan.$r.set"
				;;
			nmap)
				timed "$d/nmap.$r.out" "$d/nmap.$r.err" "${nx[@]}" nmap -sT -Pn -n -T4 \
					-p "$LAN_PORTS" -oG - 10.99.0.0/24
				extract gnmap "$d/nmap.$r.out" >"$d/nmap.$r.set"
				set="$d/nmap.$r.set"
				;;
			esac
			found=$(comm -12 "$d/expected.txt" "$set" | wc -l | tr -d ' ')
			extra=$(only_in "$set" "$d/expected.txt")
			log "lan: run $r $tool: $found/$LAN_COUNT in ${LAST_WALL}s (rc=$LAST_RC)"
			rows+=("$(join_row "$tool" "$r" "$LAST_WALL" "$found" "$extra" "$LAST_RC")")
		done
	done
	stop_started "${pids[@]}"

	echo
	echo "== (b) lossy LAN: $LAN_HOSTS hosts, delay ${LAN_DELAY_MS:-20} ms, loss ${LAN_LOSS:-2} %, $LAN_COUNT listeners on {$LAN_PORTS} =="
	printf '%-10s %4s %9s %8s %7s %6s %4s\n' tool run wall_s found recall extra rc
	local row run wall rc
	for row in "${rows[@]}"; do
		IFS=$SEP read -r tool run wall found extra rc <<<"$row"
		printf '%-10s %4s %9s %5s/%-2s %7s %6s %4s\n' "$tool" "$run" "$wall" "$found" "$LAN_COUNT" \
			"$(fdiv "$found" "$LAN_COUNT")" "$extra" "$rc"
	done
	printf '%s\n' "${rows[@]}" | awk -F"$SEP" -v n="$LAN_COUNT" '
		{ c[$1]++; w[$1] += $3; f[$1] += $4 }
		END { for (t in c) printf "  %-10s mean wall %.2f s, mean recall %.3f over %d runs\n", t, w[t] / c[t], f[t] / (c[t] * n), c[t] }' | sort
	have_scout || echo "  mcp-scout: skipped ($MCP_SCOUT_BIN not built)"
	echo "commands (in netns $PREFIX-scan):"
	echo "  mcp-scout scan 10.99.0.0/24 --no-fingerprint -o ndjson"
	echo "  rustscan -a 10.99.0.0/24 -p $LAN_PORTS -g"
	echo "  nmap -sT -Pn -n -T4 -p $LAN_PORTS -oG - 10.99.0.0/24"
	echo "raw outputs: $d"
	scripts/testnet.sh --prefix "$PREFIX" down >>"$d/testnet.log" 2>&1 || log "testnet down failed"
	TESTNET_UP=0
}

# ------------------------------------------------------------------ (c) memory

bench_mem() {
	local ns="$PREFIX-mem" d="$OUT/mem" cidr probes rss wall opens rows=() row cmd rc extra=()
	read -r -a extra <<<"${MEM_SCOUT_ARGS:-}"
	mkdir -p "$d"
	ensure_tools mem
	ns_fresh "$ns"
	# verify "no route": lo is the only link, no IPv4/IPv6 routes in the main table, and a
	# real connect to 10.0.0.1 fails at once with ENETUNREACH
	[[ $(ip -n "$ns" -o link show | wc -l) == 1 ]] || die "$ns has links besides lo"
	[[ -z $(ip -n "$ns" -4 route show table main) ]] || die "$ns has IPv4 routes"
	! ip -n "$ns" route get 10.0.0.1 >/dev/null 2>&1 || die "$ns has a route to 10.0.0.1"
	ip netns exec "$ns" python3 -c '
import errno, socket, sys, time
s = socket.socket(); s.setblocking(False); t = time.monotonic()
e = s.connect_ex(("10.0.0.1", 8000))
sys.exit(0 if e == errno.ENETUNREACH and time.monotonic() - t < 0.5 else 1)' ||
		die "connect in $ns did not fail at once with ENETUNREACH"
	log "mem: $ns verified: lo only, no route, ENETUNREACH at once"

	for cidr in 10.0.0.0/12 10.0.0.0/16; do
		probes=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1]).num_addresses)' "$cidr")
		local tag=${cidr//[.\/]/_}
		if have_scout; then
			cmd="mcp-scout scan $cidr -p 8000 --no-fingerprint --no-ping --force --timeout 50ms -o ndjson ${extra[*]}"
			log "mem: $cmd"
			ip netns exec "$ns" timeout -k 5 "$TOOL_TIMEOUT" /usr/bin/time -v -o "$d/scout.$tag.time" \
				"$MCP_SCOUT_BIN" scan "$cidr" -p 8000 --no-fingerprint --no-ping --force --timeout 50ms \
				-o ndjson "${extra[@]}" >"$d/scout.$tag.out" 2>"$d/scout.$tag.err" || log "mem: mcp-scout rc=$? on $cidr"
			rows+=("$(join_row "mcp-scout" "$cidr" "$probes" "$d/scout.$tag.time" "$d/scout.$tag.out")")
		fi
		# reference: the C loop (fixed memory: WINDOW slots)
		ip netns exec "$ns" timeout -k 5 "$TOOL_TIMEOUT" /usr/bin/time -v -o "$d/cloop.$tag.time" \
			"$CLOOP" -t 2 -w 1000 -T 50 -p 8000 "$cidr" >"$d/cloop.$tag.out" 2>"$d/cloop.$tag.err" || true
		rows+=("$(join_row "C loop 2t w1000" "$cidr" "$probes" "$d/cloop.$tag.time" "$d/cloop.$tag.out")")
	done

	echo
	echo "== (c) memory: sweep of an unroutable range in an empty netns ($ns: lo only, no route) =="
	printf '%-18s %-12s %9s %9s %12s %6s %4s\n' tool range probes wall_s peak_rss_MiB open rc
	local tool file out
	for row in "${rows[@]}"; do
		IFS=$SEP read -r tool cidr probes file out <<<"$row"
		rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$file" 2>/dev/null || true)
		wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s }' "$file" 2>/dev/null || true)
		rc=$(awk -F': ' '/Exit status/ { print $2 }' "$file" 2>/dev/null || true)
		opens=$(count_lines "$out")
		printf '%-18s %-12s %9s %9s %12s %6s %4s\n' "$tool" "$cidr" "$probes" "${wall:-?}" "${rss:-?}" "$opens" "${rc:-?}"
	done
	have_scout || echo "  mcp-scout: skipped ($MCP_SCOUT_BIN not built)"
	echo "  command: mcp-scout scan RANGE -p 8000 --no-fingerprint --no-ping --force --timeout 50ms -o ndjson${extra[*]:+ ${extra[*]}}"
	echo "  reference: connect_loop -t 2 -w 1000 -T 50 -p 8000 RANGE"
	echo "  (peak RSS from /usr/bin/time -v; 'open' should be 0)"
	echo "raw outputs: $d"
	ns_delete "$ns"
}

# ------------------------------------------------------------------ main

ulimit -n "$(ulimit -Hn)" 2>/dev/null || log "could not raise the open-file limit"
rm -rf "$OUT"
mkdir -p "$OUT"
log "scout binary: $MCP_SCOUT_BIN$(have_scout || echo ' (absent: its rows are skipped)')"
case $SECTION in
loopback) bench_loopback ;;
lan) bench_lan ;;
mem) bench_mem ;;
all)
	bench_loopback
	ns_delete "$PREFIX-lo"
	bench_lan
	bench_mem
	;;
esac
