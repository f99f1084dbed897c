"""A turn's options in the run loop: the caller's tools handed back, tool choice, checked output."""

from __future__ import annotations

import pytest
from pydantic_ai import Tool
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from chatserver.agents.echo import EchoModel
from chatserver.agents.runner import run_turn
from chatserver.agents.types import BuiltAgent
from chatserver.domain import ClientTool, OutputFormat, ToolCall, TurnOptions
from chatserver.errors import InvalidInput, ModelError
from tests.unit.agents.helpers import deps
from tests.unit.agents.test_run_loop import built

WEATHER = ClientTool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}})
CITY = OutputFormat(
    "json_schema",
    {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    "city",
)


def double(n: int) -> int:
    return 2 * n


async def run(
    agent: BuiltAgent, prompt: str | None, options: TurnOptions, history: list[ModelMessage] | None = None
) -> tuple[str, tuple[ToolCall, ...], list[str]]:
    result = await run_turn(
        agent, prompt, history=history or [], deps=deps(), timeout_seconds=5, max_requests=5, options=options
    )
    roles = [message.role for message in result.new_messages]
    return result.output, result.client_calls, roles


class TestClientTools:
    async def test_the_agents_call_runs_and_the_callers_is_handed_back(self) -> None:
        def both(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            kinds = {tool.name: tool.kind for tool in info.function_tools}
            assert kinds == {"double": "function", "get_weather": "external"}
            calls = [
                ToolCallPart("double", {"n": 2}, "own-1"),
                ToolCallPart("get_weather", {"city": "Oslo"}, "c-1"),
            ]
            return ModelResponse(parts=calls)

        agent = built(FunctionModel(both), Tool(double))
        output, calls, roles = await run(agent, "go", TurnOptions(client_tools=(WEATHER,)))
        assert (output, calls) == ("", (ToolCall("c-1", "get_weather", {"city": "Oslo"}),))
        assert roles == ["assistant", "tool"]  # the call message keeps both calls; the agent's result

    async def test_a_turn_without_a_prompt_answers_the_results_its_history_ends_with(self) -> None:
        history: list[ModelMessage] = [
            ModelRequest.user_text_prompt('/tool get_weather {"city": "Oslo"}'),
            ModelResponse(parts=[ToolCallPart("get_weather", {"city": "Oslo"}, "c-1")]),
            ModelRequest(parts=[ToolReturnPart("get_weather", "rain", "c-1")]),
        ]
        agent = built(EchoModel())
        output, calls, _ = await run(agent, None, TurnOptions((WEATHER,), continues=True), history)
        assert (output, calls) == ("tool get_weather returned: rain", ())

    async def test_a_turn_without_a_prompt_needs_something_to_answer(self) -> None:
        history: list[ModelMessage] = [ModelResponse(parts=[TextPart("hello")])]
        with pytest.raises(InvalidInput):
            await run(built(EchoModel()), None, TurnOptions(continues=True), history)

    async def test_a_callers_tool_named_like_the_agents_is_refused(self) -> None:
        clash = ClientTool("double", {"type": "object"})
        with pytest.raises(InvalidInput) as raised:
            await run(built(EchoModel(), Tool(double)), "hi", TurnOptions(client_tools=(clash,)))
        assert raised.value.field == "tools"


class TestToolChoice:
    @pytest.mark.parametrize(
        ("choice", "expected"),
        [("none", ["none"]), ("required", ["required"]), (("function", "get_weather"), [["get_weather"]])],
    )
    async def test_the_choice_reaches_the_model_as_the_frameworks_setting(
        self, choice: object, expected: list[object]
    ) -> None:
        seen: list[object] = []

        def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            seen.append((info.model_settings or {}).get("tool_choice"))
            return ModelResponse(parts=[TextPart("ok")])

        options = TurnOptions(client_tools=(WEATHER,), tool_choice=choice)  # type: ignore[arg-type]
        await run(built(FunctionModel(answer)), "hi", options)
        assert seen == expected


class TestCheckedOutput:
    async def test_an_answer_valid_against_the_schema_is_the_output(self) -> None:
        output, _, _ = await run(built(EchoModel()), '/json {"name": "Oslo"}', TurnOptions(output=CITY))
        assert output == '{"name": "Oslo"}'

    @pytest.mark.parametrize(
        ("answer", "problem"),
        [("/json {}", "'name' is a required property"), ("plain words", "not valid JSON")],
    )
    async def test_an_answer_that_breaks_the_format_is_a_model_error(self, answer: str, problem: str) -> None:
        with pytest.raises(ModelError) as raised:
            await run(built(EchoModel()), answer, TurnOptions(output=CITY))
        assert problem in raised.value.detail

    async def test_the_schema_is_sent_to_the_model(self) -> None:
        seen: list[object] = []

        def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            params = info.model_request_parameters
            seen.append(params.output_object.json_schema if params.output_object else None)
            return ModelResponse(parts=[TextPart('{"name": "x"}')])

        await run(built(FunctionModel(answer)), "hi", TurnOptions(output=CITY))
        assert seen == [CITY.schema]
