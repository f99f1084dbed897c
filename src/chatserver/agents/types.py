"""The contract between the chat service and the agent layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_ai import Agent

from chatserver.domain import AgentConfig, NewMessage, ToolCallRecord, TurnUsage


class ToolBackend(Protocol):
    """What built-in tools may do to storage; always for the user in ``TurnDeps``, never a model argument."""

    async def set_instructions(self, user_id: str, agent_name: str, instructions: list[str]) -> str: ...


@dataclass(frozen=True, slots=True)
class TurnDeps:
    """Per-run dependencies: the cached agent is shared, these are not."""

    user_id: str
    agent_name: str
    chat_id: str | None
    backend: ToolBackend | None = None


@dataclass(frozen=True, slots=True)
class BuiltAgent:
    """An immutable, shareable agent for one (user, agent) pair."""

    config: AgentConfig
    system_prompt: str
    agent: Agent[TurnDeps, str]


@dataclass(frozen=True, slots=True)
class TurnResult:
    output: str
    new_messages: list[NewMessage]
    tool_calls: list[ToolCallRecord]
    usage: TurnUsage


@dataclass(frozen=True, slots=True)
class TokenEvent:
    delta: str


@dataclass(frozen=True, slots=True)
class ToolCallEvent:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolResultEvent:
    name: str
    result: Any


@dataclass(frozen=True, slots=True)
class DoneEvent:
    result: TurnResult = field()


StreamEvent = TokenEvent | ToolCallEvent | ToolResultEvent | DoneEvent
