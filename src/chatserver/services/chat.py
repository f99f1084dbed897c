"""ChatService: one chat turn, plain or streamed.

A turn holds the chat's lock from storing the user's message to storing the answer, so turns on
one chat never interleave. It holds no database connection while the model runs: the user's
message and the window are read in one short transaction, the answer written in another.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol, TypedDict

from pydantic_ai.messages import ModelMessage

from chatserver.agents.history import to_model_messages
from chatserver.agents.runner import run_turn, stream_turn
from chatserver.agents.types import BuiltAgent, DoneEvent, StreamEvent, ToolBackend, TurnDeps, TurnResult
from chatserver.clock import Clock
from chatserver.domain import Chat, Message, NewEvent, NewMessage, ToolCallRecord, TurnUsage
from chatserver.errors import Conflict, InvalidInput, ModelError, ModelTimeout, NotFound, PayloadTooLarge
from chatserver.services.agent_loader import AgentLoader
from chatserver.storage.protocols import ChatLocks, UnitOfWorkFactory

TITLE_CHARS = 80


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    history_window: int
    max_message_chars: int
    model_timeout_seconds: float
    max_model_requests: int
    wait_when_busy: bool


@dataclass(frozen=True, slots=True)
class ChatReply:
    chat_id: str
    response: str
    tool_calls: list[ToolCallRecord]
    usage: TurnUsage


class TurnListener(Protocol):
    """Observes finished turns (metrics); must not raise or block."""

    def turn_completed(self, agent_name: str, result: TurnResult, seconds: float) -> None: ...
    def turn_failed(self, agent_name: str, code: str, seconds: float) -> None: ...


class NoTurnListener:
    def turn_completed(self, agent_name: str, result: TurnResult, seconds: float) -> None:
        pass

    def turn_failed(self, agent_name: str, code: str, seconds: float) -> None:
        pass


class _RunArgs(TypedDict):
    history: list[ModelMessage]
    deps: TurnDeps
    timeout_seconds: float
    max_requests: int


@dataclass(frozen=True, slots=True)
class _OpenTurn:
    built: BuiltAgent
    turn: int
    window: list[Message]
    started: float


class ChatService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        agents: AgentLoader,
        locks: ChatLocks,
        clock: Clock,
        policy: TurnPolicy,
        tool_backend: ToolBackend | None = None,
        listener: TurnListener | None = None,
    ) -> None:
        self._uow = uow
        self._agents = agents
        self._locks = locks
        self._clock = clock
        self._policy = policy
        self._tool_backend = tool_backend
        self._listener = listener or NoTurnListener()

    async def process_chat(self, user_id: str, agent_name: str, chat_id: str, message: str) -> ChatReply:
        self._check_message(message)
        built = await self._agents.get(user_id, agent_name)
        async with self._locks.hold(chat_id, wait=self._policy.wait_when_busy):
            opened = await self._open_turn(user_id, built, chat_id, message)
            try:
                result = await run_turn(built, message, **self._run_args(user_id, chat_id, opened))
            except ModelError as error:
                await self._record_failure(user_id, chat_id, opened, error)
                raise
            await self._close_turn(user_id, chat_id, opened, result)
        return ChatReply(chat_id, result.output, result.tool_calls, result.usage)

    async def stream_chat(
        self, user_id: str, agent_name: str, chat_id: str, message: str
    ) -> AsyncIterator[StreamEvent]:
        """Validate and resolve eagerly (so callers can answer 4xx), then stream the turn."""
        self._check_message(message)
        built = await self._agents.get(user_id, agent_name)
        return self._stream(user_id, built, chat_id, message)

    async def _stream(
        self, user_id: str, built: BuiltAgent, chat_id: str, message: str
    ) -> AsyncIterator[StreamEvent]:
        async with self._locks.hold(chat_id, wait=self._policy.wait_when_busy):
            opened = await self._open_turn(user_id, built, chat_id, message)
            events = stream_turn(built, message, **self._run_args(user_id, chat_id, opened))
            try:
                # aclosing: a client that goes away cancels the model run now, not at garbage collection.
                async with aclosing(events):
                    async for event in events:
                        if isinstance(event, DoneEvent):
                            await self._close_turn(user_id, chat_id, opened, event.result)
                        yield event
            except ModelError as error:
                await self._record_failure(user_id, chat_id, opened, error)
                raise

    def _check_message(self, message: str) -> None:
        if not message.strip():
            raise InvalidInput("message must not be empty", field="message")
        if len(message) > self._policy.max_message_chars:
            raise PayloadTooLarge(f"message is longer than {self._policy.max_message_chars} characters")

    def _run_args(self, user_id: str, chat_id: str, opened: _OpenTurn) -> _RunArgs:
        deps = TurnDeps(user_id, opened.built.config.name, chat_id, self._tool_backend)
        return {
            "history": to_model_messages(opened.window),
            "deps": deps,
            "timeout_seconds": self._policy.model_timeout_seconds,
            "max_requests": self._policy.max_model_requests,
        }

    async def _open_turn(self, user_id: str, built: BuiltAgent, chat_id: str, message: str) -> _OpenTurn:
        """Store the user's message (committed before the model runs) and read the window."""
        now = self._clock.now()
        config = built.config
        async with self._uow(user_id=user_id) as uow:
            chat = await uow.chats.claim_turn(user_id, chat_id, title=message[:TITLE_CHARS], now=now)
            if chat is None:
                await uow.chats.create_if_absent(
                    Chat(chat_id, user_id, config.name, None, 0, created_at=now, updated_at=now)
                )
                chat = await uow.chats.claim_turn(user_id, chat_id, title=message[:TITLE_CHARS], now=now)
            if chat is None:
                raise NotFound(f"chat '{chat_id}' not found")
            if chat.agent_name != config.name:
                raise Conflict(f"chat '{chat_id}' belongs to agent '{chat.agent_name}'")
            await uow.messages.add(user_id, chat_id, chat.turn_count, [NewMessage("user", message)], now=now)
            window = await uow.messages.window(
                user_id, chat_id, before_turn=chat.turn_count, turns=self._window_turns(built)
            )
            await uow.commit()
        return _OpenTurn(built, chat.turn_count, window, time.perf_counter())

    def _window_turns(self, built: BuiltAgent) -> int:
        configured = built.config.history_window
        return self._policy.history_window if configured is None else configured

    async def _close_turn(self, user_id: str, chat_id: str, opened: _OpenTurn, result: TurnResult) -> None:
        agent_name = opened.built.config.name
        usage = result.usage
        event = NewEvent(
            "turn.completed",
            user_id=user_id,
            agent_name=agent_name,
            chat_id=chat_id,
            data={
                "turn": opened.turn,
                "tool_calls": len(result.tool_calls),
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "requests": usage.requests,
            },
        )
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            await uow.messages.add(user_id, chat_id, opened.turn, result.new_messages, now=now)
            await uow.events.add(event, now=now)
            await uow.commit()
        self._listener.turn_completed(agent_name, result, time.perf_counter() - opened.started)

    async def _record_failure(self, user_id: str, chat_id: str, opened: _OpenTurn, error: ModelError) -> None:
        agent_name = opened.built.config.name
        code = "model_timeout" if isinstance(error, ModelTimeout) else "model_error"
        self._listener.turn_failed(agent_name, code, time.perf_counter() - opened.started)
        event = NewEvent(
            "turn.failed",
            user_id=user_id,
            agent_name=agent_name,
            chat_id=chat_id,
            data={"turn": opened.turn, "code": code},
        )
        async with self._uow(user_id=user_id) as uow:
            await uow.events.add(event, now=self._clock.now())
            await uow.commit()
