#!/usr/bin/env bash
# testnet.sh - virtual LAN of Linux network namespaces for mcp-scout tests.
#
# Usage:
#   scripts/testnet.sh [options] up            build the LAN (tears down an old one first)
#   scripts/testnet.sh [options] down          tear it down (works on half-built LANs)
#   scripts/testnet.sh [options] status        list namespaces and addresses
#   scripts/testnet.sh [options] exec NS CMD.. run CMD in namespace ${PREFIX}-NS
#                                              (NS = scan | rt | br | h1 .. hN)
#
# Options (flags override environment variables):
#   --prefix P        MS_PREFIX       namespace prefix (default: ms)
#   --hosts N         MS_HOSTS        number of host namespaces, 1..189 (default: 4)
#   --delay-ms D      MS_DELAY_MS     round-trip delay on the scanner's link, ms (default: 0)
#   --loss PCT        MS_LOSS         loss in percent, applied independently in EACH
#                                     direction of the scanner's link (default: 0)
#   --impair MODE     MS_IMPAIR       auto | netem | userspace (default: auto = netem if the
#                                     kernel has it, else the user-space TAP forwarder)
#   --seed S          MS_SEED         RNG seed for the user-space forwarder's loss
#   --ping-unpriv     MS_PING_UNPRIV=1  allow unprivileged ICMP sockets in scan/host namespaces
#   --fwd-rt          MS_FWD_RT=1     run the user-space forwarder with SCHED_FIFO priority 10
#                                     (accurate delays even when the CPUs are busy; default is
#                                     nice -10)
#   -h, --help
#   (also MS_PYTHON: python interpreter, default python3;
#    MS_STATE_ROOT: state directory root, default /run/mcp-scout-testnet)
#
# Layout (everything lives in namespaces created here; nothing is added to the
# machine's own network namespace):
#   ${P}-br    bridge br0 (ports vrt, vh1..vhN, and vscan or the TAP tbr)
#   ${P}-rt    router, eth0 10.99.0.1/24 + fd99::1/64, ip_forward=1, blackhole 10.99.1.0/24
#   ${P}-scan  scanner, eth0 10.99.0.2/24 + fd99::2/64, route 10.99.1.0/24 via 10.99.0.1
#   ${P}-hI    host I, eth0 10.99.0.(10+I)/24 + fd99::(10+I)/64 (the same digits: h1 is
#              10.99.0.11 and fd99::11), route 10.99.1.0/24 via 10.99.0.1
#   IPv6: the ULA fd99::/64 beside the IPv4 range (no DAD: usable at once), plus each
#   interface's link-local address, so mDNS also runs over ff02::fb
#   10.99.0.200-254: held by nobody (connects fail with EHOSTUNREACH after ARP timeout)
#   10.99.1.0/24:    silently dropped by the router (true timeouts)
#
# Impairment of the scanner's link (only when --delay-ms or --loss is non-zero):
#   netem      tc netem on both ends of the scanner's veth, delay D/2 and loss PCT each way
#   userspace  scanner eth0 is a TAP device; scripts/netimpair.py (run in ${P}-br)
#              copies frames between it and a second TAP (tbr) on br0, delaying each
#              frame by D/2 and dropping PCT% in each direction.
#
# State (forwarder pid, log, env file) lives in ${MS_STATE_ROOT}/${P}/.
# ${MS_STATE_ROOT}/${P}/env holds KEY=VALUE lines describing the running LAN.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

PREFIX="${MS_PREFIX:-ms}"
HOSTS="${MS_HOSTS:-4}"
DELAY_MS="${MS_DELAY_MS:-0}"
LOSS="${MS_LOSS:-0}"
IMPAIR="${MS_IMPAIR:-auto}"
SEED="${MS_SEED:-}"
PING_UNPRIV="${MS_PING_UNPRIV:-0}"
FWD_RT="${MS_FWD_RT:-0}"
PYTHON="${MS_PYTHON:-python3}"
STATE_ROOT="${MS_STATE_ROOT:-/run/mcp-scout-testnet}"

NET=10.99.0
NET6=fd99:
SCAN_IP="${NET}.2"
RT_IP="${NET}.1"
BLACKHOLE=10.99.1.0/24
MAX_HOSTS=189 # 10.99.0.11 .. 10.99.0.199; .200-.254 stay dead

