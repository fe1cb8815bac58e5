#!/usr/bin/env bash
# Smoke-check the registry peers of the sinks by hand, the way the tests will use them.
#
#   scripts/peers/smoke-registries.sh [--skip-contextforge]
#
# For each of mesh-registry, etcd (plain and --auth), consul-mock, webhook-receiver, the
# registry decoys and contextforge: start it with run.sh on 127.0.0.x (port 0), wait for its
# READY line (bounded), talk to it with curl, stop it with SIGTERM, and check that none of its
# processes is left. Then read scripts/peers/kailash-example.json with the real Kailash reader
# (fresh last_seen: accepted; one extra key: the whole file dropped). Prints one line per check
# and the startup times; exits 1 at the first failure. Loopback only; every wait is bounded.
# Needs scripts/peers/setup.sh, curl, openssl and python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="${MCP_SCOUT_PEERS:-$(cd "$here/../.." && pwd)/target/peers}"
export MCP_SCOUT_PEERS="$peers"
skip_cf=0
[[ "${1:-}" == --skip-contextforge ]] && skip_cf=1

work="$(mktemp -d)"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() { echo "ok   $*"; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

descendants() { # pid -> all descendant pids
	local c
	for c in $(pgrep -P "$1" || true); do
		echo "$c"
		descendants "$c"
	done
}

# start NAME TIMEOUT_S ARGS... ; sets $addr, $pid, $out, $took
start() {
	local name="$1" timeout="$2" t0 i
	shift 2
	out="$work/$name.$RANDOM.out"
	: >"$out"
	t0="$(now)"
	"$here/run.sh" "$name" "$@" >"$out" 2>"$out.err" &
	pid=$!
	pids+=("$pid")
	for ((i = 0; i < timeout * 20; i++)); do
		grep -q '^READY ' "$out" && break
		kill -0 "$pid" 2>/dev/null || {
			tail -n 20 "$out.err" >&2
			fail "$name exited before READY"
		}
		sleep 0.05
	done
	grep -q '^READY ' "$out" || fail "$name: no READY within $timeout s"
	took="$(since "$t0")"
	addr="$(awk '/^READY /{print $2; exit}' "$out")"
	[[ "$(grep -c '^READY ' "$out")" == 1 ]] || fail "$name printed more than one READY line"
	ok "$name READY $addr after $took s"
}

stop() { # name
	local kids i t0
	kids="$(descendants "$pid")"
	t0="$(now)"
	kill -TERM "$pid"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "$1 still running 10 s after SIGTERM"
	wait "$pid" 2>/dev/null || true
	for ((i = 0; i < 40; i++)); do
		local left=""
		for k in $kids; do kill -0 "$k" 2>/dev/null && left+=" $k"; done
		[[ -z "$left" ]] && break
		sleep 0.05
	done
	[[ -z "$left" ]] || fail "$1 left processes:$left"
	ok "$1 stopped by SIGTERM in $(since "$t0") s, no process left (it had $(echo "$kids" | wc -w) child processes)"
}

expect() { # description expected actual
	[[ "$3" == *"$2"* ]] || fail "$1: expected '$2' in: ${3:0:400}"
	ok "$1"
}

b64() { printf %s "$1" | base64 -w0; }
J='Content-Type: application/json'

# --- MCP Mesh registry
start mesh-registry 30 --host 127.0.0.61 --port 0
B="http://$addr"
r="$(curl -s -m 5 "$B/health")"
expect "mesh GET /health" '"status":"healthy"' "$r"
hb='{"agent_id":"127-0-0-1-8000-3fa81c2b","name":"127-0-0-1-8000-3fa81c2b","agent_type":"mcp_agent","runtime":"python","version":"1.0.0","http_host":"127.0.0.1","http_port":8000,"namespace":"default","tools":[{"function_name":"get_forecast","capability":"get_forecast","description":"Forecast","version":"1.0.0","tags":["mcp-scout"]}]}'
r="$(curl -s -m 5 -H "$J" -d "$hb" "$B/heartbeat")"
expect "mesh POST /heartbeat" '"status":"success"' "$r"
r="$(curl -s -m 5 "$B/agents")"
expect "mesh GET /agents lists it" '"id":"127-0-0-1-8000-3fa81c2b"' "$r"
expect "mesh endpoint has no path" '"endpoint":"http://127.0.0.1:8000"' "$r"
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -I "$B/heartbeat/127-0-0-1-8000-3fa81c2b")"
expect "mesh HEAD /heartbeat/{id} answers" '20' "$r"
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X DELETE "$B/agents/127-0-0-1-8000-3fa81c2b")"
expect "mesh DELETE /agents/{id}" '204' "$r"
stop mesh-registry

