"""A provider's malformed answer is a model error; a tool's own failure stays the tool's."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic_ai import Tool
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from chatserver.agents.factory import assemble
from chatserver.agents.provider_answers import UNEXPECTED_ANSWER, CheckedAnswers
from chatserver.agents.runner import run_turn, stream_turn
from chatserver.agents.types import BuiltAgent
from chatserver.errors import ModelError
from tests.unit.agents.helpers import agent_config, deps

SHAPE_ERRORS = [
    AttributeError("'str' object has no attribute 'finish_reason'"),
    TypeError("string indices must be integers"),
    KeyError("choices"),
    IndexError("list index out of range"),
    ValueError("Expecting value: line 1 column 1 (char 0)"),
]


def built(model: FunctionModel, *, tool_error: Exception | None = None) -> BuiltAgent:
    def explode() -> str:
        raise tool_error or RuntimeError("unused")

    return assemble(agent_config(), "", CheckedAnswers(model), [Tool(explode)])


async def streamed(agent: BuiltAgent) -> None:
    events = stream_turn(agent, "hi", history=[], deps=deps(), timeout_seconds=5, max_requests=5)
    async for _ in events:
        pass


class TestMalformedAnswers:
    @pytest.mark.parametrize("error", SHAPE_ERRORS, ids=lambda error: type(error).__name__)
    async def test_a_plain_answer_that_cannot_be_read_is_a_model_error(self, error: Exception) -> None:
        def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            raise error

        with pytest.raises(ModelError, match=UNEXPECTED_ANSWER):
            await run_turn(
                built(FunctionModel(answer)), "hi", history=[], deps=deps(), timeout_seconds=5, max_requests=5
            )

    @pytest.mark.parametrize("error", SHAPE_ERRORS, ids=lambda error: type(error).__name__)
    async def test_a_stream_that_cannot_be_read_midway_is_a_model_error(self, error: Exception) -> None:
        async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
            yield "half an "
            raise error

        with pytest.raises(ModelError, match=UNEXPECTED_ANSWER):
            await streamed(built(FunctionModel(stream_function=stream)))


class TestToolFailures:
    async def test_a_tool_that_raises_keeps_its_error(self) -> None:
        def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            return ModelResponse(parts=[ToolCallPart("explode", {})])

        async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[DeltaToolCalls]:
            yield {0: DeltaToolCall("explode", "{}")}

        agent = built(FunctionModel(answer, stream_function=stream), tool_error=TypeError("a bug of ours"))
        with pytest.raises(TypeError, match="a bug of ours"):
            await streamed(agent)

    async def test_a_good_answer_goes_through_unchanged(self) -> None:
        def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            return ModelResponse(parts=[TextPart("fine")])

        result = await run_turn(
            built(FunctionModel(answer)), "hi", history=[], deps=deps(), timeout_seconds=5, max_requests=5
        )
        assert result.output == "fine"
