"""A MOCK of Consul's agent HTTP API (python3 stdlib only). NOT Consul.

Consul cannot run on the test machine, so the `consul` sink is tested against this mock. It
implements only the subset of the agent API the sink uses, answers with the status codes and
shapes Consul gives for them, and records every request so a test can assert the exact requests:

    consul_mock.py --host IP --port PORT [--token T]

  PUT /v1/agent/service/register[?replace-existing-checks=true]
        body: {ID?, Name, Address?, Port?, Tags?, Meta?, Check?} (keys as Consul spells them;
        Consul also accepts other casings, the mock does not, so the sink's spelling is checked).
        ID defaults to Name. Check (TTL checks only): {CheckID?, Name?, TTL, Notes?,
        Status?, DeregisterCriticalServiceAfter?}; CheckID defaults to `service:<ID>`, Status to
        `critical`. 200 with an empty body. Re-registering replaces the service (and its check).
  PUT /v1/agent/service/deregister/<service_id>
        200 empty; 404 `Unknown service ID "<id>". Ensure that the service ID is passed, not the
        service name.` when unknown. Its checks go with it.
  PUT /v1/agent/check/pass|warn|fail/<check_id>[?note=TEXT]
        200 empty; the check's Status becomes passing|warning|critical and Output the note.
        404 `CheckID "<id>" does not have associated TTL` when unknown.
  GET /v1/agent/services    {id: {ID, Service, Tags, Meta, Port, Address, TaggedAddresses,
                            Weights, EnableTagOverride, Datacenter}}
  GET /v1/agent/checks      {check_id: {Node, CheckID, Name, Status, Notes, Output, ServiceID,
                            ServiceName, ServiceTags, Type:"ttl", Interval, Timeout,
                            ExposedPort, Definition, CreateIndex, ModifyIndex}}
        A TTL check not updated within its TTL reads `critical` with Output "TTL expired", and
        a service whose check has been critical longer than its DeregisterCriticalServiceAfter
        is removed (both evaluated when read, like Consul's reaper, without its 1-minute floor).
  GET /mock/requests        every request but these /mock ones, oldest first: [{seq, time,
                            method, path, query, headers, body (JSON or null), body_text?,
                            status, problems}]
  POST /mock/reset          forget the requests, services and checks.

Errors, as Consul answers them (text/plain bodies), each also recorded in that request's
`problems` (an empty list means Consul would have accepted the request as sent):
  - wrong method on a known path: 405 `method GET not allowed`;
  - unknown path: 404 (empty body);
  - bad body: 400 `Request decode failed: ...` (not JSON, wrong JSON type of a field, an unknown
    field, a duration that does not parse like Go's time.ParseDuration), `Missing service name`,
    `Invalid Service Meta: ...` (Consul's rules: at most 64 keys, a key of at most 128
    characters of [A-Za-z0-9_-] not starting with `consul-`, a value of at most 512 characters),
    `Invalid check: TTL must be > 0`, and a check of a type other than TTL (the mock supports TTL
    checks only: recorded and refused with 400);
  - with --token T: a request without `X-Consul-Token: T` (or `Authorization: Bearer T`) gets
    403 `ACL not found` (wrong token) or `Permission denied` (no token).

Prints `READY <ip>:<port>` once listening; SIGTERM/SIGINT end the process at once, and so does
the death of the process that started it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

MAX_BODY = 1 << 20
MAX_RECORDS = 100_000
NODE = "mcp-scout-consul-mock"
DATACENTER = "dc1"
META_MAX_PAIRS = 64
META_KEY_MAX = 128
META_VALUE_MAX = 512
META_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
SERVICE_FIELDS = {"ID": str, "Name": str, "Address": str, "Port": int, "Tags": list, "Meta": dict,
                  "Check": dict, "EnableTagOverride": bool}
CHECK_FIELDS = {"CheckID": str, "Name": str, "TTL": str, "Notes": str, "Status": str,
                "DeregisterCriticalServiceAfter": str}
OTHER_CHECK_TYPES = {"HTTP", "TCP", "GRPC", "Args", "ScriptArgs", "DockerContainerID", "H2PING", "UDP", "OSService"}
STATUS_OF = {"pass": "passing", "warn": "warning", "fail": "critical"}
CHECK_STATUSES = {"passing", "warning", "critical"}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class BadRequest(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code, self.text = code, text


def parse_duration(s: str) -> float:
    """Go's time.ParseDuration: "90s", "10m", "1h30m", "1.5s", "0"; seconds as a float."""
    if s == "0":
        return 0.0
    sign = -1.0 if s.startswith("-") else 1.0
    rest = s.lstrip("+-")
    if not rest:
        raise ValueError(f'time: invalid duration "{s}"')
    total, pos = 0.0, 0
    for m in _DURATION_RE.finditer(rest):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(rest):
        if re.fullmatch(r"[\d.]+", rest):
            raise ValueError(f'time: missing unit in duration "{s}"')
        raise ValueError(f'time: invalid duration "{s}"')
    return sign * total


