"""Shared helpers for the Python peers (stdlib only at import time).

Every peer binds its listening socket itself, so `--port 0` works (the READY line then
carries the port the kernel chose), and prints exactly one line `READY <ip>:<port>` to
stdout once the socket accepts connections and the app is started. IPv6 addresses are
printed in brackets (`READY [::1]:8000`), so the line's second word parses as a socket
address everywhere. Nothing else is ever written to stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import os
import ipaddress
import socket
import sys


def parse_args(description: str, modes: list[str] | None = None, default_path="/mcp") -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    if modes is not None:
        ap.add_argument("--mode", required=True, choices=modes)
    ap.add_argument("--host", required=True, help="loopback address to bind (127.0.0.0/8 or ::1)")
    ap.add_argument("--port", required=True, type=int, help="TCP port; 0 lets the kernel choose")
    ap.add_argument("--path", default=None, help=f"endpoint path (default {default_path})")
    args = ap.parse_args()
    check_loopback(args.host)
    if args.path is None:
        args.path = default_path(args) if callable(default_path) else default_path
    if not args.path.startswith("/"):
        ap.error("--path must start with /")
    return args


def check_loopback(host: str) -> None:
    """Refuse anything but a loopback literal: peers never listen on a real interface.

    Inside a network namespace created by a test, set MCP_SCOUT_PEERS_ANY_ADDR=1 to allow
    other addresses (that namespace has no route to the outside).
    """
    import os

    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        sys.exit(f"peer: --host must be an IP literal, got {host!r}")
    if addr.is_loopback or os.environ.get("MCP_SCOUT_PEERS_ANY_ADDR") == "1":
        return
    sys.exit(f"peer: refusing to bind {host}: not a loopback address (set MCP_SCOUT_PEERS_ANY_ADDR=1 inside a test namespace)")


def watch_parent() -> None:
    """SIGTERM ourselves when the process that started us dies (we get re-parented).

    A test harness that is killed (or panics past its cleanup) would otherwise leave its peers
    listening forever. Polls getppid() every 0.5 s from a daemon thread; this notices the death
    of the parent *process* (prctl's PDEATHSIG would fire on the death of the spawning
    *thread*, which in a Rust test is just the test). Opt out with MCP_SCOUT_PEERS_DETACHED=1.
    """
    import os
    import signal
    import threading
    import time

    if os.environ.get("MCP_SCOUT_PEERS_DETACHED") == "1":
        return
    ppid = os.getppid()

    def run() -> None:
        for _ in range(14 * 24 * 3600 * 2):  # bounded: two weeks
            time.sleep(0.5)
            if os.getppid() != ppid:
                print(f"peer: parent {ppid} is gone, stopping", file=sys.stderr)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=run, name="watch-parent", daemon=True).start()


def loopback_security(ip: str):
    """The MCP SDK's DNS-rebinding protection for a server bound to `ip`: Host <ip>:*,
    127.0.0.1:*, localhost:* and [::1]:* (the SDK's own default for 127.0.0.1, generalised
    to the address bound). Imports the SDK, so call it from a peer's venv only."""
    from mcp.server.transport_security import TransportSecuritySettings

    hostname = f"[{ip}]" if ":" in ip else ip
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{hostname}:*", "127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=[f"http://{hostname}:*", "http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def bind(host: str, port: int) -> socket.socket:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def authority(host: str, port: int) -> str:
    """host:port as it appears in a URL / Host header ([v6]:port)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ready(sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    sys.stdout.write(f"READY {authority(host, port)}\n")
    sys.stdout.flush()


CONNLOG_ENV = "MCP_SCOUT_PEERS_CONNLOG"


def _counting_protocol():
    """uvicorn's own HTTP protocol, logging the peer address of every accepted TCP
    connection (one line each) to the file named by $MCP_SCOUT_PEERS_CONNLOG, so a test can
    count on the server side who connected: a connect that sends no request is counted too."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    path = os.environ[CONNLOG_ENV]

    class Counting(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        def connection_made(self, transport):  # type: ignore[override]
            peer = transport.get_extra_info("peername")
            with open(path, "a", encoding="ascii") as f:
                f.write(f"{peer[0] if peer else '?'}\n")
            super().connection_made(transport)

    return Counting


def serve_http(host: str, port: int, handler, queue: int = 5) -> None:
    """Serve a stdlib `BaseHTTPRequestHandler` on host:port (IPv4 or IPv6), one daemon thread
    per request (a hung request never blocks the exit), with a listen backlog of `queue`;
    READY once listening. SIGTERM/SIGINT end the process at once, and so does the death of
    the process that started it. Never returns."""
    import signal
    from http.server import ThreadingHTTPServer

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = queue
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    srv = Server((host, port), handler)

    def stop(*_):
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watch_parent()
    ready(srv.socket)
    srv.serve_forever(poll_interval=0.2)


def serve_asgi(app, sock: socket.socket) -> None:
    """Run an ASGI app with uvicorn on an already-bound socket; READY after startup.

    SIGTERM/SIGINT: uvicorn stops accepting, gives open connections (SSE streams) one second,
    then cancels them, so the process ends well within two seconds.
    """
    import uvicorn

    watch_parent()

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):  # type: ignore[override]
            await super().startup(sockets=sockets)
            if not self.should_exit:
                ready(sock)

    config = uvicorn.Config(
        app,
        http=_counting_protocol() if os.environ.get(CONNLOG_ENV) else "auto",
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
        # keep the defaults that make the wire realistic: `server: uvicorn`, `date`
    )
    Server(config).run(sockets=[sock])
