#!/usr/bin/env bash
# bench-kube.sh - the large-watch figures of issue 10: a node-local pod watch over a big
# cluster (the kube-mock API server, a named MOCK: no API server can run here).
#
# Usage: scripts/bench-kube.sh            (needs root: network namespaces)
#
# Setup, all inside one fresh network namespace (lo only):
#   - kube-mock (scripts/peers/kube_mock.py) on 127.0.0.1:16443 holding BENCH_PODS pods
#     (default 5,000) over 100 nodes; BENCH_NODE_PODS of them (default 50) on the daemon's
#     node `bench-node`, each with a container port named `mcp` (8000) and podIP
#     127.3.0.1.., all Pending at start;
#   - one real MCP server (peer py1-streamable, FastMCP 1.x) on 0.0.0.0:8000, so it answers
#     on every one of those pod IPs;
#   - the release daemon with one job `kubernetes: { pods: node }` (interval 1h, so only
#     the watch acts) and `kubernetes.node: bench-node`.
# Then:
#   1. the daemon lists and watches (fieldSelector spec.nodeName=bench-node); idle RSS;
#   2. the pods turn Running one at a time: for each, the time from the phase change at the
#      API server (POST /control/pods/{ns}/{name}/phase) to the server being listed active
#      by GET /api/v1/servers (polled every 10 ms): p50, p95, max;
#   3. churn elsewhere: BENCH_CHURN updates of pods on other nodes (the field selector keeps
#      them away from this daemon; they must cost it nothing);
#   4. the pods are deleted one at a time: time to `gone` (p95).
# Prints the daemon's RSS (VmRSS now and VmHWM peak) after each step, and PASS/FAIL for the
# targets: peak RSS < 40 MB, Running -> confirmed finding p95 < 2 s. A missed target does not
# make the script fail; it exits non-zero only when the benchmark could not run.
#
# Environment: MCP_SCOUT_BIN (default target/release/mcp-scout; built if absent),
# BENCH_PODS, BENCH_NODE_PODS, BENCH_CHURN (default 2000), BENCH_OUT (default
# target/bench/kube), BENCH_KEEP=1 keeps the temporary directory.
#
# NETWORK SAFETY: every packet stays inside the namespace made here (lo only); every wait is
# bounded.
set -euo pipefail
export LC_ALL=C
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BIN="${MCP_SCOUT_BIN:-$ROOT/target/release/mcp-scout}"
OUT="${BENCH_OUT:-$ROOT/target/bench/kube}"
PODS="${BENCH_PODS:-5000}"
NODE_PODS="${BENCH_NODE_PODS:-50}"
CHURN="${BENCH_CHURN:-2000}"
API_PORT=19465
MOCK_PORT=16443
MINUTES=1
SAMPLE_S=1
BENCH_NAME=bench-kube
# shellcheck source=scripts/bench/daemon-lib.sh
source "$ROOT/scripts/bench/daemon-lib.sh"

case "${1:-}" in
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
"") ;;
*) die "no arguments expected (see --help)" ;;
esac
check_common
[[ $PODS =~ ^[1-9][0-9]{0,5}$ ]] || die "BENCH_PODS must be 1..999999"
[[ $NODE_PODS =~ ^[1-9][0-9]{0,2}$ && $NODE_PODS -le 250 && $NODE_PODS -le $PODS ]] ||
	die "BENCH_NODE_PODS must be 1..250 and <= BENCH_PODS"
[[ $CHURN =~ ^[0-9]{1,6}$ ]] || die "BENCH_CHURN must be 0..999999"
ensure_tools
mkdir -p "$OUT"
tmp_dir kube
D=$TMP_DIR
NS="msbk-$$"
ns_fresh "$NS"

