"""A run's log read back as pydantic-ai's agent stream events, and rendered by its UI streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from pydantic_ai.exceptions import RunCancelled
from pydantic_ai.messages import (
    FunctionToolCallEvent,
    FunctionToolResultEvent,
    PartDeltaEvent,
    PartEndEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
)

from chatserver.api.agent_events import NO_RESULT, AgentEvents, RunFailed, encoded
from chatserver.api.ui_stream import UIMessageStream
from chatserver.domain import RunEvent
from chatserver.errors import DatabaseUnavailable

DONE = {"run_id": "r1", "chat_id": "c1", "response": "hi there", "model": "echo", "usage": {}}


async def log(*events: tuple[str, dict[str, Any]], fail: Exception | None = None) -> AsyncGenerator[RunEvent]:
    for number, (kind, data) in enumerate(events, start=1):
        yield RunEvent(str(number), kind, data)
    if fail is not None:
        raise fail


async def native(events: AgentEvents) -> list[Any]:
    return [event async for event in events.events()]


async def test_tokens_are_one_text_part_started_extended_and_ended_before_done() -> None:
    tokens = [("token", {"delta": "hi "}), ("token", {"delta": "there"})]
    events = AgentEvents("r1", "c1", log(*tokens, ("done", DONE)))
    start, delta, end = await native(events)
    assert isinstance(start, PartStartEvent) and start.part == TextPart("hi ")
    assert isinstance(delta, PartDeltaEvent) and delta.delta == TextPartDelta("there")
    assert isinstance(end, PartEndEvent) and end.part == TextPart("hi there")
    assert events.done == DONE


async def test_a_response_of_calls_is_announced_once_it_ends_and_each_result_finds_its_call() -> None:
    calls = [("tool_call", {"name": "a", "args": {"x": 1}}), ("tool_call", {"name": "b", "args": {}})]
    results = [("tool_result", {"name": "a", "result": 1}), ("tool_result", {"name": "b", "result": 2})]
    received = await native(AgentEvents("r1", "c1", log(*calls, *results, ("done", DONE))))
    kinds = [type(event).__name__ for event in received]
    assert kinds[:4] == ["PartStartEvent", "PartEndEvent", "PartStartEvent", "PartEndEvent"]
    assert kinds[4:8] == ["FunctionToolCallEvent", "FunctionToolCallEvent"] + ["FunctionToolResultEvent"] * 2
    parts = [event.part for event in received[4:8]]
    assert [part.tool_call_id for part in parts] == ["r1-1", "r1-2", "r1-1", "r1-2"]
    assert [part.content for part in parts[2:]] == [1, 2]


async def test_a_call_left_without_a_result_is_closed_as_failed_when_the_next_response_starts() -> None:
    events = log(
        ("tool_call", {"name": "a", "args": {}}),
        ("tool_call", {"name": "b", "args": {}}),
        ("tool_result", {"name": "b", "result": "ok"}),
        ("token", {"delta": "after"}),
        ("done", DONE),
    )
    received = await native(AgentEvents("r1", "c1", events))
    results = [event.part for event in received if isinstance(event, FunctionToolResultEvent)]
    assert [(part.tool_name, part.outcome, part.content) for part in results] == [
        ("b", "success", "ok"),
        ("a", "failed", NO_RESULT),
    ]
    assert isinstance(received[-2], PartStartEvent) and received[-2].index == 0


async def test_a_done_without_tokens_gives_the_stored_answer_as_text() -> None:
    received = await native(AgentEvents("r1", "c1", log(("done", DONE))))
    assert [type(event).__name__ for event in received] == ["PartStartEvent", "PartEndEvent"]
    assert received[1].part == TextPart("hi there")


async def test_an_error_raises_run_failed_and_a_cancel_run_cancelled_after_closing_what_is_open() -> None:
    error = {"detail": "boom", "code": "model_error"}
    failed = AgentEvents("r1", "c1", log(("token", {"delta": "x"}), ("error", error)))
    with pytest.raises(RunFailed) as raised:
        await native(failed)
    assert (raised.value.detail, raised.value.code) == ("boom", "model_error")
    cancelled = AgentEvents("r1", "c1", log(("tool_call", {"name": "a", "args": {}}), ("cancelled", {})))
    seen: list[Any] = []
    with pytest.raises(RunCancelled):
        async for event in cancelled.events():
            seen.append(event)
    assert isinstance(seen[-1], FunctionToolCallEvent) and isinstance(seen[0].part, ToolCallPart)


async def test_a_failure_reading_the_log_is_a_run_failure_that_names_no_internals() -> None:
    unavailable = AgentEvents("r1", "c1", log(fail=DatabaseUnavailable("the database is unavailable")))
    with pytest.raises(RunFailed) as raised:
        await native(unavailable)
    assert raised.value.code == "database_unavailable"
    broken = AgentEvents("r1", "c1", log(fail=KeyError("secret internals")))
    with pytest.raises(RunFailed) as raised:
        await native(broken)
    assert (raised.value.detail, raised.value.code) == ("internal server error", "internal_error")


async def test_the_ui_message_stream_of_a_failed_log_read_is_an_error_chunk_then_done() -> None:
    events = AgentEvents("r1", "c1", log(("token", {"delta": "x"}), fail=KeyError("secret internals")))
    stream = UIMessageStream(sdk_version=6, server_message_id="r1", agent_events=events)
    lines = [line async for line in encoded(stream, events)]
    assert '"errorText":"internal server error"' in "".join(lines)
    assert "secret" not in "".join(lines) and lines[-1] == "data: [DONE]\n\n"
