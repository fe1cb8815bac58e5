"""Real MCP peer: the official Python SDK 2.x (MCPServer). Run with the py2 venv.

    py2_server.py --mode MODE --host IP --port PORT [--path P]

Modes:
  streamable      streamable HTTP at --path (default /mcp), stateful; answers both the
                  2025-xx handshake (initialize + sessions) and the 2026-07-28 era
                  (server/discover, Mcp-Method header, params._meta envelope)
  stateless-json  streamable HTTP, stateless_http=True, json_response=True
  sse             legacy HTTP+SSE: GET --path (default /sse), POST /messages/?session_id=...

Host header: <ip>:*, 127.0.0.1:*, localhost:* and [::1]:* are allowed (the SDK's own
default for a server bound to 127.0.0.1, generalised to the address actually bound).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

MODES = ["streamable", "stateless-json", "sse"]


def build(args):
    from mcp.server.mcpserver import MCPServer

    ip = args.host
    security = _peerlib.loopback_security(ip)
    mcp = MCPServer(
        "weather-demo-v2",
        instructions="Weather demo server (SDK 2.x) for mcp-scout tests: forecasts and arithmetic.",
        log_level="WARNING",
    )

    @mcp.tool()
    def get_forecast(city: str) -> str:
        """Get the weather forecast for a city."""
        return f"Sunny in {city}, 21 C"

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.resource("weather://cities", mime_type="application/json")
    def cities() -> str:
        """Cities with a forecast."""
        return '["Paris", "Oslo", "Lima"]'

    @mcp.prompt()
    def forecast_prompt(city: str) -> str:
        """Ask for a forecast."""
        return f"What is the weather in {city}?"

    if args.mode == "sse":
        return mcp.sse_app(sse_path=args.path, transport_security=security, host=ip)
    return mcp.streamable_http_app(
        streamable_http_path=args.path,
        json_response=args.mode == "stateless-json",
        stateless_http=args.mode == "stateless-json",
        transport_security=security,
        host=ip,
    )


def main() -> None:
    args = _peerlib.parse_args(
        __doc__.splitlines()[0], MODES, default_path=lambda a: "/sse" if a.mode == "sse" else "/mcp"
    )
    sock = _peerlib.bind(args.host, args.port)
    _peerlib.serve_asgi(build(args), sock)


if __name__ == "__main__":
    main()
