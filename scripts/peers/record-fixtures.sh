#!/usr/bin/env bash
# Re-record tests/fixtures/wire/*.http from the real peers (needs scripts/peers/setup.sh).
#
#   scripts/peers/record-fixtures.sh [OUT_DIR]      (default: <repo>/tests/fixtures/wire)
#
# Each file is exactly what `curl -si` printed: the raw status line, the headers and the body
# as received. Files are named <peer>.<NN>-<what>.http; the request behind each is listed in
# <OUT_DIR>/requests.tsv (file, method, path, request headers, body). Peers listen on
# 127.0.0.2xx with the ports their SDKs default to (8000 Python, 3000 TypeScript), so Host
# headers and URLs in the recordings are stable; dates and session ids are not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/tests/fixtures/wire}"
mkdir -p "$out"
rm -f "$out"/*.http "$out/requests.tsv"
printf 'file\tmethod\turl\theaders\tbody\n' >"$out/requests.tsv"

CT='Content-Type: application/json'
ACC='Accept: application/json, text/event-stream'
init_body() { # protocolVersion [id]
	printf '{"jsonrpc":"2.0","id":%s,"method":"initialize","params":{"protocolVersion":"%s","capabilities":{},"clientInfo":{"name":"mcp-scout","version":"0.1.0"}}}' "${2:-1}" "$1"
}
NOTIF='{"jsonrpc":"2.0","method":"notifications/initialized"}'
TOOLS='{"jsonrpc":"2.0","id":2,"method":"tools/list"}'
RESOURCES='{"jsonrpc":"2.0","id":3,"method":"resources/list"}'
PROMPTS='{"jsonrpc":"2.0","id":4,"method":"prompts/list"}'
modern_body() { # method version [extra-params-json]
	printf '{"jsonrpc":"2.0","id":1,"method":"%s","params":{%s"_meta":{"io.modelcontextprotocol/protocolVersion":"%s","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"mcp-scout","version":"0.1.0"}}}}' "$1" "${3:-}" "$2"
}

PEER_PID=""
cleanup() {
	if [[ -n "$PEER_PID" ]] && kill -0 "$PEER_PID" 2>/dev/null; then
		kill -TERM "$PEER_PID" 2>/dev/null || true
		wait "$PEER_PID" 2>/dev/null || true
	fi
	if [[ -n "${STREAM_PID:-}" ]]; then kill "$STREAM_PID" 2>/dev/null || true; fi
	rm -rf "${tmp:-}"
}
trap cleanup EXIT
tmp="$(mktemp -d)"

start_peer() { # name ip port
	local log="$tmp/$1.out"
	: >"$log"
	"$here/run.sh" "$1" --host "$2" --port "$3" >"$log" 2>"$tmp/$1.err" &
	PEER_PID=$!
	local i
	for ((i = 0; i < 200; i++)); do # at most 20 s
		if grep -q '^READY ' "$log"; then
			BASE="http://$2:$3"
			return 0
		fi
		kill -0 "$PEER_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "record: $1 did not become ready:" >&2
	cat "$tmp/$1.err" >&2
	exit 1
}

stop_peer() {
	kill -TERM "$PEER_PID"
	wait "$PEER_PID" 2>/dev/null || true
	PEER_PID=""
}

# rec FILE METHOD PATH BODY|"" [curl args...]: one request, output to $out/FILE.http
rec() {
	local file="$1" method="$2" path="$3" body="$4"
	shift 4
	local args=(-si --max-time 5 -X "$method" "$@")
	[[ -n "$body" ]] && args+=(--data-binary "$body")
	curl "${args[@]}" "$BASE$path" >"$out/$file.http" || true
	# curl fails on purpose for held-open streams (--max-time), but always after the head: an
	# empty file means the peer never answered, and a test over it would assert nothing.
	if [[ ! -s "$out/$file.http" ]]; then
		echo "record: $file: no response from $BASE$path (is the peer still up?)" >&2
		exit 1
	fi
	local hdrs="" a prev=""
	for a in "$@"; do
		[[ "$prev" == -H ]] && hdrs+="${hdrs:+ | }$a"
		prev="$a"
	done
	printf '%s\t%s\t%s\t%s\t%s\n' "$file.http" "$method" "$BASE$path" "$hdrs" "$body" >>"$out/requests.tsv"
}

sid_of() { { grep -i '^mcp-session-id:' "$out/$1.http" || true; } | head -1 | cut -d' ' -f2 | tr -d '\r\n'; }

# ---------------------------------------------------------------- streamable HTTP servers
streamable_suite() { # peer ip port stateful(0/1)
	local p="$1" stateful="$4" sid
	start_peer "$1" "$2" "$3"
	rec "$p.01-initialize-2025-11-25" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
	sid="$(sid_of "$p.01-initialize-2025-11-25")"
	local S=()
	[[ -n "$sid" ]] && S=(-H "Mcp-Session-Id: $sid")
	rec "$p.02-notifications-initialized" POST /mcp "$NOTIF" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' "${S[@]}"
	rec "$p.03-tools-list" POST /mcp "$TOOLS" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' "${S[@]}"
	rec "$p.04-resources-list" POST /mcp "$RESOURCES" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' "${S[@]}"
	rec "$p.05-prompts-list" POST /mcp "$PROMPTS" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' "${S[@]}"
	if ((stateful)); then
		rec "$p.05b-tools-list-unsupported-version-header" POST /mcp "$TOOLS" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 1999-01-01' "${S[@]}"
		rec "$p.06-get-with-session" GET /mcp "" -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2025-11-25' "${S[@]}" --max-time 1
		rec "$p.07-delete" DELETE /mcp "" -H 'MCP-Protocol-Version: 2025-11-25' "${S[@]}"
		rec "$p.08-tools-list-after-delete" POST /mcp "$TOOLS" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' "${S[@]}"
		rec "$p.09-tools-list-unknown-session" POST /mcp "$TOOLS" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' -H 'Mcp-Session-Id: 0123456789abcdef0123456789abcdef'
	else
		rec "$p.07-delete" DELETE /mcp "" -H 'MCP-Protocol-Version: 2025-11-25'
	fi
	# version negotiation (each initialize on a stateful server opens a session: close it)
	local v f
	for v in 2025-06-18 2025-03-26 2024-11-05 2099-01-01 2026-07-28; do
		f="$p.10-initialize-$v"
		rec "$f" POST /mcp "$(init_body "$v")" -H "$CT" -H "$ACC"
		sid="$(sid_of "$f")"
		if [[ -n "$sid" ]]; then curl -s -o /dev/null --max-time 5 -X DELETE -H "Mcp-Session-Id: $sid" "$BASE/mcp" || true; fi
	done
	# transport errors
	rec "$p.20-initialize-no-accept" POST /mcp "$(init_body 2025-11-25)" -H "$CT"
	rec "$p.21-initialize-accept-json-only" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H 'Accept: application/json'
	rec "$p.22-initialize-accept-sse-only" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H 'Accept: text/event-stream'
	rec "$p.23-initialize-text-plain" POST /mcp "$(init_body 2025-11-25)" -H 'Content-Type: text/plain' -H "$ACC"
	rec "$p.24-tools-list-no-session" POST /mcp "$TOOLS" -H "$CT" -H "$ACC"
	rec "$p.25-get-no-session" GET /mcp "" -H 'Accept: text/event-stream' --max-time 1
	rec "$p.26-get-no-accept" GET /mcp "" --max-time 1
	rec "$p.27-delete-no-session" DELETE /mcp ""
	rec "$p.28-invalid-json" POST /mcp '{"jsonrpc":"2.0",' -H "$CT" -H "$ACC"
	rec "$p.29-bad-protocol-version-header" POST /mcp "$TOOLS" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 1999-01-01'
	rec "$p.30-trailing-slash" POST /mcp/ "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
	rec "$p.31-bad-host" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC" -H 'Host: evil.example:80'
	rec "$p.32-root-get" GET / ""
	sid="$(sid_of "$p.24-tools-list-no-session")"
	if [[ -n "$sid" ]]; then # the session id on an error reply: is it a real session?
		rec "$p.33-reuse-session-id-from-error-reply" POST /mcp "$TOOLS" -H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' -H "Mcp-Session-Id: $sid"
	fi
	# the 2026-07-28 era
	rec "$p.40-discover-2026-07-28" POST /mcp "$(modern_body server/discover 2026-07-28)" \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: server/discover'
	rec "$p.41-tools-list-2026-07-28" POST /mcp "$(modern_body tools/list 2026-07-28)" \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/list'
	rec "$p.42-discover-method-header-mismatch" POST /mcp "$(modern_body server/discover 2026-07-28)" \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/list'
	rec "$p.43-discover-unsupported-version" POST /mcp "$(modern_body server/discover 2099-01-01)" \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2099-01-01' -H 'Mcp-Method: server/discover'
	rec "$p.44-discover-no-meta" POST /mcp '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}' \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: server/discover'
	rec "$p.45-discover-no-headers" POST /mcp "$(modern_body server/discover 2026-07-28)" -H "$CT" -H "$ACC"
	rec "$p.46-initialize-with-2026-header" POST /mcp "$(init_body 2025-11-25)" \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: initialize'
	rec "$p.47-initialize-in-2026-envelope" POST /mcp \
		"$(modern_body initialize 2026-07-28 '"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"mcp-scout","version":"0.1.0"},')" \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: initialize'
	rec "$p.48-discover-accept-sse-only" POST /mcp "$(modern_body server/discover 2026-07-28)" \
		-H "$CT" -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: server/discover'
	rec "$p.49-discover-no-accept" POST /mcp "$(modern_body server/discover 2026-07-28)" \
		-H "$CT" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: server/discover'
	rec "$p.50-discover-with-2025-header" POST /mcp "$(modern_body server/discover 2026-07-28)" \
		-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2025-11-25' -H 'Mcp-Method: server/discover'
	rec "$p.51-get-2026-header" GET /mcp "" -H 'Accept: text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' --max-time 1
	rec "$p.52-delete-2026-header" DELETE /mcp "" -H 'MCP-Protocol-Version: 2026-07-28'
	stop_peer
}

# ---------------------------------------------------------------- legacy HTTP+SSE servers
sse_suite() { # peer ip port
	local p="$1" ep
	start_peer "$1" "$2" "$3"
	rec "$p.01-get-sse" GET /sse "" -N -H 'Accept: text/event-stream' --max-time 2
	# keep one stream open, then drive a session through its endpoint
	curl -siN --max-time 6 -H 'Accept: text/event-stream' "$BASE/sse" >"$out/$p.03-stream.http" &
	STREAM_PID=$!
	local i
	for ((i = 0; i < 50; i++)); do
		ep="$(grep -a -m1 '^data: /' "$out/$p.03-stream.http" 2>/dev/null | cut -c7- | tr -d '\r\n' || true)"
		[[ -n "$ep" ]] && break
		sleep 0.1
	done
	printf '%s\t%s\t%s\t%s\t%s\n' "$p.03-stream.http" GET "$BASE/sse" "Accept: text/event-stream (held open ~6 s while 02a..02d are posted)" "" >>"$out/requests.tsv"
	rec "$p.02a-post-initialize" POST "$ep" "$(init_body 2024-11-05)" -H "$CT"
	rec "$p.02b-post-notifications-initialized" POST "$ep" "$NOTIF" -H "$CT"
	rec "$p.02c-post-tools-list" POST "$ep" "$TOOLS" -H "$CT"
	rec "$p.02d-post-initialize-2099" POST "$ep" "$(init_body 2099-01-01 5)" -H "$CT"
	wait "$STREAM_PID" || true
	STREAM_PID=""
	local msgs="${ep%%\?*}"
	rec "$p.04-post-messages-no-session" POST "$msgs" "$(init_body 2024-11-05)" -H "$CT"
	if [[ "$ep" == *session_id=* ]]; then
		rec "$p.05-post-messages-unknown-session" POST "$msgs?session_id=0123456789abcdef0123456789abcdef" "$(init_body 2024-11-05)" -H "$CT"
	else
		rec "$p.05-post-messages-unknown-session" POST "$msgs?sessionId=00000000-0000-0000-0000-000000000000" "$(init_body 2024-11-05)" -H "$CT"
	fi
	rec "$p.06-post-mcp" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
	rec "$p.07-post-sse" POST /sse "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
	rec "$p.08-get-sse-bad-host" GET /sse "" -N -H 'Accept: text/event-stream' -H 'Host: evil.example:80' --max-time 1
	stop_peer
}

streamable_suite py1-streamable 127.0.0.201 8000 1
streamable_suite py1-stateless-json 127.0.0.202 8000 0
streamable_suite py2-streamable 127.0.0.203 8000 1
streamable_suite py2-stateless-json 127.0.0.204 8000 0
streamable_suite ts-streamable 127.0.0.205 3000 1
sse_suite py1-sse 127.0.0.206 8000
sse_suite py2-sse 127.0.0.207 8000
sse_suite ts-sse 127.0.0.208 3000

# ---------------------------------------------------------------- auth (RFC 9728)
start_peer py1-auth 127.0.0.209 8000
p=py1-auth
rec "$p.01-initialize-no-token" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
rec "$p.02-get-no-token" GET /mcp "" -H 'Accept: text/event-stream'
rec "$p.03-resource-metadata" GET /.well-known/oauth-protected-resource/mcp ""
rec "$p.04-resource-metadata-root" GET /.well-known/oauth-protected-resource ""
rec "$p.05-authorization-server-metadata" GET /.well-known/oauth-authorization-server ""
rec "$p.06-initialize-bad-token" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC" -H 'Authorization: Bearer wrong'
rec "$p.07-initialize-good-token" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC" -H 'Authorization: Bearer scout-test-token'
sid="$(sid_of "$p.07-initialize-good-token")"
if [[ -n "$sid" ]]; then curl -s -o /dev/null --max-time 5 -X DELETE -H "Mcp-Session-Id: $sid" -H 'Authorization: Bearer scout-test-token' "$BASE/mcp" || true; fi
rec "$p.08-initialize-no-accept-no-token" POST /mcp "$(init_body 2025-11-25)" -H "$CT"
rec "$p.09-discover-2026-07-28-no-token" POST /mcp "$(modern_body server/discover 2026-07-28)" \
	-H "$CT" -H "$ACC" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: server/discover'
stop_peer

# ---------------------------------------------------------------- Host restriction
start_peer py1-hostcheck 127.0.0.210 8000
p=py1-hostcheck
rec "$p.01-initialize" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
rec "$p.02-initialize-no-accept" POST /mcp "$(init_body 2025-11-25)" -H "$CT"
rec "$p.03-get" GET /mcp "" -H 'Accept: text/event-stream'
rec "$p.04-initialize-host-mcp-internal" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC" -H 'Host: mcp.internal:443'
sid="$(sid_of "$p.04-initialize-host-mcp-internal")"
if [[ -n "$sid" ]]; then curl -s -o /dev/null --max-time 5 -X DELETE -H "Mcp-Session-Id: $sid" -H 'Host: mcp.internal:443' "$BASE/mcp" || true; fi
rec "$p.05-initialize-text-plain" POST /mcp "$(init_body 2025-11-25)" -H 'Content-Type: text/plain' -H "$ACC"
stop_peer

# ---------------------------------------------------------------- decoys (small answers only)
start_peer jsonrpc 127.0.0.211 8545
rec jsonrpc.01-initialize POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
rec jsonrpc.02-eth-blockNumber POST / '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' -H "$CT"
rec jsonrpc.03-get GET /mcp ""
stop_peer
start_peer plain-http 127.0.0.212 8080
rec plain-http.01-get-root GET / ""
rec plain-http.02-post-mcp POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
stop_peer
start_peer all-405 127.0.0.213 8000
rec all-405.01-post-mcp POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
stop_peer
start_peer endless-sse 127.0.0.214 8000
rec endless-sse.01-get-sse GET /sse "" -N --max-time 0.35
stop_peer
for d in bad-json bad-utf8 redirect-loop; do
	start_peer "$d" 127.0.0.215 8000
	rec "$d.01-post-mcp" POST /mcp "$(init_body 2025-11-25)" -H "$CT" -H "$ACC"
	stop_peer
done

echo "record: $(find "$out" -name '*.http' | wc -l) fixtures in $out" >&2
