"""Streaming a turn: tokens, tool events, the final result, errors and early close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing

import pytest
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models.function import AgentInfo, FunctionModel

from chatserver.agents.factory import AgentFactory, assemble
from chatserver.agents.runner import stream_turn
from chatserver.agents.types import (
    BuiltAgent,
    DoneEvent,
    StreamEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from chatserver.domain import ToolCallRecord
from chatserver.errors import ModelError, ModelTimeout
from tests.unit.agents.helpers import Conversation, agent_config, build, deps


def events_of(
    built: BuiltAgent, prompt: str, *, timeout_seconds: float = 5.0
) -> AsyncGenerator[StreamEvent, None]:
    return stream_turn(
        built, prompt, history=[], deps=deps(), timeout_seconds=timeout_seconds, max_requests=5
    )


async def collect(built: BuiltAgent, prompt: str, *, timeout_seconds: float = 5.0) -> list[StreamEvent]:
    return [event async for event in events_of(built, prompt, timeout_seconds=timeout_seconds)]


class TestEvents:
    async def test_tokens_concatenate_to_the_final_output(self, factory: AgentFactory) -> None:
        events = await collect(build(factory), "the quick brown fox")
        tokens = [event.delta for event in events if isinstance(event, TokenEvent)]
        done = events[-1]
        assert isinstance(done, DoneEvent)
        assert tokens == ["echo: ", "the ", "quick ", "brown ", "fox"]
        assert "".join(tokens) == done.result.output == "echo: the quick brown fox"

    async def test_the_streamed_result_matches_the_plain_turn(self, factory: AgentFactory) -> None:
        built = build(factory, agent_config(tools=["current_time"]))
        done = (await collect(built, "/tool current_time {}"))[-1]
        plain = await Conversation(built).say("/tool current_time {}")
        assert isinstance(done, DoneEvent)
        assert done.result.output == plain.output
        assert done.result.tool_calls == plain.tool_calls
        assert [m.role for m in done.result.new_messages] == [m.role for m in plain.new_messages]

    async def test_tool_calls_and_results_are_streamed_before_the_answer(self, factory: AgentFactory) -> None:
        built = build(factory, agent_config(tools=["current_time"]))
        events = await collect(built, "/tool current_time {}")
        kinds = [type(event).__name__ for event in events]
        assert kinds[:2] == ["ToolCallEvent", "ToolResultEvent"]
        assert kinds[-1] == "DoneEvent" and set(kinds[2:-1]) == {"TokenEvent"}
        assert events[0] == ToolCallEvent("current_time", {})
        assert events[1] == ToolResultEvent("current_time", "2026-01-02T03:04:05+00:00")
        done = events[-1]
        assert isinstance(done, DoneEvent)
        assert done.result.tool_calls == [ToolCallRecord("current_time", {}, "2026-01-02T03:04:05+00:00")]

    async def test_the_done_event_reports_usage(self, factory: AgentFactory) -> None:
        done = (await collect(build(factory), "hi"))[-1]
        assert isinstance(done, DoneEvent)
        assert done.result.usage.requests == 1
        assert done.result.usage.output_tokens > 0


class TestFailures:
    async def test_a_provider_failure_mid_stream_is_a_model_error(self, factory: AgentFactory) -> None:
        with pytest.raises(ModelError, match="HTTP 500"):
            await collect(build(factory), "/fail")

    async def test_a_slow_stream_times_out(self, factory: AgentFactory) -> None:
        with pytest.raises(ModelTimeout, match=r"after 0\.05s"):
            await collect(build(factory), "/sleep 5000 late", timeout_seconds=0.05)

    async def test_cancelling_the_consumer_propagates_cancellation(self, factory: AgentFactory) -> None:
        task = asyncio.create_task(collect(build(factory), "/sleep 5000 never"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class SlowModel:
    """Streams one token, then works for a long time; records how it was stopped."""

    def __init__(self) -> None:
        self.working = asyncio.Event()
        self.observed: list[str] = []

    async def stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        try:
            yield "first "
            self.working.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.observed.append("cancelled")
                raise
            yield "never"
        finally:
            self.observed.append("closed")

    def built(self) -> BuiltAgent:
        return assemble(agent_config(), "", FunctionModel(stream_function=self.stream))


class TestEarlyClose:
    async def test_closing_the_stream_after_the_first_token_stops_the_model_promptly(self) -> None:
        model = SlowModel()
        events = events_of(model.built(), "go", timeout_seconds=60)
        async with aclosing(events):
            assert await anext(events) == TokenEvent("first ")
            started = time.monotonic()
        assert time.monotonic() - started < 1
        assert model.observed == ["closed"]

    async def test_a_consumer_cancelled_while_the_model_works_cancels_the_model_task(self) -> None:
        model = SlowModel()
        consumer = asyncio.create_task(collect(model.built(), "go", timeout_seconds=60))
        await asyncio.wait_for(model.working.wait(), timeout=1)
        started = time.monotonic()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert time.monotonic() - started < 1
        assert model.observed == ["cancelled", "closed"]
