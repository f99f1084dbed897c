"""Streamed and stateless turns on fakes: what is stored, what the model sees, how early stops end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel

from chatserver.agents.cache import AgentCache
from chatserver.agents.factory import AgentFactory
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import ToolRegistry
from chatserver.agents.types import (
    BuiltAgent,
    DoneEvent,
    StreamEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnDeps,
    TurnResult,
)
from chatserver.config import Settings
from chatserver.domain import AgentConfig, AuditEvent, NewMessage, ToolCall
from chatserver.errors import ChatBusy, Conflict, InvalidInput, ModelError, NotFound
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.chat import AgentNotFound, ChatService, TurnPolicy
from chatserver.services.turn_stream import TurnStream
from tests.unit.fakes import FakeChatLocks, FakeClock, FakeStore, FakeUnitOfWorkFactory

CANCEL_DEADLINE_SECONDS = 1.0


@dataclass
class RecordingListener:
    completed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def turn_completed(self, agent_name: str, result: TurnResult, seconds: float) -> None:
        self.completed.append((agent_name, result.output))

    def turn_failed(self, agent_name: str, code: str, seconds: float) -> None:
        self.failed.append((agent_name, code))


class HangingModel:
    """Streams one token, then waits until cancelled, recording how its run ended."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.stopped = asyncio.Event()

    async def stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        try:
            yield "partial "
            self.waiting.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
            yield "never sent"
        finally:
            self.stopped.set()


@dataclass
class Rig:
    store: FakeStore
    cache: AgentCache
    chat: ChatService
    listener: RecordingListener

    def hang(self, user_id: str = "u1", agent_name: str = "assistant") -> HangingModel:
        """Make the (user, agent) pair's cached agent a model that never finishes."""
        model = HangingModel()
        agent = Agent(FunctionModel(stream_function=model.stream), output_type=str, deps_type=TurnDeps)
        config = self.store.agents[agent_name]
        self.cache.put((user_id, agent_name), BuiltAgent(config, config.system_prompt, agent))
        return model

    def stored(self) -> list[tuple[str, str]]:
        return [(m.role, m.content) for m in self.store.messages]

    def turn_events(self) -> list[AuditEvent]:
        return [e for e in self.store.events if e.type.startswith("turn.")]

    def events(self) -> list[str]:
        """The turn's audit trail (other services audit their own steps, e.g. agent builds)."""
        return [e.type for e in self.turn_events()]


def rig_with(*, wait_when_busy: bool) -> Rig:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    uow = FakeUnitOfWorkFactory()
    cache = AgentCache(10, 900, clock)
    loader = AgentLoader(uow, AgentFactory(ModelRegistry(settings), ToolRegistry(clock)), cache)
    policy = TurnPolicy(
        history_window=50,
        max_message_chars=100,
        model_timeout_seconds=5.0,
        max_model_requests=5,
        wait_when_busy=wait_when_busy,
    )
    listener = RecordingListener()
    chat = ChatService(uow, loader, FakeChatLocks(), clock, policy, listener=listener)
    uow.store.agents["assistant"] = AgentConfig("assistant", "echo", "Base prompt.", tools=("current_time",))
    return Rig(uow.store, cache, chat, listener)


@pytest.fixture
def rig() -> Rig:
    return rig_with(wait_when_busy=False)


async def collect(stream: TurnStream) -> list[StreamEvent]:
    return [event async for event in stream]


class TestStreamedTurns:
    async def test_tokens_concatenate_to_the_stored_answer(self, rig: Rig) -> None:
        events = await collect(await rig.chat.stream_chat("u1", "assistant", "c1", "one two three"))
        tokens = [e.delta for e in events if isinstance(e, TokenEvent)]
        done = events[-1]
        assert isinstance(done, DoneEvent)
        assert tokens == ["echo: ", "one ", "two ", "three"]
        assert "".join(tokens) == done.result.output
        assert rig.stored() == [("user", "one two three"), ("assistant", "echo: one two three")]
        assert rig.events() == ["turn.completed"]
        assert rig.listener.completed == [("assistant", "echo: one two three")]

    async def test_the_answer_is_stored_before_the_done_event_is_handed_out(self, rig: Rig) -> None:
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "hi")
        async for event in stream:
            if isinstance(event, DoneEvent):
                assert rig.stored() == [("user", "hi"), ("assistant", "echo: hi")]

    async def test_tool_events_come_before_the_answer_and_are_stored(self, rig: Rig) -> None:
        events = await collect(await rig.chat.stream_chat("u1", "assistant", "c1", "/tool current_time {}"))
        assert isinstance(events[0], ToolCallEvent) and events[0].name == "current_time"
        assert isinstance(events[1], ToolResultEvent) and str(events[1].result).endswith("+00:00")
        assert [role for role, _ in rig.stored()] == ["user", "assistant", "tool", "assistant"]

    async def test_the_user_message_is_stored_before_the_first_event(self, rig: Rig) -> None:
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "early")
        assert rig.stored() == [("user", "early")]
        await collect(stream)

    async def test_a_model_failure_raises_mid_stream_and_keeps_the_users_message(self, rig: Rig) -> None:
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "/fail")
        with pytest.raises(ModelError):
            await collect(stream)
        assert rig.stored() == [("user", "/fail")]
        assert rig.events() == ["turn.failed"]
        assert rig.listener.failed == [("assistant", "model_error")]
        follow_up = await rig.chat.process_chat("u1", "assistant", "c1", "/recall")
        assert follow_up.response == "recall: /fail"


