#!/usr/bin/env bash
# Validate the Kubernetes manifests (config/k8s) offline: no cluster can run here.
#
#   scripts/k8s-validate.sh              every step below; exit 0 when all pass, 1 otherwise
#   K8S_VALIDATE_VERBOSE=1 ...           also print every passing assertion
#   MCP_SCOUT_BIN=PATH ...               the binary to check configs with and scrape
#                                        (default target/debug/mcp-scout; tests pass theirs)
#   K8S_VALIDATE_KUBECTL=PATH ...        kubectl to render with (default: the one on PATH;
#                                        empty: none, as on a machine without it)
#
# 1. Render base and each overlay with `kubectl kustomize` when kubectl is on PATH, and with
#    scripts/k8s_manifests.py's renderer too, which must give the same objects (it is what
#    runs where kubectl is missing, e.g. in CI). Every file that is a whole object is also
#    validated on its own.
# 2. `kubernetes-validate --strict` against 1.30 and the newest bundled version; a warning
#    (unknown kind or apiVersion) is an error except for the CRD kinds PodMonitor and
#    ServiceMonitor, which have no bundled schema.
# 3. The restricted Pod Security fields, RBAC, probes, resources, the grace period against
#    the daemon's shutdown deadlines (read from src/daemon/mod.rs), Service, NetworkPolicy,
#    each overlay's own changes, and that overlay configs differ from the base's only there.
# 4. The Dockerfile, read (no image can be built here): stages, --locked, USER 65532:65532.
# 5. Each rendered ConfigMap's config.yaml passes `mcp-scout config check`, with only the
#    variables the pod has (downward API, the Secret's keys); every key is checked.
# 6. Every metric the Grafana dashboard queries appears in a real /metrics scrape: the daemon
#    runs on 127.0.0.237 with a job over a real FastMCP server on 127.0.0.236 and a webhook
#    sink towards a closed port on 127.0.0.238 (loopback only), until all of them show up.
# 7. A real Prometheus (Debian's, on 127.0.0.239) scrapes that daemon every second, and every
#    panel query, with Grafana's variables filled in, must return series.
#
# Needs the k8svalidate venv (scripts/peers/setup.sh: kubernetes-validate + PyYAML), for
# step 6 the py1 venv and curl, for step 7 prometheus (also setup.sh; without it step 7 is
# skipped, saying so, except under CI or MCP_SCOUT_REQUIRE_ALL=1). Installs nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
peers="${MCP_SCOUT_PEERS:-$repo/target/peers}"
export MCP_SCOUT_PEERS="$peers"
PY="$peers/k8svalidate/bin/python"
KV="$peers/k8svalidate/bin/kubernetes-validate"
bin="${MCP_SCOUT_BIN:-$repo/target/debug/mcp-scout}"
checks="$here/k8s_manifests.py"
verbose="${K8S_VALIDATE_VERBOSE:-0}"
kubectl="${K8S_VALIDATE_KUBECTL-$(command -v kubectl || true)}"

# Time limits of step 6 (each loop is bounded by them).
PEER_READY_SECS=30    # a FastMCP peer prints READY in 1-5 s on a loaded 2-core machine
DAEMON_READY_SECS=30  # /readyz answers within a second or two
METRICS_SECS=90       # a completed run, health checks and a sink retry, then every family
DAEMON_STOP_SECS=25   # the daemon's worst-case shutdown is 17 s (daemonset.yaml)
PROM_READY_SECS=30    # Prometheus answers /-/ready after opening its empty TSDB
PROM_QUERY_SECS=60    # every rate() needs two scrapes in its window
# Loopback only (scripts/peers and tests/common keep to 127.0.0.0/8; these three are ours).
PEER_IP=127.0.0.236
DAEMON_IP=127.0.0.237
SINK_IP=127.0.0.238
PROM_IP=127.0.0.239

die() {
	echo "k8s-validate: $*" >&2
	exit 1
}
[[ -x "$KV" && -x "$PY" ]] || die "$peers/k8svalidate missing: run scripts/peers/setup.sh"
[[ -x "$bin" ]] || die "$bin missing: cargo build (or set MCP_SCOUT_BIN)"
command -v curl >/dev/null || die "curl missing (scripts/peers/setup.sh installs it)"

work="$(mktemp -d)"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

failed=()
# run_check NAME CMD...: the command's FAIL lines (all lines when verbose) and its summary.
run_check() {
	local name="$1" rc=0
	shift
	"$@" >"$work/out" 2>&1 || rc=$?
	if [[ "$verbose" == 1 ]]; then
		cat "$work/out"
	else
		local oks
		oks="$(grep -c '^ok: ' "$work/out" || true)"
		if ((oks <= 2)); then
			cat "$work/out"
		else
			grep -v '^ok: ' "$work/out" || true
			((rc != 0)) || echo "ok: $name: $oks checks passed"
		fi
	fi
	((rc == 0)) || failed+=("$name")
}

