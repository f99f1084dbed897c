"""Stored messages <-> model messages: round trips, tool pairing and orphan dropping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.exceptions import ToolFailed
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from chatserver.agents.echo import EchoModel
from chatserver.agents.history import from_new_messages, to_model_messages
from chatserver.agents.types import TurnDeps
from chatserver.domain import NewMessage, ToolCall, ToolCallRecord
from tests.unit.agents.helpers import deps, stored


def visible(messages: list[ModelMessage]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """What a provider sees of a conversation (no timestamps, ids of runs or usage)."""
    seen: list[tuple[str, list[tuple[Any, ...]]]] = []
    for message in messages:
        parts: list[tuple[Any, ...]] = []
        for part in message.parts:
            if isinstance(part, UserPromptPart):
                parts.append(("user", part.content))
            elif isinstance(part, TextPart):
                parts.append(("text", part.content))
            elif isinstance(part, ToolCallPart):
                parts.append(("call", part.tool_name, part.args_as_dict(), part.tool_call_id))
            elif isinstance(part, ToolReturnPart):
                parts.append(("return", part.tool_name, part.model_response_str(), part.tool_call_id))
        seen.append((message.kind, parts))
    return _merge_requests(seen)


def _merge_requests(seen: list[tuple[str, list[tuple[Any, ...]]]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """pydantic-ai sends consecutive requests as one, so compare them merged."""
    merged: list[tuple[str, list[tuple[Any, ...]]]] = []
    for kind, parts in seen:
        if merged and kind == "request" and merged[-1][0] == "request":
            merged[-1][1].extend(parts)
        else:
            merged.append((kind, list(parts)))
    return merged


def answered(messages: list[ModelMessage]) -> bool:
    return isinstance(messages[-1], ModelRequest) and any(
        isinstance(part, ToolReturnPart) for part in messages[-1].parts
    )


def stats(a: int, b: int) -> dict[str, int]:
    """Sum and product."""
    return {"sum": a + b, "product": a * b}


def greet(name: str) -> str:
    """Greet someone."""
    return f"hello {name}"


async def run_and_store(
    agent: Agent[TurnDeps, str], prompts: list[str]
) -> tuple[list[NewMessage], list[ModelMessage]]:
    """Run turns like the chat service does; return what was stored and what the last run saw."""
    kept: list[NewMessage] = []
    all_messages: list[ModelMessage] = []
    for prompt in prompts:
        history = to_model_messages(stored(kept))
        kept.append(NewMessage("user", prompt))
        result = await agent.run(prompt, message_history=history, deps=deps())
        new, _, output = from_new_messages(result.new_messages(), result.output)
        assert output == result.output
        kept.extend(new)
        all_messages = result.all_messages()
    return kept, all_messages


class TestRoundTrips:
    async def test_an_echo_conversation_with_tools_reloads_as_the_model_saw_it(self) -> None:
        agent = Agent(EchoModel(), tools=[stats, greet], deps_type=TurnDeps)
        kept, seen = await run_and_store(
            agent, ["hi", '/tool stats {"a": 2, "b": 3}', '/tool greet {"name": "Ada"}']
        )
        assert visible(to_model_messages(stored(kept))) == visible(seen)

    async def test_text_with_parallel_tool_calls_reloads_as_the_model_saw_it(self) -> None:
        async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            if answered(messages):
                return ModelResponse(parts=[TextPart("both done")])
            return ModelResponse(
                parts=[
                    TextPart("Working on it."),
                    ToolCallPart("stats", {"a": 1, "b": 2}, "c1"),
                    ToolCallPart("greet", {"name": "Bo"}, "c2"),
                ]
            )

        agent = Agent(FunctionModel(model), tools=[stats, greet], deps_type=TurnDeps)
        kept, seen = await run_and_store(agent, ["go"])
        reloaded = to_model_messages(stored(kept))
        assert visible(reloaded) == visible(seen)
        tool_requests = [
            m for m in reloaded if isinstance(m, ModelRequest) and isinstance(m.parts[0], ToolReturnPart)
        ]
        assert len(tool_requests) == 1 and len(tool_requests[0].parts) == 2


class TestFromNewMessages:
    async def test_the_user_prompt_is_not_stored_again(self) -> None:
        result = await Agent(EchoModel(), deps_type=TurnDeps).run("hi", deps=deps())
        new, records, output = from_new_messages(result.new_messages(), result.output)
        assert new == [NewMessage("assistant", "echo: hi")]
        assert records == [] and output == "echo: hi"

    async def test_tool_results_are_stored_as_text_and_recorded_as_data(self) -> None:
        agent = Agent(EchoModel(), tools=[stats], deps_type=TurnDeps)
        result = await agent.run('/tool stats {"a": 2, "b": 3}', deps=deps())
        new, records, _ = from_new_messages(result.new_messages(), result.output)
        assert [message.role for message in new] == ["assistant", "tool", "assistant"]
        assert new[1].content == '{"sum":5,"product":6}'
        assert new[1].tool_call_id == new[0].tool_calls[0].id and new[1].tool_name == "stats"
        assert records == [ToolCallRecord("stats", {"a": 2, "b": 3}, {"sum": 5, "product": 6})]

    async def test_a_retried_call_is_neither_stored_nor_recorded(self) -> None:
        async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            steps = sum(isinstance(message, ModelResponse) for message in messages)
            if steps == 0:
                return ModelResponse(parts=[ToolCallPart("stats", {"a": "x", "b": 1}, "bad")])
            if steps == 1:
                return ModelResponse(parts=[ToolCallPart("stats", {"a": 1, "b": 1}, "good")])
            return ModelResponse(parts=[TextPart("ok")])

        result = await Agent(FunctionModel(model), tools=[stats], deps_type=TurnDeps).run("go", deps=deps())
        new, records, output = from_new_messages(result.new_messages(), result.output)
        assert [(m.role, [c.id for c in m.tool_calls], m.tool_call_id) for m in new] == [
            ("assistant", ["good"], None),
            ("tool", [], "good"),
            ("assistant", [], None),
        ]
        assert records == [ToolCallRecord("stats", {"a": 1, "b": 1}, {"sum": 2, "product": 1})]
        assert output == "ok"

    async def test_a_failed_call_is_stored_with_its_error(self) -> None:
        def lookup(key: str) -> str:
            """Look a key up."""
            raise ToolFailed(f"no such key: {key}")

        result = await Agent(EchoModel(), tools=[lookup], deps_type=TurnDeps).run(
            '/tool lookup {"key": "k"}', deps=deps()
        )
        new, records, output = from_new_messages(result.new_messages(), result.output)
        assert new[1].role == "tool" and "no such key: k" in new[1].content
        assert records == [ToolCallRecord("lookup", {"key": "k"}, {"error": "no such key: k"})]
        assert output.startswith("tool lookup failed:")


def assistant_call(call_id: str, *, text: str = "") -> NewMessage:
    return NewMessage("assistant", text, tool_calls=(ToolCall(call_id, "stats", {"a": 1, "b": 1}),))


def tool_result(call_id: str) -> NewMessage:
    return NewMessage("tool", "2", tool_call_id=call_id, tool_name="stats")


class TestToModelMessages:
    def test_roles_map_to_requests_and_responses(self) -> None:
        messages = to_model_messages(
            stored([NewMessage("user", "q"), assistant_call("c1", text="checking"), tool_result("c1")])
        )
        assert visible(messages) == [
            ("request", [("user", "q")]),
            ("response", [("text", "checking"), ("call", "stats", {"a": 1, "b": 1}, "c1")]),
            ("request", [("return", "stats", "2", "c1")]),
        ]

    def test_consecutive_tool_messages_share_one_request(self) -> None:
        both = NewMessage(
            "assistant",
            "",
            tool_calls=(ToolCall("c1", "stats", {}), ToolCall("c2", "stats", {})),
        )
        messages = to_model_messages(
            stored([NewMessage("user", "q"), both, tool_result("c1"), tool_result("c2")])
        )
        assert len(messages) == 3
        assert [part.tool_call_id for part in messages[2].parts if isinstance(part, ToolReturnPart)] == [
            "c1",
            "c2",
        ]

    def test_a_leading_tool_result_whose_call_was_cut_off_is_dropped(self) -> None:
        messages = to_model_messages(
            stored([tool_result("c0"), NewMessage("assistant", "answer"), NewMessage("user", "next")])
        )
        assert visible(messages) == [("response", [("text", "answer")]), ("request", [("user", "next")])]

    def test_a_tool_call_without_a_stored_result_is_dropped(self) -> None:
        messages = to_model_messages(stored([NewMessage("user", "q"), assistant_call("c1")]))
        assert visible(messages) == [("request", [("user", "q")])]

    def test_the_text_of_an_assistant_message_survives_its_orphan_call(self) -> None:
        messages = to_model_messages(
            stored([NewMessage("user", "q"), assistant_call("c1", text="let me see")])
        )
        assert visible(messages) == [("request", [("user", "q")]), ("response", [("text", "let me see")])]

    def test_a_result_stored_before_its_call_does_not_count(self) -> None:
        messages = to_model_messages(
            stored([tool_result("c1"), assistant_call("c1"), NewMessage("user", "q")])
        )
        assert visible(messages) == [("request", [("user", "q")])]

    def test_no_unanswered_call_survives_anywhere_in_the_window(self) -> None:
        history = to_model_messages(
            stored([tool_result("c0"), NewMessage("user", "q"), assistant_call("c1")])
        )
        assert all(not isinstance(part, ToolCallPart) for m in history for part in m.parts)

    async def test_a_cut_window_still_runs(self) -> None:
        window = stored(
            [tool_result("c0"), NewMessage("assistant", "a"), NewMessage("user", "b"), assistant_call("c9")]
        )
        agent = Agent(EchoModel(), deps_type=TurnDeps)
        result = await agent.run("/recall", message_history=to_model_messages(window), deps=deps())
        assert result.output == "recall: b"


def test_decoded_history_carries_each_messages_stored_time_and_now_for_one_not_stored() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    window = [
        replace(message, created_at=at)
        for message, at in zip(
            stored([NewMessage("user", "hi"), NewMessage("assistant", "hello")]), (first, later), strict=True
        )
    ]
    before = datetime.now(UTC)
    request, response, opening = to_model_messages([*window, NewMessage("user", "again")])
    assert isinstance(request, ModelRequest) and isinstance(response, ModelResponse)
    assert request.timestamp == first and request.parts[0].timestamp == first
    assert response.timestamp == later
    assert opening.timestamp >= before
