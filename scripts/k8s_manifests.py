#!/usr/bin/env python3
"""Checks of config/k8s for scripts/k8s-validate.sh (run in the k8svalidate venv: PyYAML).

    k8s_manifests.py validate-output               kubernetes-validate's output on stdin
    k8s_manifests.py render DIR                    a kustomization rendered without kubectl
    k8s_manifests.py compare NAME KUBECTL OURS     kubectl's rendering and ours hold the same
    k8s_manifests.py manifest-files DIR            the YAML files that are whole objects
    k8s_manifests.py check OVERLAY RENDERED --repo DIR --config-out FILE
    k8s_manifests.py env --repo DIR                the pod's environment, as NAME=VALUE lines
    k8s_manifests.py dashboard-metrics JSON        metric names the dashboard queries
    k8s_manifests.py metrics-present NAMES SCRAPE  which of NAMES a /metrics scrape lacks
    k8s_manifests.py prom-queries JSON --url URL --job NAME
                                                   a real Prometheus answers every panel query
    k8s_manifests.py dockerfile --repo DIR         lint of the Dockerfile

Each check prints `ok: ...` lines, or `FAIL: ...` lines naming the object, the field and
what was expected, and exits 1 after the last of them (so one run shows every failure).
"""

import argparse
import copy
import json
import os
import re
import sys

import yaml

