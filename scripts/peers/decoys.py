"""Decoy and hostile peers for mcp-scout tests (python3 stdlib + the openssl CLI for `tls`).

    decoys.py NAME --host IP --port PORT

Decoys (must NOT be reported as MCP):
  plain-http        nginx-like HTML site: GET / -> 200 text/html with <title>Decoy Welcome Page</title>,
                    `Server: nginx/1.22.1`; other paths 404 HTML; other methods 405 HTML
  jsonrpc           a JSON-RPC 2.0 node (geth-like): POST any path -> 200 application/json;
                    eth_blockNumber / net_version / web3_clientVersion answer a result, any other
                    method -32601 "the method X does not exist/is not available", bad JSON -32700;
                    GET -> 405
  endless-sse       GET any path -> 200 text/event-stream, `data: tick` every 100 ms (never an
                    `event: endpoint`); other methods 405
  all-405           405 Method Not Allowed to every request
  tls               HTTPS (self-signed, CN=decoy.test, SAN DNS:decoy.test, valid
                    2025-01-01T00:00:00Z .. 2030-01-01T00:00:00Z) serving the plain-http site
  banner            raw TCP: sends "SSH-2.0-OpenSSH_9.2p1\\r\\n" on connect, then waits
  oauth-api         an ordinary OAuth-protected API: every request -> 401 application/json with
                    `WWW-Authenticate: Bearer realm="api"` (no resource_metadata), on every path
  host-allowlist    like Playwright's MCP server seen from another Host: every request whose Host
                    is not localhost:PORT -> 403 text/plain "Access is only allowed at
                    localhost:PORT" (PORT: the port it listens on); with that Host, 404
Behind an API key (a real MCP proxy looks like this from outside; not MCP without the key):
  apikey-proxy      like npm `mcp-proxy --apiKey`: GET /ping -> 200 "pong"; every other request
                    -> 401 with `WWW-Authenticate: Bearer error="invalid_token"` and a JSON-RPC
                    error body
Hostile (the scanner must end each within its own deadline):
  trickle-headers   after the request: "HTTP/1.1 200 OK\\r\\n", then one header byte per second
  endless-sse-body  200 text/event-stream, data written as fast as the client reads
  huge-body         200 application/json, Content-Length: 104857600, then that many bytes
  bad-utf8          200 application/json, JSON-RPC body with invalid UTF-8 bytes inside a string
  bad-json          200 application/json, truncated JSON-RPC body (Content-Length matches it)
  deep-json         200 application/json, {"jsonrpc":"2.0","id":1,"result":[[[...]]]} nested 100000 deep
  redirect-loop     302 to the same path with a trailing "/" toggled: /mcp -> /mcp/ -> /mcp -> ...;
                    / <-> /index
  tls-stall         accepts TCP, reads the ClientHello, never answers
Off-host links (--elsewhere HOST:PORT names the other host; the scanner must report the link
and never connect there):
  offhost-sse       GET any path -> 200 text/event-stream whose first event is
                    `event: endpoint` with `data: http://ELSEWHERE/messages/?session_id=offhost`
                    (then the stream stays open, bounded); other methods 405
  offhost-metadata  every request -> 401 with `WWW-Authenticate: Bearer
                    resource_metadata="http://ELSEWHERE/.well-known/oauth-protected-resource/mcp"`
  offhost-redirect  every request -> 302 to http://ELSEWHERE<same path>
Bad registry answers (a sink's registry that misbehaves; every path, every method):
  registry-html     200 text/html, an nginx-like HTML error page instead of JSON
  registry-huge     200 application/json, Content-Length: 52428800 (50 MiB), a JSON-looking
                    body `{"agents":[{"id":"pad-0",...},...` streamed as fast as the client reads
  registry-hang     reads the request, then never answers (until MAX_CONN_SECONDS)
Redirect chain:
  redirect-chain    every request to P -> 302 to P/r1, P/rK -> P/r(K+1), without end (same
                    host, same first path segment); GET /__hits answers the JSON list of
                    "METHOD PATH" it has served (itself excluded), for the test to count hops

Every HTTP answer closes the connection (`Connection: close`). "Forever" is bounded: a
connection is closed after MAX_CONN_SECONDS (10 min) or MAX_STREAM_BYTES (16 GiB), request
heads are capped at 64 KiB / 10 s and request bodies at 1 MiB. Prints `READY <ip>:<port>`
once listening; SIGTERM/SIGINT end the process at once (open connections are dropped), and
so does the death of the process that started it (see _peerlib.watch_parent).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

NAMES = [
    "plain-http", "jsonrpc", "endless-sse", "all-405", "tls", "banner",
    "trickle-headers", "endless-sse-body", "huge-body", "bad-utf8", "bad-json", "deep-json",
    "redirect-loop", "tls-stall", "oauth-api", "host-allowlist", "apikey-proxy",
    "offhost-sse", "offhost-metadata", "offhost-redirect", "redirect-chain",
    "registry-html", "registry-huge", "registry-hang",
]
MAX_CONN_SECONDS = 600
REGISTRY_HUGE_BYTES = 50 << 20
MAX_STREAM_BYTES = 16 << 30
MAX_HEAD = 64 << 10
MAX_BODY = 1 << 20
HEAD_TIMEOUT = 10

TLS_NOT_BEFORE = "20250101000000Z"
TLS_NOT_AFTER = "20300101000000Z"
TLS_CN = "decoy.test"

REASONS = {
    200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed",
}

HOME_HTML = (
    b"<!DOCTYPE html>\n<html>\n<head>\n<title>Decoy Welcome Page</title>\n</head>\n"
    b"<body>\n<h1>Welcome</h1>\n<p>Nothing to see here.</p>\n</body>\n</html>\n"
)


def status_page(code: int) -> bytes:
    text = f"{code} {REASONS[code]}"
    return (
        f"<html>\r\n<head><title>{text}</title></head>\r\n<body>\r\n<center><h1>{text}</h1></center>\r\n"
        f"<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


class Request:
    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes):
        self.method, self.target, self.headers, self.body = method, target, headers, body

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    try:
        n = int(headers.get("content-length", "0") or 0)
    except ValueError:
        n = 0
    if 0 < n <= MAX_BODY:
        try:
            body = await asyncio.wait_for(reader.readexactly(n), HEAD_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            return None
    return Request(parts[0], parts[1], headers, body)


def response(code: int, headers: list[tuple[str, str]], body: bytes | None, length: int | None = None) -> bytes:
    out = [f"HTTP/1.1 {code} {REASONS[code]}"]
    out += [f"{k}: {v}" for k, v in headers]
    if body is not None or length is not None:
        out.append(f"Content-Length: {length if length is not None else len(body)}")
    out.append("Connection: close")
    return ("\r\n".join(out) + "\r\n\r\n").encode() + (body or b"")


def nginx_headers(ctype: str) -> list[tuple[str, str]]:
    from email.utils import formatdate

    return [("Server", "nginx/1.22.1"), ("Date", formatdate(usegmt=True)), ("Content-Type", ctype)]


# ---------------------------------------------------------------------------------------- handlers


async def h_plain_http(req: Request, w: asyncio.StreamWriter) -> None:
    ctype = "text/html"
    if req.method not in ("GET", "HEAD"):
        w.write(response(405, nginx_headers(ctype), status_page(405)))
    elif req.path in ("/", "/index.html"):
        body = HOME_HTML
        w.write(response(200, nginx_headers(ctype), b"" if req.method == "HEAD" else body, len(body)))
    else:
        w.write(response(404, nginx_headers(ctype), status_page(404)))


async def h_jsonrpc(req: Request, w: asyncio.StreamWriter) -> None:
    hdrs = [("Content-Type", "application/json"), ("Vary", "Origin")]
    if req.method != "POST":
        w.write(response(405, [("Content-Type", "text/plain; charset=utf-8")], b"method not allowed\n"))
        return
    results = {"eth_blockNumber": "0x10d4f", "net_version": "1", "web3_clientVersion": "Geth/v1.13.15-stable/linux-amd64/go1.22.2"}

    def answer(msg) -> dict | None:
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        if "id" not in msg:
            return None  # notification: no answer
        m = msg["method"]
        if m in results:
            return {"jsonrpc": "2.0", "id": msg["id"], "result": results[m]}
        return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": f"the method {m} does not exist/is not available"}}

    try:
        doc = json.loads(req.body)
    except ValueError as e:
        out = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": f"parse error: {e}"}}
    else:
        if isinstance(doc, list):
            out = [a for a in map(answer, doc) if a is not None]
        else:
            out = answer(doc)
    body = b"" if out is None or out == [] else (json.dumps(out, separators=(",", ":")) + "\n").encode()
    w.write(response(200, hdrs, body))


async def h_endless_sse(req: Request, w: asyncio.StreamWriter) -> None:
    if req.method != "GET":
        w.write(response(405, [("Content-Type", "text/plain")], b"Method Not Allowed\n"))
        return
    w.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\n\r\n"
    )
    for _ in range(MAX_CONN_SECONDS * 10):
        w.write(b"data: tick\n\n")
        await w.drain()
        await asyncio.sleep(0.1)


async def h_all_405(req: Request, w: asyncio.StreamWriter) -> None:
    w.write(response(405, [("Content-Type", "text/plain")], b"Method Not Allowed\n"))


async def h_trickle_headers(req: Request, w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\n")
    await w.drain()
    header = b"X-Trickle: " + b"a" * (MAX_CONN_SECONDS * 2)
    for i in range(min(len(header), MAX_CONN_SECONDS)):
        await asyncio.sleep(1)
        w.write(header[i : i + 1])
        await w.drain()


async def h_endless_sse_body(req: Request, w: asyncio.StreamWriter) -> None:
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n")
    chunk = (b"data: " + b"x" * 4000 + b"\n\n") * 16
    sent = 0
    while sent < MAX_STREAM_BYTES:  # bounded by bytes and by the connection deadline
        w.write(chunk)
        await w.drain()
        sent += len(chunk)


async def h_huge_body(req: Request, w: asyncio.StreamWriter) -> None:
    total = 104857600
    prefix = b'{"jsonrpc":"2.0","id":1,"result":{"pad":"'
    suffix = b'"}}'
    w.write(response(200, [("Content-Type", "application/json")], None, total))
    w.write(prefix)
    left = total - len(prefix) - len(suffix)
    block = b"a" * 65536
    while left > 0:
        n = min(left, len(block))
        w.write(block[:n])
        await w.drain()
        left -= n
    w.write(suffix)


async def h_bad_utf8(req: Request, w: asyncio.StreamWriter) -> None:
    body = (
        b'{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},'
        b'"serverInfo":{"name":"bad-\xff\xfe\xc3\x28-utf8","version":"\xed\xa0\x80"}}}'
    )
    w.write(response(200, [("Content-Type", "application/json")], body))


async def h_bad_json(req: Request, w: asyncio.StreamWriter) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{'
    w.write(response(200, [("Content-Type", "application/json")], body))


async def h_deep_json(req: Request, w: asyncio.StreamWriter) -> None:
    depth = 100000
    body = b'{"jsonrpc":"2.0","id":1,"result":' + b"[" * depth + b"]" * depth + b"}"
    w.write(response(200, [("Content-Type", "application/json")], body))


async def h_redirect_loop(req: Request, w: asyncio.StreamWriter) -> None:
    p = req.path
    if p in ("/", "/index"):  # bounce between / and /index
        nxt = "/index" if p == "/" else "/"
    else:
        nxt = p[:-1] if p.endswith("/") else p + "/"
    w.write(response(302, [("Location", nxt), ("Content-Type", "text/html")], status_page(302)))

async def h_oauth_api(req: Request, w: asyncio.StreamWriter) -> None:
    hdrs = [("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer realm="api"')]
    w.write(response(401, hdrs, b'{"error": "unauthorized", "message": "a valid access token is required"}\n'))


LISTEN_PORT = 0  # set at start: the port host-allowlist names


async def h_host_allowlist(req: Request, w: asyncio.StreamWriter) -> None:
    allowed = f"localhost:{LISTEN_PORT}"
    if req.headers.get("host", "") != allowed:
        body = f"Access is only allowed at {allowed}".encode()
        w.write(response(403, [("Content-Type", "text/plain")], body))
    else:
        w.write(response(404, [("Content-Type", "text/plain")], b"Not Found"))


async def h_apikey_proxy(req: Request, w: asyncio.StreamWriter) -> None:
    if req.method == "GET" and req.path == "/ping":
        w.write(response(200, [("Content-Type", "text/plain")], b"pong"))
        return
    body = json.dumps({"error": {"code": -32000, "message": "Unauthorized: invalid or missing API key"},
                       "id": None, "jsonrpc": "2.0"}).encode()
    hdrs = [("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer error="invalid_token"')]
    w.write(response(401, hdrs, body))


ELSEWHERE = ""  # --elsewhere HOST:PORT, for the offhost-* decoys
HITS: list[str] = []  # what redirect-chain served
MAX_HITS = 10_000


async def h_offhost_sse(req: Request, w: asyncio.StreamWriter) -> None:
    if req.method != "GET":
        w.write(response(405, [("Content-Type", "text/plain")], b"Method Not Allowed\n"))
        return
    w.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Connection: close\r\n\r\n"
        + f"event: endpoint\ndata: http://{ELSEWHERE}/messages/?session_id=offhost\n\n".encode()
    )
    await w.drain()
    await asyncio.sleep(30)  # like a real stream, it stays open; the scanner's caps end it


async def h_offhost_metadata(req: Request, w: asyncio.StreamWriter) -> None:
    meta = f"http://{ELSEWHERE}/.well-known/oauth-protected-resource/mcp"
    hdrs = [
        ("Content-Type", "application/json"),
        ("WWW-Authenticate", f'Bearer error="invalid_token", error_description="Authentication required", resource_metadata="{meta}"'),
    ]
    w.write(response(401, hdrs, b'{"error": "invalid_token", "error_description": "Authentication required"}'))


async def h_offhost_redirect(req: Request, w: asyncio.StreamWriter) -> None:
    w.write(response(302, [("Location", f"http://{ELSEWHERE}{req.path}"), ("Content-Type", "text/html")], status_page(302)))


async def h_redirect_chain(req: Request, w: asyncio.StreamWriter) -> None:
    p = req.path
    if req.method == "GET" and p == "/__hits":
        w.write(response(200, [("Content-Type", "application/json")], json.dumps(HITS).encode()))
        return
    if len(HITS) < MAX_HITS:
        HITS.append(f"{req.method} {p}")
    head, _, last = p.rpartition("/r")
    if head and last.isdigit():
        nxt = f"{head}/r{int(last) + 1}"
    else:
        nxt = p.rstrip("/") + "/r1"
    w.write(response(302, [("Location", nxt), ("Content-Type", "text/html")], status_page(302)))


async def h_registry_html(req: Request, w: asyncio.StreamWriter) -> None:
    body = (
        b"<!DOCTYPE html>\n<html>\n<head><title>Registry Maintenance</title></head>\n"
        b"<body><h1>We'll be back soon</h1><p>The registry is under maintenance.</p></body>\n</html>\n"
    )
    w.write(response(200, nginx_headers("text/html"), b"" if req.method == "HEAD" else body, len(body)))


async def h_registry_huge(req: Request, w: asyncio.StreamWriter) -> None:
    total = REGISTRY_HUGE_BYTES
    w.write(response(200, [("Content-Type", "application/json")], None, total))
    if req.method == "HEAD":
        return
    w.write(b'{"agents":[')
    left = total - len(b'{"agents":[')
    # One repeated JSON-looking item; the body never closes its brackets (it is cut at 50 MiB).
    item = b'{"id":"pad-0000","name":"pad","status":"healthy","endpoint":"http://127.0.0.1:1"},'
    block = item * (65536 // len(item))
    while left > 0:
        n = min(left, len(block))
        w.write(block[:n])
        await w.drain()
        left -= n


async def h_registry_hang(req: Request, w: asyncio.StreamWriter) -> None:
    await asyncio.sleep(MAX_CONN_SECONDS)


HTTP_HANDLERS = {
    "plain-http": h_plain_http,
    "tls": h_plain_http,
    "jsonrpc": h_jsonrpc,
    "endless-sse": h_endless_sse,
    "all-405": h_all_405,
    "trickle-headers": h_trickle_headers,
    "endless-sse-body": h_endless_sse_body,
    "huge-body": h_huge_body,
    "bad-utf8": h_bad_utf8,
    "bad-json": h_bad_json,
    "deep-json": h_deep_json,
    "redirect-loop": h_redirect_loop,
    "offhost-sse": h_offhost_sse,
    "offhost-metadata": h_offhost_metadata,
    "offhost-redirect": h_offhost_redirect,
    "redirect-chain": h_redirect_chain,
    "oauth-api": h_oauth_api,
    "host-allowlist": h_host_allowlist,
    "apikey-proxy": h_apikey_proxy,
    "registry-html": h_registry_html,
    "registry-huge": h_registry_huge,
    "registry-hang": h_registry_hang,
}


async def raw_banner(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    w.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
    await w.drain()
    await drain_input(reader)


async def raw_tls_stall(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await drain_input(reader)


async def drain_input(reader: asyncio.StreamReader) -> None:
    """Read and discard until the peer closes (bounded by bytes; time by the caller)."""
    got = 0
    while got < MAX_BODY:
        data = await reader.read(4096)
        if not data:
            return
        got += len(data)
    await asyncio.sleep(MAX_CONN_SECONDS)


# ---------------------------------------------------------------------------------------- plumbing


def make_tls_context() -> ssl.SSLContext:
    """Self-signed cert with fixed dates, made with `openssl ca -selfsign` (OpenSSL 3.0 has no
    `req -not_after`)."""
    d = tempfile.mkdtemp(prefix="mcp-scout-tls-")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(
            "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
            "default_md = sha256\npolicy = p\nunique_subject = no\nx509_extensions = ext\n"
            "[ p ]\ncommonName = supplied\n"
            f"[ ext ]\nsubjectAltName = DNS:{TLS_CN}\nbasicConstraints = CA:FALSE\n"
        )
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("01\n")
    run = lambda *a: subprocess.run(a, cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: E731
    try:
        run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "key.pem", "-subj", f"/CN={TLS_CN}", "-out", "req.csr")
        run("openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "key.pem", "-in", "req.csr",
            "-out", "cert.pem", "-startdate", TLS_NOT_BEFORE, "-enddate", TLS_NOT_AFTER, "-notext")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
        return ctx
    except subprocess.CalledProcessError as e:
        sys.exit(f"decoys: openssl failed: {e.stderr.decode(errors='replace')}")
    finally:
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)


async def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="decoy / hostile peers for mcp-scout tests")
    ap.add_argument("name", choices=NAMES)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--path", default=None, help="ignored (accepted for run.sh symmetry)")
    ap.add_argument("--elsewhere", default=None, metavar="HOST:PORT", help="the other host of the offhost-* decoys")
    args = ap.parse_args()
    _peerlib.check_loopback(args.host)
    global ELSEWHERE
    if args.name.startswith("offhost-"):
        if not args.elsewhere:
            ap.error(f"{args.name} needs --elsewhere HOST:PORT")
        ELSEWHERE = args.elsewhere

    ctx = make_tls_context() if args.name == "tls" else None
    handler = HTTP_HANDLERS.get(args.name)
    raw = {"banner": raw_banner, "tls-stall": raw_tls_stall}.get(args.name)

    async def on_conn(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(MAX_CONN_SECONDS):
                if raw is not None:
                    await raw(reader, w)
                else:
                    req = await read_request(reader)
                    if req is None:
                        return
                    await handler(req, w)
                    await w.drain()
        except (ConnectionError, TimeoutError, ssl.SSLError, OSError):
            pass
        finally:
            w.close()

    sock = _peerlib.bind(args.host, args.port)
    global LISTEN_PORT
    LISTEN_PORT = sock.getsockname()[1]
    server = await asyncio.start_server(on_conn, sock=sock, ssl=ctx, limit=MAX_HEAD, ssl_handshake_timeout=HEAD_TIMEOUT if ctx else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _peerlib.watch_parent()
    _peerlib.ready(sock)
    await stop.wait()
    server.close()
    # Do not wait for open connections (some never end): leave at once.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
