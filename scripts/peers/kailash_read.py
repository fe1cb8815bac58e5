"""Read a Kailash registry file with the REAL reader and print what it sees, as one JSON document.

    $MCP_SCOUT_PEERS/kailash/bin/python scripts/peers/kailash_read.py FILE

The `kailash-file` sink's tests cross-check the file they make with this. It loads FILE with
PyPI kailash-mcp's `kailash_mcp.discovery.discovery.FileBasedDiscovery(FILE)` and prints:

  {"path": FILE, "count": N, "file_entries": M, "names_unique": bool,
   "healthy_only": [ids get_servers(healthy_only=True) returns],
   "servers": [{every ServerInfo field (name, transport, capabilities, metadata, id, endpoint,
                command, args, url, health_endpoint, health_status, health, last_seen,
                response_time, version, auth_required), "is_healthy": ServerInfo.is_healthy()
                (healthy only if health_status, or health.status when `health` is a dict, is
                "healthy" AND last_seen is less than 300 s old), "age_s": now - last_seen}]}

The reader's own behaviour, which this exposes (kailash-mcp 0.6.0):
  - get_servers() builds ServerInfo(**entry) for every entry of "servers"; one entry with a
    key that is not a ServerInfo field (or without `name`/`transport`) raises inside it, and
    the reader then logs "Failed to get servers: ..." and returns [] for the WHOLE file.
  - a file that is not JSON is logged ("Failed to read registry: ...") and read as empty.
  - FileBasedDiscovery(path) CREATES an empty registry at a missing path, so we refuse a
    missing FILE before constructing it.
  - the outer key of "servers" is not used by get_servers (only the entry's `id`); lookups by
    name (get_server, _servers) keep one entry per name.
Exit status: 0 when the reader accepted the file (even with no servers), 1 when it rejected
it (the reader's logged error is printed on stderr and in the JSON as "error"), 2 on usage.
Logs of the reader go to stderr; stdout carries only the JSON document.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time


class Errors(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main() -> int:
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        print("usage: kailash_read.py FILE (run with the kailash venv's python)", file=sys.stderr)
        return 2
    path = sys.argv[1]
    if not os.path.isfile(path):
        print(f"kailash_read: {path} does not exist (the reader would create an empty one)", file=sys.stderr)
        return 1
    with contextlib.redirect_stdout(sys.stderr):  # nothing the package prints reaches stdout
        from kailash_mcp.discovery.discovery import FileBasedDiscovery

        errors = Errors()
        logging.getLogger("kailash_mcp").addHandler(errors)
        logging.getLogger("kailash_mcp").setLevel(logging.INFO)
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
        reader = FileBasedDiscovery(path)
        servers = asyncio.run(reader.get_servers())
        healthy = asyncio.run(reader.get_servers(healthy_only=True))
        try:
            by_name = reader._servers  # the reader's name-keyed view
        except Exception as e:  # noqa: BLE001 - the reader's own failure is the finding
            by_name = None
            errors.messages.append(f"name-keyed view failed: {e}")
    try:
        with open(path, encoding="utf-8") as f:
            entries = len(json.load(f).get("servers", {}))
    except (ValueError, AttributeError, OSError):
        entries = None
    now = time.time()
    doc = {
        "path": path,
        "count": len(servers),
        "file_entries": entries,
        "names_unique": by_name is not None and len(by_name) == len(servers),
        "healthy_only": [s.id for s in healthy],
        "servers": [
            {**dataclasses.asdict(s), "is_healthy": s.is_healthy(), "age_s": round(now - s.last_seen, 3)}
            for s in servers
        ],
    }
    if errors.messages:
        doc["error"] = "; ".join(dict.fromkeys(errors.messages))
    print(json.dumps(doc, indent=2, sort_keys=False))
    if errors.messages:
        print(f"kailash_read: the reader rejected {path}: {doc['error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