overlays=(base hostnet monitoring mesh)
dir_of() { if [[ "$1" == base ]]; then echo "$repo/config/k8s/base"; else echo "$repo/config/k8s/overlays/$1"; fi; }

echo "== 1. render"
for o in "${overlays[@]}"; do
	"$PY" "$checks" render "$(dir_of "$o")" >"$work/$o.ours.yaml" || failed+=("render $o (ours)")
	if [[ -n "$kubectl" ]]; then
		if "$kubectl" kustomize "$(dir_of "$o")" >"$work/$o.yaml" 2>"$work/kubectl.err"; then
			run_check "render $o" "$PY" "$checks" compare "$o" "$work/$o.yaml" "$work/$o.ours.yaml"
		else
			cat "$work/kubectl.err"
			failed+=("kubectl kustomize $o")
		fi
	else
		cp "$work/$o.ours.yaml" "$work/$o.yaml"
	fi
done
if [[ -n "$kubectl" ]]; then
	echo "rendered with kubectl kustomize ($("$kubectl" version --client 2>/dev/null | tr '\n' ' ')) and compared with ours"
else
	echo "no kubectl: rendered with scripts/k8s_manifests.py only (the kustomize subset config/k8s uses)"
fi

echo "== 2. kubernetes-validate --strict"
latest="$("$PY" -c 'import kubernetes_validate.utils as u; print(u.major_minor(u.latest_version()))')"
mapfile -t files < <("$PY" "$checks" manifest-files "$repo/config/k8s")
rendered=()
for o in "${overlays[@]}"; do rendered+=("$work/$o.yaml"); done
kv_rc=0
"$KV" --strict -k 1.30 -k "$latest" "${rendered[@]}" "${files[@]}" >"$work/kv.out" 2>&1 || kv_rc=$?
echo "${#rendered[@]} renderings and ${#files[@]} files, each against 1.30 and $latest"
run_check "kubernetes-validate" "$PY" "$checks" validate-output <"$work/kv.out"
((kv_rc == 0)) || failed+=("kubernetes-validate exit $kv_rc")

echo "== 3. restricted profile, RBAC, probes and the overlays"
for o in "${overlays[@]}"; do
	run_check "assertions $o" "$PY" "$checks" check "$o" "$work/$o.yaml" --repo "$repo" --config-out "$work/$o.config.yaml"
done

echo "== 4. Dockerfile (read only: no image can be built here)"
run_check "Dockerfile" "$PY" "$checks" dockerfile --repo "$repo"

echo "== 5. mcp-scout config check of each ConfigMap's config.yaml"
mapfile -t pod_env < <("$PY" "$checks" env --repo "$repo")
# `config check` must not need an API server; should a build resolve the kubeconfig while
# checking (kubernetes.kubeconfig: null falls back to $KUBECONFIG outside a pod), it finds
# this one, whose server is a closed loopback port.
cat >"$work/kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters: [{ name: none, cluster: { server: "http://127.0.0.239:9" } }]
users: [{ name: none, user: {} }]
contexts: [{ name: none, context: { cluster: none, user: none } }]
current-context: none
EOF
pod_env+=("KUBECONFIG=$work/kubeconfig")
for o in "${overlays[@]}"; do
	cfg="$work/$o.config.yaml"
	[[ -s "$cfg" ]] || {
		failed+=("config $o: no config.yaml extracted")
		continue
	}
	rc=0
	env -i PATH="$PATH" HOME="$work" "${pod_env[@]}" "$bin" config check "$cfg" >"$work/cc.out" 2>&1 || rc=$?
	if ((rc == 0)); then
		echo "ok: config $o: $(head -n1 "$work/cc.out" | sed 's/^[^:]*: //')"
		continue
	fi
	cat "$work/cc.out"
	failed+=("config check $o")
done

