#!/usr/bin/env bash
# bench-discovery.sh - announce-based discovery figures (needs root: network namespaces).
#
#   (a) mDNS: time from an announcement (python-zeroconf, in a test namespace) to a confirmed
#       MCP finding printed by `mcp-scout watch --mdns --fingerprint`: p50 and p95 over
#       ${ANNOUNCEMENTS:-20} announcements of a real FastMCP server.
#   (b) DNS SRV: time to resolve 100 SRV names (dnsmasq in the namespace) with
#       --dns-concurrency 1 and 16, as the wall time of `scan --srv ... --no-fingerprint`.
#
# NETWORK SAFETY: everything runs in namespaces made by scripts/testnet.sh; mDNS never runs in
# the machine's own namespace.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ $(id -u) == 0 ]] || { echo "bench-discovery: needs root" >&2; exit 1; }
P="mbd$$"
BIN="${MCP_SCOUT_BIN:-$ROOT/target/release/mcp-scout}"
scripts/peers/setup.sh >&2
[[ -x "$BIN" ]] || cargo build --release --locked
cleanup() { scripts/testnet.sh --prefix "$P" down >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
scripts/testnet.sh --prefix "$P" --hosts 1 up >/dev/null

python3 - "$P" "$BIN" "${ANNOUNCEMENTS:-20}" <<'PY'
import json, os, subprocess, sys, threading, time, queue, statistics
P, BIN, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
root = os.getcwd()
def ns(n): return ["ip", "netns", "exec", f"{P}-{n}"]
def lines_of(proc, q):
    for line in proc.stdout:
        q.put((time.monotonic(), line.rstrip("\n")))
env = dict(os.environ, MCP_SCOUT_PEERS_ANY_ADDR="1")
srv = subprocess.Popen(ns("h1") + ["env", "MCP_SCOUT_PEERS_ANY_ADDR=1", f"{root}/scripts/peers/run.sh", "py1-stateless-json",
                       "--host", "10.99.0.11", "--port", "8765"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
assert srv.stdout.readline().startswith("READY")
pub = subprocess.Popen(ns("h1") + [f"{root}/target/peers/mdns/bin/python", f"{root}/scripts/peers/mdns_publish.py",
                       "--interface-ip", "10.99.0.11", "--no-probe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, bufsize=1)
assert pub.stdout.readline().startswith("READY")
watch = subprocess.Popen(ns("scan") + [BIN, "watch", "--mdns", "--fingerprint"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, bufsize=1)
q = queue.Queue()
threading.Thread(target=lines_of, args=(watch, q), daemon=True).start()
time.sleep(1.0)  # let the browser start before the first timed announcement
lat = []
for i in range(N):
    name = f"bench{i}"
    t0 = time.monotonic()
    pub.stdin.write(f"announce {name} _mcp._tcp.local. 10.99.0.11 8765 path=/mcp\n"); pub.stdin.flush()
    assert pub.stdout.readline().startswith("OK")
    deadline = t0 + 15
    while True:
        t, line = q.get(timeout=max(0.1, deadline - time.monotonic()))
        ev = json.loads(line)
        if ev["event"] == "fingerprinted" and ev["name"] == f"{name}._mcp._tcp.local.":
            assert ev["record"]["kind"] == "mcp", ev
            lat.append(t - t0); break
lat_ms = sorted(x * 1000 for x in lat)
p = lambda f: lat_ms[min(len(lat_ms) - 1, int(round(f * (len(lat_ms) - 1))))]
print(f"== (a) mDNS announcement -> confirmed MCP finding ({N} announcements, watch --mdns --fingerprint) ==")
print(f"p50 {p(0.5):.0f} ms   p95 {p(0.95):.0f} ms   min {lat_ms[0]:.0f} ms   max {lat_ms[-1]:.0f} ms")
for x in (watch, pub, srv): x.terminate()
PY

ip netns exec "$P-scan" scripts/peers/dnsmasq.sh up "$P" 10.99.0.2 >/dev/null
args=()
for i in $(seq -w 0 99); do args+=(--srv "_mcp._tcp.svc0$i.example.test"); done
echo "== (b) 100 SRV names (dnsmasq in the namespace), scan --srv x100 --no-fingerprint =="
for c in 1 16; do
	s=$(date +%s.%N)
	ip netns exec "$P-scan" "$BIN" scan "${args[@]}" --dns-server 10.99.0.2 --dns-concurrency "$c" --no-fingerprint --report all -o json >/tmp/bench-srv.$$.json 2>/dev/null || true
	e=$(date +%s.%N)
	n=$(python3 -c "import json;d=json.load(open('/tmp/bench-srv.$$.json'));print(len(d['findings'][0]['announced_as']) if d['findings'] else 0)")
	printf 'dns-concurrency %-3s wall %.3f s  (names merged into the one target: %s)\n' "$c" "$(echo "$e - $s" | bc)" "$n"
done
rm -f /tmp/bench-srv.$$.json
ip netns exec "$P-scan" scripts/peers/dnsmasq.sh down "$P" >/dev/null 2>&1 || true
