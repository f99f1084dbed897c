"""MCP servers as agent tools, through pydantic-ai's ``MCPToolset`` (FastMCP client underneath).

* An agent's config names servers (``McpServer``): a stdio ``command`` (argv, run by this
  process; allowed only with ``CHATSERVER_MCP_ALLOW_STDIO``) or a streamable-HTTP ``url``.
* Tools are namespaced by server: tool ``search`` of server ``docs`` is ``docs_search``.
* One connection per distinct server configuration per process, opened on first use and kept
  open for every agent and user that names it (no new connection per turn). Server configs hold no
  per-user secret, so sharing the connection shares nothing private.
* Identity: every call carries the run's user and agent in the MCP request ``_meta``
  (``chatserver/user_id``, ``chatserver/agent_name``), taken from ``TurnDeps``, never from the
  model's arguments. A server that needs the user must read it there.
* Failures never fail the turn: a tool error, a server that cannot be reached, crashes or times
  out becomes a failed tool result the model sees (``ToolFailed``). A broken connection is
  dropped and reopened on a later use (at most once per ``RECONNECT_SECONDS`` while it fails); while
  a server is down, the tools it listed last stay visible so calls report the outage.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic_ai import RunContext
from pydantic_ai.exceptions import ToolFailed
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset
from pydantic_ai.toolsets.abstract import ToolsetTool

from chatserver.agents.types import TurnDeps
from chatserver.domain import McpServer
from chatserver.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic_ai.mcp import CallToolFunc, MCPToolset

log = logging.getLogger("chatserver.mcp")

SERVER_NAME = re.compile(r"^[a-z][a-z0-9]{0,31}$")
MAX_SERVERS = 8
MAX_COMMAND_ARGS = 64
USER_META_KEY = "chatserver/user_id"
AGENT_META_KEY = "chatserver/agent_name"
RECONNECT_SECONDS = 5.0


def validate_mcp_servers(
    servers: Iterable[McpServer], *, allow_stdio: bool, reserved_tools: Iterable[str] = ()
) -> None:
    """Raise ``InvalidInput(field="mcp_servers")`` for a config that could not be served."""
    servers = list(servers)
    if len(servers) > MAX_SERVERS:
        raise _invalid(f"at most {MAX_SERVERS} MCP servers per agent")
    names = [server.name for server in servers]
    if len(set(names)) != len(names):
        raise _invalid("MCP server names must be unique")
    reserved = list(reserved_tools)
    for server in servers:
        _validate_server(server, allow_stdio=allow_stdio, reserved=reserved)


def _validate_server(server: McpServer, *, allow_stdio: bool, reserved: list[str]) -> None:
    if not SERVER_NAME.match(server.name):
        raise _invalid(f"MCP server name {server.name!r} must match {SERVER_NAME.pattern}")
    clash = [tool for tool in reserved if tool.startswith(f"{server.name}_")]
    if clash:
        raise _invalid(f"MCP server name {server.name!r} would clash with tool {clash[0]!r}")
    if bool(server.command) == bool(server.url):
        raise _invalid(f"MCP server {server.name!r} needs exactly one of command or url")
    if server.url is not None and not re.match(r"^https?://[^\s/]+", server.url):
        raise _invalid(f"MCP server {server.name!r}: url must be http:// or https://")
    if server.command:
        if not allow_stdio:
            raise _invalid(
                f"MCP server {server.name!r}: stdio commands are disabled (CHATSERVER_MCP_ALLOW_STDIO)"
            )
        if len(server.command) > MAX_COMMAND_ARGS or not server.command[0].strip():
            raise _invalid(f"MCP server {server.name!r}: command must be a program and its arguments")


def _invalid(detail: str) -> InvalidInput:
    return InvalidInput(detail, field="mcp_servers")


async def _with_identity(ctx: RunContext[Any], call: CallToolFunc, name: str, args: dict[str, Any]) -> Any:
    """Send the run's user and agent as request metadata (never as model-chosen arguments)."""
    deps = ctx.deps
    meta = (
        {USER_META_KEY: deps.user_id, AGENT_META_KEY: deps.agent_name} if isinstance(deps, TurnDeps) else None
    )
    return await call(name, args, metadata=meta)


