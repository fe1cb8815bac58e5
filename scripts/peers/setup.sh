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
#   k8svalidate/ venv with kubernetes-validate + PyYAML          <- requirements-k8svalidate.txt
#          (scripts/k8s-validate.sh: offline schemas of Kubernetes 1.25-1.37)
#   node/  the official TypeScript SDK + express + zod            <- node/package{,-lock}.json
#   browser/ venv with selenium, driving Debian's chromium + chromium-driver (apt) for the
#          dashboard test (dashboard_check.py)                    <- requirements-browser.txt
# Registry peers of the sinks (issue 9):
#   mesh/  the MCP Mesh registry binary, npm @mcpmesh/cli-linux-x64 <- MESH_VERSION/MESH_INTEGRITY
#          (npm pack, sha512 checked, only package/bin/mcp-mesh-registry kept)
#   kailash/       venv with kailash-mcp (FileBasedDiscovery)    <- requirements-kailash.txt
#   contextforge/  venv with mcp-contextforge-gateway (mcpgateway) <- requirements-contextforge.txt
#   etcd + etcdctl from Debian (etcd-server, etcd-client; apt). If systemd runs, the unit the
#          package enables is stopped and disabled: tests start their own etcd on loopback.
#   prometheus from Debian (apt; 2.42): scripts/k8s-validate.sh evaluates the Grafana
#          dashboard's queries in it. Its unit is stopped and disabled the same way.
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
# chromium + chromium-driver (the dashboard test),
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
# Real headless Chromium for tests/dashboard.rs (Playwright's own downloads cannot work here).
[[ -x /usr/bin/chromium ]] || need+=(chromium)
[[ -x /usr/bin/chromedriver ]] || need+=(chromium-driver)
if ((${#need[@]})); then
	echo "peers: installing ${need[*]}" >&2
	apt_install "${need[@]}"
fi

mkdir -p "$peers"

# The MCP Mesh registry: pinned version and the npm registry's integrity for its tarball.
MESH_PACKAGE="@mcpmesh/cli-linux-x64"
MESH_VERSION="3.7.1"
MESH_INTEGRITY="sha512-dRtSokfhZnbfad659Qj1+aefkBxob0RjOJpMh24S3aNotkZTHv9IdW9q+MKkH3ineOPCUBzHMLPP0+aEP1rwuA=="

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

install_mesh() {
	local dir="$peers/mesh" stamp="$peers/.stamp-mesh" key tmp tgz got
	key="$MESH_PACKAGE@$MESH_VERSION $MESH_INTEGRITY"
	if ((force == 0)) && [[ -x "$dir/package/bin/mcp-mesh-registry" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
		return 0
	fi
	echo "peers: installing mesh ($MESH_PACKAGE@$MESH_VERSION, npm pack)" >&2
	rm -rf "$dir" "$stamp"
	tmp="$(mktemp -d)"
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" RETURN
	tgz="$(cd "$tmp" && npm pack --silent --no-audit --no-fund "$MESH_PACKAGE@$MESH_VERSION" | tail -n1)"
	got="sha512-$(openssl dgst -sha512 -binary "$tmp/$tgz" | base64 -w0)"
	if [[ "$got" != "$MESH_INTEGRITY" ]]; then
		echo "peers: $tgz has integrity $got, expected $MESH_INTEGRITY (edit MESH_INTEGRITY only after checking 'npm view $MESH_PACKAGE@VERSION dist.integrity')" >&2
		return 1
	fi
	mkdir -p "$dir"
	# Only the registry (65 MB); meshctl and meshui are not needed by the tests.
	tar -xzf "$tmp/$tgz" -C "$dir" package/package.json package/bin/mcp-mesh-registry
	"$dir/package/bin/mcp-mesh-registry" --version >&2
	printf '%s\n' "$key" >"$stamp"
}

install_etcd() {
	if ((force == 0)) && command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
		return 0
	fi
	echo "peers: installing etcd-server etcd-client (apt)" >&2
	apt_install etcd-server etcd-client
	# The package enables a system etcd on 127.0.0.1:2379; the tests start their own.
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
		$SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
	fi
	etcd --version | head -n1 >&2
}

install_prometheus() {
	if ((force == 0)) && command -v prometheus >/dev/null 2>&1; then
		return 0
	fi
	echo "peers: installing prometheus (apt)" >&2
	apt_install prometheus
	# The package enables a system Prometheus on :9090; k8s-validate.sh starts its own.
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
		$SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
	fi
	prometheus --version 2>&1 | head -n1 >&2
}

install_venv py1 "$here/requirements-py1.txt" 'from mcp.server.fastmcp import FastMCP'
install_venv py2 "$here/requirements-py2.txt" 'from mcp.server.mcpserver import MCPServer'
install_venv mdns "$here/requirements-mdns.txt" 'from zeroconf import Zeroconf, ServiceInfo'
install_venv tools "$here/requirements-tools.txt" 'from prometheus_client.openmetrics.parser import text_string_to_metric_families'
install_venv k8svalidate "$here/requirements-k8svalidate.txt" 'import kubernetes_validate.utils as u, yaml; print("peers: kubernetes-validate schemas", u.all_versions()[0], "to", u.latest_version())'
install_venv browser "$here/requirements-browser.txt" 'from selenium import webdriver; from selenium.webdriver.chrome.service import Service'
install_node
install_mesh
install_etcd
install_prometheus
install_venv kailash "$here/requirements-kailash.txt" 'from kailash_mcp.discovery.discovery import FileBasedDiscovery'
# mcpgateway.main cannot be imported without its secrets set (it validates its settings at
# import); the CLI module and the version are enough to know the install works.
install_venv contextforge "$here/requirements-contextforge.txt" 'import mcpgateway.cli, importlib.metadata as m; print("peers: mcp-contextforge-gateway", m.version("mcp-contextforge-gateway"))'

echo "peers: ready in $peers" >&2
