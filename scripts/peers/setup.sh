#!/usr/bin/env bash
# Install the real MCP peers that the fingerprinting tests talk to.
#
#   scripts/peers/setup.sh           install what is missing (idempotent)
#   scripts/peers/setup.sh --force   reinstall everything
#
# Into ${MCP_SCOUT_PEERS:-<repo>/target/peers}:
#   py1/   venv with the official Python SDK 1.x (FastMCP)        <- requirements-py1.txt
#   py2/   venv with the official Python SDK 2.x (MCPServer)      <- requirements-py2.txt
#   mdns/  venv with python-zeroconf (mdns_publish.py)           <- requirements-mdns.txt
#   tools/ venv with the readers our output is checked with      <- requirements-tools.txt
#          (prometheus_client's OpenMetrics parser for /metrics)
#   node/  the official TypeScript SDK + express + zod            <- node/package{,-lock}.json
#
# Each part is checked (the SDK imports) right after it is installed, and skipped later
# when its stamp file holds the hash of its pin file(s) and of the
# interpreter version, so a second run takes well under a second. The decoy and hostile
# peers (decoys.py) need only python3 and the openssl CLI; the DNS SRV peer (dnsmasq.sh) needs
# dnsmasq (Debian's dnsmasq-base: the binary only, no service is started).
#
# To move the pins forward: install into a fresh venv with `pip install "mcp<2"` (or
# "mcp>=2,<3"), `pip freeze` into the requirements file and keep its comment line; for node,
# edit node/package.json and run `npm install --package-lock-only` in scripts/peers/node.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
peers="${MCP_SCOUT_PEERS:-$repo/target/peers}"

force=0
case "${1:-}" in
--force) force=1 ;;
"") ;;
*)
	echo "usage: $0 [--force]" >&2
	exit 2
	;;
esac

SUDO=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then SUDO="sudo"; fi
apt_updated=0
apt_install() {
	if ((apt_updated == 0)); then
		$SUDO apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

# System prerequisites: python3 with venv/ensurepip, the openssl CLI (tls decoy), node + npm,
# dnsmasq (dnsmasq.sh).
need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ! python3 -c 'import importlib.util as u, sys; sys.exit(not (u.find_spec("ensurepip") and u.find_spec("venv")))' >/dev/null 2>&1; then
	need+=(python3-venv)
fi
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v dnsmasq >/dev/null 2>&1 || [[ -x /usr/sbin/dnsmasq ]] || need+=(dnsmasq-base)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if ((${#need[@]})); then
	echo "peers: installing ${need[*]}" >&2
	apt_install "${need[@]}"
fi

mkdir -p "$peers"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

install_venv() { # name requirements-file import-check
	local name="$1" req="$2" check="$3" dir="$peers/$1" stamp key
	stamp="$peers/.stamp-$name"
	key="$(hash_of "$req") $(python3 -c 'import sys; print(sys.version.split()[0])')"
	if ((force == 0)) && [[ -x "$dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
		return 0
	fi
	echo "peers: installing $name from $(basename "$req")" >&2
	rm -rf "$dir" "$stamp"
	python3 -m venv "$dir"
	"$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input -r "$req"
	"$dir/bin/python" -m pip check -q >/dev/null
	"$dir/bin/python" -c "$check"
	printf '%s\n' "$key" >"$stamp"
}

install_node() {
	local dir="$peers/node" stamp="$peers/.stamp-node" key
	key="$(hash_of "$here/node/package.json" "$here/node/package-lock.json") $(node --version)"
	if ((force == 0)) && [[ -d "$dir/node_modules/@modelcontextprotocol/sdk" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
		return 0
	fi
	echo "peers: installing node (npm ci)" >&2
	rm -rf "$dir" "$stamp"
	mkdir -p "$dir"
	cp "$here/node/package.json" "$here/node/package-lock.json" "$dir/"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	(cd "$dir" && node -e 'require("@modelcontextprotocol/sdk/server/mcp.js"); require("express"); require("zod")')
	printf '%s\n' "$key" >"$stamp"
}

install_venv py1 "$here/requirements-py1.txt" 'from mcp.server.fastmcp import FastMCP'
install_venv py2 "$here/requirements-py2.txt" 'from mcp.server.mcpserver import MCPServer'
install_venv mdns "$here/requirements-mdns.txt" 'from zeroconf import Zeroconf, ServiceInfo'
install_venv tools "$here/requirements-tools.txt" 'from prometheus_client.openmetrics.parser import text_string_to_metric_families'
install_node

echo "peers: ready in $peers" >&2
