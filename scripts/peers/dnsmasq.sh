#!/usr/bin/env bash
# dnsmasq.sh - authoritative-only DNS peer for the DNS SRV discovery tests.
#
# Usage:
#   scripts/peers/dnsmasq.sh up NAME LISTEN_IP [PORT]     start instance NAME (default port 53)
#   scripts/peers/dnsmasq.sh down NAME [LISTEN_IP [PORT]] stop it, remove its state (idempotent)
#   scripts/peers/dnsmasq.sh query IP PORT QNAME [QTYPE]  one UDP query (stdlib python3); prints
#                                                         the header, then one line per record
#
# `up` copies scripts/peers/dns-records.conf (records under example.test only) into the state
# dir ${MCP_SCOUT_DNSMASQ_STATE:-/run/mcp-scout-dnsmasq}/NAME/, writes dnsmasq.conf there and
# starts dnsmasq (as a daemon, pid file in the state dir) bound ONLY to LISTEN_IP:PORT (UDP
# and TCP). It never forwards (no-resolv, no upstream servers), reads neither /etc/hosts nor
# /etc/resolv.conf, answers NXDOMAIN for missing names under example.test and REFUSED for
# any other zone. Queries are logged to STATE/queries.log. Once a query for
# _mcp._tcp.example.test SRV is answered, `up` prints exactly one stdout line:
#   READY LISTEN_IP:PORT
# LISTEN_IP must be in 127.0.0.0/8, unless this shell runs inside a test namespace
# (`ip netns exec P-scan scripts/peers/dnsmasq.sh up t1 10.99.0.2`). Instances with
# different NAMEs coexist. TTL of every record: local-ttl (MCP_SCOUT_DNSMASQ_TTL, default 30).
#
# `query` output:
#   rcode=NOERROR aa=1 tc=0 qd=1 an=3 ns=0 ar=3
#   ANSWER _mcp._tcp.example.test. 30 SRV 10 60 8000 srv1.example.test.
#   ADDITIONAL srv1.example.test. 30 A 10.99.0.11
# (exit 0 when an answer came, whatever its rcode; 1 on timeout or a malformed reply)

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_ROOT="${MCP_SCOUT_DNSMASQ_STATE:-/run/mcp-scout-dnsmasq}"
TTL="${MCP_SCOUT_DNSMASQ_TTL:-30}"
RECORDS="$here/dns-records.conf"

log() { printf 'dnsmasq.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
usage() {
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

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

pid_alive() {
	local stat
	kill -0 "$1" 2>/dev/null || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ "${stat:0:1}" != Z ]]
}
pid_gone() { ! pid_alive "$1"; }

# our_pid DIR: the pid in DIR/dnsmasq.pid, if that process is the dnsmasq started on DIR's conf
our_pid() {
	local dir=$1 pid
	[[ -f "$dir/dnsmasq.pid" ]] || return 1
	pid=$(<"$dir/dnsmasq.pid")
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	pid_alive "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/dnsmasq.conf" || return 1
	echo "$pid"
}

find_dnsmasq() {
	if command -v dnsmasq >/dev/null 2>&1; then
		command -v dnsmasq
	elif [[ -x /usr/sbin/dnsmasq ]]; then
		echo /usr/sbin/dnsmasq
	else
		die "dnsmasq not found (apt-get install dnsmasq-base, or scripts/peers/setup.sh)"
	fi
}