class TestErrorsBeforeTheStream:
    async def test_an_unknown_agent_raises_before_anything_is_stored(self, rig: Rig) -> None:
        with pytest.raises(AgentNotFound) as raised:
            await rig.chat.stream_chat("u1", "ghost", "c1", "hi")
        assert isinstance(raised.value, NotFound)
        assert rig.store.chats == {} and rig.stored() == []

    async def test_another_users_chat_raises_not_found_and_stores_nothing(self, rig: Rig) -> None:
        await collect(await rig.chat.stream_chat("u1", "assistant", "c1", "mine"))
        with pytest.raises(NotFound):
            await rig.chat.stream_chat("u2", "assistant", "c1", "let me in")
        assert rig.stored() == [("user", "mine"), ("assistant", "echo: mine")]

    async def test_a_chat_of_another_agent_is_a_conflict(self, rig: Rig) -> None:
        rig.store.agents["other"] = AgentConfig("other", "echo", "x")
        await collect(await rig.chat.stream_chat("u1", "assistant", "c1", "hi"))
        with pytest.raises(Conflict):
            await rig.chat.stream_chat("u1", "other", "c1", "hi")

    async def test_an_empty_message_is_refused(self, rig: Rig) -> None:
        with pytest.raises(InvalidInput):
            await rig.chat.stream_chat("u1", "assistant", "c1", "  ")
        assert rig.stored() == []

    async def test_a_busy_chat_is_refused_under_the_reject_policy(self, rig: Rig) -> None:
        first = await rig.chat.stream_chat("u1", "assistant", "c1", "first")
        with pytest.raises(ChatBusy):
            await rig.chat.stream_chat("u1", "assistant", "c1", "second")
        with pytest.raises(ChatBusy):
            await rig.chat.process_chat("u1", "assistant", "c1", "third")
        await first.aclose()
        assert rig.stored() == [("user", "first")]
        assert (await rig.chat.process_chat("u1", "assistant", "c1", "fourth")).response == "echo: fourth"

    async def test_a_busy_chat_waits_its_turn_under_the_wait_policy(self) -> None:
        rig = rig_with(wait_when_busy=True)
        first = await rig.chat.stream_chat("u1", "assistant", "c1", "/sleep 50 first")
        second = asyncio.create_task(rig.chat.process_chat("u1", "assistant", "c1", "second"))
        await asyncio.sleep(0.01)
        assert not second.done()
        await collect(first)
        assert (await second).response == "echo: second"
        assert rig.stored() == [
            ("user", "/sleep 50 first"),
            ("assistant", "echo: first"),
            ("user", "second"),
            ("assistant", "echo: second"),
        ]


