"""Helpers for the agent layer tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chatserver.agents.factory import AgentFactory
from chatserver.agents.history import to_model_messages
from chatserver.agents.runner import run_turn
from chatserver.agents.types import BuiltAgent, ToolBackend, TurnDeps, TurnResult
from chatserver.domain import AgentConfig, Message, NewMessage, PromptCustomization

KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "OPENAI_BASE_URL",
    "CHATSERVER_OPENAI_API_KEY",
    "CHATSERVER_ANTHROPIC_API_KEY",
    "CHATSERVER_GOOGLE_API_KEY",
    "CHATSERVER_OPENAI_BASE_URL",
    "CHATSERVER_ECHO_LATENCY_MS",
)


class FakeClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class RecordingBackend:
    """A ToolBackend that records every write."""

    calls: list[tuple[str, str, list[str]]] = field(default_factory=list)

    async def set_instructions(self, user_id: str, agent_name: str, instructions: list[str]) -> str:
        self.calls.append((user_id, agent_name, instructions))
        return f"saved {len(instructions)} instruction(s)"


def agent_config(
    name: str = "helper", *, model: str = "echo", prompt: str = "You are helpful.", tools: Sequence[str] = ()
) -> AgentConfig:
    return AgentConfig(name=name, model=model, system_prompt=prompt, tools=tuple(tools))


def customization(
    content: dict[str, Any], *, type_: str = "instruction_set", active: bool = True, priority: int = 0
) -> PromptCustomization:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return PromptCustomization(
        id=f"c-{type_}",
        user_id="alice",
        agent_name="helper",
        customization_type=type_,
        content=content,
        is_active=active,
        priority=priority,
        created_at=now,
        updated_at=now,
    )


def deps(user_id: str = "alice", agent_name: str = "helper", backend: ToolBackend | None = None) -> TurnDeps:
    return TurnDeps(user_id=user_id, agent_name=agent_name, chat_id="chat-1", backend=backend)


def stored(messages: Sequence[NewMessage], *, chat_id: str = "chat-1", turn: int = 0) -> list[Message]:
    """NewMessages as the storage layer would return them."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Message(
            id=index,
            chat_id=chat_id,
            turn=turn,
            role=message.role,
            content=message.content,
            created_at=now,
            tool_calls=message.tool_calls,
            tool_call_id=message.tool_call_id,
            tool_name=message.tool_name,
        )
        for index, message in enumerate(messages, start=1)
    ]


def build(factory: AgentFactory, config: AgentConfig | None = None) -> BuiltAgent:
    return factory.build(config or agent_config(), [])


@dataclass
class Conversation:
    """Runs turns like the chat service: store the user message and the turn's new messages."""

    built: BuiltAgent
    turn_deps: TurnDeps = field(default_factory=deps)
    messages: list[NewMessage] = field(default_factory=list)

    async def say(self, prompt: str, *, timeout_seconds: float = 5.0, max_requests: int = 5) -> TurnResult:
        history = to_model_messages(stored(self.messages))
        self.messages.append(NewMessage("user", prompt))
        result = await run_turn(
            self.built,
            prompt,
            history=history,
            deps=self.turn_deps,
            timeout_seconds=timeout_seconds,
            max_requests=max_requests,
        )
        self.messages.extend(result.new_messages)
        return result