# --- etcd
start etcd 30 --host 127.0.0.62 --port 0
B="http://$addr"
lease="$(curl -s -m 5 -d '{"TTL":60}' "$B/v3/lease/grant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ID"])')"
r="$(curl -s -m 5 -d "{\"key\":\"$(b64 /mcp-scout/servers/a)\",\"value\":\"$(b64 '{"id":"a"}')\",\"lease\":\"$lease\"}" "$B/v3/kv/put")"
expect "etcd put under a lease" '"revision"' "$r"
r="$(curl -s -m 5 -d "{\"key\":\"$(b64 /mcp-scout/servers/)\",\"range_end\":\"$(b64 /mcp-scout/servers0)\"}" "$B/v3/kv/range")"
expect "etcd range finds it" "\"value\":\"$(b64 '{"id":"a"}')\"" "$r"
expect "etcd range: the lease" "\"lease\":\"$lease\"" "$r"
r="$(curl -s -m 5 -d "{\"ID\":\"$lease\"}" "$B/v3/lease/keepalive")"
expect "etcd keepalive" '"TTL":"60"' "$r"
stop etcd

start etcd 30 --host 127.0.0.62 --port 0 --auth root:smoke-pw-1
B="http://$addr"
r="$(curl -s -m 5 -d "{\"key\":\"$(b64 /x)\",\"value\":\"$(b64 v)\"}" "$B/v3/kv/put")"
expect "etcd --auth refuses an anonymous put" 'user name is empty' "$r"
tok="$(curl -s -m 5 -d '{"name":"root","password":"smoke-pw-1"}' "$B/v3/auth/authenticate" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
r="$(curl -s -m 5 -H "Authorization: $tok" -d "{\"key\":\"$(b64 /x)\",\"value\":\"$(b64 v)\"}" "$B/v3/kv/put")"
expect "etcd --auth put with the token" '"revision"' "$r"
stop etcd

# --- Consul mock
start consul-mock 10 --host 127.0.0.63 --port 0 --token smoke-token
B="http://$addr"
T='X-Consul-Token: smoke-token'
reg='{"ID":"127-0-0-1-8000-3fa81c2b","Name":"mcp","Address":"127.0.0.1","Port":8000,"Tags":["mcp","transport:streamable-http","mcp-scout"],"Meta":{"mcp_path":"/mcp"},"Check":{"CheckID":"mcp-scout:127-0-0-1-8000-3fa81c2b","TTL":"90s","DeregisterCriticalServiceAfter":"10m"}}'
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT -H "$T" -d "$reg" "$B/v1/agent/service/register?replace-existing-checks=true")"
expect "consul register" '200' "$r"
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT -H "$T" "$B/v1/agent/check/pass/mcp-scout:127-0-0-1-8000-3fa81c2b?note=ok")"
expect "consul check pass" '200' "$r"
r="$(curl -s -m 5 -H "$T" "$B/v1/agent/checks")"
expect "consul check is passing" '"Status": "passing"' "$r"
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT -d "$reg" "$B/v1/agent/service/register")"
expect "consul without the token: 403" '403' "$r"
r="$(curl -s -m 5 -X PUT -H "$T" "$B/v1/agent/check/pass/nope")"
expect "consul unknown check: Consul's message" 'does not have associated TTL' "$r"
r="$(curl -s -m 5 "$B/mock/requests" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d), sum(1 for x in d if x["problems"]))')"
expect "consul mock recorded 5 requests, 2 with problems" '5 2' "$r"
stop consul-mock

