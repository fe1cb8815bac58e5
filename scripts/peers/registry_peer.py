"""Start one real registry peer of the sinks' tests and supervise it (python3 stdlib only).

    registry_peer.py mesh-registry|etcd|contextforge --host IP --port PORT
                     [--data DIR] [--auth USER:PASS] (etcd only)

It owns the registry's process: starts it in a session of its own (so the whole process group
is stopped together) with its data in a fresh temp dir, or in --data DIR (created if needed,
kept afterwards: the caller owns it), polls the registry's health endpoint until it answers
(bounded by STARTUP_TIMEOUT[name]), then prints exactly one stdout line `READY <ip>:<port>`
(plus, for contextforge only, one line `TOKEN <jwt>` right after it). The registry's own output
goes to stderr. SIGTERM/SIGINT, or the death of the process that started us, stop the
registry (SIGTERM to its group, SIGKILL after STOP_TIMEOUT), remove the temp dir and exit 0.
The registry also gets SIGKILL from the kernel if this supervisor is killed outright
(PR_SET_PDEATHSIG). If the registry exits on its own, we exit with its status (1 before READY).

--port 0 picks a free port (bound, closed, then given to the registry: a tiny race, harmless
on loopback). etcd's peer URL takes a second free port on the same address.

  mesh-registry  $MCP_SCOUT_PEERS/mesh/package/bin/mcp-mesh-registry -H IP -p PORT with
                 DATABASE_URL=<data>/mesh.db; READY after GET /health answers 200.
  etcd           Debian's etcd 3.4: client URL http://IP:PORT (the v3 JSON gateway is there),
                 peer URL http://IP:<free port>, --data-dir <data>/etcd; READY after GET /health
                 says {"health":"true"}. With --auth USER:PASS: user `root` (password PASS if
                 USER is root, else a random one) and, if USER is not root, USER with role
                 root, then auth enabled, all through the v3 JSON gateway, before READY.
  contextforge   $MCP_SCOUT_PEERS/contextforge/bin/mcpgateway --host IP --port PORT, SQLite in
                 <data>/mcp.db, generated secrets (see contextforge_env), loopback and private
                 networks allowed as gateway targets; READY after GET /health answers
                 {"status":"healthy"}, then `TOKEN <jwt>`: an admin bearer token for
                 PLATFORM_ADMIN_EMAIL made by the package's own mcpgateway.utils.create_jwt_token
                 with the same secret.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

NAMES = ["mesh-registry", "etcd", "contextforge"]
# Bounds on the start (a loaded 2-core machine is slow; ContextForge migrates its DB at start).
STARTUP_TIMEOUT = {"mesh-registry": 30.0, "etcd": 30.0, "contextforge": 240.0}
HEALTH_POLL_INTERVAL = 0.1
HEALTH_REQUEST_TIMEOUT = 2.0
STOP_TIMEOUT = 5.0
TOKEN_TIMEOUT = 60.0
# ContextForge refuses tokens without `exp` (REQUIRE_TOKEN_EXPIRATION); one week outlives any test.
TOKEN_EXPIRY_MINUTES = 7 * 24 * 60
CONTEXTFORGE_ADMIN_EMAIL = "admin@example.com"
PR_SET_PDEATHSIG = 1


def log(msg: str) -> None:
    print(f"registry_peer: {msg}", file=sys.stderr, flush=True)


def free_port(host: str) -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the supervisor dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def http(method: str, url: str, body=None, headers=None, timeout=HEALTH_REQUEST_TIMEOUT):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def healthy(name: str, base: str) -> bool:
    try:
        status, raw = http("GET", base + "/health")
    except (urllib.error.URLError, OSError, ValueError):
        return False
    if status != 200:
        return False
    if name == "mesh-registry":
        return True
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    if name == "etcd":
        return doc.get("health") == "true"
    return doc.get("status") == "healthy"


def strong_password() -> str:
    # Upper, lower, digit and special, so ContextForge's complexity rules accept it.
    return "Aa1!" + secrets.token_urlsafe(24)


def contextforge_env(data: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{data}/mcp.db",
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "AUTH_ENCRYPTION_SECRET": secrets.token_urlsafe(48),
        "PLATFORM_ADMIN_EMAIL": CONTEXTFORGE_ADMIN_EMAIL,
        "PLATFORM_ADMIN_PASSWORD": strong_password(),
        "BASIC_AUTH_PASSWORD": strong_password(),
        # Tests register MCP servers on 127.0.0.x (and 10.99.0.x inside test namespaces).
        "SSRF_ALLOW_LOCALHOST": "true",
        "SSRF_ALLOW_PRIVATE_NETWORKS": "true",
        "MCPGATEWAY_UI_ENABLED": "false",
        "MCPGATEWAY_ADMIN_API_ENABLED": "false",
        "CACHE_TYPE": "memory",
        "LOG_LEVEL": "WARNING",
        "HOME": data,
    }


def contextforge_token(peers: str, env: dict[str, str], cwd: str) -> str:
    py = os.path.join(peers, "contextforge", "bin", "python")
    out = subprocess.run(
        [py, "-m", "mcpgateway.utils.create_jwt_token", "-u", CONTEXTFORGE_ADMIN_EMAIL, "--admin",
         "--full-name", "mcp-scout tests", "--exp", str(TOKEN_EXPIRY_MINUTES)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=TOKEN_TIMEOUT,
    )
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.strip().count(".") == 2 and " " not in ln.strip()]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"create_jwt_token failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return lines[-1]


def etcd_enable_auth(base: str, user: str, password: str) -> None:
    root_pw = password if user == "root" else secrets.token_urlsafe(24)
    steps = [("/v3/auth/user/add", {"name": "root", "password": root_pw}),
             ("/v3/auth/role/add", {"name": "root"}),
             ("/v3/auth/user/grant", {"user": "root", "role": "root"})]
    if user != "root":
        steps += [("/v3/auth/user/add", {"name": user, "password": password}),
                  ("/v3/auth/user/grant", {"user": user, "role": "root"})]
    steps.append(("/v3/auth/enable", {}))
    for path, body in steps:
        http("POST", base + path, body)


def main() -> int:
    ap = argparse.ArgumentParser(description="start and supervise one real registry peer")
    ap.add_argument("name", choices=NAMES)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--data", default=None, help="data dir (kept on exit); default: a temp dir, removed")
    ap.add_argument("--auth", default=None, metavar="USER:PASS", help="etcd only: enable auth with this user")
    ap.add_argument("--path", default=None, help="ignored (accepted for run.sh symmetry)")
    args = ap.parse_args()
    _peerlib.check_loopback(args.host)
    if args.auth is not None and (args.name != "etcd" or ":" not in args.auth or args.auth.startswith(":")):
        ap.error("--auth USER:PASS is for etcd only, with a non-empty USER")
    peers = os.environ.get("MCP_SCOUT_PEERS") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "peers")
    port = args.port or free_port(args.host)
    auth = _peerlib.authority(args.host, port)
    base = f"http://{auth}"

    own_tmp = args.data is None
    data = tempfile.mkdtemp(prefix=f"mcp-scout-{args.name}-") if own_tmp else os.path.abspath(args.data)
    os.makedirs(data, exist_ok=True)
    env = dict(os.environ)
    token_env = None
    if args.name == "mesh-registry":
        exe = os.path.join(peers, "mesh", "package", "bin", "mcp-mesh-registry")
        cmd = [exe, "-H", args.host, "-p", str(port)]
        env["DATABASE_URL"] = os.path.join(data, "mesh.db")
    elif args.name == "etcd":
        exe = shutil.which("etcd") or "/usr/bin/etcd"
        peer = f"http://{_peerlib.authority(args.host, free_port(args.host))}"
        cmd = [exe, "--name", "scout", "--data-dir", os.path.join(data, "etcd"),
               "--listen-client-urls", base, "--advertise-client-urls", base,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--initial-cluster", f"scout={peer}", "--initial-cluster-state", "new",
               "--logger", "zap", "--log-level", "warn"]
    else:
        exe = os.path.join(peers, "contextforge", "bin", "mcpgateway")
        cmd = [exe, "--host", args.host, "--port", str(port)]
        env.update(contextforge_env(data))
        token_env = env
    if not os.path.exists(exe):
        log(f"{exe} missing: run scripts/peers/setup.sh first")
        return 1

    stopping = False

    def on_signal(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    child = subprocess.Popen(cmd, env=env, cwd=data, stdin=subprocess.DEVNULL, stdout=sys.stderr,
                             start_new_session=True, preexec_fn=die_with_parent)
    _peerlib.watch_parent()

    def stop() -> int:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(f"{args.name} ignored SIGTERM for {STOP_TIMEOUT} s: SIGKILL")
        try:  # whatever is left of its group (workers) goes too
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
        if own_tmp:
            shutil.rmtree(data, ignore_errors=True)
        return 0

    started = time.monotonic()
    deadline = started + STARTUP_TIMEOUT[args.name]
    while not healthy(args.name, base):
        if stopping:
            return stop()
        if child.poll() is not None:
            log(f"{args.name} exited with {child.returncode} before it answered {base}/health")
            stop()
            return 1
        if time.monotonic() > deadline:
            log(f"{args.name} did not answer {base}/health within {STARTUP_TIMEOUT[args.name]} s")
            stop()
            return 1
        time.sleep(HEALTH_POLL_INTERVAL)
    log(f"{args.name} answered {base}/health after {time.monotonic() - started:.2f} s (data {data})")
    try:
        if args.auth is not None:
            user, password = args.auth.split(":", 1)
            etcd_enable_auth(base, user, password)
        token = contextforge_token(peers, token_env, data) if token_env is not None else None
    except (RuntimeError, OSError, urllib.error.URLError, subprocess.TimeoutExpired) as e:
        log(f"{args.name}: setup after start failed: {e}")
        stop()
        return 1
    log(f"{args.name} ready after {time.monotonic() - started:.2f} s")
    sys.stdout.write(f"READY {auth}\n")
    if token is not None:
        sys.stdout.write(f"TOKEN {token}\n")
    sys.stdout.flush()
    while not stopping:
        try:
            child.wait(0.2)
        except subprocess.TimeoutExpired:
            continue
        log(f"{args.name} exited with {child.returncode}")
        rc = child.returncode
        stop()
        return rc if rc > 0 else 1
    return stop()


if __name__ == "__main__":
    sys.exit(main())
