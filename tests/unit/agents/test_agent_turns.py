"""Building agents and running turns: echo, FunctionModel and TestModel, tools, limits, failures."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic_ai.exceptions import (
    ModelAuthenticationError,
    ModelHTTPError,
    UnexpectedModelBehavior,
    UserError,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel
from pydantic_ai.toolsets import FunctionToolset

from chatserver.agents.factory import AgentFactory, assemble
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.runner import map_model_errors, run_turn
from chatserver.agents.tools import NO_BACKEND_MESSAGE, ToolRegistry
from chatserver.agents.types import BuiltAgent
from chatserver.config import Settings
from chatserver.domain import NewMessage, ToolCallRecord
from chatserver.errors import ModelError, ModelTimeout
from tests.unit.agents.helpers import (
    Conversation,
    FakeClock,
    RecordingBackend,
    agent_config,
    build,
    customization,
    deps,
)


def built_with(model: FunctionModel | TestModel, *, tools: tuple[str, ...] = ()) -> BuiltAgent:
    config = agent_config(tools=tools)
    return assemble(config, config.system_prompt, model, ToolRegistry(FakeClock()).select(tools))


def answered_tools(messages: list[ModelMessage]) -> bool:
    return isinstance(messages[-1], ModelRequest) and any(
        isinstance(part, ToolReturnPart) for part in messages[-1].parts
    )


class TestBuildingAgents:
    def test_the_built_agent_carries_config_prompt_tools_and_name(self, factory: AgentFactory) -> None:
        config = agent_config(tools=["current_time"])
        built = factory.build(config, [customization({"instructions": ["Be brief"]})])
        assert built.config is config
        assert built.system_prompt == "You are helpful.\n\n## instruction_set\n- Be brief"
        assert isinstance(built.toolset, FunctionToolset)
        assert list(built.toolset.tools) == ["current_time"]

    async def test_the_model_receives_the_rendered_prompt(self, factory: AgentFactory) -> None:
        built = factory.build(agent_config(), [customization({"instructions": ["Be brief"]})])
        assert (await Conversation(built).say("/system")).output == built.system_prompt

    def test_a_missing_key_surfaces_as_a_model_error_naming_the_variable(self, factory: AgentFactory) -> None:
        with pytest.raises(ModelError, match="OPENAI_API_KEY is not set"):
            factory.build(agent_config(model="openai:gpt-4.1-mini"), [])

    def test_an_unknown_tool_in_a_stored_config_is_a_model_error(self, factory: AgentFactory) -> None:
        with pytest.raises(ModelError, match="teleport"):
            factory.build(agent_config(tools=["teleport"]), [])

    def test_agents_sharing_a_model_share_the_model_instance(self, factory: AgentFactory) -> None:
        assert build(factory).model is build(factory, agent_config("other")).model


class TestEchoTurns:
    async def test_a_turn_returns_output_messages_and_usage(self, factory: AgentFactory) -> None:
        result = await Conversation(build(factory)).say("hi")
        assert result.output == "echo: hi"
        assert result.new_messages == [NewMessage("assistant", "echo: hi")]
        assert result.tool_calls == []
        assert result.usage.requests == 1
        assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0

    async def test_a_tool_turn_records_the_call_and_stores_call_result_and_answer(
        self, factory: AgentFactory
    ) -> None:
        result = await Conversation(build(factory, agent_config(tools=["current_time"]))).say(
            "/tool current_time {}"
        )
        assert result.tool_calls == [ToolCallRecord("current_time", {}, "2026-01-02T03:04:05+00:00")]
        assistant, tool, answer = result.new_messages
        assert assistant.role == "assistant" and assistant.content == ""
        assert [call.name for call in assistant.tool_calls] == ["current_time"]
        assert tool == NewMessage(
            "tool",
            "2026-01-02T03:04:05+00:00",
            tool_call_id=assistant.tool_calls[0].id,
            tool_name="current_time",
        )
        assert answer == NewMessage("assistant", "tool current_time returned: 2026-01-02T03:04:05+00:00")
        assert result.usage.requests == 2


class TestUpdateInstructions:
    async def test_instructions_are_written_for_the_user_in_deps(self, factory: AgentFactory) -> None:
        backend = RecordingBackend()
        chat = Conversation(
            build(factory, agent_config(tools=["update_instructions"])), deps("alice", backend=backend)
        )
        result = await chat.say('/tool update_instructions {"instructions": ["Be brief", "No emoji"]}')
        assert backend.calls == [("alice", "helper", ["Be brief", "No emoji"])]
        assert result.output == "tool update_instructions returned: saved 2 instruction(s)"

    async def test_a_model_naming_another_user_cannot_change_whose_instructions_are_written(self) -> None:
        async def impostor(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            steps = sum(isinstance(message, ModelResponse) for message in messages)
            if steps == 0:  # names another user: the schema has no such argument, the call is rejected
                args = {"instructions": ["obey mallory"], "user_id": "mallory", "agent_name": "other"}
                return ModelResponse(parts=[ToolCallPart("update_instructions", args)])
            if steps == 1:
                return ModelResponse(parts=[ToolCallPart("update_instructions", {"instructions": ["obey"]})])
            return ModelResponse(parts=[TextPart("done")])

        backend = RecordingBackend()
        built = built_with(FunctionModel(impostor), tools=("update_instructions",))
        result = await run_turn(
            built, "go", history=[], deps=deps("alice", backend=backend), timeout_seconds=5, max_requests=5
        )
        assert backend.calls == [("alice", "helper", ["obey"])]
        assert result.tool_calls == [
            ToolCallRecord("update_instructions", {"instructions": ["obey"]}, "saved 1 instruction(s)")
        ]

    async def test_without_a_backend_the_tool_answers_with_a_clear_error(self, factory: AgentFactory) -> None:
        chat = Conversation(build(factory, agent_config(tools=["update_instructions"])), deps(backend=None))
        result = await chat.say('/tool update_instructions {"instructions": ["x"]}')
        assert result.output == f"tool update_instructions returned: {NO_BACKEND_MESSAGE}"


class TestOtherModels:
    async def test_a_function_model_turn_with_text_and_a_tool_call(self) -> None:
        async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            if answered_tools(messages):
                return ModelResponse(parts=[TextPart("It is late.")])
            return ModelResponse(parts=[TextPart("Let me look."), ToolCallPart("current_time", {}, "call-1")])

        built = built_with(FunctionModel(model), tools=("current_time",))
        result = await run_turn(built, "time?", history=[], deps=deps(), timeout_seconds=5, max_requests=5)
        assert result.output == "It is late."
        assert result.new_messages[0].content == "Let me look."
        assert result.new_messages[0].tool_calls[0].id == "call-1"
        assert result.tool_calls == [ToolCallRecord("current_time", {}, "2026-01-02T03:04:05+00:00")]

    async def test_a_test_model_turn_calls_every_tool_with_deps(self) -> None:
        backend = RecordingBackend()
        built = built_with(TestModel(), tools=("current_time", "update_instructions"))
        result = await run_turn(
            built, "go", history=[], deps=deps("bob", backend=backend), timeout_seconds=5, max_requests=5
        )
        assert sorted(call.name for call in result.tool_calls) == ["current_time", "update_instructions"]
        assert [call[:2] for call in backend.calls] == [("bob", "helper")]


class TestLimitsAndFailures:
    async def test_too_many_tool_steps_is_a_model_error(self) -> None:
        async def loop_forever(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            return ModelResponse(parts=[ToolCallPart("current_time", {})])

        built = built_with(FunctionModel(loop_forever), tools=("current_time",))
        with pytest.raises(ModelError, match=r"^tool step limit reached$"):
            await run_turn(built, "go", history=[], deps=deps(), timeout_seconds=5, max_requests=3)

    async def test_a_slow_model_times_out_with_the_deadline_in_the_message(
        self, factory: AgentFactory
    ) -> None:
        with pytest.raises(ModelTimeout, match=r"^model timed out after 0\.05s$"):
            await Conversation(build(factory)).say("/sleep 5000 late", timeout_seconds=0.05)

    async def test_a_provider_failure_is_a_model_error(self, factory: AgentFactory) -> None:
        with pytest.raises(ModelError) as caught:
            await Conversation(build(factory)).say("/fail")
        assert not isinstance(caught.value, ModelTimeout)
        assert caught.value.detail == "model provider error (HTTP 500, server error) from echo"

    async def test_cancelling_a_turn_propagates_cancellation_unchanged(self, factory: AgentFactory) -> None:
        task = asyncio.create_task(Conversation(build(factory)).say("/sleep 5000 never"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class TestErrorMapping:
    def test_http_errors_never_leak_the_response_body(self) -> None:
        error = ModelHTTPError.for_category(
            ModelAuthenticationError,
            status_code=401,
            model_name="gpt-4.1-mini",
            body={"error": "Incorrect API key provided: sk-abc123"},
            headers={"x-request-id": "req-secret"},
        )
        with pytest.raises(ModelError) as caught, map_model_errors(10):
            raise error
        assert "sk-abc123" not in caught.value.detail and "req-secret" not in caught.value.detail
        assert (
            caught.value.detail == "model provider error (HTTP 401, credentials rejected) from gpt-4.1-mini"
        )

    def test_http_client_errors_are_model_errors(self) -> None:
        with pytest.raises(ModelError, match=r"unreachable \(ConnectError\)"), map_model_errors(10):
            raise httpx.ConnectError("connection refused to http://user:secret@host")

    def test_unexpected_model_behavior_is_a_model_error(self) -> None:
        with pytest.raises(ModelError, match="unexpected response"), map_model_errors(10):
            raise UnexpectedModelBehavior("bad", body="secret body")

    def test_a_missing_key_user_error_names_the_variable(self) -> None:
        with pytest.raises(ModelError, match="ANTHROPIC_API_KEY is not set"), map_model_errors(10):
            raise UserError("Set the `ANTHROPIC_API_KEY` environment variable to use the Anthropic provider.")

    def test_other_usage_mistakes_are_bugs_and_propagate(self) -> None:
        with pytest.raises(UserError), map_model_errors(10):
            raise UserError("Tool name conflicts with existing tool: 'x'")

    def test_a_registry_with_a_base_url_builds_agents_without_a_key(self) -> None:
        settings = Settings(
            database_url="sqlite+aiosqlite:///:memory:", openai_base_url="http://localhost:1/v1"
        )
        factory = AgentFactory(ModelRegistry(settings), ToolRegistry())
        assert factory.build(agent_config(model="openai:llama3.2"), []).model.model_name == "llama3.2"
