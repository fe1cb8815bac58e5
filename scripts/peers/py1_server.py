"""Real MCP peer: the official Python SDK 1.x (FastMCP). Run with the py1 venv.

    py1_server.py --mode MODE --host IP --port PORT [--path P]

Modes:
  streamable      streamable HTTP at --path (default /mcp), stateful (32-hex session ids), SSE replies
  stateless-json  streamable HTTP, stateless_http=True, json_response=True
  sse             legacy HTTP+SSE: GET --path (default /sse), POST /messages/?session_id=...
  auth            streamable + AuthSettings + token verifier: 401 + RFC 9728 metadata at
                  /.well-known/oauth-protected-resource/mcp; the bearer token `scout-test-token`
                  is accepted (scope mcp:tools), anything else is 401
  hostcheck       streamable with DNS-rebinding protection allowing only mcp.internal[:443],
                  so a request with Host: <ip>:<port> gets 421 "Invalid Host header"
  card            streamable, plus a Server Card (SEP-2127 draft) served by OUR routes next to
                  the real SDK server (the SDK serves none): GET <path>/server-card ->
                  application/mcp-server-card+json, name "test.scout/weather", version "2.0.0"
                  (the handshake says the SDK's version: a deliberate disagreement), one
                  streamable-http remote at http://IP:PORT<path> with supportedProtocolVersions
                  ["2025-11-25", "2025-06-18"]; GET /.well-known/mcp/catalog.json -> three
                  entries: this card, a card on another loopback host (127.0.0.99:9, must never
                  be fetched) and an entry of another type (ignored)
  hostile         streamable, but every string it sends is an attack on a web page that would
                  render it as HTML: the server name, the instructions and a tool's name
                  and description hold HOSTILE_SCRIPT and HOSTILE_IMG below (each would set
                  window.__pwned if it ever ran); the dashboard test checks they show as text

The other modes allow Host <ip>:*, 127.0.0.1:*, localhost:* and [::1]:* (the SDK's own
default for a server bound to 127.0.0.1, generalised to the address actually bound).
"""

from __future__ import annotations

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _peerlib  # noqa: E402

MODES = ["streamable", "stateless-json", "sse", "auth", "hostcheck", "card", "hostile"]
CARD_VERSION = "2.0.0"
OTHER_CARD = "http://127.0.0.99:9/other/server-card"

TOKEN = "scout-test-token"

HOSTILE_SCRIPT = "<script>window.__pwned=1</script>"
HOSTILE_IMG = '<img src=x onerror="window.__pwned=1">'