def decode_failed(msg: str) -> BadRequest:
    return BadRequest(400, f"Request decode failed: {msg}")


def check_types(obj: dict, fields: dict, where: str) -> None:
    for k, v in obj.items():
        if k not in fields:
            if where == "Check" and k in OTHER_CHECK_TYPES:
                raise BadRequest(400, f"consul mock: only TTL checks are supported, got Check.{k}")
            raise decode_failed(f"json: unknown field \"{k}\" in {where}")
        want = fields[k]
        ok = isinstance(v, want) and not (want is int and isinstance(v, bool))
        if v is None:
            ok = True
        if not ok:
            raise decode_failed(f"json: cannot unmarshal {type(v).__name__} into Go struct field {where}.{k} of type {want.__name__}")


def validate_register(body) -> dict:
    if not isinstance(body, dict):
        raise decode_failed("json: cannot unmarshal into Go value of type structs.ServiceDefinition")
    check_types(body, SERVICE_FIELDS, "ServiceDefinition")
    if not body.get("Name"):
        raise BadRequest(400, "Missing service name")
    tags = body.get("Tags") or []
    if not all(isinstance(t, str) for t in tags):
        raise decode_failed("json: cannot unmarshal non-string into Go struct field ServiceDefinition.Tags of type string")
    meta = body.get("Meta") or {}
    if len(meta) > META_MAX_PAIRS:
        raise BadRequest(400, f"Invalid Service Meta: Node metadata cannot contain more than {META_MAX_PAIRS} key/value pairs")
    for k, v in meta.items():
        if not isinstance(v, str):
            raise decode_failed(f"json: cannot unmarshal {type(v).__name__} into Go struct field ServiceDefinition.Meta of type string")
        if not k:
            raise BadRequest(400, "Invalid Service Meta: Key cannot be blank")
        if len(k) > META_KEY_MAX:
            raise BadRequest(400, f"Invalid Service Meta: Key is too long (limit: {META_KEY_MAX} characters)")
        if not META_KEY_RE.match(k):
            raise BadRequest(400, f"Invalid Service Meta: Key contains invalid characters: {k!r}")
        if k.startswith("consul-"):
            raise BadRequest(400, "Invalid Service Meta: Key prefix 'consul-' is reserved for internal use")
        if len(v) > META_VALUE_MAX:
            raise BadRequest(400, f"Invalid Service Meta: Value is too long (limit: {META_VALUE_MAX} characters)")
    port = body.get("Port") or 0
    if not 0 <= port <= 65535:
        raise BadRequest(400, f"Invalid service port: {port}")
    check = body.get("Check")
    if check is not None:
        check_types(check, CHECK_FIELDS, "Check")
        if not check.get("TTL"):
            raise BadRequest(400, "consul mock: only TTL checks are supported (Check.TTL is missing)")
        for k in ("TTL", "DeregisterCriticalServiceAfter"):
            if check.get(k) is not None:
                try:
                    d = parse_duration(check[k])
                except ValueError as e:
                    raise decode_failed(f"{k}: {e}") from None
                if k == "TTL" and d <= 0:
                    raise BadRequest(400, "Invalid check: TTL must be > 0")
        if check.get("Status") not in (None, "", *CHECK_STATUSES):
            raise BadRequest(400, f"Invalid check: Status {check['Status']!r} must be passing, warning or critical")
    return body


