"""The nouns of chatserver as immutable dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Role = Literal["user", "assistant", "tool"]
JsonObject = dict[str, Any]
DEFAULT_AGENT = "assistant"
"""The agent seeded on first start, and the one ``chatserver chat`` talks to unless told."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str | None
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from a JWT or an API key for one request."""

    user_id: str
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class McpServer:
    """An MCP server an agent may use: a stdio ``command`` (argv) or a streamable-HTTP ``url``.

    ``name`` prefixes its tools: tool ``search`` of server ``docs`` is ``docs_search`` to the model.
    """

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None


@dataclass(frozen=True, slots=True)
class AgentConfig:
    name: str
    model: str
    system_prompt: str
    description: str = ""
    tools: tuple[str, ...] = ()
    history_window: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    mcp_servers: tuple[McpServer, ...] = ()
    context_tokens: int | None = None
    """Budget of estimated tokens for system prompt + history + message; None: no budget."""
    fallback_models: tuple[str, ...] = ()
    """Tried in order when ``model`` fails with a provider error (429, 5xx, timeout, connection)."""
    tools_requiring_approval: tuple[str, ...] = ()
    """Tools (built-in, or MCP by their namespaced name) whose calls wait for the user's decision."""


@dataclass(frozen=True, slots=True)
class ConfigVersions:
    """What a built agent was built from, as stamps that change with every write of it: the agent's
    configuration, and the user's customizations. Equal stamps, the same inputs."""

    agent: str
    customizations: str


@dataclass(frozen=True, slots=True)
class Chat:
    id: str
    user_id: str
    agent_name: str
    title: str | None
    turn_count: int
    created_at: datetime
    updated_at: datetime
    active_message_id: int | None = None
    """The leaf of the active branch (None: no message yet)."""
    pinned: bool = False
    archived: bool = False


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call the assistant asked for (stored on the assistant message)."""

    id: str
    name: str
    args: JsonObject


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """A completed tool call of one turn, as the chat response reports it."""

    name: str
    args: JsonObject
    result: Any


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    incomplete: bool = False
    """A partial answer: the run was cancelled while the model wrote it."""


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    chat_id: str
    turn: int
    role: Role
    content: str
    created_at: datetime
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None
    incomplete: bool = False
    parent_id: int | None = None
    """The message this one follows on its branch (None: the chat's first)."""


@dataclass(frozen=True, slots=True)
class TurnUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0


@dataclass(frozen=True, slots=True)
class PromptCustomization:
    id: str
    user_id: str
    agent_name: str
    customization_type: str
    content: JsonObject
    is_active: bool
    priority: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SessionInstance:
    id: str
    user_id: str
    chat_id: str
    agent_name: str
    is_active: bool
    last_heartbeat_at: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    user_id: str | None = None
    agent_name: str | None = None
    chat_id: str | None = None
    data: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    type: str
    user_id: str | None
    agent_name: str | None
    chat_id: str | None
    data: JsonObject
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Memory:
    """A long-term note a user's agent saved with the ``remember`` tool."""

    id: int
    user_id: str
    agent_name: str
    content: str
    created_at: datetime
