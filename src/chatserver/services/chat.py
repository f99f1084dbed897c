"""ChatService: one chat turn, plain or streamed, kept in a chat or stateless.

A turn holds the chat's lock from storing the user's message to storing the answer, so turns on
one chat never interleave. It holds no database connection while the model runs: the user's
message and the window are read in one short transaction, the answer written in another.

A streamed turn is taken before its first event (lock held, user's message stored), so a busy
chat, an unknown agent or another user's chat is still an error with a status code. Closing the
stream early (the client went away) cancels the model run and awaits it; the partial answer is
not stored, and a ``turn.cancelled`` event is recorded.

Stateless turns (the OpenAI-compatible API without a chat id) take their whole context from the
caller and store no chat and no messages; like every turn they leave an audit event (counts only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

import anyio
from pydantic_ai.messages import ModelMessage

from chatserver.agents.history import to_model_messages
from chatserver.agents.runner import run_turn, stream_turn
from chatserver.agents.types import BuiltAgent, DoneEvent, StreamEvent, ToolBackend, TurnDeps, TurnResult
from chatserver.clock import Clock
from chatserver.domain import Chat, NewEvent, NewMessage, ToolCallRecord, TurnUsage
from chatserver.errors import Conflict, InvalidInput, ModelError, ModelTimeout, NotFound, PayloadTooLarge
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.turn_stream import TurnStream as TurnStream  # re-exported: callers type against it
from chatserver.storage.protocols import ChatLocks, ClaimedTurn, UnitOfWorkFactory

TITLE_CHARS = 80
CANCEL_RECORD_SECONDS = 5.0
"""How long a cancelled turn may spend recording its audit event, shielded from the cancellation."""

log = logging.getLogger("chatserver.chat")


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


class AgentNotFound(NotFound):
    """The requested agent does not exist (a 404 like any ``NotFound``; the OpenAI API names it)."""


class TurnListener(Protocol):
    """Observes finished turns (metrics); must not raise or block.

    A streamed turn the client abandoned is reported as failed with code ``cancelled``.
    """

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
    instructions: str | None


@dataclass(frozen=True, slots=True)
class _OpenTurn:
    built: BuiltAgent
    chat_id: str | None
    """``None`` for a stateless turn: nothing to store but the audit event."""
    turn: int
    history: list[ModelMessage]
    instructions: str | None
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
        built = await self._resolve(user_id, agent_name)
        async with self._locks.hold(chat_id, wait=self._policy.wait_when_busy):
            opened = await self._open_turn(user_id, built, chat_id, message)
            result = await self._run(user_id, opened, message)
        return ChatReply(chat_id, result.output, result.tool_calls, result.usage)

    async def stream_chat(self, user_id: str, agent_name: str, chat_id: str, message: str) -> TurnStream:
        """Validate, resolve the agent, take the chat's turn and store the message, then stream.

        Everything up to the model run happens before this returns, so its errors (including
        ``ChatBusy`` under the reject policy) reach the caller before any event is sent.
        """
        self._check_message(message)
        built = await self._resolve(user_id, agent_name)
        return await TurnStream.start(self._chat_stream(user_id, built, chat_id, message))

    async def complete(
        self,
        user_id: str,
        agent_name: str,
        message: str,
        *,
        history: Sequence[NewMessage] = (),
        instructions: str | None = None,
    ) -> TurnResult:
        """A stateless turn: ``history`` and ``instructions`` (after the agent's prompt) from the caller."""
        self._check_message(message)
        opened = self._stateless(await self._resolve(user_id, agent_name), history, instructions)
        return await self._run(user_id, opened, message)

    async def stream_complete(
        self,
        user_id: str,
        agent_name: str,
        message: str,
        *,
        history: Sequence[NewMessage] = (),
        instructions: str | None = None,
    ) -> TurnStream:
        """``complete`` as a stream of events."""
        self._check_message(message)
        opened = self._stateless(await self._resolve(user_id, agent_name), history, instructions)
        return await TurnStream.start(self._events(user_id, opened, message))

    async def _run(self, user_id: str, opened: _OpenTurn, message: str) -> TurnResult:
        try:
            result = await run_turn(opened.built, message, **self._run_args(user_id, opened))
        except ModelError as error:
            await self._record_failure(user_id, opened, error)
            raise
        await self._close_turn(user_id, opened, result)
        return result

    async def _chat_stream(
        self, user_id: str, built: BuiltAgent, chat_id: str, message: str
    ) -> AsyncGenerator[StreamEvent | None, None]:
        async with self._locks.hold(chat_id, wait=self._policy.wait_when_busy):
            opened = await self._open_turn(user_id, built, chat_id, message)
            # aclosing: closing this stream must close the model's now, not at garbage collection.
            async with aclosing(self._events(user_id, opened, message)) as events:
                async for event in events:
                    yield event

    async def _events(
        self, user_id: str, opened: _OpenTurn, message: str
    ) -> AsyncGenerator[StreamEvent | None, None]:
        """The start marker, then the turn's events; stopped before the end, the turn is cancelled."""
        finished = False
        try:
            yield None
            async with aclosing(stream_turn(opened.built, message, **self._run_args(user_id, opened))) as run:
                async for event in run:
                    if isinstance(event, DoneEvent):
                        await self._close_turn(user_id, opened, event.result)
                        finished = True
                    yield event
        except ModelError as error:
            await self._record_failure(user_id, opened, error)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            if not finished:
                await self._record_cancelled(user_id, opened)
            raise

    async def _resolve(self, user_id: str, agent_name: str) -> BuiltAgent:
        try:
            return await self._agents.get(user_id, agent_name)
        except NotFound as error:
            raise AgentNotFound(error.detail) from error

    def _check_message(self, message: str) -> None:
        if not message.strip():
            raise InvalidInput("message must not be empty", field="message")
        if len(message) > self._policy.max_message_chars:
            raise PayloadTooLarge(f"message is longer than {self._policy.max_message_chars} characters")

    def _run_args(self, user_id: str, opened: _OpenTurn) -> _RunArgs:
        deps = TurnDeps(user_id, opened.built.config.name, opened.chat_id, self._tool_backend)
        return {
            "history": opened.history,
            "deps": deps,
            "timeout_seconds": self._policy.model_timeout_seconds,
            "max_requests": self._policy.max_model_requests,
            "instructions": opened.instructions,
        }

    def _stateless(
        self, built: BuiltAgent, history: Sequence[NewMessage], instructions: str | None
    ) -> _OpenTurn:
        return _OpenTurn(
            built, None, 0, to_model_messages(history), instructions or None, time.perf_counter()
        )

    async def _open_turn(self, user_id: str, built: BuiltAgent, chat_id: str, message: str) -> _OpenTurn:
        """Store the user's message (committed before the model runs) and read the window."""
        now = self._clock.now()
        config = built.config
        title, window_turns = message[:TITLE_CHARS], self._window_turns(built)
        async with self._uow(user_id=user_id) as uow:

            async def claim() -> ClaimedTurn | None:
                return await uow.turns.open(
                    user_id, chat_id, config.name, message, title=title, now=now, window_turns=window_turns
                )

            claimed = await claim()
            if claimed is None:
                await uow.chats.create_if_absent(
                    Chat(chat_id, user_id, config.name, None, 0, created_at=now, updated_at=now)
                )
                claimed = await claim()
            if claimed is None:
                raise NotFound(f"chat '{chat_id}' not found")
            if claimed.chat.agent_name != config.name:
                raise Conflict(f"chat '{chat_id}' belongs to agent '{claimed.chat.agent_name}'")
            await uow.commit()
        history = to_model_messages(claimed.window)
        return _OpenTurn(built, chat_id, claimed.chat.turn_count, history, None, time.perf_counter())

    def _window_turns(self, built: BuiltAgent) -> int:
        configured = built.config.history_window
        return self._policy.history_window if configured is None else configured

    async def _close_turn(self, user_id: str, opened: _OpenTurn, result: TurnResult) -> None:
        usage = result.usage
        event = _event(
            "turn.completed",
            user_id,
            opened,
            tool_calls=len(result.tool_calls),
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            requests=usage.requests,
        )
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            await uow.turns.close(user_id, opened.chat_id, opened.turn, result.new_messages, event, now=now)
            await uow.commit()
        self._listener.turn_completed(opened.built.config.name, result, _seconds_since(opened))

    async def _record_failure(self, user_id: str, opened: _OpenTurn, error: ModelError) -> None:
        code = "model_timeout" if isinstance(error, ModelTimeout) else "model_error"
        self._listener.turn_failed(opened.built.config.name, code, _seconds_since(opened))
        await self._add_event(_event("turn.failed", user_id, opened, code=code))

    async def _record_cancelled(self, user_id: str, opened: _OpenTurn) -> None:
        """Best effort, shielded: the cancelled task must still leave its audit event, briefly."""
        self._listener.turn_failed(opened.built.config.name, "cancelled", _seconds_since(opened))
        with anyio.move_on_after(CANCEL_RECORD_SECONDS, shield=True):
            try:
                await self._add_event(_event("turn.cancelled", user_id, opened))
            except Exception:
                log.warning("could not record a cancelled turn", exc_info=True)

    async def _add_event(self, event: NewEvent) -> None:
        async with self._uow(user_id=event.user_id) as uow:
            await uow.events.add(event, now=self._clock.now())
            await uow.commit()


def _event(kind: str, user_id: str, opened: _OpenTurn, **data: Any) -> NewEvent:
    where: dict[str, Any] = {"turn": opened.turn} if opened.chat_id is not None else {"stateless": True}
    return NewEvent(
        kind,
        user_id=user_id,
        agent_name=opened.built.config.name,
        chat_id=opened.chat_id,
        data={**where, **data},
    )


def _seconds_since(opened: _OpenTurn) -> float:
    return time.perf_counter() - opened.started