log() { printf 'testnet[%s]: %s\n' "$PREFIX" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- helpers

is_number() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
is_zero() { awk -v x="$1" 'BEGIN { exit !(x + 0 == 0) }'; }

now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# wait_for TIMEOUT_S CMD... : poll CMD every 50 ms; bounded by count and time.
wait_for() {
	local timeout_s=$1
	shift
	local max_iter=$((timeout_s * 20 + 1)) deadline i
	deadline=$(($(now_ms) + timeout_s * 1000))
	for ((i = 0; i < max_iter; i++)); do
		if "$@"; then return 0; fi
		(($(now_ms) >= deadline)) && break
		sleep 0.05
	done
	"$@"
}

# pid_alive PID: running and not a zombie (a zombie waits for its parent to reap it)
pid_alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ "${stat:0:1}" != Z ]]
}

pids_gone() {
	local p
	for p in "$@"; do
		pid_alive "$p" && return 1
	done
	return 0
}

# kill_pids PID... : TERM, wait up to 3 s, then KILL, wait up to 1 s.
kill_pids() {
	(($# == 0)) && return 0
	kill -TERM "$@" 2>/dev/null || true
	wait_for 3 pids_gone "$@" && return 0
	kill -KILL "$@" 2>/dev/null || true
	wait_for 1 pids_gone "$@" || log "warning: pids still alive: $*"
}

ns_re() { printf '^%s-(br|scan|rt|h[0-9]+)$' "$PREFIX"; }

list_ns() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$(ns_re)" | sort -V || true
}

require_root() {
	((EUID == 0)) || die "must run as root"
	command -v ip >/dev/null || die "ip (iproute2) not found"
}

ns_sysctl() { ip netns exec "$1" sysctl -qw "$2"; }

# ---------------------------------------------------------------- down

stop_forwarder() {
	local pidfile="$STATE_DIR/netimpair.pid" pid
	[[ -f "$pidfile" ]] || return 0
	pid=$(<"$pidfile")
	if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'netimpair\.py'; then
		kill_pids "$pid"
	fi
	rm -f "$pidfile"
	if [[ -f "$STATE_DIR/netimpair.log" ]]; then
		grep -E 'forwarded=' "$STATE_DIR/netimpair.log" | tail -n 2 | sed 's/^/  /' >&2 || true
	fi
}

do_down() {
	local ns pids
	# The forwarder first: its TAP devices vanish with it, before any namespace goes.
	stop_forwarder
	for ns in $(list_ns); do
		pids=$(ip netns pids "$ns" 2>/dev/null | grep -vx "$$" || true)
		# shellcheck disable=SC2086 # word splitting of the pid list is intended
		[[ -n "$pids" ]] && kill_pids $pids
	done
	for ns in $(list_ns); do
		ip netns del "$ns" 2>/dev/null || log "warning: could not delete namespace $ns"
	done
	rm -rf "$STATE_DIR"
	rmdir "$STATE_ROOT" 2>/dev/null || true
	if [[ -n "$(list_ns)" ]]; then
		log "warning: namespaces left: $(list_ns | tr '\n' ' ')"
		return 1
	fi
	return 0
}

# ---------------------------------------------------------------- up

add_ns() {
	ip netns add "$1"
	ip -n "$1" link set lo up
}

# v6_of ADDR: the IPv6 twin of an IPv4 LAN address (10.99.0.11 -> fd99::11)
v6_of() { echo "$NET6:${1##*.}"; }

# add_v6 NS ADDR: the IPv6 twin of ADDR on NS's eth0 (nodad: usable at once)
add_v6() {
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0 \
		net.ipv6.conf.eth0.accept_dad=0
	ip -n "$1" -6 addr add "$(v6_of "$2")/64" dev eth0 nodad
}

# add_port BRPORT NS ADDR: veth BRPORT (on br0) <-> eth0 in NS with ADDR/24 and its v6 twin
add_port() {
	local port=$1 ns=$2 addr=$3
	ip -n "$NS_BR" link add "$port" type veth peer name eth0 netns "$ns"
	ip -n "$NS_BR" link set "$port" master br0
	ip -n "$NS_BR" link set "$port" up
	ip -n "$ns" addr add "$addr/24" dev eth0
	add_v6 "$ns" "$addr"
	ip -n "$ns" link set eth0 up
}

try_netem() {
	local half_us out
	command -v tc >/dev/null || {
		log "tc not found; netem unavailable"
		return 1
	}
	half_us=$(awk -v d="$DELAY_MS" 'BEGIN { printf "%d", d * 500 }')
	add_port vscan "$NS_SCAN" "$SCAN_IP"
	if out=$(ip netns exec "$NS_SCAN" tc qdisc add dev eth0 root netem \
		limit 100000 delay "${half_us}us" loss "${LOSS}%" 2>&1) &&
		out=$(ip netns exec "$NS_BR" tc qdisc add dev vscan root netem \
			limit 100000 delay "${half_us}us" loss "${LOSS}%" 2>&1); then
		return 0
	fi
	log "netem unavailable: ${out//$'\n'/ }"
	ip -n "$NS_BR" link del vscan 2>/dev/null || true
	return 1
}

start_forwarder() {
	local half_ms ready="$STATE_DIR/netimpair.ready" logf="$STATE_DIR/netimpair.log" pid
	local -a seed_args=() sched=(nice -n -10)
	[[ -f "$SCRIPT_DIR/netimpair.py" ]] || die "missing $SCRIPT_DIR/netimpair.py"
	command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
	[[ -c /dev/net/tun ]] || die "/dev/net/tun missing"
	[[ -n "$SEED" ]] && seed_args=(--seed "$SEED")
	# Higher CPU priority keeps the delays accurate while e.g. cargo builds run.
	# The forwarder never busy-loops, and the kernel's RT throttling still applies.
	FWD_SCHED="nice -10"
	if ((FWD_RT)); then
		if command -v chrt >/dev/null && chrt -f 10 true 2>/dev/null; then
			sched=(chrt -f 10)
			FWD_SCHED="SCHED_FIFO 10"
		else
			log "warning: SCHED_FIFO not permitted; using nice -10"
		fi
	fi
	half_ms=$(awk -v d="$DELAY_MS" 'BEGIN { printf "%.3f", d / 2 }')
	rm -f "$ready"
	# stdin/stdout/stderr detached from the caller so that callers reading our
	# output through a pipe are not kept waiting by the background forwarder.
	ip netns exec "$NS_BR" "${sched[@]}" "$PYTHON" -u "$SCRIPT_DIR/netimpair.py" \
		--tap-a tscan --tap-b tbr --delay-ms "$half_ms" --loss "$LOSS" \
		--ready-file "$ready" "${seed_args[@]}" </dev/null >>"$logf" 2>&1 &
	pid=$!
	echo "$pid" >"$STATE_DIR/netimpair.pid"
	fwd_ready() { [[ -s "$ready" ]] || ! pid_alive "$pid"; }
	wait_for 10 fwd_ready || die "forwarder not ready after 10 s (log: $logf)"
	if [[ ! -s "$ready" ]]; then
		die "forwarder exited: $(tail -n 5 "$logf" | tr '\n' ' ')"
	fi
	FWD_PID=$pid

	# tbr joins br0 first, so the scanner's first frames are not written to a down link
	ip -n "$NS_BR" link set tbr master br0
	ip -n "$NS_BR" link set tbr up
	# tscan becomes the scanner's eth0 (the forwarder's fd stays valid after the move)
	ip -n "$NS_BR" link set tscan netns "$NS_SCAN"
	ip -n "$NS_SCAN" link set tscan name eth0
	ip -n "$NS_SCAN" addr add "$SCAN_IP/24" dev eth0
	add_v6 "$NS_SCAN" "$SCAN_IP"
	ip -n "$NS_SCAN" link set eth0 up
	pid_alive "$pid" || die "forwarder died during setup (log: $logf)"
}

on_up_exit() {
	local rc=$?
	if ((rc != 0)); then
		log "up failed (rc=$rc); tearing down"
		do_down || true
	fi
}

do_up() {
	local i ns mode="none" host_list=""
	if [[ -n "$(list_ns)" || -d "$STATE_DIR" ]]; then
		log "existing testnet found; tearing it down first"
		do_down || die "could not tear down the old testnet"
	fi
	trap on_up_exit EXIT
	mkdir -p "$STATE_DIR"

	# bridge
	add_ns "$NS_BR"
	ip -n "$NS_BR" link add br0 type bridge
	ip -n "$NS_BR" link set br0 up

	# router: silently drops 10.99.1.0/24
	add_ns "$NS_RT"
	add_port vrt "$NS_RT" "$RT_IP"
	ns_sysctl "$NS_RT" net.ipv4.ip_forward=1
	ip -n "$NS_RT" route add blackhole "$BLACKHOLE"

	# hosts
	for ((i = 1; i <= HOSTS; i++)); do
		ns="$PREFIX-h$i"
		add_ns "$ns"
		add_port "vh$i" "$ns" "$NET.$((10 + i))"
		ip -n "$ns" route add "$BLACKHOLE" via "$RT_IP"
		host_list+="${host_list:+ }$NET.$((10 + i))"
	done

	# scanner
	add_ns "$NS_SCAN"
	if is_zero "$DELAY_MS" && is_zero "$LOSS"; then
		add_port vscan "$NS_SCAN" "$SCAN_IP"
		mode=none
	else
		if [[ "$IMPAIR" != userspace ]] && try_netem; then
			mode=netem
		elif [[ "$IMPAIR" == netem ]]; then
			die "--impair netem requested but netem is unavailable"
		else
			start_forwarder
			mode=userspace-tap
		fi
	fi
	ip -n "$NS_SCAN" route add "$BLACKHOLE" via "$RT_IP"

	if ((PING_UNPRIV)); then
		ns_sysctl "$NS_SCAN" net.ipv4.ping_group_range="0 2147483647"
		for ((i = 1; i <= HOSTS; i++)); do
			ns_sysctl "$PREFIX-h$i" net.ipv4.ping_group_range="0 2147483647"
		done
	fi

	cat >"$STATE_DIR/env" <<EOF
MS_PREFIX=$PREFIX
MS_SCAN_NS=$NS_SCAN
MS_SCAN_IP=$SCAN_IP
MS_ROUTER_IP=$RT_IP
MS_HOSTS=$HOSTS
MS_HOST_IPS="$host_list"
MS_DEAD_RANGE=$NET.200-$NET.254
MS_BLACKHOLE=$BLACKHOLE
MS_DELAY_MS=$DELAY_MS
MS_LOSS=$LOSS
MS_IMPAIR_MODE=$mode
MS_FORWARDER_PID=${FWD_PID:-}
EOF
	trap - EXIT

	echo "testnet '$PREFIX' up"
	echo "  scanner : ip netns exec $NS_SCAN ...   eth0 $SCAN_IP/24"
	echo "  router  : $NS_RT $RT_IP   ($BLACKHOLE blackholed: silent timeouts)"
	echo "  hosts   : $(for ((i = 1; i <= HOSTS; i++)); do printf '%s=%s ' "$PREFIX-h$i" "$NET.$((10 + i))"; done)"
	echo "  dead    : $NET.200-$NET.254 (no host; EHOSTUNREACH after ARP timeout)"
	case $mode in
	none) echo "  impair  : none" ;;
	netem) echo "  impair  : netem (rtt +${DELAY_MS} ms, loss ${LOSS}% each direction)" ;;
	userspace-tap) echo "  impair  : userspace-tap (rtt +${DELAY_MS} ms, loss ${LOSS}% each direction, forwarder pid $FWD_PID, $FWD_SCHED)" ;;
	esac
	echo "  state   : $STATE_DIR"
}