class McpConnection:
    """One server's shared session: opened lazily, held open, dropped when it breaks."""

    def __init__(self, server: McpServer, *, timeout_seconds: float) -> None:
        # Imported here: the MCP client stack is heavy, and most processes (the CLI) never need it.
        from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
        from pydantic_ai.mcp import MCPToolset

        self.server = server
        transport = (
            StdioTransport(server.command[0], list(server.command[1:]))
            if server.command
            else StreamableHttpTransport(server.url or "")
        )
        self.toolset: MCPToolset[TurnDeps] = MCPToolset(
            transport,
            id=server.name,
            tool_error_behavior="failed",
            process_tool_call=_with_identity,
            init_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
        )
        self._timeout = timeout_seconds
        self._open = False
        self._retry_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.last_tools: list[ToolDefinition] = []

    async def ensure_open(self) -> bool:
        """True when the session is open (opening it now if needed and not recently failed)."""
        if self._open:
            return True
        if time.monotonic() < self._retry_at:
            return False
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if not self._open:
                try:
                    await asyncio.wait_for(self.toolset.__aenter__(), self._timeout)
                    self._open = True
                except Exception as exc:
                    self._retry_at = time.monotonic() + RECONNECT_SECONDS
                    log.warning("MCP server %r unreachable: %s", self.server.name, exc)
        return self._open

    async def drop(self) -> None:
        """Release this process's hold on the session; it closes once in-flight calls finish."""
        if not self._open:
            return
        self._open = False
        try:
            await self.toolset.__aexit__(None, None, None)
        except Exception:
            log.warning("closing MCP server %r failed", self.server.name, exc_info=True)


@dataclass
class McpServerToolset(WrapperToolset[TurnDeps]):
    """The agent's view of one shared connection: never fails a run, reports outages as tool errors."""

    connection: McpConnection = field(kw_only=True)

    async def __aenter__(self) -> McpServerToolset:
        return self  # the connection is shared and held by ``McpConnections``, not by each run

    async def __aexit__(self, *args: Any) -> bool | None:
        return None

    async def get_tools(self, ctx: RunContext[TurnDeps]) -> dict[str, ToolsetTool[TurnDeps]]:
        connection = self.connection
        if await connection.ensure_open():
            try:
                tools = await self.wrapped.get_tools(ctx)
            except Exception as exc:
                log.warning("MCP server %r: listing tools failed: %s", connection.server.name, exc)
                await connection.drop()
            else:
                connection.last_tools = [tool.tool_def for tool in tools.values()]
                return tools
        return {d.name: connection.toolset.tool_for_tool_def(d, ctx=ctx) for d in connection.last_tools}

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[TurnDeps], tool: ToolsetTool[TurnDeps]
    ) -> Any:
        connection = self.connection
        server = connection.server.name
        if not await connection.ensure_open():
            raise ToolFailed(f"MCP server '{server}' is unavailable")
        try:
            return await self.wrapped.call_tool(name, tool_args, ctx, tool)
        except ToolFailed:
            raise  # the tool itself reported an error: the connection is fine
        except Exception as exc:
            await connection.drop()
            raise ToolFailed(f"MCP server '{server}' failed: {exc}") from exc


class McpConnections:
    """Every MCP connection of this process, one per distinct server configuration."""

    def __init__(self, *, timeout_seconds: float = 30.0, allow_stdio: bool = False) -> None:
        self.timeout_seconds = timeout_seconds
        self.allow_stdio = allow_stdio
        self._connections: dict[McpServer, McpConnection] = {}

    def toolset(self, server: McpServer) -> AbstractToolset[TurnDeps]:
        """The server's tools, prefixed with its name; ``InvalidInput`` for a config not allowed here."""
        validate_mcp_servers([server], allow_stdio=self.allow_stdio)
        connection = self._connections.get(server)
        if connection is None:
            connection = McpConnection(server, timeout_seconds=self.timeout_seconds)
            self._connections[server] = connection
        return McpServerToolset(connection.toolset, connection=connection).prefixed(server.name)

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.drop()