class Mock:
    def __init__(self, token: str | None):
        self.token = token
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.services: dict[str, dict] = {}
        self.checks: dict[str, dict] = {}
        self.records: list[dict] = []
        self.seq = 0
        self.index = 10

    def next_index(self) -> int:
        self.index += 1
        return self.index

    def reap(self, now: float) -> None:
        """TTL expiry and DeregisterCriticalServiceAfter, evaluated at read time."""
        for cid, c in list(self.checks.items()):
            if c["Status"] != "critical" and now - c["_updated"] > c["_ttl"]:
                c["Status"], c["Output"], c["_critical_since"] = "critical", "TTL expired", c["_updated"] + c["_ttl"]
                c["ModifyIndex"] = self.next_index()
            dereg = c["_dereg_after"]
            if c["Status"] == "critical" and dereg is not None and now - c["_critical_since"] > dereg:
                self.services.pop(c["ServiceID"], None)
                for oid in [o for o, oc in self.checks.items() if oc["ServiceID"] == c["ServiceID"]]:
                    self.checks.pop(oid, None)

    def register(self, body: dict, now: float) -> None:
        sid = body.get("ID") or body["Name"]
        # Re-registering replaces the service and the checks defined with it.
        for oid in [o for o, oc in self.checks.items() if oc["ServiceID"] == sid]:
            self.checks.pop(oid)
        self.services[sid] = {
            "ID": sid, "Service": body["Name"], "Tags": list(body.get("Tags") or []),
            "Meta": dict(body.get("Meta") or {}), "Port": body.get("Port") or 0,
            "Address": body.get("Address") or "", "TaggedAddresses": {},
            "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": bool(body.get("EnableTagOverride")),
            "Datacenter": DATACENTER,
        }
        chk = body.get("Check")
        if chk is not None:
            cid = chk.get("CheckID") or f"service:{sid}"
            status = chk.get("Status") or "critical"
            dereg = chk.get("DeregisterCriticalServiceAfter")
            idx = self.next_index()
            self.checks[cid] = {
                "Node": NODE, "CheckID": cid, "Name": chk.get("Name") or f"Service '{body['Name']}' check",
                "Status": status, "Notes": chk.get("Notes") or "", "Output": "", "ServiceID": sid,
                "ServiceName": body["Name"], "ServiceTags": list(body.get("Tags") or []), "Type": "ttl",
                "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": {}, "CreateIndex": idx, "ModifyIndex": idx,
                "_ttl": parse_duration(chk["TTL"]), "_updated": now, "_critical_since": now,
                "_dereg_after": parse_duration(dereg) if dereg else None,
            }


def public(check: dict) -> dict:
    return {k: v for k, v in check.items() if not k.startswith("_")}