class TestCancellation:
    async def assert_cancelled_cleanly(
        self, rig: Rig, model: HangingModel, consumer: asyncio.Future[Any]
    ) -> None:
        await asyncio.wait_for(model.cancelled.wait(), CANCEL_DEADLINE_SECONDS)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(consumer, 5)
        await self.assert_released(rig)

    async def assert_released(self, rig: Rig) -> None:
        """No task left running, no partial answer stored, the cancellation audited, the chat free."""
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()] == []
        assert rig.stored() == [("user", "hello")]
        assert rig.events() == ["turn.cancelled"]
        assert rig.turn_events()[0].data == {"turn": 1}
        assert rig.listener.failed == [("assistant", "cancelled")]
        # The chat is free again (reject policy: a held lock would raise ChatBusy).
        rig.cache.invalidate("u1", "assistant")
        assert (await rig.chat.process_chat("u1", "assistant", "c1", "/recall")).response == "recall: hello"

    async def test_cancelling_the_consumer_task_cancels_the_model_within_a_second(self, rig: Rig) -> None:
        model = rig.hang()
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "hello")
        received: list[StreamEvent] = []

        async def consume() -> None:
            async for event in stream:
                received.append(event)

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(model.waiting.wait(), 5)
        consumer.cancel()
        await self.assert_cancelled_cleanly(rig, model, consumer)
        assert received == [TokenEvent("partial ")]

    async def test_a_cancelled_anyio_scope_still_records_the_cancellation(self, rig: Rig) -> None:
        """Starlette stops a stream by cancelling an anyio scope, which re-cancels every await."""
        model = rig.hang()
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "hello")

        async def consume() -> None:
            async for _ in stream:
                pass

        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            await asyncio.wait_for(model.waiting.wait(), 5)
            group.cancel_scope.cancel()
            cancelled_at = time.monotonic()
        assert model.cancelled.is_set()
        assert time.monotonic() - cancelled_at < CANCEL_DEADLINE_SECONDS
        await self.assert_released(rig)

    async def test_closing_the_stream_between_events_stops_the_model_before_returning(self, rig: Rig) -> None:
        """What the HTTP layer does when a client leaves while the server is sending."""
        model = rig.hang()
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "hello")
        assert await anext(stream) == TokenEvent("partial ")
        await stream.aclose()
        assert model.stopped.is_set()
        await self.assert_released(rig)

    async def test_closing_the_stream_while_the_model_waits_cancels_it(self, rig: Rig) -> None:
        model = rig.hang()
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "hello")
        assert await anext(stream) == TokenEvent("partial ")
        pending = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(model.waiting.wait(), 5)
        pending.cancel()
        await self.assert_cancelled_cleanly(rig, model, pending)
        await stream.aclose()

    async def test_closing_a_stream_that_was_never_read_releases_the_chat(self, rig: Rig) -> None:
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "hello")
        await stream.aclose()
        await stream.aclose()
        assert rig.stored() == [("user", "hello")]
        assert rig.events() == ["turn.cancelled"]
        reply = await rig.chat.process_chat("u1", "assistant", "c1", "again")
        assert reply.response == "echo: again"

    async def test_closing_after_the_end_records_nothing_more(self, rig: Rig) -> None:
        stream = await rig.chat.stream_chat("u1", "assistant", "c1", "hi")
        await collect(stream)
        await stream.aclose()
        assert rig.events() == ["turn.completed"]


class TestStatelessTurns:
    history = (
        NewMessage("user", "first question"),
        NewMessage("assistant", "first answer"),
        NewMessage("user", "second question"),
        NewMessage("assistant", "second answer"),
    )

    async def test_the_callers_history_is_the_context_and_nothing_is_stored(self, rig: Rig) -> None:
        result = await rig.chat.complete("u1", "assistant", "/recall", history=self.history)
        assert result.output == "recall: first question | second question"
        assert rig.store.chats == {} and rig.stored() == []
        [event] = rig.turn_events()
        assert (event.type, event.chat_id, event.data["stateless"]) == ("turn.completed", None, True)

    async def test_instructions_are_appended_after_the_agents_prompt(self, rig: Rig) -> None:
        result = await rig.chat.complete("u1", "assistant", "/system", instructions="Answer briefly.")
        assert result.output == "Base prompt.\n\nAnswer briefly."

    async def test_tool_calls_in_the_history_are_paired_or_dropped(self, rig: Rig) -> None:
        history = (
            NewMessage("user", "what time is it"),
            NewMessage("assistant", "", tool_calls=(ToolCall("call-1", "current_time", {}),)),
            NewMessage("tool", "noon", tool_call_id="call-1", tool_name="current_time"),
            NewMessage("assistant", "", tool_calls=(ToolCall("orphan", "current_time", {}),)),
            NewMessage("assistant", "it is noon"),
        )
        result = await rig.chat.complete("u1", "assistant", "/recall", history=history)
        assert result.output == "recall: what time is it"

    async def test_a_streamed_stateless_turn_stores_nothing(self, rig: Rig) -> None:
        events = await collect(
            await rig.chat.stream_complete("u1", "assistant", "/recall", history=self.history)
        )
        done = events[-1]
        assert isinstance(done, DoneEvent)
        assert done.result.output == "recall: first question | second question"
        assert "".join(e.delta for e in events if isinstance(e, TokenEvent)) == done.result.output
        assert rig.store.chats == {} and rig.stored() == []
        assert rig.events() == ["turn.completed"]

    async def test_a_cancelled_stateless_stream_cancels_the_model(self, rig: Rig) -> None:
        model = rig.hang()
        stream = await rig.chat.stream_complete("u1", "assistant", "hello")
        assert await anext(stream) == TokenEvent("partial ")
        await stream.aclose()
        assert model.stopped.is_set()
        assert rig.stored() == [] and rig.events() == ["turn.cancelled"]

    async def test_stateless_turns_check_the_agent_and_the_message(self, rig: Rig) -> None:
        with pytest.raises(AgentNotFound):
            await rig.chat.complete("u1", "ghost", "hi")
        with pytest.raises(InvalidInput):
            await rig.chat.stream_complete("u1", "assistant", "")
        with pytest.raises(ModelError):
            await rig.chat.complete("u1", "assistant", "/fail")
        assert rig.events() == ["turn.failed"]
