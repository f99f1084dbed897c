"""Built-in tools an agent can list by name, and the registry the factory picks them from.

Every tool is a pydantic-ai ``Tool[TurnDeps]``. A tool that acts for a user reads the user from
``ctx.deps`` (set by the server for this run), never from an argument the model chose: the model
cannot name another user. New tools plug in by adding a factory to ``BUILTIN_TOOL_FACTORIES`` or by
handing ``ToolRegistry`` extra tools; MCP servers' tools come as toolsets (``agents/mcp.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from types import MappingProxyType

from pydantic_ai import RunContext, Tool

from chatserver.agents.types import TurnDeps
from chatserver.clock import Clock, SystemClock
from chatserver.errors import ChatServerError, InvalidInput

ToolFactory = Callable[[Clock], Tool[TurnDeps]]
"""Builds one tool; it gets the clock so time-dependent tools are testable."""

NO_BACKEND_MESSAGE = "error: instructions cannot be saved here (no storage backend for this run)"


def current_time_tool(clock: Clock) -> Tool[TurnDeps]:
    async def current_time() -> str:
        """Return the current date and time in UTC, ISO 8601 (for example 2025-01-31T14:05:09+00:00)."""
        now = clock.now()
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        return now.isoformat(timespec="seconds")

    return Tool(current_time, takes_ctx=False, name="current_time")


def update_instructions_tool(clock: Clock) -> Tool[TurnDeps]:
    del clock  # not time-dependent

    async def update_instructions(ctx: RunContext[TurnDeps], instructions: list[str]) -> str:
        """Replace your saved instructions for the current user with this list.

        The instructions are added to your system prompt in this user's future conversations with
        you. Send the complete list you want to keep: it replaces the previous one.

        Args:
            instructions: The full list of instructions, one short sentence each.
        """
        deps = ctx.deps
        if deps.backend is None:
            return NO_BACKEND_MESSAGE
        try:
            return await deps.backend.set_instructions(deps.user_id, deps.agent_name, list(instructions))
        except ChatServerError as exc:  # a rule the backend enforces: tell the model, do not crash the turn
            return f"error: {exc.detail}"

    return Tool(update_instructions, takes_ctx=True, name="update_instructions")


NO_MEMORY_MESSAGE = "error: memories are not available here (no memory backend for this run)"
NO_NOTES_MESSAGE = "no notes found"


def remember_tool(clock: Clock) -> Tool[TurnDeps]:
    del clock  # the backend stamps notes with the server's clock

    async def remember(ctx: RunContext[TurnDeps], note: str) -> str:
        """Save a short note about the current user to your long-term memory.

        Notes last across conversations with this user; recall them with recall_memories.

        Args:
            note: One fact worth remembering, as a short sentence.
        """
        memory = ctx.deps.memory_backend()
        if memory is None:
            return NO_MEMORY_MESSAGE
        try:
            return await memory.remember(ctx.deps.user_id, ctx.deps.agent_name, note)
        except ChatServerError as exc:
            return f"error: {exc.detail}"

    return Tool(remember, takes_ctx=True, name="remember")


def recall_memories_tool(clock: Clock) -> Tool[TurnDeps]:
    del clock  # not time-dependent

    async def recall_memories(ctx: RunContext[TurnDeps], query: str = "") -> list[str] | str:
        """Search your long-term notes about the current user, newest first.

        A note matches when it contains any word of the query (case-insensitive); an empty query
        returns the newest notes. Answers "no notes found" when nothing matches.

        Args:
            query: Words to look for, for example "birthday" or "favourite food".
        """
        memory = ctx.deps.memory_backend()
        if memory is None:
            return NO_MEMORY_MESSAGE
        try:
            notes = await memory.recall(ctx.deps.user_id, ctx.deps.agent_name, query)
        except ChatServerError as exc:
            return f"error: {exc.detail}"
        return notes or NO_NOTES_MESSAGE

    return Tool(recall_memories, takes_ctx=True, name="recall_memories")


BUILTIN_TOOL_FACTORIES: Mapping[str, ToolFactory] = MappingProxyType(
    {
        "current_time": current_time_tool,
        "update_instructions": update_instructions_tool,
        "remember": remember_tool,
        "recall_memories": recall_memories_tool,
    }
)


def build_builtin_tools(clock: Clock | None = None) -> Mapping[str, Tool[TurnDeps]]:
    """Every built-in tool, built with ``clock`` (the system clock by default)."""
    used_clock = clock if clock is not None else SystemClock()
    return MappingProxyType({name: factory(used_clock) for name, factory in BUILTIN_TOOL_FACTORIES.items()})


BUILTIN_TOOLS: Mapping[str, Tool[TurnDeps]] = build_builtin_tools()
"""Built-in tool name -> tool on the system clock (read-only, for introspection: names, schemas).

Agents get fresh instances from ``ToolRegistry.select``, never these.
"""


def unknown_tools(names: Iterable[str], available: Iterable[str]) -> list[str]:
    known = set(available)
    return sorted({name for name in names if name not in known})


def validate_tools(names: Iterable[str], available: Mapping[str, object] = BUILTIN_TOOLS) -> None:
    """Raise ``InvalidInput(field="tools")`` naming every unknown tool."""
    unknown = unknown_tools(names, available)
    if unknown:
        raise InvalidInput(
            f"unknown tool(s): {', '.join(unknown)} (available: {', '.join(sorted(available))})",
            field="tools",
        )


class ToolRegistry:
    """The tools agents may use: the built-ins plus extra factories (for example MCP-backed tools).

    ``select`` gives every agent its own ``Tool`` objects: pydantic-ai's toolsets adjust a tool they
    are given (its retry budget), so instances are never shared between agents. What they share is
    each tool's function schema (signature, docstring, JSON schema, argument validator), built once
    per registry: it is most of what building an agent costs, it never changes, and it holds no
    user's data (a tool reads the user from its run context).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        extra: Mapping[str, ToolFactory] | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        factories = dict(BUILTIN_TOOL_FACTORIES)
        for name, factory in (extra or {}).items():
            if name in factories:
                raise ValueError(f"tool {name!r} is already registered")
            factories[name] = factory
        self._factories: Mapping[str, ToolFactory] = MappingProxyType(factories)
        self._templates: dict[str, Tool[TurnDeps]] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)

    def validate(self, names: Iterable[str]) -> None:
        """Raise ``InvalidInput(field="tools")`` naming every tool this registry does not have."""
        validate_tools(names, self._factories)

    def select(self, names: Iterable[str]) -> list[Tool[TurnDeps]]:
        """New tools with these names, in the order given (duplicates once); unknown -> InvalidInput."""
        ordered = list(dict.fromkeys(names))
        self.validate(ordered)
        # A shallow copy: a new Tool whose settings the toolset may change, on the shared schema.
        return [copy.copy(self._template(name)) for name in ordered]

    def _template(self, name: str) -> Tool[TurnDeps]:
        template = self._templates.get(name)
        if template is None:
            template = self._templates[name] = self._factories[name](self._clock)
        return template
