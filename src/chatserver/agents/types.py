"""The contract between the chat service and the agent layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelRequestPart, ModelResponse, ToolCallPart
from pydantic_ai.models import Model
from pydantic_ai.toolsets import AbstractToolset

from chatserver.domain import (
    AgentConfig,
    ConfigVersions,
    NewMessage,
    ToolCall,
    ToolCallRecord,
    TurnUsage,
)


class ToolBackend(Protocol):
    """What built-in tools may do to storage; always for the user in ``TurnDeps``, never a model argument."""

    async def set_instructions(self, user_id: str, agent_name: str, instructions: list[str]) -> str: ...


@runtime_checkable
class MemoryBackend(Protocol):
    """Long-term notes for the memory tools; always for the user in ``TurnDeps``."""

    async def remember(self, user_id: str, agent_name: str, note: str) -> str: ...
    async def recall(self, user_id: str, agent_name: str, query: str) -> list[str]: ...


class Steering(Protocol):
    """Messages the user sent to a run while it runs, handed to it before its next model request."""

    async def take(self) -> list[str]: ...


class Meter(Protocol):
    """Counts a run's model requests: admits each before it is sent (budgets), records each answer."""

    async def before_request(self) -> None:
        """Raise ``BudgetExceeded`` when a budget binding the run is used up."""

    def record(self, model: str, response: ModelResponse) -> None:
        """``model``: the model string of the agent's model (or fallback model) that answered."""


class StepLog(Protocol):
    """Stores a run's steps as each finishes (``services/run_steps.py``): what the run goes on from
    after a pause for the user's approval or a restart."""

    async def responded(
        self, response: ModelResponse, running: list[ToolCallPart], pending: list[ToolCallPart]
    ) -> None:
        """A model response, with the tool calls about to run and those that wait for the user."""

    async def calling(self, call: ToolCallPart) -> None:
        """An approved call is about to run."""

    async def called(self, call: ToolCallPart, result: ModelRequestPart) -> None: ...


@dataclass(frozen=True, slots=True)
class TurnDeps:
    """Per-run dependencies: the cached agent is shared, these are not."""

    user_id: str
    agent_name: str
    chat_id: str | None
    backend: ToolBackend | None = None
    memory: MemoryBackend | None = None
    """The memory tools' store; when None, ``backend`` serves if it is a ``MemoryBackend`` too."""
    steering: Steering | None = None
    meter: Meter | None = None
    steps: StepLog | None = None

    def memory_backend(self) -> MemoryBackend | None:
        if self.memory is not None:
            return self.memory
        return self.backend if isinstance(self.backend, MemoryBackend) else None


@dataclass(frozen=True, slots=True)
class BuiltAgent:
    """An immutable, shareable agent for one (user, agent) pair."""

    config: AgentConfig
    system_prompt: str
    model: Model
    toolset: AbstractToolset[TurnDeps]
    """The agent's tools and MCP servers' tools, as one toolset."""
    context_tokens: int | None = None
    """History budget in estimated tokens (``agents/context.py``); None: the whole window."""
    versions: ConfigVersions | None = None
    """The stamps of what it was built from, read before it (``services/agent_loader.py``)."""
    tool_hooks: AbstractCapability[TurnDeps] | None = None
    """Wraps each tool call (tracing on: pydantic-ai's ``Instrumentation``, a span per call)."""
    attempt_timeout: float | None = None
    """How long one model of a fallback chain may take to start answering before the next is tried."""


@dataclass(frozen=True, slots=True)
class TurnResult:
    output: str
    new_messages: list[NewMessage]
    tool_calls: list[ToolCallRecord]
    usage: TurnUsage
    client_calls: tuple[ToolCall, ...] = ()
    """The caller's tools the model called: the turn ends there and hands them back."""
    pending_approvals: tuple[ToolCall, ...] = ()
    """Calls that wait for the user's decision: the run pauses there (its steps are stored)."""


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


@dataclass(frozen=True, slots=True)
class StoppedEvent:
    """The run stops between steps (its next model request was refused): what it did until then.
    The refusal is raised right after."""

    result: TurnResult


StreamEvent = TokenEvent | ToolCallEvent | ToolResultEvent | DoneEvent | StoppedEvent