# ---------------------------------------------------------------- status

do_status() {
	local ns found=0 pid
	for ns in $(list_ns); do
		found=1
		echo "$ns:"
		ip -n "$ns" -br addr show 2>/dev/null | grep -v '^lo ' | sed 's/^/  /' || true
	done
	if ((!found)); then
		echo "testnet '$PREFIX': no namespaces"
		return 0
	fi
	if [[ -f "$STATE_DIR/env" ]]; then
		echo "impairment: $(grep '^MS_IMPAIR_MODE=' "$STATE_DIR/env" | cut -d= -f2)" \
			"(delay $(grep '^MS_DELAY_MS=' "$STATE_DIR/env" | cut -d= -f2) ms," \
			"loss $(grep '^MS_LOSS=' "$STATE_DIR/env" | cut -d= -f2)%)"
	fi
	if [[ -f "$STATE_DIR/netimpair.pid" ]]; then
		pid=$(<"$STATE_DIR/netimpair.pid")
		if pid_alive "$pid"; then
			echo "forwarder: pid $pid running"
		else
			echo "forwarder: pid $pid NOT running"
		fi
	fi
}

# ---------------------------------------------------------------- main

CMD=""
EXEC_ARGS=()
while (($#)); do
	case $1 in
	--prefix)
		PREFIX=${2:?--prefix needs a value}
		shift 2
		;;
	--prefix=*)
		PREFIX=${1#*=}
		shift
		;;
	--hosts)
		HOSTS=${2:?--hosts needs a value}
		shift 2
		;;
	--hosts=*)
		HOSTS=${1#*=}
		shift
		;;
	--delay-ms)
		DELAY_MS=${2:?--delay-ms needs a value}
		shift 2
		;;
	--delay-ms=*)
		DELAY_MS=${1#*=}
		shift
		;;
	--loss)
		LOSS=${2:?--loss needs a value}
		shift 2
		;;
	--loss=*)
		LOSS=${1#*=}
		shift
		;;
	--impair)
		IMPAIR=${2:?--impair needs a value}
		shift 2
		;;
	--impair=*)
		IMPAIR=${1#*=}
		shift
		;;
	--seed)
		SEED=${2:?--seed needs a value}
		shift 2
		;;
	--seed=*)
		SEED=${1#*=}
		shift
		;;
	--ping-unpriv)
		PING_UNPRIV=1
		shift
		;;
	--fwd-rt)
		FWD_RT=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	up | down | status)
		[[ -z "$CMD" ]] || die "only one command allowed"
		CMD=$1
		shift
		;;
	exec)
		[[ -z "$CMD" ]] || die "only one command allowed"
		CMD="exec"
		shift
		(($# >= 2)) || die "usage: testnet.sh exec NS CMD..."
		EXEC_ARGS=("$@")
		break
		;;
	*)
		usage >&2
		die "unknown argument: $1"
		;;
	esac
done

[[ -n "$CMD" ]] || {
	usage >&2
	exit 2
}
[[ "$PREFIX" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$ ]] ||
	die "invalid prefix '$PREFIX' (letters, digits, _ and -, at most 40 chars)"
if ! [[ "$HOSTS" =~ ^[1-9][0-9]{0,2}$ ]] || ((HOSTS < 1 || HOSTS > MAX_HOSTS)); then
	die "--hosts must be an integer in 1..$MAX_HOSTS"
fi
is_number "$DELAY_MS" || die "--delay-ms must be a non-negative number"
if ! is_number "$LOSS" || ! awk -v x="$LOSS" 'BEGIN { exit !(x <= 100) }'; then
	die "--loss must be a number in 0..100"
fi
[[ "$IMPAIR" =~ ^(auto|netem|userspace)$ ]] || die "--impair must be auto, netem or userspace"
[[ -z "$SEED" || "$SEED" =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"
[[ "$PING_UNPRIV" =~ ^[01]$ ]] || die "MS_PING_UNPRIV must be 0 or 1"
[[ "$FWD_RT" =~ ^[01]$ ]] || die "MS_FWD_RT must be 0 or 1"

NS_BR="$PREFIX-br"
NS_RT="$PREFIX-rt"
NS_SCAN="$PREFIX-scan"
STATE_DIR="$STATE_ROOT/$PREFIX"
FWD_PID=""
FWD_SCHED=""

case $CMD in
up)
	require_root
	do_up
	;;
down)
	require_root
	do_down
	;;
status)
	do_status
	;;
exec)
	target=${EXEC_ARGS[0]}
	[[ "$target" == "$PREFIX-"* ]] || target="$PREFIX-$target"
	exec ip netns exec "$target" "${EXEC_ARGS[@]:1}"
	;;
esac