# The restricted Pod Security Standard (v1.30 and later), the parts a manifest can show.
ALLOWED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
# Kinds that kubernetes-validate has no schema for because a CRD defines them.
CRD_KINDS = {("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "ServiceMonitor")}
DOWNWARD = {
    "NODE_NAME": "spec.nodeName",
    "POD_NAME": "metadata.name",
    "POD_NAMESPACE": "metadata.namespace",
    "POD_IP": "status.podIP",
    "HOST_IP": "status.hostIP",
}
# Values the downward API would give, for `config check` (documentation ranges: never routed).
DOWNWARD_SAMPLE = {
    "NODE_NAME": "node-a",
    "POD_NAME": "mcp-scout-x7k2p",
    "POD_NAMESPACE": "mcp-scout",
    "POD_IP": "192.0.2.10",
    "HOST_IP": "192.0.2.10",
}
UID = 65532
SECRET_NAME = "mcp-scout-secrets"
OVERLAYS = ("base", "hostnet", "monitoring", "mesh")


class Report:
    """Collects failures so that one run names all of them."""

    def __init__(self, scope):
        self.scope = scope
        self.failures = 0
        self.passed = 0

    def ok(self, msg):
        self.passed += 1
        print(f"ok: {self.scope}: {msg}")

    def fail(self, msg):
        self.failures += 1
        print(f"FAIL: {self.scope}: {msg}")

    def expect(self, cond, ok_msg, fail_msg):
        if cond:
            self.ok(ok_msg)
        else:
            self.fail(fail_msg)
        return cond

    def exit(self):
        sys.exit(1 if self.failures else 0)


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(docs, kind, name=None):
    return [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]


def one(r, docs, kind, name=None):
    found = by_kind(docs, kind, name)
    if len(found) != 1:
        r.fail(f"expected exactly one {kind}{' ' + name if name else ''}, found {len(found)}")
        return None
    return found[0]


# ---------------------------------------------------------------------------------------------
# kubernetes-validate's output


def validate_output(_args):
    """Errors: ERROR/FATAL lines, and WARN lines (unknown kind or apiVersion) except CRD kinds."""
    r = Report("kubernetes-validate")
    passed = set()
    crd = set()
    for line in sys.stdin:
        line = line.rstrip("\n")
        m = re.match(r"INFO (\S+) passed for resource (\S+) against version (\S+)", line)
        if m:
            passed.add((m.group(1), m.group(2), m.group(3)))
            continue
        m = re.match(r"WARN \S+ Couldn't find schema for kind (\S+) with api version (\S+) for kubernetes version (\S+)", line)
        if m and (m.group(2), m.group(1)) in CRD_KINDS:
            crd.add((m.group(1), m.group(3)))
            continue
        if line.strip():
            r.fail(line)
    versions = sorted({v for _, _, v in passed})
    r.ok(f"{len({(f, n) for f, n, _ in passed})} objects passed --strict against {', '.join(versions)}"
         + (f"; CRD kinds without a bundled schema, not validated: {', '.join(sorted({k for k, _ in crd}))}" if crd else ""))
    r.exit()


# ---------------------------------------------------------------------------------------------
# A small kustomize, for machines without kubectl: resources, namespace, labels (without
# selectors), configMapGenerator (create/replace, labels, disableNameSuffixHash), patches
# (RFC 6902 lists or strategic merges, which here are plain deep merges) and images.
# It renders only what config/k8s uses, and fails on anything else.


def deep_merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def json_pointer(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    parent = doc
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    return parent, parts[-1]


def json_patch(doc, ops):
    for op in ops:
        parent, key = json_pointer(doc, op["path"])
        if isinstance(parent, list):
            key = len(parent) if key == "-" else int(key)
        if op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(op["value"]))
            else:
                parent[key] = copy.deepcopy(op["value"])
        elif op["op"] == "replace":
            parent[key]  # must exist
            parent[key] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[key]
        else:
            raise SystemExit(f"render: JSON patch op {op['op']!r} not supported")


def render_dir(d):
    with open(os.path.join(d, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    known = {"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "patches", "images"}
    extra = set(k) - known
    if extra:
        raise SystemExit(f"render: {d}/kustomization.yaml uses {sorted(extra)}, which this renderer lacks; install kubectl")
    docs = []
    for res in k.get("resources", []):
        p = os.path.join(d, res)
        docs += render_dir(p) if os.path.isdir(p) else load_docs(p)
    for gen in k.get("configMapGenerator", []):
        data = {}
        for spec in gen.get("files", []):
            key, _, path = spec.rpartition("=")
            path = path or spec
            with open(os.path.join(d, path)) as f:
                data[key or os.path.basename(path)] = f.read()
        opts = gen.get("options", {})
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}
        if opts.get("labels"):
            cm["metadata"]["labels"] = dict(opts["labels"])
        if gen.get("behavior") == "replace":
            old = by_kind(docs, "ConfigMap", gen["name"])
            if len(old) != 1:
                raise SystemExit(f"render: {d}: replace of a missing ConfigMap {gen['name']}")
            # kustomize keeps what the base gave the object (namespace, labels).
            meta = copy.deepcopy(old[0]["metadata"])
            meta.setdefault("labels", {}).update(cm["metadata"].get("labels", {}))
            cm["metadata"] = meta
            docs.remove(old[0])
        docs.append(cm)
    for patch in k.get("patches", []):
        with open(os.path.join(d, patch["path"])) as f:
            body = yaml.safe_load(f)
        t = patch.get("target")
        if isinstance(body, list):
            targets = [x for x in docs if x["kind"] == t["kind"] and x["metadata"]["name"] == t["name"]]
            if len(targets) != 1:
                raise SystemExit(f"render: {d}: patch target {t} matched {len(targets)} objects")
            json_patch(targets[0], body)
        else:
            targets = by_kind(docs, body["kind"], body["metadata"]["name"])
            if len(targets) != 1:
                raise SystemExit(f"render: {d}: patch {patch['path']} matched {len(targets)} objects")
            deep_merge(targets[0], body)
    for img in k.get("images", []):
        for doc in docs:
            for c in pod_containers(doc):
                if c.get("image") == img["name"]:
                    c["image"] = img.get("newName", img["name"]) + (":" + img["newTag"] if "newTag" in img else "")
    if "namespace" in k:
        for doc in docs:
            if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
                doc["metadata"]["namespace"] = k["namespace"]
            for s in doc.get("subjects", []):
                s["namespace"] = k["namespace"]
    for lab in k.get("labels", []):
        if lab.get("includeSelectors"):
            raise SystemExit("render: labels with includeSelectors are not supported; install kubectl")
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(lab["pairs"])
    return docs


def _normalised(path):
    """Objects by (kind, name), generated names without their hash suffix."""
    hashed = re.compile(r"-[a-z0-9]{10}$")
    out = {}
    for d in load_docs(path):
        if d["kind"] == "ConfigMap":
            d["metadata"]["name"] = hashed.sub("", d["metadata"]["name"])
        spec = pod_spec(d) or {}
        for v in spec.get("volumes", []):
            if "configMap" in v:
                v["configMap"]["name"] = hashed.sub("", v["configMap"]["name"])
        out[(d["kind"], d["metadata"]["name"])] = d
    return out


def compare(args):
    """kubectl's rendering against ours: the same objects, field for field."""
    r = Report(f"render {args.name}")
    a, b = _normalised(args.kubectl), _normalised(args.ours)
    r.expect(set(a) == set(b), f"{len(a)} objects, the same as kubectl's",
             f"objects differ: only kubectl {sorted(set(a) - set(b))}, only ours {sorted(set(b) - set(a))}")
    for k in sorted(set(a) & set(b)):
        if a[k] != b[k]:
            r.fail(f"{k[0]}/{k[1]} differs from kubectl's rendering: fix render_dir in {__file__}")
    r.exit()


def manifest_files(args):
    """The YAML files under DIR that are whole Kubernetes objects (not kustomizations, daemon
    configs or JSON patches), for validating them one by one."""
    for top, dirs, files in os.walk(args.dir):
        dirs.sort()
        for f in sorted(files):
            if not f.endswith((".yaml", ".yml")):
                continue
            p = os.path.join(top, f)
            docs = load_docs(p)
            if docs and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d and d["kind"] != "Kustomization"
                            and "metadata" in d for d in docs):
                print(p)


def render(args):
    docs = render_dir(args.dir)
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


# ---------------------------------------------------------------------------------------------
# Assertions over one rendered overlay


def pod_spec(doc):
    if doc.get("kind") in ("DaemonSet", "Deployment", "StatefulSet", "Job", "ReplicaSet"):
        return doc["spec"]["template"]["spec"]
    if doc.get("kind") == "Pod":
        return doc["spec"]
    return None


def pod_containers(doc):
    spec = pod_spec(doc)
    if not spec:
        return []
    return spec.get("initContainers", []) + spec.get("containers", [])


def check_pod_security(r, doc, restricted):
    """The restricted level (or, with hostnet, what stays of it) for one workload."""
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    spec = pod_spec(doc)
    psc = spec.get("securityContext", {})
    if restricted:
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            r.expect(not spec.get(host), f"{name}: no {host}", f"{name}: spec.{host} is true; restricted forbids it")
    for v in spec.get("volumes", []):
        kinds = set(v) - {"name"}
        r.expect(kinds <= ALLOWED_VOLUME_TYPES, f"{name}: volume {v['name']} is {', '.join(kinds)}",
                 f"{name}: volume {v['name']} is {', '.join(kinds)}; restricted allows only {sorted(ALLOWED_VOLUME_TYPES)}")
    for s in psc.get("sysctls", []):
        r.expect(s["name"] in SAFE_SYSCTLS, f"{name}: sysctl {s['name']} is a safe one",
                 f"{name}: sysctl {s['name']} is not one of the safe sysctls {sorted(SAFE_SYSCTLS)}")
    pod_seccomp = psc.get("seccompProfile", {}).get("type")
    for c in pod_containers(doc):
        cn = f"{name} container {c['name']}"
        sc = c.get("securityContext", {})
        r.expect(sc.get("privileged") is not True, f"{cn}: not privileged", f"{cn}: securityContext.privileged is true")
        r.expect(sc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation false",
                 f"{cn}: securityContext.allowPrivilegeEscalation must be false (is {sc.get('allowPrivilegeEscalation')!r})")
        r.expect(sc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem",
                 f"{cn}: securityContext.readOnlyRootFilesystem must be true")
        caps = sc.get("capabilities", {})
        r.expect("ALL" in caps.get("drop", []), f"{cn}: capabilities drop ALL",
                 f"{cn}: securityContext.capabilities.drop must contain ALL (is {caps.get('drop')})")
        added = set(caps.get("add", []))
        allowed = {"NET_BIND_SERVICE"} if restricted else {"NET_BIND_SERVICE", "NET_RAW"}
        r.expect(added <= allowed, f"{cn}: capabilities added: {sorted(added) or 'none'}",
                 f"{cn}: capabilities.add {sorted(added)}; allowed here: {sorted(allowed)}")
        seccomp = sc.get("seccompProfile", {}).get("type", pod_seccomp)
        r.expect(seccomp in ("RuntimeDefault", "Localhost"), f"{cn}: seccomp {seccomp}",
                 f"{cn}: seccompProfile.type must be RuntimeDefault (pod or container), is {seccomp!r}")
        for p in c.get("ports", []):
            r.expect("hostPort" not in p or spec.get("hostNetwork"), f"{cn}: port {p.get('name')} has no hostPort",
                     f"{cn}: port {p.get('name')} sets hostPort; restricted forbids it")
        r.expect(sc.get("procMount", "Default") == "Default", f"{cn}: default procMount", f"{cn}: procMount must be Default")
        if restricted:
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            r.expect(non_root is True and uid != 0, f"{cn}: runAsNonRoot, UID {uid}",
                     f"{cn}: runAsNonRoot must be true and runAsUser non-zero (are {non_root!r}, {uid!r})")
            r.expect(uid == UID and sc.get("runAsGroup", psc.get("runAsGroup")) == UID, f"{cn}: UID/GID {UID}",
                     f"{cn}: runAsUser/runAsGroup must be {UID}, the image's USER")


def check_namespace(r, docs, level):
    ns = one(r, docs, "Namespace", "mcp-scout")
    if not ns:
        return
    labels = ns["metadata"].get("labels", {})
    for mode in ("enforce", "audit", "warn"):
        key = f"pod-security.kubernetes.io/{mode}"
        r.expect(labels.get(key) == level, f"Namespace mcp-scout: {key}={level}",
                 f"Namespace mcp-scout: label {key} is {labels.get(key)!r}, expected {level!r}")


def shutdown_worst_case(repo):
    """The daemon's worst-case SIGTERM-to-exit time, from the constants in src/daemon/mod.rs:
    the reloader (JOBS_DEADLINE), the monitor (JOBS_DEADLINE), the jobs (JOBS_DEADLINE) and the
    sinks (SINKS_DEADLINE) run one after the other; SHUTDOWN_DEADLINE bounds what follows."""
    src = open(os.path.join(repo, "src/daemon/mod.rs")).read()
    secs = {}
    for name in ("SHUTDOWN_DEADLINE", "JOBS_DEADLINE", "SINKS_DEADLINE"):
        m = re.search(rf"const {name}: Duration = Duration::from_secs\((\d+)\);", src)
        if not m:
            raise SystemExit(f"check: {name} not found in src/daemon/mod.rs; update shutdown_worst_case in {__file__}")
        secs[name] = int(m.group(1))
    return max(secs["SHUTDOWN_DEADLINE"], 3 * secs["JOBS_DEADLINE"] + secs["SINKS_DEADLINE"]), secs


def check_daemonset(r, docs, overlay, repo, cfg):
    ds = one(r, docs, "DaemonSet", "mcp-scout")
    if not ds:
        return None
    spec = pod_spec(ds)
    psc = spec.get("securityContext", {})
    hostnet = overlay == "hostnet"
    check_pod_security(r, ds, restricted=not hostnet)
    c = next((c for c in spec["containers"] if c["name"] == "mcp-scout"), None)
    if not c:
        r.fail("DaemonSet/mcp-scout: no container named mcp-scout")
        return None
    sc = c.get("securityContext", {})
    r.expect(psc.get("runAsUser") == UID and psc.get("runAsGroup") == UID and psc.get("fsGroup") == UID,
             f"DaemonSet: pod runs as {UID}:{UID}, fsGroup {UID}",
             f"DaemonSet: pod securityContext runAsUser/runAsGroup/fsGroup must be {UID}")
    sysctls = {s["name"]: s["value"] for s in psc.get("sysctls", [])}
    caps_add = set(sc.get("capabilities", {}).get("add", []))
    if hostnet:
        r.expect(spec.get("hostNetwork") is True, "DaemonSet: hostNetwork", "DaemonSet: hostnet overlay must set hostNetwork: true")
        r.expect(spec.get("dnsPolicy") == "ClusterFirstWithHostNet", "DaemonSet: dnsPolicy ClusterFirstWithHostNet",
                 f"DaemonSet: dnsPolicy is {spec.get('dnsPolicy')!r}, hostNetwork needs ClusterFirstWithHostNet")
        r.expect(not sysctls, "DaemonSet: no sysctls (the kubelet forbids net.* with hostNetwork)",
                 f"DaemonSet: sysctls {sorted(sysctls)} with hostNetwork: the kubelet rejects the pod")
        r.expect(caps_add == {"NET_RAW"}, "DaemonSet: NET_RAW added, nothing else",
                 f"DaemonSet: capabilities.add is {sorted(caps_add)}, expected [NET_RAW]")
        r.expect(sc.get("runAsUser") == 0 and sc.get("runAsNonRoot") is False and psc.get("runAsNonRoot") is False,
                 "DaemonSet: UID 0 so that NET_RAW reaches the process (no ambient capabilities)",
                 "DaemonSet: with NET_RAW the container must run as UID 0 (runAsNonRoot false): a non-root process loses it at exec")
    else:
        r.expect(sysctls.get("net.ipv4.ping_group_range") == "0 2147483647",
                 "DaemonSet: sysctl net.ipv4.ping_group_range=\"0 2147483647\" (unprivileged ICMP)",
                 f"DaemonSet: sysctls {sysctls}: net.ipv4.ping_group_range must be \"0 2147483647\"")
        r.expect(not caps_add, "DaemonSet: no capability added", f"DaemonSet: capabilities.add {sorted(caps_add)}")
    # The downward API.
    env = {e["name"]: e for e in c.get("env", [])}
    for var, field in DOWNWARD.items():
        got = env.get(var, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        r.expect(got == field, f"DaemonSet: env {var} <- {field}", f"DaemonSet: env {var} must come from fieldRef {field} (is {got!r})")
    secrets = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
    r.expect(secrets == [SECRET_NAME], f"DaemonSet: envFrom Secret {SECRET_NAME}",
             f"DaemonSet: envFrom secretRef is {secrets}, expected [{SECRET_NAME}] (secret.example.yaml)")
    # Arguments and the config mount.
    args = c.get("args", [])
    ok_args = args[:2] == ["daemon", "--config"] and len(args) >= 3
    r.expect(ok_args, f"DaemonSet: args {' '.join(args)}", f"DaemonSet: args {args} must start with daemon --config FILE")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    if ok_args:
        cdir, cfile = os.path.split(args[2])
        m = mounts.get(cdir)
        cm_name = vols.get(m["name"], {}).get("configMap", {}).get("name") if m else None
        cm = by_kind(docs, "ConfigMap", cm_name) if cm_name else []
        r.expect(len(cm) == 1 and cfile in cm[0].get("data", {}),
                 f"DaemonSet: {args[2]} is key {cfile} of ConfigMap {cm_name}",
                 f"DaemonSet: {args[2]} is not a key of a ConfigMap mounted at {cdir}")
    # The store on an emptyDir.
    store_dir = os.path.dirname(cfg.get("store", {}).get("path", ""))
    m = mounts.get(store_dir)
    r.expect(m is not None and "emptyDir" in vols.get(m["name"], {}),
             f"DaemonSet: store directory {store_dir} is an emptyDir",
             f"DaemonSet: the config's store directory {store_dir!r} must be an emptyDir mount")
    # Probes on the API port.
    port = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    listen_port = int(str(cfg.get("api", {}).get("listen", ":0")).rsplit(":", 1)[1])
    r.expect(port.get("http-api") == listen_port, f"DaemonSet: port http-api = api.listen port {listen_port}",
             f"DaemonSet: container port http-api is {port.get('http-api')}, api.listen says {listen_port}")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
        got = c.get(probe, {}).get("httpGet", {})
        r.expect(got.get("path") == path and got.get("port") in ("http-api", listen_port), f"DaemonSet: {probe} GET {path}",
                 f"DaemonSet: {probe} must GET {path} on port http-api (is {got})")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        r.expect({"cpu", "memory"} <= set(res.get(kind, {})), f"DaemonSet: resources.{kind} {res.get(kind)}",
                 f"DaemonSet: resources.{kind} must set cpu and memory (is {res.get(kind)})")
    tol = spec.get("tolerations", [])
    r.expect(any(t.get("operator") == "Exists" and not t.get("key") for t in tol),
             "DaemonSet: tolerates every taint (control plane included)",
             f"DaemonSet: tolerations {tol} must include {{operator: Exists}} so every node runs a scout")
    us = ds["spec"].get("updateStrategy", {})
    r.expect(us.get("type") == "RollingUpdate" and "maxUnavailable" in us.get("rollingUpdate", {}),
             f"DaemonSet: RollingUpdate maxUnavailable {us.get('rollingUpdate', {}).get('maxUnavailable')}",
             "DaemonSet: updateStrategy must be RollingUpdate with rollingUpdate.maxUnavailable")
    worst, secs = shutdown_worst_case(repo)
    tgps = spec.get("terminationGracePeriodSeconds", 30)
    r.expect(tgps > worst, f"DaemonSet: terminationGracePeriodSeconds {tgps} > worst-case shutdown {worst} s {secs}",
             f"DaemonSet: terminationGracePeriodSeconds {tgps} must exceed the daemon's worst-case shutdown {worst} s {secs}")
    sa = spec.get("serviceAccountName")
    r.expect(bool(by_kind(docs, "ServiceAccount", sa)), f"DaemonSet: ServiceAccount {sa} exists",
             f"DaemonSet: serviceAccountName {sa!r} is not in the rendering")
    return ds


def check_rbac(r, docs, cfg):
    cr = one(r, docs, "ClusterRole", "mcp-scout")
    if cr:
        rules = [(tuple(x.get("apiGroups", [])), tuple(x.get("resources", [])), tuple(sorted(x.get("verbs", []))),
                  tuple(x.get("resourceNames", []))) for x in cr.get("rules", [])]
        r.expect(rules == [(("",), ("pods",), ("get", "list", "watch"), ())], "ClusterRole: pods get, list, watch only",
                 f"ClusterRole mcp-scout: rules {rules}; expected only pods get/list/watch")
    role = one(r, docs, "Role", "mcp-scout")
    lease = cfg.get("kubernetes", {}).get("lease", {}).get("name", "mcp-scout-leader")
    if role:
        rules = role.get("rules", [])
        lease_rules = [x for x in rules if "leases" in x.get("resources", [])]
        named = [x for x in lease_rules if x.get("resourceNames")]
        create = [x for x in lease_rules if not x.get("resourceNames")]
        r.expect(len(named) == 1 and named[0]["resourceNames"] == [lease] and sorted(named[0]["verbs"]) == ["get", "update"]
                 and named[0].get("apiGroups") == ["coordination.k8s.io"],
                 f"Role: Lease {lease} get, update by name",
                 f"Role mcp-scout: expected one coordination.k8s.io leases rule with resourceNames [{lease}] and verbs get, update; got {named}")
        r.expect(len(create) == 1 and create[0]["verbs"] == ["create"], "Role: leases create (cannot be limited by name)",
                 f"Role mcp-scout: the unnamed leases rule must allow create only; got {create}")
        others = [x for x in rules if "leases" not in x.get("resources", [])]
        r.expect(others == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
                 "Role: pods get, list, watch in its namespace (shard: auto peers)",
                 f"Role mcp-scout: other rules {others}; expected only pods get/list/watch")
    for kind, ref in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        b = one(r, docs, kind, "mcp-scout")
        if b:
            subj = b.get("subjects", [])
            r.expect(b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": ref, "name": "mcp-scout"}
                     and subj == [{"kind": "ServiceAccount", "name": "mcp-scout", "namespace": "mcp-scout"}],
                     f"{kind}: {ref} mcp-scout to ServiceAccount mcp-scout/mcp-scout",
                     f"{kind} mcp-scout: roleRef {b['roleRef']}, subjects {subj}")


def check_service_and_policy(r, docs, ds):
    svc = one(r, docs, "Service", "mcp-scout")
    if svc:
        ports = svc["spec"].get("ports", [])
        r.expect(svc["spec"].get("internalTrafficPolicy") == "Local", "Service: internalTrafficPolicy Local",
                 "Service mcp-scout: internalTrafficPolicy must be Local")
        r.expect(any(p.get("name") == "http-api" and p.get("port") == 9464 for p in ports), "Service: port 9464 http-api",
                 f"Service mcp-scout: ports {ports}; expected 9464 named http-api")
        if ds:
            labels = ds["spec"]["template"]["metadata"]["labels"]
            sel = svc["spec"].get("selector", {})
            r.expect(all(labels.get(k) == v for k, v in sel.items()), "Service: selects the DaemonSet's pods",
                     f"Service mcp-scout: selector {sel} does not match the pod labels {labels}")
    np = one(r, docs, "NetworkPolicy", "mcp-scout")
    if np:
        ing = np["spec"].get("ingress", [])
        ports = [p for rule in ing for p in rule.get("ports", [])]
        r.expect(len(ing) >= 1 and all(rule.get("ports") for rule in ing) and {(p.get("port"), p.get("protocol", "TCP")) for p in ports} == {(9464, "TCP")},
                 "NetworkPolicy: ingress to TCP 9464 only",
                 f"NetworkPolicy mcp-scout: ingress {ing}; expected only TCP 9464")
        r.expect("Egress" in np["spec"].get("policyTypes", []) and {} in np["spec"].get("egress", []),
                 "NetworkPolicy: egress open (scanning), stated in the file",
                 "NetworkPolicy mcp-scout: expected the documented open egress rule {}")


def peers_selector_matches(r, cfg, ds):
    peers = cfg.get("kubernetes", {}).get("peers", "")
    labels = ds["spec"]["template"]["metadata"]["labels"] if ds else {}
    want = dict(x.split("=", 1) for x in peers.split(",") if "=" in x)
    r.expect(bool(want) and all(labels.get(k) == v for k, v in want.items()),
             f"config: kubernetes.peers {peers} selects the DaemonSet's pods",
             f"config: kubernetes.peers {peers!r} does not match the DaemonSet's pod labels {labels}")


def check_overlay_extras(r, docs, overlay, cfg, repo):
    jobs = cfg.get("jobs", [])
    names = [j.get("name") for j in jobs]
    pods = [j for j in jobs if j.get("kubernetes", {}).get("pods") == "node"]
    r.expect(len(pods) == 1, "config: a job with kubernetes: {pods: node}", f"config: jobs {names} need one with kubernetes.pods: node")
    local = [j for j in jobs if "local" in j.get("targets", [])]
    r.expect(len(local) == 1, "config: a node-lan job with targets [local]", f"config: jobs {names} need one with targets [local]")
    leader = [j for j in jobs if j.get("owner") == "leader" and j.get("srv")]
    r.expect(len(leader) == 1, "config: a leader-owned SRV job", f"config: jobs {names} need one with owner: leader and srv")
    api = cfg.get("api", {})
    r.expect(api.get("token") == "${MCP_SCOUT_API_TOKEN}" and api.get("read_token") == "${MCP_SCOUT_READ_TOKEN}",
             "config: API tokens from the Secret, required",
             f"config: api.token/read_token must be ${{MCP_SCOUT_API_TOKEN}}/${{MCP_SCOUT_READ_TOKEN}} (no default: the API listens beyond loopback)")
    if overlay == "hostnet":
        r.expect(any("mdns" in j for j in jobs), "config: an mDNS job", "config (hostnet): expected a job with mdns")
        r.expect(api.get("listen") == "${POD_IP}:9464", "config: API on the node IP", f"config (hostnet): api.listen is {api.get('listen')!r}")
    else:
        r.expect(api.get("listen") == "0.0.0.0:9464", "config: API on 0.0.0.0:9464", f"config: api.listen is {api.get('listen')!r}")
    if overlay == "monitoring":
        for kind in ("PodMonitor", "ServiceMonitor"):
            m = one(r, docs, kind, "mcp-scout")
            if m:
                eps = m["spec"].get("podMetricsEndpoints") or m["spec"].get("endpoints") or []
                r.expect(any(e.get("port") == "http-api" and e.get("path") == "/metrics" for e in eps),
                         f"{kind}: scrapes http-api /metrics", f"{kind} mcp-scout: endpoints {eps}; expected port http-api, path /metrics")
                sel = m["spec"].get("selector", {}).get("matchLabels", {})
                r.expect(sel == {"app.kubernetes.io/name": "mcp-scout"}, f"{kind}: selects app.kubernetes.io/name=mcp-scout",
                         f"{kind} mcp-scout: selector {sel}")
        cm = [d for d in by_kind(docs, "ConfigMap") if d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
        path = os.path.join(repo, "config/k8s/overlays/monitoring/grafana-dashboard.json")
        with open(path) as f:
            want = json.load(f)
        got = [json.loads(v) for d in cm for v in d.get("data", {}).values()]
        r.expect(got == [want], "ConfigMap grafana_dashboard=1 holds grafana-dashboard.json",
                 "monitoring: expected one ConfigMap labelled grafana_dashboard: \"1\" holding grafana-dashboard.json")
    if overlay == "mesh":
        reg = one(r, docs, "Deployment", "mcp-mesh-registry")
        if reg:
            check_pod_security(r, reg, restricted=True)
        svc = one(r, docs, "Service", "mcp-mesh-registry")
        sinks = [s for s in cfg.get("sinks", []) if s.get("type") == "mcp-mesh"]
        if svc and r.expect(len(sinks) == 1, "config: one mcp-mesh sink", "config (mesh): expected one sink of type mcp-mesh"):
            port = svc["spec"]["ports"][0]["port"]
            want = f"http://{svc['metadata']['name']}.{svc['metadata'].get('namespace', 'mcp-scout')}.svc:{port}"
            r.expect(sinks[0].get("url") == want, f"config: the sink feeds Service {want}",
                     f"config (mesh): sink url {sinks[0].get('url')!r}, the Service is {want}")
        if reg:
            labels = reg["spec"]["template"]["metadata"]["labels"]
            peers = cfg.get("kubernetes", {}).get("peers", "")
            want = dict(x.split("=", 1) for x in peers.split(",") if "=" in x)
            r.expect(not all(labels.get(k) == v for k, v in want.items()), "registry pods are not shard peers",
                     f"mesh: the registry's labels {labels} match kubernetes.peers {peers!r}")


def check_config_drift(r, overlay, cfg, repo):
    """An overlay's config.yaml is the base's plus its own marked changes, nothing else."""
    if overlay in ("base", "monitoring"):
        return
    with open(os.path.join(repo, "config/k8s/base/config.yaml")) as f:
        base = yaml.safe_load(f)
    mine = copy.deepcopy(cfg)
    if overlay == "hostnet":
        mine["jobs"] = [j for j in mine.get("jobs", []) if "mdns" not in j]
        mine.get("api", {})["listen"] = base["api"]["listen"]
    if overlay == "mesh":
        mine.pop("sinks", None)
    r.expect(mine == base, f"config: the same as the base but for the {overlay} changes",
             f"config: overlays/{overlay}/config.yaml differs from base/config.yaml beyond its own changes; bring it in step")


def check(args):
    r = Report(args.overlay)
    docs = load_docs(args.rendered)
    cms = [d for d in by_kind(docs, "ConfigMap") if "config.yaml" in d.get("data", {})]
    if len(cms) != 1:
        r.fail(f"expected one ConfigMap with key config.yaml, found {len(cms)}")
        r.exit()
    text = cms[0]["data"]["config.yaml"]
    with open(args.config_out, "w") as f:
        f.write(text)
    cfg = yaml.safe_load(text)
    check_namespace(r, docs, "privileged" if args.overlay == "hostnet" else "restricted")
    for doc in docs:
        if pod_spec(doc) is not None and doc["metadata"]["name"] not in ("mcp-scout", "mcp-mesh-registry"):
            check_pod_security(r, doc, restricted=True)
    ds = check_daemonset(r, docs, args.overlay, args.repo, cfg)
    check_rbac(r, docs, cfg)
    check_service_and_policy(r, docs, ds)
    peers_selector_matches(r, cfg, ds)
    check_overlay_extras(r, docs, args.overlay, cfg, args.repo)
    check_config_drift(r, args.overlay, cfg, args.repo)
    r.exit()


# ---------------------------------------------------------------------------------------------
# config check helpers


def pod_env(args):
    """The variables the pod has: the downward API's (sample values) and the Secret's keys."""
    env = dict(DOWNWARD_SAMPLE)
    with open(os.path.join(args.repo, "config/k8s/base/secret.example.yaml")) as f:
        secret = yaml.safe_load(f)
    env.update(secret["stringData"])
    for k, v in env.items():
        print(f"{k}={v}")


# ---------------------------------------------------------------------------------------------
# The dashboard's metrics

METRIC_RE = re.compile(r"\b((?:mcp_scout|process)_[a-zA-Z0-9_]+)\b")


def dashboard_queries(dash):
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                out.append((p.get("title", "?"), t.get("expr", "")))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if v.get("type") == "query":
            out.append((f"variable {v['name']}", q or ""))
    return out


def dashboard_metrics(args):
    with open(args.json) as f:
        dash = json.load(f)
    r = Report("dashboard")
    ids = []

    def walk(panels):
        for p in panels:
            ids.append(p.get("id"))
            if p.get("type") != "row":
                ds = p.get("datasource", {})
                r.expect(ds == {"type": "prometheus", "uid": "${datasource}"}, f"panel {p.get('title')!r} uses $datasource",
                         f"panel {p.get('title')!r}: datasource {ds}, expected the $datasource variable")
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    r.expect(len(ids) == len(set(ids)), f"{len(ids)} panels, unique ids", f"panel ids repeat: {ids}")
    names = set()
    for where, expr in dashboard_queries(dash):
        found = set(METRIC_RE.findall(expr))
        r.expect(bool(found) or not expr, f"{where}: {', '.join(sorted(found))}", f"{where}: no mcp_scout_/process_ metric in {expr!r}")
        names |= found
    with open(args.out, "w") as f:
        f.write("\n".join(sorted(names)) + "\n")
    r.ok(f"{len(names)} metric names queried")
    r.exit()


def metrics_present(args):
    with open(args.names) as f:
        names = [n.strip() for n in f if n.strip()]
    with open(args.scrape) as f:
        seen = {m.group(1) for m in (re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", line) for line in f if not line.startswith("#")) if m}
    missing = [n for n in names if n not in seen]
    print(" ".join(missing))
    sys.exit(1 if missing else 0)


def prom_queries(args):
    """Every panel query, its Grafana variables replaced as Grafana would (the scrape job, every
    node, a rate window of several scrapes), must evaluate in a real Prometheus to at least one
    series, and every label a `by (...)` groups on must be on some result (a PromQL typo, a
    label that does not exist, a metric that is never exported show up here). `node` and `pod`
    are exempt: the Prometheus Operator's relabelling adds them, a plain scrape has neither.
    Polls until all answer or the deadline passes."""
    import time
    import urllib.parse
    import urllib.request

    with open(args.json) as f:
        dash = json.load(f)
    queries = [(w, e) for w, e in dashboard_queries(dash) if not w.startswith("variable ")]

    def expand(expr):
        return (expr.replace("$__rate_interval", args.rate_window).replace("$job", args.job)
                .replace("$node", ".*"))

    def ask(expr):
        url = f"{args.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.load(resp)
        except Exception as e:  # an HTTP 400 carries PromQL's parse error in its body
            detail = getattr(e, "read", lambda: b"")().decode(errors="replace")
            return None, f"{e} {detail}".strip()
        if body.get("status") != "success":
            return None, body.get("error", "?")
        result = body["data"]["result"]
        grouped = {l.strip() for g in re.findall(r"\bby \(([^)]*)\)", expr) for l in g.split(",")}
        grouped -= {"le", "node", "pod", ""}
        seen = {l for series in result for l in series.get("metric", {})}
        if result and not grouped <= seen:
            return None, f"grouped by {sorted(grouped - seen)}, which no result carries"
        return len(result), None

    deadline = time.monotonic() + args.timeout
    while True:
        pending = []
        for where, expr in queries:
            n, err = ask(expand(expr))
            if err or not n:
                pending.append((where, expand(expr), err or "no series"))
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)  # poll interval: a new scrape each second (bounded by --timeout)
    r = Report("prometheus")
    for where, expr, why in pending:
        r.fail(f"{where}: {expr}: {why}")
    if not pending:
        r.ok(f"all {len(queries)} panel queries return series ({args.job!r} for $job, {args.rate_window} for $__rate_interval)")
    r.exit()


# ---------------------------------------------------------------------------------------------
# The Dockerfile (no image can be built here: only what can be read)


def dockerfile(args):
    r = Report("Dockerfile")
    with open(os.path.join(args.repo, "Dockerfile")) as f:
        lines = [l.strip() for l in f.read().replace("\\\n", " ").splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    r.expect(len(froms) >= 2, f"multi-stage ({len(froms)} stages)", "expected a build stage and a runtime stage")
    r.expect(bool(froms) and re.match(r"FROM rust:1-bookworm AS \w+", froms[0], re.I) is not None,
             f"builder: {froms[0] if froms else '-'}", "the first stage must be FROM rust:1-bookworm AS <name>")
    r.expect(any("cargo build --release --locked" in l for l in lines), "cargo build --release --locked",
             "the build stage must run cargo build --release --locked")
    runtime = froms[-1] if froms else ""
    r.expect(re.search(r"(gcr\.io/distroless/|debian:\S*slim)", runtime) is not None, f"runtime: {runtime}",
             f"the runtime stage must be distroless or debian-slim, is {runtime!r}")
    runtime_idx = lines.index(runtime) if runtime else 0
    users = [l.split(None, 1)[1] for l in lines[runtime_idx:] if l.upper().startswith("USER ")]
    r.expect(users[-1:] == [f"{UID}:{UID}"], f"USER {UID}:{UID}", f"the runtime stage must end with USER {UID}:{UID} (found {users})")
    r.expect(not any(l.upper().startswith("RUN ") for l in lines[runtime_idx:]),
             "no RUN in the runtime stage (no shell there)", "the runtime stage has RUN, which needs a shell")
    ep = [l for l in lines[runtime_idx:] if l.upper().startswith("ENTRYPOINT ")]
    cmd = [l for l in lines[runtime_idx:] if l.upper().startswith("CMD ")]
    ok = len(ep) == 1 and ep[0].split(None, 1)[1].startswith("[")
    r.expect(ok, f"exec-form {ep[0] if ep else '-'}", "ENTRYPOINT must be one exec-form (JSON) array")
    if ok and cmd:
        copies = [l for l in lines[runtime_idx:] if l.upper().startswith("COPY ")]
        target = json.loads(ep[0].split(None, 1)[1])[0]
        r.expect(any(l.split()[-1] == target for l in copies), f"{target} is copied into the runtime stage",
                 f"ENTRYPOINT {target} is not a COPY destination of the runtime stage")
        r.expect(json.loads(cmd[0].split(None, 1)[1])[:2] == ["daemon", "--config"], "CMD daemon --config ...",
                 "CMD should run the daemon with --config, like the DaemonSet")
    with open(os.path.join(args.repo, ".dockerignore")) as f:
        ign = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    r.expect({"target/", ".git/"} <= ign, ".dockerignore leaves out target/ and .git/", f".dockerignore {sorted(ign)} must list target/ and .git/")
    r.exit()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("validate-output").set_defaults(fn=validate_output)
    s = sub.add_parser("render")
    s.add_argument("dir")
    s.set_defaults(fn=render)
    s = sub.add_parser("compare")
    s.add_argument("name")
    s.add_argument("kubectl")
    s.add_argument("ours")
    s.set_defaults(fn=compare)
    s = sub.add_parser("manifest-files")
    s.add_argument("dir")
    s.set_defaults(fn=manifest_files)
    s = sub.add_parser("check")
    s.add_argument("overlay", choices=OVERLAYS)
    s.add_argument("rendered")
    s.add_argument("--repo", required=True)
    s.add_argument("--config-out", required=True)
    s.set_defaults(fn=check)
    s = sub.add_parser("env")
    s.add_argument("--repo", required=True)
    s.set_defaults(fn=pod_env)
    s = sub.add_parser("dashboard-metrics")
    s.add_argument("json")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=dashboard_metrics)
    s = sub.add_parser("metrics-present")
    s.add_argument("names")
    s.add_argument("scrape")
    s.set_defaults(fn=metrics_present)
    s = sub.add_parser("prom-queries")
    s.add_argument("json")
    s.add_argument("--url", required=True)
    s.add_argument("--job", required=True)
    s.add_argument("--rate-window", default="10s")
    s.add_argument("--timeout", type=float, default=60.0)
    s.set_defaults(fn=prom_queries)
    s = sub.add_parser("dockerfile")
    s.add_argument("--repo", required=True)
    s.set_defaults(fn=dockerfile)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