# in_test_netns: this process is in a named network namespace (ip netns exec), not PID 1's
in_test_netns() {
	local own f init
	own=$(stat -L -c '%d:%i' /proc/self/ns/net 2>/dev/null) || return 1
	init=$(stat -L -c '%d:%i' /proc/1/ns/net 2>/dev/null || true)
	[[ -n "$init" && "$init" == "$own" ]] && return 1
	[[ -d /run/netns ]] || return 1
	for f in /run/netns/*; do
		[[ -e "$f" ]] || continue
		[[ "$(stat -c '%d:%i' "$f" 2>/dev/null)" == "$own" ]] && return 0
	done
	return 1
}

check_name() {
	[[ "$1" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$ ]] ||
		die "invalid NAME '$1' (letters, digits, _ and -, at most 40 chars)"
}

check_ip_port() {
	local ip=$1 port=$2
	[[ "$ip" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
		die "LISTEN_IP must be an IPv4 address, not '$ip'"
	local o
	for o in "${BASH_REMATCH[@]:1}"; do
		((10#$o <= 255)) || die "LISTEN_IP must be an IPv4 address, not '$ip'"
	done
	if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
		die "PORT must be in 1..65535, not '$port'"
	fi
}

# ---------------------------------------------------------------- query (stdlib python)

dns_query() { # IP PORT QNAME QTYPE
	python3 - "$@" <<'PY'
import ipaddress, os, random, socket, struct, sys

ip, port, qname, qtype = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].upper()
TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255}
NAMES = {v: k for k, v in TYPES.items()}
RCODES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"]
qt = TYPES.get(qtype) or int(qtype)


def encode(name):
    out = b""
    for label in name.rstrip(".").split(".") if name.strip(".") else []:
        raw = label.encode()
        if not 0 < len(raw) < 64:
            sys.exit(f"bad label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def read_name(msg, off):
    labels, jumps, end = [], 0, None
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if jumps > 64:
                raise ValueError("compression loop")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            continue
        if n == 0:
            off += 1
            break
        labels.append(msg[off + 1 : off + 1 + n].decode("ascii", "backslashreplace"))
        off += 1 + n
    return (".".join(labels) + "." if labels else "."), (end if end is not None else off)


def rdata_text(msg, t, off, rdlen):
    rd = msg[off : off + rdlen]
    if t == 1 and rdlen == 4:
        return str(ipaddress.IPv4Address(rd))
    if t == 28 and rdlen == 16:
        return str(ipaddress.IPv6Address(rd))
    if t in (2, 5, 12):
        return read_name(msg, off)[0]
    if t == 33:
        prio, weight, port = struct.unpack("!HHH", rd[:6])
        return f"{prio} {weight} {port} {read_name(msg, off + 6)[0]}"
    if t == 16:
        parts, i = [], 0
        while i < len(rd):
            n = rd[i]
            parts.append('"' + rd[i + 1 : i + 1 + n].decode("utf-8", "backslashreplace") + '"')
            i += 1 + n
        return " ".join(parts)
    if t == 6:
        mname, o = read_name(msg, off)
        rname, o = read_name(msg, o)
        return f"{mname} {rname} " + " ".join(str(x) for x in struct.unpack("!IIIII", msg[o : o + 20]))
    return "\\# %d %s" % (rdlen, rd.hex())


qid = random.randrange(65536)
query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode(qname) + struct.pack("!HH", qt, 1)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(1.0)
    msg = None
    for _ in range(3):  # bounded: 3 tries of 1 s
        s.sendto(query, (ip, port))
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
            msg = data
            break
if msg is None:
    print(f"timeout: no answer from {ip}:{port}")
    sys.exit(1)
try:
    _, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    rc = flags & 0xF
    print(
        f"rcode={RCODES[rc] if rc < len(RCODES) else rc} aa={flags >> 10 & 1} tc={flags >> 9 & 1} "
        f"qd={qd} an={an} ns={ns} ar={ar}"
    )
    off = 12
    for _ in range(qd):
        _, off = read_name(msg, off)
        off += 4
    for section, count in (("ANSWER", an), ("AUTHORITY", ns), ("ADDITIONAL", ar)):
        for _ in range(count):
            name, off = read_name(msg, off)
            t, cls, ttl, rdlen = struct.unpack("!HHIH", msg[off : off + 10])
            off += 10
            if off + rdlen > len(msg):
                raise ValueError("rdata runs past the message")
            print(f"{section} {name} {ttl} {NAMES.get(t, f'TYPE{t}')} {rdata_text(msg, t, off, rdlen)}")
            off += rdlen
except (ValueError, struct.error, IndexError) as e:
    print(f"malformed reply: {e}")
    sys.exit(1)
PY
}

dns_ready() { # IP PORT
	local out
	out=$(dns_query "$1" "$2" _mcp._tcp.example.test SRV 2>/dev/null) || return 1
	[[ "$out" == rcode=NOERROR* && "$out" == *$'\nANSWER '* ]]
}

# ---------------------------------------------------------------- up / down

do_down() { # NAME
	local dir="$STATE_ROOT/$1" pid
	[[ -d "$dir" ]] || return 0
	if pid=$(our_pid "$dir"); then
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_for 3 pid_gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_for 1 pid_gone "$pid" || die "dnsmasq pid $pid still alive"
		fi
	fi
	rm -rf "$dir"
	rmdir "$STATE_ROOT" 2>/dev/null || true
}

do_up() { # NAME IP PORT
	local name=$1 ip=$2 port=$3 dir="$STATE_ROOT/$1" bin pid
	if [[ ! "$ip" =~ ^127\. ]] && ! in_test_netns; then
		die "LISTEN_IP $ip is not loopback and this is not a test namespace (ip netns exec ...)"
	fi
	[[ -f "$RECORDS" ]] || die "missing $RECORDS"
	bin=$(find_dnsmasq)
	if pid=$(our_pid "$dir"); then
		die "instance '$name' already running (pid $pid); run: $0 down $name"
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	cp "$RECORDS" "$dir/records.conf"
	cat >"$dir/dnsmasq.conf" <<EOF
# written by scripts/peers/dnsmasq.sh up $name $ip $port
# authoritative-only: no upstream, no /etc/hosts, no /etc/resolv.conf, no DHCP
no-resolv
no-poll
no-hosts
domain-needed
bogus-priv
local=/example.test/
bind-interfaces
listen-address=$ip
port=$port
local-ttl=$TTL
pid-file=$dir/dnsmasq.pid
log-queries
log-facility=$dir/queries.log
conf-file=$dir/records.conf
EOF
	# daemon mode: the parent returns once the sockets are bound (or with the error)
	if ! "$bin" --conf-file="$dir/dnsmasq.conf" </dev/null >"$dir/start.log" 2>&1; then
		log "dnsmasq failed to start: $(tr '\n' ' ' <"$dir/start.log")"
		do_down "$name"
		exit 1
	fi
	if ! wait_for 2 our_pid "$dir" >/dev/null; then
		log "dnsmasq did not write its pid file: $(tr '\n' ' ' <"$dir/start.log")"
		do_down "$name"
		exit 1
	fi
	if ! wait_for 5 dns_ready "$ip" "$port"; then
		log "dnsmasq on $ip:$port does not answer; log: $(tail -n 5 "$dir/queries.log" 2>/dev/null | tr '\n' ' ')"
		do_down "$name"
		exit 1
	fi
	echo "READY $ip:$port"
}

# ---------------------------------------------------------------- main

cmd=${1:-}
case $cmd in
up)
	(($# >= 3 && $# <= 4)) || {
		usage >&2
		exit 2
	}
	check_name "$2"
	check_ip_port "$3" "${4:-53}"
	[[ "$TTL" =~ ^[0-9]{1,7}$ ]] || die "MCP_SCOUT_DNSMASQ_TTL must be a number of seconds"
	((EUID == 0)) || die "must run as root"
	do_up "$2" "$3" "$((10#${4:-53}))"
	;;
down)
	(($# >= 2 && $# <= 4)) || {
		usage >&2
		exit 2
	}
	check_name "$2"
	do_down "$2"
	;;
query)
	(($# >= 4 && $# <= 5)) || {
		usage >&2
		exit 2
	}
	check_ip_port "$2" "$3"
	dns_query "$2" "$((10#$3))" "$4" "${5:-SRV}"
	;;
-h | --help)
	usage
	;;
*)
	usage >&2
	exit 2
	;;
esac