# --- webhook receiver
start webhook-receiver 10 --host 127.0.0.64 --port 0 --secret smoke-secret
B="http://$addr"
ev='{"specversion":"1.0","id":"42","source":"mcp-scout","type":"io.mcp-scout.server.appeared","datacontenttype":"application/json","data":{"id":"a"}}'
sig="$(printf %s "$ev" | openssl dgst -sha256 -hmac smoke-secret | awk '{print $NF}')"
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/cloudevents+json' -H "X-MCP-Scout-Signature: sha256=$sig" -d "$ev" "$B/hook")"
expect "webhook good signature: 200" '200' "$r"
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/cloudevents+json' -H "X-MCP-Scout-Signature: sha256=${sig/a/b}" -d "$ev" "$B/hook")"
expect "webhook bad signature: 401" '401' "$r"
curl -s -m 5 -o /dev/null -X POST "$B/control/fail"
r="$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/cloudevents+json' -H "X-MCP-Scout-Signature: sha256=$sig" -d "$ev" "$B/hook")"
expect "webhook fail mode: 500" '500' "$r"
r="$(curl -s -m 5 "$B/received" | python3 -c 'import json,sys; d=json.load(sys.stdin); print([(x["verified"], len(x["problems"]), x["status"]) for x in d])')"
expect "webhook recorded all three" "[(True, 0, 200), (False, 1, 401), (True, 0, 500)]" "$r"
stop webhook-receiver

# --- registry decoys
for d in registry-html registry-huge registry-hang; do
	start "$d" 10 --host 127.0.0.65 --port 0
	r="$(curl -s -m 3 -o /dev/null -w '%{http_code} %{content_type} %{size_download}' -X POST -d '{}' "http://$addr/heartbeat" || true)"
	case "$d" in
	registry-html) expect "$d answers HTML" '200 text/html' "$r" ;;
	registry-huge) expect "$d answers 50 MiB" '200 application/json 52428800' "$r" ;;
	registry-hang) expect "$d never answers (curl -m 3 gave up)" '000' "$r" ;;
	esac
	stop "$d"
done

# --- Kailash reader
py="$peers/kailash/bin/python"
[[ -x "$py" ]] || fail "$py missing: run scripts/peers/setup.sh"
python3 -c '
import json, sys, time
d = json.load(open(sys.argv[1]))
for s in d["servers"].values():
    s["last_seen"] = time.time() - 5
json.dump(d, open(sys.argv[2], "w"))
d["servers"]["127-0-0-34-8000-77aa55cc"]["source"] = "mcp-scout"
json.dump(d, open(sys.argv[3], "w"))
' "$here/kailash-example.json" "$work/k-ok.json" "$work/k-extra.json"
r="$("$py" "$here/kailash_read.py" "$work/k-ok.json" 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["count"], d["healthy_only"], [s["transport"] for s in d["servers"]])')"
expect "kailash reader accepts the 16-key file" "3 ['127-0-0-31-8000-3fa81c2b'] ['http', 'sse', 'http']" "$r"
if "$py" "$here/kailash_read.py" "$work/k-extra.json" >"$work/k-extra.out" 2>/dev/null; then
	fail "kailash reader accepted a file with an extra key"
fi
expect "kailash reader drops the whole file for one extra key" '"count": 0' "$(cat "$work/k-extra.out")"

# --- ContextForge (slow: ~30-60 s to start)
if ((skip_cf == 0)); then
	start contextforge 240 --host 127.0.0.66 --port 0
	B="http://$addr"
	for ((i = 0; i < 200; i++)); do
		grep -q '^TOKEN ' "$out" && break
		sleep 0.05
	done
	tok="$(awk '/^TOKEN /{print $2; exit}' "$out")"
	[[ -n "$tok" ]] || fail "contextforge printed no TOKEN line"
	r="$(curl -s -m 10 -H "Authorization: Bearer $tok" "$B/gateways")"
	expect "contextforge GET /gateways with the TOKEN" '[' "$r"
	r="$(curl -s -m 30 -w ' %{http_code}' -H "Authorization: Bearer $tok" -H "$J" -d '{"name":"mcp-scout-smoke","url":"http://127.0.0.67:9/mcp","transport":"STREAMABLEHTTP","tags":["mcp-scout"]}' "$B/gateways")"
	expect "contextforge refuses an unreachable MCP server with 502" 'Failed to initialize gateway' "$r"
	stop contextforge
fi
echo "all registry peers OK"
