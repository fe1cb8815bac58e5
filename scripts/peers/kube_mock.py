"""A MOCK of the Kubernetes API server's pod endpoints (python3 stdlib only). NOT Kubernetes.

No API server (kind, k3s, ...) can run on the test machine, so the `kubernetes:` sources are
tested against this mock. It serves the subset kube-rs's watcher uses, with the shapes and
status codes the real API server gives, and records every request so a test can assert the
exact query sent:

    kube_mock.py --listen IP:PORT [--pods FILE] [--bookmark-interval S]
    (or --host IP --port PORT, like the other peers)

Pods (core/v1; `FILE` holds a JSON list of Pods or a PodList `{"items": [...]}`):
  GET /api/v1/pods                          list every namespace
  GET /api/v1/namespaces/{ns}/pods          list one namespace
  GET /api/v1/namespaces/{ns}/pods/{name}   one pod (404 Status when unknown)
      list query: fieldSelector (spec.nodeName, metadata.name, metadata.namespace, status.phase,
      status.podIP; `=`, `==`, `!=`, comma = and), labelSelector (`k=v`, `k==v`, `k!=v`, `k`,
      `!k`, `k in (a,b)`, `k notin (a,b)`), limit + continue (pagination; the continue token is
      an offset into a snapshot at the list's resourceVersion), resourceVersion and
      resourceVersionMatch are accepted (a list is always served from the newest state, which
      is what `resourceVersion=0` + `NotOlderThan` allows).
      A PodList carries metadata.resourceVersion = the store's current resourceVersion.
  ... ?watch=1|true                         a watch: newline-delimited JSON WatchEvents, chunked
      resourceVersion=RV: events after RV (ADDED / MODIFIED / DELETED as seen through the
      selectors: a pod that stops matching is DELETED for that watch, one that starts matching
      is ADDED). RV older than the compacted history (POST /control/compact): a single ERROR
      event with a Status `code: 410, reason: Expired`, then the stream ends (as the real API
      server does). No RV or RV=0: ADDED for every matching pod first, then live events.
      allowWatchBookmarks=true: a BOOKMARK event (`metadata.resourceVersion` only) every
      --bookmark-interval seconds (default 1). timeoutSeconds: the stream ends after that many
      seconds (capped at MAX_WATCH_SECONDS).

Control (never recorded in /control/requests):
  POST   /control/pods                 body: a Pod, a list of Pods or {"items": [...]}: add or
                                       replace (by namespace/name); answers the stored pods
  DELETE /control/pods/{ns}/{name}     delete (404 when unknown)
  POST   /control/pods/{ns}/{name}/phase   body {"phase": "Running"|"Pending"|...} (status.phase)
  resourceVersions start at the start time in milliseconds and the history before start
  (--pods) is compacted: a client resuming from a previous mock's resourceVersion (a restart)
  gets 410 Gone and relists, as after an API server restart that lost its watch cache.
  POST   /control/compact              forget the history up to now (a version past every one
                                       handed out, bookmarks included) and end every open
                                       watch, so resuming watchers get 410 Gone and must relist
  POST   /control/close-watches        end every open watch (an API server restart, seen from a
                                       client that keeps its resourceVersion)
  POST   /control/mode                 body {"mode": M}: `normal`; `forbid-list` (list and watch
                                       of pods answer 403 with a Status naming verb and resource,
                                       as RBAC does); `forbid-watch` (watch only); `unavailable`
                                       (every API path answers 503)
  GET    /control/requests             every API request, oldest first: [{seq, time, method,
                                       path, query (name -> first value), status}]
  DELETE /control/requests             forget them
  GET    /control/state                {resourceVersion, compacted, pods, watches, mode}
  DELETE /control/leases/{ns}/{name}   forget a Lease

Leases (`owner: leader`): GET/PUT /apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}
and POST .../leases, with resourceVersion optimistic concurrency (POST of an existing one is
409 AlreadyExists, PUT with a stale or missing resourceVersion 409 Conflict).

Extending it: a resource is a store (`PodStore` keeps objects, resourceVersions and history) and
routes in `Mock.routes` (method, regex, handler): add a store and routes, nothing else.

Prints `READY <ip>:<port>` once listening; SIGTERM/SIGINT end the process at once, and so does
the death of the process that started it.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

MAX_BODY = 64 << 20  # a bulk POST of 5,000 pods is ~5 MB
MAX_RECORDS = 200_000
MAX_WATCH_SECONDS = 1800
DEFAULT_WATCH_SECONDS = 1800
WAIT_SLICE = 0.25  # a watch wakes this often to notice close/timeout/bookmark
SERVICE_ACCOUNT = "system:serviceaccount:mcp-scout:mcp-scout"
LEASES = r"/apis/coordination.k8s.io/v1/namespaces/(?P<ns>[^/]+)/leases"


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code}
    if details:
        obj["details"] = details
    return obj


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.body = status(code, reason, message, details)


# ---------------------------------------------------------------- selectors

def split_top(s: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b`)."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


FIELD_PATHS = {
    "spec.nodeName": lambda p: p.get("spec", {}).get("nodeName", ""),
    "metadata.name": lambda p: p.get("metadata", {}).get("name", ""),
    "metadata.namespace": lambda p: p.get("metadata", {}).get("namespace", ""),
    "status.phase": lambda p: p.get("status", {}).get("phase", ""),
    "status.podIP": lambda p: p.get("status", {}).get("podIP", ""),
}


def field_selector(expr: str | None):
    if not expr:
        return lambda p: True
    terms = []
    for term in split_top(expr):
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|!=|=)\s*(.*)", term)
        if not m:
            raise ApiError(400, "BadRequest", f'unable to parse requirement: invalid field selector "{term}"')
        key, op, val = m.groups()
        if key not in FIELD_PATHS:
            raise ApiError(400, "BadRequest",
                           f'field label not supported: {key}')
        terms.append((FIELD_PATHS[key], op, val))

    def match(p):
        for get, op, val in terms:
            eq = get(p) == val
            if (op == "!=") == eq:
                return False
        return True

    return match


def label_selector(expr: str | None):
    if not expr:
        return lambda p: True
    reqs = []
    for term in split_top(expr):
        m = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\((.*)\)", term)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            reqs.append((key, op, vals))
            continue
        m = re.fullmatch(r"([\w./-]+)\s*(==|!=|=)\s*([\w./-]*)", term)
        if m:
            reqs.append((m.group(1), m.group(2), {m.group(3)}))
            continue
        m = re.fullmatch(r"(!?)([\w./-]+)", term)
        if m:
            reqs.append((m.group(2), "!exists" if m.group(1) else "exists", set()))
            continue
        raise ApiError(400, "BadRequest", f'unable to parse requirement: invalid label selector "{term}"')

    def match(p):
        labels = p.get("metadata", {}).get("labels") or {}
        for key, op, vals in reqs:
            has = key in labels
            v = labels.get(key)
            ok = {
                "=": has and v in vals, "==": has and v in vals, "in": has and v in vals,
                "!=": not has or v not in vals, "notin": not has or v not in vals,
                "exists": has, "!exists": not has,
            }[op]
            if not ok:
                return False
        return True

    return match


# ---------------------------------------------------------------- the store

class PodStore:
    """Pods by (namespace, name), one resourceVersion counter, and the event history that
    watches replay. Every mutation bumps the counter and notifies waiting watches."""

    def __init__(self, cond: threading.Condition, clock):
        self.cond = cond
        self.clock = clock
        self.objects: dict[tuple[str, str], dict] = {}
        # (rv, old object or None, new object or None); old None = added, new None = deleted
        self.history: list[tuple[int, dict | None, dict | None]] = []
        self.compacted = 0  # history at or before this rv is gone (410 for older watches)
        self.tombstones: dict[int, dict] = {}

    def put(self, pod: dict) -> dict:
        if not isinstance(pod, dict) or pod.get("kind", "Pod") != "Pod":
            raise ApiError(400, "BadRequest", "body must be a Pod")
        meta = pod.setdefault("metadata", {})
        ns = meta.setdefault("namespace", "default")
        name = meta.get("name")
        if not name:
            raise ApiError(400, "BadRequest", "metadata.name is required")
        pod["kind"], pod["apiVersion"] = "Pod", "v1"
        pod.setdefault("spec", {}).setdefault("containers", [])
        pod.setdefault("status", {})
        old = self.objects.get((ns, name))
        meta["uid"] = old["metadata"]["uid"] if old else meta.get("uid") or str(uuid.uuid4())
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        rv = self.clock()
        meta["resourceVersion"] = str(rv)
        self.objects[(ns, name)] = pod
        self.history.append((rv, old, pod))
        return pod

    def delete(self, ns: str, name: str) -> dict:
        old = self.objects.pop((ns, name), None)
        if old is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
        gone = copy.deepcopy(old)
        rv = self.clock()
        gone["metadata"]["resourceVersion"] = str(rv)
        self.history.append((rv, old, None))
        self.tombstones[rv] = gone  # the object as DELETED events carry it (its final rv)
        return gone

    def compact(self, rv: int) -> None:
        self.compacted = rv
        self.history = [h for h in self.history if h[0] > rv]
        self.tombstones = {k: v for k, v in self.tombstones.items() if k > rv}


class Mock:
    def __init__(self, bookmark_interval: float):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        # Start from the wall clock (ms), so a restarted mock's versions are above the last
        # one's; its history before start is compacted (see main): a client resuming from a
        # previous mock's resourceVersion gets 410 Gone and relists, as after an API server
        # restart that lost its watch cache.
        self.rv = int(time.time() * 1000)
        self.pods = PodStore(self.cond, self.next_rv)
        self.requests: list[dict] = []
        self.seq = 0
        self.mode = "normal"
        self.watch_epoch = 0  # bumped to end every open watch
        self.open_watches = 0
        self.bookmark_interval = bookmark_interval
        self.routes = [
            # (method, path regex, handler(handler, match, query, body)); API routes are recorded
            ("GET", r"/api/v1/pods", self.pods_collection, True),
            ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", self.pods_collection, True),
            ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)", self.pod_get, True),
            ("POST", r"/control/pods", self.ctl_put, False),
            ("DELETE", r"/control/pods/(?P<ns>[^/]+)/(?P<name>[^/]+)", self.ctl_delete, False),
            ("POST", r"/control/pods/(?P<ns>[^/]+)/(?P<name>[^/]+)/phase", self.ctl_phase, False),
            ("POST", r"/control/compact", self.ctl_compact, False),
            ("POST", r"/control/close-watches", self.ctl_close, False),
            ("POST", r"/control/mode", self.ctl_mode, False),
            ("GET", r"/control/requests", self.ctl_requests, False),
            ("DELETE", r"/control/requests", self.ctl_forget, False),
            ("GET", r"/control/state", self.ctl_state, False),
            # Leases (coordination.k8s.io/v1), for `owner: leader`: optimistic concurrency by
            # resourceVersion, as the API server does it (409 on a stale or missing one).
            ("GET", LEASES + r"/(?P<name>[^/]+)", self.lease_get, True),
            ("POST", LEASES, self.lease_create, True),
            ("PUT", LEASES + r"/(?P<name>[^/]+)", self.lease_replace, True),
            ("DELETE", r"/control/leases/(?P<ns>[^/]+)/(?P<name>[^/]+)", self.ctl_lease_delete, False),
        ]
        self.leases: dict[tuple[str, str], dict] = {}

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def record(self, method: str, path: str, query: dict) -> dict:
        """Recorded when the request arrives (a watch may stay open for minutes); `status`
        is null until it is answered (for a watch: the 200 that opened the stream)."""
        rec = {"seq": 0, "time": time.time(), "method": method, "path": path, "query": query, "status": None}
        with self.lock:
            self.seq += 1
            rec["seq"] = self.seq
            if len(self.requests) < MAX_RECORDS:
                self.requests.append(rec)
        return rec

    # ---- API handlers: return (code, obj) or stream themselves and return None

    def check_mode(self, verb: str, ns: str | None) -> None:
        if self.mode == "unavailable":
            raise ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        if (self.mode == "forbid-list" and verb in ("list", "watch")) or \
                (self.mode == "forbid-watch" and verb == "watch"):
            where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            raise ApiError(403, "Forbidden",
                           f'pods is forbidden: User "{SERVICE_ACCOUNT}" cannot {verb} resource "pods" '
                           f'in API group "" {where}', {"kind": "pods"})

    def pods_collection(self, h, m, q, body):
        ns = m.groupdict().get("ns")
        watch = q.get("watch", "") in ("1", "true")
        self.check_mode("watch" if watch else "list", ns)
        fsel = field_selector(q.get("fieldSelector"))
        lsel = label_selector(q.get("labelSelector"))

        def matches(p):
            return p is not None and (ns is None or p["metadata"]["namespace"] == ns) and fsel(p) and lsel(p)

        if watch:
            return self.watch(h, q, matches)
        with self.lock:
            items = sorted((p for p in self.pods.objects.values() if matches(p)),
                           key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
            rv = self.rv
            items = copy.deepcopy(items)
        start = 0
        if q.get("continue"):
            try:
                start = int(q["continue"])
            except ValueError:
                raise ApiError(400, "BadRequest", "invalid continue token")
        limit = int(q.get("limit") or 0)
        meta = {"resourceVersion": str(rv)}
        if limit > 0:
            page = items[start:start + limit]
            if start + limit < len(items):
                meta["continue"] = str(start + limit)
                meta["remainingItemCount"] = len(items) - start - limit
            items = page
        for p in items:
            p.pop("kind", None)
            p.pop("apiVersion", None)
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items}

    # ---- Leases: GET, POST (create; 409 AlreadyExists), PUT (replace; 409 Conflict unless
    # metadata.resourceVersion is the stored one). Each write takes a new resourceVersion.

    def lease_stored(self, ns: str, name: str, body) -> dict:
        obj = copy.deepcopy(body) if isinstance(body, dict) else {}
        meta = obj.setdefault("metadata", {})
        meta["name"], meta["namespace"] = name, ns
        meta["resourceVersion"] = str(self.next_rv())
        obj["kind"], obj["apiVersion"] = "Lease", "coordination.k8s.io/v1"
        return obj

    def lease_get(self, h, m, q, body):
        self.check_mode("get", m["ns"])
        with self.lock:
            obj = self.leases.get((m["ns"], m["name"]))
            if obj is None:
                raise ApiError(404, "NotFound", f'leases.coordination.k8s.io "{m["name"]}" not found',
                               {"name": m["name"], "group": "coordination.k8s.io", "kind": "leases"})
            return 200, copy.deepcopy(obj)

    def lease_create(self, h, m, q, body):
        self.check_mode("create", m["ns"])
        name = ((body or {}).get("metadata") or {}).get("name")
        if not name:
            raise ApiError(422, "Invalid", "Lease.coordination.k8s.io is invalid: metadata.name: Required value")
        with self.lock:
            if (m["ns"], name) in self.leases:
                raise ApiError(409, "AlreadyExists", f'leases.coordination.k8s.io "{name}" already exists',
                               {"name": name, "group": "coordination.k8s.io", "kind": "leases"})
            obj = self.lease_stored(m["ns"], name, body)
            self.leases[(m["ns"], name)] = obj
            return 201, copy.deepcopy(obj)

    def lease_replace(self, h, m, q, body):
        self.check_mode("update", m["ns"])
        key = (m["ns"], m["name"])
        with self.lock:
            cur = self.leases.get(key)
            if cur is None:
                raise ApiError(404, "NotFound", f'leases.coordination.k8s.io "{m["name"]}" not found',
                               {"name": m["name"], "group": "coordination.k8s.io", "kind": "leases"})
            sent = ((body or {}).get("metadata") or {}).get("resourceVersion")
            if sent != cur["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict",
                               f'Operation cannot be fulfilled on leases.coordination.k8s.io "{m["name"]}": '
                               "the object has been modified; please apply your changes to the latest version and try again",
                               {"name": m["name"], "group": "coordination.k8s.io", "kind": "leases"})
            obj = self.lease_stored(m["ns"], m["name"], body)
            self.leases[key] = obj
            return 200, copy.deepcopy(obj)

    def ctl_lease_delete(self, h, m, q, body):
        with self.lock:
            gone = self.leases.pop((m["ns"], m["name"]), None)
        return 200, {"deleted": gone is not None}

    def pod_get(self, h, m, q, body):
        self.check_mode("get", m["ns"])
        with self.lock:
            p = self.pods.objects.get((m["ns"], m["name"]))
            if p is None:
                raise ApiError(404, "NotFound", f'pods "{m["name"]}" not found', {"name": m["name"], "kind": "pods"})
            return 200, copy.deepcopy(p)

    def watch(self, h, q, matches):
        try:
            since = int(q.get("resourceVersion") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid resourceVersion")
        timeout = min(int(q.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS), MAX_WATCH_SECONDS)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        deadline = time.monotonic() + timeout
        h.start_chunked()
        with self.lock:
            epoch = self.watch_epoch
            self.open_watches += 1
            if since and since < self.pods.compacted:
                h.chunk({"type": "ERROR", "object": status(
                    410, "Expired", f"too old resource version: {since} ({self.pods.compacted})")})
                self.open_watches -= 1
                return h.end_chunked()
            pending: list[dict] = []
            if not since:
                for p in self.pods.objects.values():
                    if matches(p):
                        pending.append({"type": "ADDED", "object": copy.deepcopy(p)})
                since = self.rv
            cursor = since
        next_bookmark = time.monotonic() + self.bookmark_interval
        try:
            for ev in pending:
                h.chunk(ev)
            while True:
                with self.lock:
                    events = []
                    # A watch ended by compaction/close sends nothing more: what happened after
                    # it must reach the client through its next watch (or its 410 relist).
                    if self.watch_epoch != epoch:
                        break
                    start = bisect.bisect_right(self.pods.history, cursor, key=lambda e: e[0])
                    for rv, old, new in self.pods.history[start:]:
                        om, nm = matches(old), matches(new)
                        if nm and not om:
                            events.append({"type": "ADDED", "object": copy.deepcopy(new)})
                        elif nm and om:
                            events.append({"type": "MODIFIED", "object": copy.deepcopy(new)})
                        elif om and not nm:
                            obj = copy.deepcopy(new) if new is not None else copy.deepcopy(self.pods.tombstones.get(rv) or old)
                            obj["metadata"]["resourceVersion"] = str(rv)
                            events.append({"type": "DELETED", "object": obj})
                    cursor = self.rv
                    closed = self.watch_epoch != epoch
                    if not events and not closed:
                        self.cond.wait(WAIT_SLICE)
                for ev in events:
                    h.chunk(ev)
                now = time.monotonic()
                if closed or now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    h.chunk({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                             "metadata": {"resourceVersion": str(cursor)}}})
                    next_bookmark = now + self.bookmark_interval
            h.end_chunked()
        except (BrokenPipeError, ConnectionResetError, OSError):
            h.close_connection = True
        finally:
            with self.lock:
                self.open_watches -= 1

    # ---- control

    def changed(self) -> None:
        self.cond.notify_all()

    def ctl_put(self, h, m, q, body):
        if isinstance(body, dict) and "items" in body:
            body = body["items"]
        pods = body if isinstance(body, list) else [body]
        with self.lock:
            out = [copy.deepcopy(self.pods.put(copy.deepcopy(p))) for p in pods]
            self.changed()
        return 200, out if isinstance(body, list) else out[0]

    def ctl_delete(self, h, m, q, body):
        with self.lock:
            gone = self.pods.delete(m["ns"], m["name"])
            self.changed()
        return 200, gone

    def ctl_phase(self, h, m, q, body):
        phase = (body or {}).get("phase") if isinstance(body, dict) else None
        if not phase:
            raise ApiError(400, "BadRequest", 'body must be {"phase": "..."}')
        with self.lock:
            p = self.pods.objects.get((m["ns"], m["name"]))
            if p is None:
                raise ApiError(404, "NotFound", f'pods "{m["name"]}" not found')
            p = copy.deepcopy(p)
            p["status"]["phase"] = phase
            out = copy.deepcopy(self.pods.put(p))
            self.changed()
        return 200, out

    def ctl_compact(self, h, m, q, body):
        with self.lock:
            # Past every version handed out (bookmarks included), so every resuming watch,
            # whatever its last bookmark, gets 410 Gone.
            self.pods.compact(self.next_rv())
            self.watch_epoch += 1
            self.changed()
            return 200, {"compacted": self.rv}

    def ctl_close(self, h, m, q, body):
        with self.lock:
            self.watch_epoch += 1
            self.changed()
            return 200, {"closed": self.open_watches}

    def ctl_mode(self, h, m, q, body):
        mode = (body or {}).get("mode") if isinstance(body, dict) else None
        if mode not in ("normal", "forbid-list", "forbid-watch", "unavailable"):
            raise ApiError(400, "BadRequest", f"unknown mode {mode!r}")
        with self.lock:
            self.mode = mode
            if mode != "normal":
                self.watch_epoch += 1  # RBAC changes and outages end open watches too
                self.changed()
        return 200, {"mode": mode}

    def ctl_requests(self, h, m, q, body):
        with self.lock:
            return 200, list(self.requests)

    def ctl_forget(self, h, m, q, body):
        with self.lock:
            self.requests.clear()
        return 200, {}

    def ctl_state(self, h, m, q, body):
        with self.lock:
            return 200, {"resourceVersion": self.rv, "compacted": self.pods.compacted,
                         "pods": len(self.pods.objects), "watches": self.open_watches, "mode": self.mode}


def make_handler(mock: Mock):
    routes = [(meth, re.compile(rx + r"/?"), fn, rec) for meth, rx, fn, rec in mock.routes]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kube-mock"

        def log_message(self, fmt, *args):
            sys.stderr.write("kube-mock: " + (fmt % args) + "\n")

        def send_json(self, code: int, obj) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def start_chunked(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()

        def chunk(self, obj) -> None:
            data = json.dumps(obj).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def end_chunked(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def handle_any(self, method: str) -> None:
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self.close_connection = True
                return self.send_json(413, status(413, "RequestEntityTooLarge", "body too large"))
            raw = self.rfile.read(n) if n else b""
            path = url.path
            found = None
            for meth, rx, fn, is_api in routes:
                m = rx.fullmatch(path)
                if m and meth == method:
                    found = (m, fn, is_api)
                    break
            recorded = found[2] if found else not path.startswith("/control/")
            rec: dict = mock.record(method, path, q) if recorded else {}
            if not found:
                code = 404
                self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
            else:
                m, fn, _ = found
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                try:
                    if method == "GET" and q.get("watch") in ("1", "true"):
                        rec["status"] = 200  # the stream opens with 200 (errors come as events)
                    res = fn(self, m, q, body)
                    code = 200
                    if res is not None:
                        code, obj = res
                        self.send_json(code, obj)
                except ApiError as e:
                    code = e.code
                    self.send_json(e.code, e.body)
            with mock.lock:
                rec["status"] = code

        def do_GET(self):
            self.handle_any("GET")

        def do_POST(self):
            self.handle_any("POST")

        def do_PUT(self):
            self.handle_any("PUT")

        def do_DELETE(self):
            self.handle_any("DELETE")

    return Handler


def load_pods(path: str) -> list[dict]:
    with open(path) as f:
        data = json.load(f)
    return data["items"] if isinstance(data, dict) else data


def main() -> None:
    ap = argparse.ArgumentParser(description="a MOCK of the Kubernetes API's pod endpoints (not Kubernetes)")
    ap.add_argument("--listen", default=None, help="IP:PORT ([v6]:PORT) to bind")
    ap.add_argument("--host", default=None)
    ap.add_argument("--port", default=None, type=int)
    ap.add_argument("--pods", default=None, help="JSON file: a list of Pods or a PodList")
    ap.add_argument("--bookmark-interval", default=1.0, type=float, help="seconds between BOOKMARK events")
    ap.add_argument("--path", default=None, help="ignored (accepted for run.sh symmetry)")
    args = ap.parse_args()
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        args.host, args.port = host.strip("[]"), int(port)
    if args.host is None or args.port is None:
        ap.error("--listen IP:PORT (or --host and --port) is required")
    _peerlib.check_loopback(args.host)
    mock = Mock(args.bookmark_interval)
    if args.pods:
        with mock.lock:
            for p in load_pods(args.pods):
                mock.pods.put(p)
    mock.pods.compact(mock.rv)
    _peerlib.serve_http(args.host, args.port, make_handler(mock), queue=128)


if __name__ == "__main__":
    main()