# ---- the cluster: PODS pods, NODE_PODS of them on bench-node (Pending), the rest elsewhere
python3 - "$D/pods.json" "$PODS" "$NODE_PODS" <<'EOF'
import json, sys
path, total, mine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pods = []
for i in range(total):
    on = i < mine
    pods.append({
        "metadata": {"name": f"p{i}", "namespace": f"ns{i % 20}",
                     "labels": {"app.kubernetes.io/name": f"app{i % 50}", "team": f"t{i % 7}"}},
        "spec": {"nodeName": "bench-node" if on else f"node-{i % 99}",
                 "containers": [{"name": "c", "image": "x",
                                 "ports": [{"name": "mcp", "containerPort": 8000}]}]},
        "status": {"phase": "Pending" if on else "Running",
                   "podIP": f"127.3.{i // 250}.{i % 250 + 1}" if on else f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"},
    })
json.dump(pods, open(path, "w"))
EOF

in_ns "$NS" scripts/peers/run.sh kube-mock --listen "127.0.0.1:$MOCK_PORT" --pods "$D/pods.json" \
	>"$OUT/mock.out" 2>"$OUT/mock.err" &
STARTED_PIDS+=("$!")
MCP_SCOUT_PEERS_ANY_ADDR=1 in_ns "$NS" scripts/peers/run.sh py1-streamable --host 0.0.0.0 --port 8000 \
	>"$OUT/peer.out" 2>"$OUT/peer.err" &
STARTED_PIDS+=("$!")
for ((i = 0; i < 600; i++)); do
	grep -q '^READY' "$OUT/mock.out" 2>/dev/null && grep -q '^READY' "$OUT/peer.out" 2>/dev/null && break
	sleep 0.1
done
grep -q '^READY' "$OUT/mock.out" || die "kube-mock did not start: $(tail -3 "$OUT/mock.err")"
grep -q '^READY' "$OUT/peer.out" || die "the MCP peer did not start: $(tail -3 "$OUT/peer.err")"

cat >"$D/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: mock, cluster: {server: "http://127.0.0.1:$MOCK_PORT"}}]
users: [{name: scout, user: {token: bench}}]
contexts: [{name: mock, context: {cluster: mock, user: scout}}]
current-context: mock
EOF
cat >"$D/config.yaml" <<EOF
api: { listen: 127.0.0.1:$API_PORT }
store: { path: $D/inventory.db }
health: { enabled: false }
kubernetes:
  kubeconfig: $D/kubeconfig
  node: bench-node
  retry: { initial: 200ms, max: 2s }
jobs:
  - name: pods
    interval: 1h
    jitter: 0%
    kubernetes: { pods: node, labels: [app.kubernetes.io/name, team] }
EOF
T0=$(machine_stat)
start_daemon "$NS" "$D/config.yaml" kube
wait_ready "$NS" "$DAEMON_PID"

rss() { # rss LABEL: one line of the daemon's memory
	local now hwm
	now=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")
	hwm=$(hwm_kb "$DAEMON_PID")
	printf 'rss %-28s now %6.1f MB, peak %6.1f MB\n' "$1" "$(awk -v k="$now" 'BEGIN{print k/1024}')" \
		"$(awk -v k="$hwm" 'BEGIN{print k/1024}')"
}

# ---- the driver: runs in the namespace, talks to the mock and the daemon's API
cat >"$D/drive.py" <<'EOF'
import json, sys, time, urllib.request
mock, api, mine, churn, step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
POLL, LIMIT = 0.01, 30.0

def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")

def status_of(ip):
    v = call(api, "GET", "/api/v1/servers?status=all")
    for s in v["servers"]:
        if s["ip"] == ip:
            return s["status"]
    return None

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

def timed(action, ip, want):
    t0 = time.monotonic()
    action()
    while time.monotonic() - t0 < LIMIT:
        if status_of(ip) == want:
            return time.monotonic() - t0
        time.sleep(POLL)
    return None

if step == "idle":
    # wait until the daemon watches (a watch request with the node's field selector)
    for _ in range(300):
        reqs = call(mock, "GET", "/control/requests")
        if any(r["query"].get("watch") == "true" for r in reqs):
            sel = sorted({r["query"].get("fieldSelector", "") for r in reqs if r["path"] == "/api/v1/pods"})
            print(f"requests to the mock: {len(reqs)}; field selectors sent: {sel}")
            break
        time.sleep(0.1)
    else:
        sys.exit("the daemon never watched")
elif step in ("running", "deleted"):
    lat, missed = [], 0
    for i in range(mine):
        ns, name, ip = f"ns{i % 20}", f"p{i}", f"127.3.{i // 250}.{i % 250 + 1}"
        if step == "running":
            t = timed(lambda: call(mock, "POST", f"/control/pods/{ns}/{name}/phase", {"phase": "Running"}), ip, "active")
        else:
            t = timed(lambda: call(mock, "DELETE", f"/control/pods/{ns}/{name}"), ip, "gone")
        if t is None:
            missed += 1
        else:
            lat.append(t)
    what = "Running -> confirmed finding (listed active)" if step == "running" else "deleted -> gone"
    if lat:
        print(f"{what}: n={len(lat)} p50 {pct(lat, 50)*1000:.0f} ms, p95 {pct(lat, 95)*1000:.0f} ms, max {max(lat)*1000:.0f} ms; missed {missed}")
        print(f"P95_MS {pct(lat, 95)*1000:.0f}")
    else:
        print(f"{what}: none within {LIMIT} s")
        print("P95_MS 999999")
elif step == "churn":
    t0 = time.monotonic()
    for k in range(churn):
        i = mine + k % max(1, 5000 - mine)
        call(mock, "POST", f"/control/pods/ns{i % 20}/p{i}/phase", {"phase": "Running" if k % 2 else "Succeeded"})
    print(f"churn: {churn} phase changes of pods on other nodes in {time.monotonic()-t0:.1f} s")
EOF
drive() { in_ns "$NS" python3 "$D/drive.py" "http://127.0.0.1:$MOCK_PORT" "http://127.0.0.1:$API_PORT" "$NODE_PODS" "$CHURN" "$1"; }

echo "bench-kube: $PODS pods in kube-mock over 100 nodes, $NODE_PODS on bench-node; daemon $BIN"
drive idle | tee "$OUT/idle.txt"
sleep 2 # (the list's buffers settle; a measurement pause, not a wait for a process)
rss "after list+watch (idle)"
drive running | tee "$OUT/running.txt"
rss "after $NODE_PODS pods Running"
drive churn | tee "$OUT/churn.txt"
rss "after churn on other nodes"
drive deleted | tee "$OUT/deleted.txt"
rss "after $NODE_PODS pods deleted"
HWM=$(hwm_kb "$DAEMON_PID")
P95=$(awk '/^P95_MS/ { print $2 }' "$OUT/running.txt")
machine_note "$T0"
echo "target peak RSS < 40 MB: $(awk -v k="$HWM" 'BEGIN{printf "%.1f MB", k/1024}') $(verdict "$HWM < 40 * 1024")"
echo "target Running -> finding p95 < 2 s: ${P95} ms $(verdict "$P95 < 2000")"
