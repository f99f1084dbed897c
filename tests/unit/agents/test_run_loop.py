"""The run loop keeps what the agent framework did for a turn: retries, parallel calls, deltas, usage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic_ai import ModelRetry, RunContext, Tool
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryFeedbackPart,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from chatserver.agents.factory import assemble
from chatserver.agents.runner import run_turn, stream_turn
from chatserver.agents.types import BuiltAgent, DoneEvent, StreamEvent, ToolCallEvent, TurnDeps
from chatserver.errors import ModelError
from tests.unit.agents.helpers import agent_config, deps


def built(model: FunctionModel, *tools: Tool[TurnDeps]) -> BuiltAgent:
    config = agent_config()
    return assemble(config, config.system_prompt, model, tools)


def retries_sent(messages: list[ModelMessage]) -> list[str]:
    """The retry prompts (invalid arguments, ``ModelRetry``) the model has been sent so far."""
    return [
        part.model_response_str()
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, RetryPromptPart | RetryFeedbackPart)
        or (isinstance(part, ToolReturnPart) and part.outcome == "retried")
    ]


def double(n: int) -> int:
    return 2 * n


async def turn(agent: BuiltAgent, *, max_requests: int = 5) -> str:
    result = await run_turn(
        agent, "go", history=[], deps=deps(), timeout_seconds=5, max_requests=max_requests
    )
    return result.output


class TestToolArguments:
    async def test_invalid_arguments_go_back_to_the_model_which_corrects_them(self) -> None:
        seen: list[list[str]] = []

        def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            seen.append(retries_sent(messages))
            if len(seen) == 1:
                return ModelResponse(parts=[ToolCallPart("double", {"n": "not a number"}, "c1")])
            if len(seen) == 2:
                return ModelResponse(parts=[ToolCallPart("double", {"n": 21}, "c2")])
            return ModelResponse(parts=[TextPart("done")])

        assert await turn(built(FunctionModel(model), Tool(double))) == "done"
        assert seen[0] == [] and len(seen[1]) == 1 and "n" in seen[1][0]

    async def test_a_tool_asking_to_retry_is_retried_once_then_the_turn_fails(self) -> None:
        calls: list[int] = []

        def picky(n: int) -> int:
            calls.append(n)
            raise ModelRetry("try a bigger number")

        def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            return ModelResponse(parts=[ToolCallPart("picky", {"n": len(calls)}, f"c{len(calls)}")])

        with pytest.raises(ModelError, match="unexpected response"):
            await turn(built(FunctionModel(model), Tool(picky)), max_requests=10)
        assert calls == [0, 1]

    async def test_a_retry_the_tool_asked_for_reaches_the_model_with_its_message(self) -> None:
        asked: list[list[str]] = []

        def flaky(ctx: RunContext[TurnDeps]) -> str:
            if ctx.retry == 0:
                raise ModelRetry("the service was busy, call again")
            return "fine"

        def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            asked.append(retries_sent(messages))
            if len(asked) <= 2:
                return ModelResponse(parts=[ToolCallPart("flaky", {}, f"c{len(asked)}")])
            return ModelResponse(parts=[TextPart("ok")])

        assert await turn(built(FunctionModel(model), Tool(flaky, takes_ctx=True))) == "ok"
        assert any("the service was busy" in text for text in asked[1])


class TestParallelCalls:
    async def test_the_calls_of_one_response_run_concurrently_and_all_return(self) -> None:
        both_started = asyncio.Event()
        started: list[str] = []

        async def wait_for_the_other(name: str) -> str:
            started.append(name)
            if len(started) == 2:
                both_started.set()
            await asyncio.wait_for(both_started.wait(), 2)
            return f"{name} done"

        def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            last = messages[-1]
            if isinstance(last, ModelRequest) and any(isinstance(p, ToolReturnPart) for p in last.parts):
                returns = [p.content for p in last.parts if isinstance(p, ToolReturnPart)]
                return ModelResponse(parts=[TextPart(" + ".join(map(str, returns)))])
            calls = [ToolCallPart("wait_for_the_other", {"name": name}, name) for name in ("a", "b")]
            return ModelResponse(parts=calls)

        assert await turn(built(FunctionModel(model), Tool(wait_for_the_other))) == "a done + b done"


class TestStreaming:
    async def test_tool_call_deltas_become_one_call_with_its_whole_arguments(self) -> None:
        async def stream(
            messages: list[ModelMessage], info: AgentInfo
        ) -> AsyncIterator[str | DeltaToolCalls]:
            if isinstance(messages[-1], ModelRequest) and any(
                isinstance(p, ToolReturnPart) for p in messages[-1].parts
            ):
                yield "twice is "
                yield "42"
                return
            yield {0: DeltaToolCall(name="double", json_args='{"n"', tool_call_id="c1")}
            yield {0: DeltaToolCall(json_args=": 21}")}

        agent = built(FunctionModel(stream_function=stream), Tool(double))
        events: list[StreamEvent] = [
            event
            async for event in stream_turn(
                agent, "go", history=[], deps=deps(), timeout_seconds=5, max_requests=5
            )
        ]
        assert [e for e in events if isinstance(e, ToolCallEvent)] == [ToolCallEvent("double", {"n": 21})]
        done = events[-1]
        assert isinstance(done, DoneEvent) and done.result.output == "twice is 42"
        assert done.result.usage.requests == 2


class TestUsage:
    async def test_usage_adds_up_every_request_of_the_turn(self) -> None:
        def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            if len(messages) == 1:
                return ModelResponse(parts=[ToolCallPart("double", {"n": 1}, "c1")])
            return ModelResponse(parts=[TextPart("two")])

        result = await run_turn(
            built(FunctionModel(model), Tool(double)),
            "go",
            history=[],
            deps=deps(),
            timeout_seconds=5,
            max_requests=5,
        )
        assert result.usage.requests == 2
        assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
