"""Controllable MCP peer: the official Python SDK 1.x (FastMCP), run with the py1 venv.

    py1_control.py --host IP --port PORT [--path P]

Streamable HTTP at --path (default /mcp), stateful, SSE replies, tools `echo(text)` and
`get_status()`. A test drives it over plain HTTP on the same port:

  POST /control/MODE     set the mode (answers 200 {"mode": MODE}); MODE is one of
      ok             normal answers (the start mode)
      fail           every tool call returns isError (the tool raises)
      hang           tools/list and tool calls never answer (bounded: 600 s)
      slow?ms=N      tools/list and tool calls answer after N ms (default 1500)
      drop-tool      tools/list leaves out `get_status` (a deploy that lost a tool)
      no-tools       tools/list is empty
      huge-result    `echo` returns 2 MiB of text (above a 1 MiB body cap)
      refuse-delete  DELETE of a session answers 405 and keeps the session
      health-503     GET /health answers 503 {"status": "down"}
      health-200     GET /health answers 200 {"status": "ok"} (the start state)
  GET /control/stats     {"mode", "health", "initialize", "tools_list", "tools_call",
                          "delete", "sessions"}: requests counted since start, and the
                          sessions the server still holds
  GET /health            200 or 503, as set

The health modes only move /health; the other modes replace each other.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

MODES = ["ok", "fail", "hang", "slow", "drop-tool", "no-tools", "huge-result", "refuse-delete"]
HANG_SECONDS = 600
HUGE_BYTES = 2 * 1024 * 1024
MAX_BODY = 1 << 20


class State:
    mode = "ok"
    slow_ms = 1500
    health = 200
    counts = {"initialize": 0, "tools_list": 0, "tools_call": 0, "delete": 0}


def build(args):
    from mcp.server.fastmcp import FastMCP
    from starlette.responses import JSONResponse

    ip = args.host
    security = _peerlib.loopback_security(ip)

    async def delay() -> None:
        if State.mode == "hang":
            await asyncio.sleep(HANG_SECONDS)
        elif State.mode == "slow":
            await asyncio.sleep(State.slow_ms / 1000)

    class Controlled(FastMCP):
        async def list_tools(self):
            State.counts["tools_list"] += 1
            await delay()
            tools = await super().list_tools()
            if State.mode == "drop-tool":
                tools = [t for t in tools if t.name != "get_status"]
            elif State.mode == "no-tools":
                tools = []
            return tools

        async def call_tool(self, name, arguments):
            State.counts["tools_call"] += 1
            await delay()
            return await super().call_tool(name, arguments)

    mcp = Controlled(
        "control-demo",
        instructions="Controllable server for mcp-scout health-check tests.",
        host=ip,
        port=0,
        transport_security=security,
        log_level="WARNING",
        streamable_http_path=args.path,
    )

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        if State.mode == "fail":
            raise RuntimeError("echo is failing on purpose (mode fail)")
        if State.mode == "huge-result":
            return "x" * HUGE_BYTES
        return text

    @mcp.tool()
    def get_status() -> str:
        """Report the server's status."""
        if State.mode == "fail":
            raise RuntimeError("get_status is failing on purpose (mode fail)")
        return "all good"

    @mcp.custom_route("/health", methods=["GET"])
    async def health(_request):
        return JSONResponse({"status": "ok" if State.health == 200 else "down"}, status_code=State.health)

    @mcp.custom_route("/control/stats", methods=["GET"])
    async def stats(_request):
        sessions = len(getattr(mcp.session_manager, "_server_instances", {}))
        return JSONResponse(
            {"mode": State.mode, "health": State.health, **State.counts, "sessions": sessions}
        )

    @mcp.custom_route("/control/{mode}", methods=["POST"])
    async def control(request):
        mode = request.path_params["mode"]
        if mode in ("health-503", "health-200"):
            State.health = int(mode[-3:])
        elif mode in MODES:
            State.mode = mode
            if mode == "slow":
                State.slow_ms = max(0, min(int(request.query_params.get("ms", "1500")), 60_000))
        else:
            return JSONResponse({"error": f"unknown mode {mode!r}"}, status_code=400)
        return JSONResponse({"mode": State.mode, "health": State.health})

    app = mcp.streamable_http_app()
    return counting(app, args.path)


def counting(app, path: str):
    """ASGI wrapper: counts initialize requests and DELETEs on the MCP path, and refuses
    DELETE in mode refuse-delete. Reads at most MAX_BODY bytes of a POST to peek at it."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") != path.rstrip("/"):
            return await app(scope, receive, send)
        if scope["method"] == "DELETE":
            State.counts["delete"] += 1
            if State.mode == "refuse-delete":
                await send({"type": "http.response.start", "status": 405, "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"DELETE refused (mode refuse-delete)"})
                return
            return await app(scope, receive, send)
        if scope["method"] != "POST":
            return await app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more and size <= MAX_BODY:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        try:
            if json.loads(body).get("method") == "initialize":
                State.counts["initialize"] += 1
        except (ValueError, AttributeError):
            pass
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await app(scope, replay, send)

    return wrapped


def main() -> None:
    args = _peerlib.parse_args(__doc__.splitlines()[0], None, default_path="/mcp")
    sock = _peerlib.bind(args.host, args.port)
    _peerlib.serve_asgi(build(args), sock)


if __name__ == "__main__":
    main()
