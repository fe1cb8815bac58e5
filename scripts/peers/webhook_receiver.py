"""A webhook receiver for the `webhook` sink's tests (python3 stdlib only).

    webhook_receiver.py --host IP --port PORT --secret S

What it answers:
  POST <any path>          the delivery. The signature header
                           `X-MCP-Scout-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`
                           is checked with a constant-time compare. Mode `ok` (the start mode):
                           200 `{"ok":true}` when it is valid, 401 `{"error":...}` when it is
                           missing or wrong. Other modes (below) replace the answer.
  GET /received            every delivery recorded so far, oldest first, as a JSON list of
                           {seq, time (unix float), method, path, query, headers (lower-case
                           names), body (the JSON value, or null), body_text (only when the
                           body is not JSON), verified, problems, status (what we answered;
                           null for `hang`), mode}
  POST /control/MODE       switch the mode for the next deliveries; answers {"mode": ...}:
                           ok                every POST answered as above
                           fail              500 to every POST (recorded, signature checked)
                           status?code=N     N (100 < N < 600) to every POST
                           slow?ms=N         wait N ms (at most MAX_SLOW_MS), then answer as `ok`
                           hang              never answer (the connection is held until
                                             MAX_HANG_SECONDS or the client gives up)
                           reset             forget what was received (the mode is kept)

`problems` lists what is wrong with a delivery as a CloudEvents 1.0 structured-mode event:
a Content-Type other than `application/cloudevents+json` (parameters such as charset are
allowed), a body that is not a JSON object, `specversion` other than "1.0", and a missing or
empty string `id`, `source` or `type`; and also a missing or bad signature. An empty list means
a well-formed, correctly signed event.

Prints `READY <ip>:<port>` once listening; SIGTERM/SIGINT end the process at once (a hung
request is dropped), and so does the death of the process that started it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

SIGNATURE_HEADER = "X-MCP-Scout-Signature"
CLOUDEVENTS_TYPE = "application/cloudevents+json"
MAX_BODY = 16 << 20
MAX_SLOW_MS = 120_000
MAX_HANG_SECONDS = 600
MAX_RECORDS = 100_000


class State:
    def __init__(self, secret: bytes):
        self.secret = secret
        self.lock = threading.Lock()
        self.mode = "ok"
        self.code = 200
        self.slow_ms = 0
        self.records: list[dict] = []
        self.seq = 0


def cloudevents_problems(ctype: str, body) -> list[str]:
    problems = []
    if ctype.split(";", 1)[0].strip().lower() != CLOUDEVENTS_TYPE:
        problems.append(f"content-type is {ctype!r}, not {CLOUDEVENTS_TYPE}")
    if not isinstance(body, dict):
        problems.append("body is not a JSON object")
        return problems
    if body.get("specversion") != "1.0":
        problems.append(f"specversion is {body.get('specversion')!r}, not \"1.0\"")
    for attr in ("id", "source", "type"):
        v = body.get(attr)
        if not isinstance(v, str) or not v:
            problems.append(f"{attr} is missing or not a non-empty string")
    return problems


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "webhook-receiver/1"

        def log_message(self, fmt, *args):  # logs go to stderr, briefly
            sys.stderr.write("webhook-receiver: " + (fmt % args) + "\n")

        def reply(self, code: int, obj) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def read_body(self) -> bytes:
            try:
                n = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                n = 0
            return self.rfile.read(min(max(n, 0), MAX_BODY)) if n > 0 else b""

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/received":
                with state.lock:
                    self.reply(200, list(state.records))
            else:
                self.reply(404, {"error": f"no GET {url.path}: POST deliveries, GET /received"})

        def do_POST(self):
            url = urlsplit(self.path)
            raw = self.read_body()
            if url.path.startswith("/control/"):
                return self.control(url.path[len("/control/"):], parse_qs(url.query))
            self.delivery(url, raw)

        def control(self, mode: str, q: dict) -> None:
            with state.lock:
                if mode == "reset":
                    state.records.clear()
                elif mode in ("ok", "fail", "hang"):
                    state.mode = mode
                elif mode == "status":
                    try:
                        code = int(q.get("code", [""])[0])
                    except ValueError:
                        code = 0
                    if not 100 < code < 600:
                        return self.reply(400, {"error": "status needs ?code=N with 100 < N < 600"})
                    state.mode, state.code = mode, code
                elif mode == "slow":
                    try:
                        ms = int(q.get("ms", [""])[0])
                    except ValueError:
                        ms = -1
                    if not 0 <= ms <= MAX_SLOW_MS:
                        return self.reply(400, {"error": f"slow needs ?ms=N with 0 <= N <= {MAX_SLOW_MS}"})
                    state.mode, state.slow_ms = mode, ms
                else:
                    return self.reply(404, {"error": f"unknown mode {mode!r}: ok fail status?code=N slow?ms=N hang reset"})
                self.reply(200, {"mode": state.mode})

        def delivery(self, url, raw: bytes) -> None:
            sig = self.headers.get(SIGNATURE_HEADER) or ""
            want = "sha256=" + hmac.new(state.secret, raw, hashlib.sha256).hexdigest()
            verified = hmac.compare_digest(sig.encode(), want.encode())
            ctype = self.headers.get("Content-Type") or ""
            body, body_text = None, None
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body_text = raw.decode("utf-8", "replace")
            problems = cloudevents_problems(ctype, body)
            if not sig:
                problems.append(f"{SIGNATURE_HEADER} is missing")
            elif not verified:
                problems.append(f"{SIGNATURE_HEADER} does not match the body's HMAC-SHA256")
            with state.lock:
                mode, code, slow_ms = state.mode, state.code, state.slow_ms
                state.seq += 1
                rec = {
                    "seq": state.seq, "time": time.time(), "method": "POST", "path": url.path,
                    "query": url.query, "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body, "verified": verified, "problems": problems, "status": None, "mode": mode,
                }
                if body_text is not None:
                    rec["body_text"] = body_text
                if len(state.records) < MAX_RECORDS:
                    state.records.append(rec)
            if mode == "hang":
                time.sleep(MAX_HANG_SECONDS)
                self.close_connection = True
                return
            if mode == "slow":
                time.sleep(slow_ms / 1000)
            if mode == "fail":
                status, obj = 500, {"error": "receiver is in fail mode"}
            elif mode == "status":
                status, obj = code, {"error": f"receiver is in status mode ({code})"}
            elif verified:
                status, obj = 200, {"ok": True}
            else:
                status, obj = 401, {"error": f"bad or missing {SIGNATURE_HEADER}"}
            with state.lock:
                rec["status"] = status
            self.reply(status, obj)

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description="webhook receiver that checks the mcp-scout HMAC signature")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--secret", required=True, help="the HMAC-SHA256 key the sink signs with")
    ap.add_argument("--path", default=None, help="ignored (accepted for run.sh symmetry)")
    args = ap.parse_args()
    _peerlib.check_loopback(args.host)
    state = State(args.secret.encode())
    _peerlib.serve_http(args.host, args.port, make_handler(state))


if __name__ == "__main__":
    main()