echo "== 6. the dashboard's metrics in a real /metrics scrape"
run_check "dashboard" "$PY" "$checks" dashboard-metrics "$repo/config/k8s/overlays/monitoring/grafana-dashboard.json" --out "$work/names"
free_port() { "$PY" -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"; }
if [[ -x "$peers/py1/bin/python" && -s "$work/names" ]]; then
	mkfifo "$work/peer.fifo"
	"$here/peers/run.sh" py1-streamable --host "$PEER_IP" --port 0 >"$work/peer.fifo" 2>"$work/peer.err" &
	pids+=($!)
	peer_port=""
	exec 3<"$work/peer.fifo"
	if read -r -t "$PEER_READY_SECS" line <&3 && [[ "$line" =~ ^READY\ [0-9.]+:([0-9]+)$ ]]; then
		peer_port="${BASH_REMATCH[1]}"
	fi
	exec 3<&-
	if [[ -z "$peer_port" ]]; then
		tail -n 20 "$work/peer.err"
		failed+=("py1-streamable did not print READY within ${PEER_READY_SECS} s")
	else
		api_port="$(free_port "$DAEMON_IP")"
		sink_port="$(free_port "$SINK_IP")" # free, so closed: every delivery is retried
		mkdir -p "$work/store"
		cat >"$work/scrape.yaml" <<-EOF
			api: { listen: "$DAEMON_IP:$api_port" }
			store: { path: "$work/store/inventory.db" }
			jobs:
			  - name: lab
			    targets: [$PEER_IP]
			    ports: "$peer_port"
			    interval: 1m
			    sweep: { ping: false }
			health: { interval: 1s, timeout: 1s }
			sinks:
			  - name: hooks
			    type: webhook
			    url: "http://$SINK_IP:$sink_port/events"
			    secret: k8s-validate
		EOF
		"$bin" daemon --config "$work/scrape.yaml" >"$work/daemon.out" 2>"$work/daemon.err" &
		daemon=$!
		pids+=("$daemon")
		base_url="http://$DAEMON_IP:$api_port"
		ready=0
		start=$SECONDS
		while ((SECONDS - start < DAEMON_READY_SECS)) && kill -0 "$daemon" 2>/dev/null; do
			if curl -sf --max-time 2 "$base_url/readyz" >/dev/null; then
				ready=1
				break
			fi
			sleep 0.1 # poll interval, not a wait for the process (bounded by DAEMON_READY_SECS)
		done
		if ((ready == 0)); then
			tail -n 20 "$work/daemon.err"
			failed+=("daemon not ready within ${DAEMON_READY_SECS} s")
		else
			missing="(no scrape)"
			start=$SECONDS
			while ((SECONDS - start < METRICS_SECS)); do
				if curl -sf --max-time 5 "$base_url/metrics" >"$work/scrape.txt" &&
					missing="$("$PY" "$checks" metrics-present "$work/names" "$work/scrape.txt")"; then
					missing=""
					break
				fi
				sleep 0.25 # poll interval (bounded by METRICS_SECS)
			done
			n="$(wc -l <"$work/names")"
			if [[ -z "$missing" ]]; then
				rss="$(awk '/^process_resident_memory_bytes /{printf "%.1f", $2 / 1048576}' "$work/scrape.txt")"
				echo "ok: metrics: all $n metrics the dashboard queries are in the scrape after $((SECONDS - start)) s ($(grep -vc '^#' "$work/scrape.txt") samples; daemon RSS ${rss} MiB)"
			else
				echo "FAIL: metrics: not in the scrape after ${METRICS_SECS} s: $missing"
				failed+=("dashboard metrics missing: $missing")
			fi
		fi
		echo "== 7. a real Prometheus evaluates every panel query"
		if ((ready == 1)) && command -v prometheus >/dev/null; then
			prom_port="$(free_port "$PROM_IP")"
			cat >"$work/prometheus.yml" <<-EOF
				global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
				scrape_configs:
				  - job_name: mcp-scout
				    static_configs: [{ targets: ["$DAEMON_IP:$api_port"] }]
			EOF
			prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
				--web.listen-address="$PROM_IP:$prom_port" >"$work/prom.log" 2>&1 &
			prom=$!
			pids+=("$prom")
			start=$SECONDS
			until curl -sf --max-time 2 "http://$PROM_IP:$prom_port/-/ready" >/dev/null; do
				if ((SECONDS - start >= PROM_READY_SECS)) || ! kill -0 "$prom" 2>/dev/null; then break; fi
				sleep 0.1 # poll interval (bounded by PROM_READY_SECS)
			done
			echo "$(prometheus --version 2>&1 | head -n1), scraping the daemon every second"
			run_check "prometheus" "$PY" "$checks" prom-queries "$repo/config/k8s/overlays/monitoring/grafana-dashboard.json" \
				--url "http://$PROM_IP:$prom_port" --job mcp-scout --timeout "$PROM_QUERY_SECS"
			kill -TERM "$prom" 2>/dev/null || true
			wait "$prom" 2>/dev/null || true
		elif ((ready == 1)); then
			if [[ -n "${CI:-}" || "${MCP_SCOUT_REQUIRE_ALL:-}" == 1 ]]; then
				failed+=("prometheus missing (scripts/peers/setup.sh installs Debian's prometheus)")
			else
				echo "SKIPPED: prometheus not installed (scripts/peers/setup.sh installs it)"
			fi
		fi
		kill -TERM "$daemon" 2>/dev/null || true
		start=$SECONDS
		while kill -0 "$daemon" 2>/dev/null && ((SECONDS - start < DAEMON_STOP_SECS)); do sleep 0.1; done
		if kill -0 "$daemon" 2>/dev/null; then
			kill -KILL "$daemon" 2>/dev/null || true
			failed+=("daemon still running ${DAEMON_STOP_SECS} s after SIGTERM")
		fi
		wait "$daemon" 2>/dev/null || true
	fi
else
	failed+=("metrics: $peers/py1 missing (scripts/peers/setup.sh) or no dashboard metric names")
fi

if ((${#failed[@]})); then
	echo "k8s-validate: FAILED: $(printf '%s; ' "${failed[@]}")"
	exit 1
fi
echo "k8s-validate: all passed"
