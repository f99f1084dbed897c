"""A small MCP server for tests (the ``mcp`` package's own server), over stdio or streamable HTTP.

    python mcp_demo_server.py            # stdio
    python mcp_demo_server.py http PORT  # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: ``add(a, b)``; ``whoami()`` -> the ``chatserver/user_id`` of the request's ``_meta``;
``pid()`` -> the server's process id;
``broken()`` -> a tool error; ``crash()`` -> the server process exits;
``note(text)`` -> appends ``text`` to the file ``MCP_DEMO_LEDGER`` names (its side effects, counted
by tests), then waits ``MCP_DEMO_NOTE_SECONDS`` (default 0).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("demo", log_level="CRITICAL")  # quiet: tests provoke errors on purpose


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def whoami(ctx: Context[Any]) -> str:
    """The user chatserver says is calling (from the request metadata)."""
    meta = dict(ctx.request_context.meta or {})
    return f"{meta.get('chatserver/user_id')} via {meta.get('chatserver/agent_name')}"


@server.tool()
def pid() -> int:
    """The server's process id (tells one connection from another)."""
    return os.getpid()


@server.tool()
def broken() -> str:
    """Always fails."""
    raise ValueError("broken on purpose")


@server.tool()
def crash() -> str:
    """Ends the server process (a server failure)."""
    os._exit(3)


def _append(path: str, text: str) -> None:
    with open(path, "a", encoding="utf-8") as ledger:
        ledger.write(text + "\n")


@server.tool()
async def note(text: str) -> str:
    """Write a note down (a side effect that can be counted)."""
    _append(os.environ["MCP_DEMO_LEDGER"], text)
    await asyncio.sleep(float(os.environ.get("MCP_DEMO_NOTE_SECONDS", "0")))
    return f"noted: {text}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