def build(args, port: int):
    from mcp.server.fastmcp import FastMCP
    from mcp.server.transport_security import TransportSecuritySettings

    ip = args.host
    hostname = f"[{ip}]" if ":" in ip else ip
    if args.mode == "hostcheck":
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["mcp.internal", "mcp.internal:443"],
            allowed_origins=["https://mcp.internal"],
        )
    elif ip in ("0.0.0.0", "::"):
        # Like FastMCP's own default: a wildcard bind serves any Host (no rebinding check).
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    else:
        security = _peerlib.loopback_security(ip)

    kwargs = {}
    if args.mode == "auth":
        from mcp.server.auth.provider import AccessToken, TokenVerifier
        from mcp.server.auth.settings import AuthSettings

        class StaticTokenVerifier(TokenVerifier):
            async def verify_token(self, token: str) -> AccessToken | None:
                if token == TOKEN:
                    return AccessToken(token=token, client_id="mcp-scout-test", scopes=["mcp:tools"])
                return None

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            kwargs["auth"] = AuthSettings(
                issuer_url="https://auth.decoy.test",
                resource_server_url=f"http://{hostname}:{port}{args.path}",
                required_scopes=["mcp:tools"],
            )
        kwargs["token_verifier"] = StaticTokenVerifier()

    path_kw = {"sse_path": args.path} if args.mode == "sse" else {"streamable_http_path": args.path}
    hostile = args.mode == "hostile"
    if hostile:
        kwargs["instructions"] = f"Instructions {HOSTILE_SCRIPT} {HOSTILE_IMG}"
    mcp = FastMCP(
        f"evil{HOSTILE_SCRIPT}{HOSTILE_IMG}" if hostile else "weather-demo",
        **({} if hostile else {"instructions": "Weather demo server for mcp-scout tests: forecasts and arithmetic."}),
        host=ip,
        port=port,
        stateless_http=args.mode == "stateless-json",
        json_response=args.mode == "stateless-json",
        transport_security=security,
        log_level="WARNING",
        **path_kw,
        **kwargs,
    )

    @mcp.tool()
    def get_forecast(city: str) -> str:
        """Get the weather forecast for a city."""
        return f"Sunny in {city}, 21 C"

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    if hostile:

        def steal(note: str) -> str:
            return "no"

        mcp.add_tool(
            steal,
            name=f"steal{HOSTILE_IMG}",
            description=f"Steals cookies. {HOSTILE_SCRIPT} {HOSTILE_IMG} <b>bold</b>",
        )

    @mcp.resource("weather://cities", mime_type="application/json")
    def cities() -> str:
        """Cities with a forecast."""
        return '["Paris", "Oslo", "Lima"]'

    @mcp.prompt()
    def forecast_prompt(city: str) -> str:
        """Ask for a forecast."""
        return f"What is the weather in {city}?"

    if args.mode == "stateless-json":
        # Health endpoints next to /mcp, as an MCP Mesh agent serves them.
        from starlette.responses import JSONResponse

        @mcp.custom_route("/livez", methods=["GET"])
        async def livez(_request):
            return JSONResponse({"status": "alive"})

        @mcp.custom_route("/ready", methods=["GET"])
        async def ready(_request):
            return JSONResponse({"status": "ready"})

    if args.mode == "card":
        from starlette.responses import JSONResponse

        card_url = f"http://{hostname}:{port}{args.path}/server-card"

        @mcp.custom_route(f"{args.path}/server-card", methods=["GET"])
        async def server_card(_request):
            return JSONResponse(
                {
                    "$schema": "https://static.modelcontextprotocol.io/schemas/v2/server-card.schema.json",
                    "name": "test.scout/weather",
                    "version": CARD_VERSION,
                    "title": "Weather Demo",
                    "description": "Forecasts and arithmetic for mcp-scout tests.",
                    "remotes": [
                        {
                            "type": "streamable-http",
                            "url": f"http://{hostname}:{port}{args.path}",
                            "supportedProtocolVersions": ["2025-11-25", "2025-06-18"],
                        }
                    ],
                },
                media_type="application/mcp-server-card+json",
            )

        @mcp.custom_route("/.well-known/mcp/catalog.json", methods=["GET"])
        async def catalog(_request):
            kind = "application/mcp-server-card+json"
            return JSONResponse(
                {
                    "specVersion": "draft",
                    "entries": [
                        {"identifier": "urn:air:scout.test:weather", "displayName": "Weather Demo", "type": kind, "url": card_url},
                        {"identifier": "urn:air:scout.test:other", "displayName": "Elsewhere", "type": kind, "url": OTHER_CARD},
                        {"identifier": "urn:air:scout.test:agent", "displayName": "An agent", "type": "application/a2a-agent-card+json", "url": card_url},
                    ],
                }
            )

    return mcp.sse_app() if args.mode == "sse" else mcp.streamable_http_app()


def main() -> None:
    args = _peerlib.parse_args(
        __doc__.splitlines()[0], MODES, default_path=lambda a: "/sse" if a.mode == "sse" else "/mcp"
    )
    sock = _peerlib.bind(args.host, args.port)
    app = build(args, sock.getsockname()[1])
    _peerlib.serve_asgi(app, sock)


if __name__ == "__main__":
    main()
