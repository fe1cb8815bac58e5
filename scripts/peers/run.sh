#!/usr/bin/env bash
# Run one test peer in the foreground (exec: the peer process replaces this shell).
#
#   scripts/peers/run.sh NAME --host IP --port PORT [--path P]
#
# Prints exactly one line `READY <ip>:<port>` on stdout once the peer accepts connections
# (`READY [::1]:<port>` for IPv6; with --port 0 the line carries the port the kernel chose),
# then serves until SIGTERM/SIGINT, after which it exits within about a second with no child
# left behind. It also stops by itself within a second when the process that started it dies
# (opt out: MCP_SCOUT_PEERS_DETACHED=1). Logs go to stderr. --host must be a loopback address
# (127.0.0.0/8 or ::1); inside a network namespace made by a test, export
# MCP_SCOUT_PEERS_ANY_ADDR=1 to allow others.
# Needs scripts/peers/setup.sh for the MCP peers (py1-*, py2-*, ts-*); decoys need only python3
# (+ openssl for `tls`).
#
# MCP servers (must be detected):
#   py1-streamable      FastMCP 1.x, streamable HTTP at /mcp, stateful, 2 tools, 1 resource, 1 prompt
#   py1-stateless-json  FastMCP 1.x, stateless_http=True, json_response=True
#   py1-sse             FastMCP 1.x legacy HTTP+SSE (GET /sse, POST /messages/?session_id=)
#   py1-auth            FastMCP 1.x + AuthSettings: 401 + RFC 9728 metadata (token: scout-test-token)
#   py1-card            py1-streamable + a Server Card and MCP Catalog served by OUR routes beside the SDK
#   py1-hostcheck       FastMCP 1.x allowing only Host mcp.internal[:443]: 421 for Host <ip>:<port>
#   py1-hostile         py1-streamable whose name, instructions and a tool hold <script> and <img onerror>
#   py2-streamable      MCPServer 2.x at /mcp: 2025-xx handshake and the 2026-07-28 era
#   py2-stateless-json  MCPServer 2.x, stateless + JSON responses
#   py2-sse             MCPServer 2.x legacy HTTP+SSE
#   ts-streamable       TypeScript SDK StreamableHTTPServerTransport at /mcp, stateful (UUID ids)
#   ts-sse              TypeScript SDK legacy SSEServerTransport (GET /sse, POST /messages?sessionId=)
#   py1-control         FastMCP 1.x at /mcp, tools echo + get_status, driven by POST /control/MODE
#                       (ok fail hang slow drop-tool no-tools huge-result refuse-delete health-503 health-200)
# Decoys (must not be called MCP):
#   plain-http jsonrpc endless-sse all-405 tls banner oauth-api host-allowlist
# Behind an API key (like npm mcp-proxy --apiKey; not MCP without the key):
#   apikey-proxy
# Hostile (must be ended within the scanner's deadline):
#   trickle-headers endless-sse-body huge-body bad-utf8 bad-json deep-json redirect-loop tls-stall
# Off-host links (reported, never followed; add --elsewhere HOST:PORT) and a redirect chain:
#   offhost-sse offhost-metadata offhost-redirect redirect-chain
# Bad registry answers (decoys.py): registry-html registry-huge registry-hang
# See decoys.py for what each decoy answers.
# Registries the sinks feed (setup.sh installs the real ones; registry_peer.py supervises them):
#   mesh-registry       the MCP Mesh registry 3.7.1 (npm @mcpmesh/cli-linux-x64), SQLite in a temp dir
#   etcd                Debian's etcd 3.4, v3 JSON gateway on the client URL [--auth USER:PASS]
#   contextforge        IBM ContextForge (mcpgateway); prints `TOKEN <jwt>` after READY
#   (all three: [--data DIR] keeps the data there instead of a temp dir removed on exit)
#   webhook-receiver    --secret S: checks X-MCP-Scout-Signature, GET /received, POST /control/MODE
#   consul-mock         a MOCK of Consul's agent API subset [--token T]; GET /mock/requests
# Kubernetes (no API server can run here; the named mock):
#   kube-mock           a MOCK of the API server's pod list/watch: --listen ADDR:PORT [--pods FILE]
#                       [--bookmark-interval S]; control under /control/ (see kube_mock.py)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="${MCP_SCOUT_PEERS:-$(cd "$here/../.." && pwd)/target/peers}"
export MCP_SCOUT_PEERS="$peers"

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}
(($# >= 1)) || usage
name="$1"
shift
[[ "$name" == -h || "$name" == --help ]] && usage

need() { # interpreter
	[[ -x "$1" ]] || {
		echo "run.sh: $1 missing: run scripts/peers/setup.sh first" >&2
		exit 1
	}
}

export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
case "$name" in
py1-streamable | py1-stateless-json | py1-sse | py1-auth | py1-hostcheck | py1-card | py1-hostile)
	need "$peers/py1/bin/python"
	exec "$peers/py1/bin/python" "$here/py1_server.py" --mode "${name#py1-}" "$@"
	;;
py1-control)
	need "$peers/py1/bin/python"
	exec "$peers/py1/bin/python" "$here/py1_control.py" "$@"
	;;
py2-streamable | py2-stateless-json | py2-sse)
	need "$peers/py2/bin/python"
	exec "$peers/py2/bin/python" "$here/py2_server.py" --mode "${name#py2-}" "$@"
	;;
ts-streamable | ts-sse)
	[[ -d "$peers/node/node_modules/@modelcontextprotocol/sdk" ]] || {
		echo "run.sh: $peers/node missing: run scripts/peers/setup.sh first" >&2
		exit 1
	}
	exec node "$here/ts_server.mjs" --mode "${name#ts-}" "$@"
	;;
plain-http | jsonrpc | endless-sse | all-405 | tls | banner | trickle-headers | endless-sse-body | \
	huge-body | bad-utf8 | bad-json | deep-json | redirect-loop | tls-stall | \
	offhost-sse | offhost-metadata | offhost-redirect | redirect-chain | \
	oauth-api | apikey-proxy | host-allowlist | registry-html | registry-huge | registry-hang)
	# Any python >= 3.11 does; skip slow wrapper shims (pyenv) when a direct interpreter exists.
	py=python3
	for cand in "$peers/py1/bin/python" /usr/bin/python3; do
		if [[ -x "$cand" ]]; then
			py="$cand"
			break
		fi
	done
	exec "$py" "$here/decoys.py" "$name" "$@"
	;;
mesh-registry | etcd | contextforge | webhook-receiver | consul-mock | kube-mock)
	py=python3
	for cand in "$peers/py1/bin/python" /usr/bin/python3; do
		if [[ -x "$cand" ]]; then
			py="$cand"
			break
		fi
	done
	case "$name" in
	webhook-receiver) exec "$py" "$here/webhook_receiver.py" "$@" ;;
	consul-mock) exec "$py" "$here/consul_mock.py" "$@" ;;
	kube-mock) exec "$py" "$here/kube_mock.py" "$@" ;;
	*) exec "$py" "$here/registry_peer.py" "$name" "$@" ;;
	esac
	;;
*)
	echo "run.sh: unknown peer '$name'" >&2
	usage
	;;
esac