def make_handler(mock: Mock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("consul-mock: " + (fmt % args) + "\n")

        def send(self, code: int, body: bytes = b"", ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Consul-Default-Acl-Policy", "deny" if mock.token else "allow")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def send_json(self, obj) -> None:
            self.send(200, json.dumps(obj).encode(), "application/json")

        def handle_any(self):
            url = urlsplit(self.path)
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                n = 0
            raw = self.rfile.read(min(max(n, 0), MAX_BODY)) if n > 0 else b""
            if url.path.startswith("/mock/"):
                return self.mock_api(url.path)
            rec = {"seq": 0, "time": time.time(), "method": self.command, "path": url.path, "query": url.query,
                   "headers": {k.lower(): v for k, v in self.headers.items()}, "body": None, "status": None,
                   "problems": []}
            if raw:
                try:
                    rec["body"] = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    rec["body_text"] = raw.decode("utf-8", "replace")
            try:
                code, out, ctype = self.route(url, raw, rec)
            except BadRequest as e:
                code, out, ctype = e.code, e.text.encode(), "text/plain; charset=utf-8"
                rec["problems"].append(f"{e.code}: {e.text}" if e.text else f"{e.code}")
            rec["status"] = code
            with mock.lock:
                mock.seq += 1
                rec["seq"] = mock.seq
                if len(mock.records) < MAX_RECORDS:
                    mock.records.append(rec)
            self.send(code, out, ctype)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = handle_any

        def mock_api(self, path: str) -> None:
            with mock.lock:
                if path == "/mock/requests" and self.command == "GET":
                    return self.send_json(list(mock.records))
                if path == "/mock/reset" and self.command == "POST":
                    mock.reset()
                    return self.send_json({"reset": True})
            self.send(404, b"mock: GET /mock/requests, POST /mock/reset\n")

        def authorize(self) -> None:
            if mock.token is None:
                return
            got = self.headers.get("X-Consul-Token")
            auth = self.headers.get("Authorization") or ""
            if got is None and auth.startswith("Bearer "):
                got = auth[len("Bearer "):]
            if got is None or got == "":
                raise BadRequest(403, "Permission denied")
            if got != mock.token:
                raise BadRequest(403, "ACL not found")

        def route(self, url, raw: bytes, rec: dict):
            p, m, q = url.path, self.command, parse_qs(url.query, keep_blank_values=True)
            routes = [
                ("PUT", re.compile(r"^/v1/agent/service/register$")),
                ("PUT", re.compile(r"^/v1/agent/service/deregister/(?P<id>.+)$")),
                ("PUT", re.compile(r"^/v1/agent/check/(?P<verb>pass|warn|fail)/(?P<id>.+)$")),
                ("GET", re.compile(r"^/v1/agent/services$")),
                ("GET", re.compile(r"^/v1/agent/checks$")),
            ]
            for want, rx in routes:
                mt = rx.match(p)
                if mt is None:
                    continue
                if m != want:
                    raise BadRequest(405, f"method {m} not allowed")
                self.authorize()
                now = time.time()
                with mock.lock:
                    mock.reap(now)
                    if p == "/v1/agent/service/register":
                        rep = q.get("replace-existing-checks", ["false"])[0]
                        if rep not in ("", "true", "false", "1", "0"):
                            raise BadRequest(400, f"Request decode failed: invalid replace-existing-checks {rep!r}")
                        try:
                            body = json.loads(raw) if raw else None
                        except (ValueError, UnicodeDecodeError) as e:
                            raise decode_failed(str(e)) from None
                        mock.register(validate_register(body), now)
                        return 200, b"", "text/plain; charset=utf-8"
                    if p.startswith("/v1/agent/service/deregister/"):
                        sid = unquote(mt.group("id"))
                        if sid not in mock.services:
                            raise BadRequest(404, f'Unknown service ID "{sid}". Ensure that the service ID is passed, not the service name.')
                        mock.services.pop(sid)
                        for cid in [c for c, cc in mock.checks.items() if cc["ServiceID"] == sid]:
                            mock.checks.pop(cid)
                        return 200, b"", "text/plain; charset=utf-8"
                    if p.startswith("/v1/agent/check/"):
                        cid = unquote(mt.group("id"))
                        c = mock.checks.get(cid)
                        if c is None:
                            raise BadRequest(404, f'CheckID "{cid}" does not have associated TTL')
                        status = STATUS_OF[mt.group("verb")]
                        if status == "critical" and c["Status"] != "critical":
                            c["_critical_since"] = now
                        c["Status"], c["Output"], c["_updated"] = status, q.get("note", [""])[0], now
                        c["ModifyIndex"] = mock.next_index()
                        return 200, b"", "text/plain; charset=utf-8"
                    if p == "/v1/agent/services":
                        return 200, json.dumps(mock.services).encode(), "application/json"
                    return 200, json.dumps({k: public(c) for k, c in mock.checks.items()}).encode(), "application/json"
            raise BadRequest(404, "")

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description="a MOCK of Consul's agent API subset (not Consul)")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--token", default=None, help="require this ACL token (X-Consul-Token)")
    ap.add_argument("--path", default=None, help="ignored (accepted for run.sh symmetry)")
    args = ap.parse_args()
    _peerlib.check_loopback(args.host)
    _peerlib.serve_http(args.host, args.port, make_handler(Mock(args.token)))


if __name__ == "__main__":
    main()
