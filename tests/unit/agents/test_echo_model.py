"""The echo model: every command, driven through a real pydantic-ai agent."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelAPIError, ModelHTTPError, ModelServerError
from pydantic_ai.messages import PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta

from chatserver.agents.echo import EchoModel, EchoProviderError, split_tokens
from chatserver.agents.factory import AgentFactory
from chatserver.agents.types import TurnDeps
from tests.unit.agents.helpers import Conversation, agent_config, build, deps


def echo_agent(latency_ms: int = 0, instructions: str | None = "You are helpful.") -> Agent[TurnDeps, str]:
    return Agent(EchoModel(latency_ms=latency_ms), instructions=instructions, deps_type=TurnDeps, name="e")


async def ask(agent: Agent[TurnDeps, str], prompt: str) -> str:
    result = await agent.run(prompt, deps=deps())
    return result.output


async def streamed_tokens(agent: Agent[TurnDeps, str], prompt: str) -> list[str]:
    tokens: list[str] = []
    async with agent.run_stream_events(prompt, deps=deps()) as events:
        async for event in events:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                tokens.append(event.part.content)
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                tokens.append(event.delta.content_delta)
    return tokens


class TestPlainMessages:
    async def test_any_message_is_echoed_with_a_prefix(self) -> None:
        assert await ask(echo_agent(), "hello there") == "echo: hello there"

    async def test_an_unknown_slash_command_is_echoed_like_any_message(self) -> None:
        assert await ask(echo_agent(), "/dance now") == "echo: /dance now"

    async def test_the_model_is_named_echo(self) -> None:
        model = EchoModel()
        assert model.model_name == "echo"
        assert model.system == "echo"

    def test_a_negative_latency_is_refused(self) -> None:
        with pytest.raises(ValueError):
            EchoModel(latency_ms=-1)


class TestRecall:
    async def test_recall_lists_earlier_user_messages_oldest_first_without_the_current_one(
        self, factory: AgentFactory
    ) -> None:
        chat = Conversation(build(factory))
        await chat.say("first")
        await chat.say("second")
        result = await chat.say("/recall")
        assert result.output == "recall: first | second"

    async def test_recall_with_no_earlier_messages_is_empty(self) -> None:
        assert await ask(echo_agent(), "/recall") == "recall: "

    async def test_recall_includes_earlier_recall_commands_as_user_messages(
        self, factory: AgentFactory
    ) -> None:
        chat = Conversation(build(factory))
        await chat.say("a")
        await chat.say("/recall")
        assert (await chat.say("/recall")).output == "recall: a | /recall"


class TestSystem:
    async def test_system_returns_the_instructions_exactly(self) -> None:
        prompt = "Line one.\n\n## instruction_set\n- be {{brief}}\n  indented: yes"
        assert await ask(echo_agent(instructions=prompt), "/system") == prompt

    async def test_system_without_instructions_says_so(self) -> None:
        assert await ask(echo_agent(instructions=None), "/system") == "(no system prompt)"


class TestToolCommand:
    async def test_a_known_tool_is_called_and_its_string_result_is_unquoted(
        self, factory: AgentFactory
    ) -> None:
        built = build(factory, agent_config(tools=["current_time"]))
        result = await Conversation(built).say("/tool current_time {}")
        assert result.output == "tool current_time returned: 2026-01-02T03:04:05+00:00"
        assert [call.name for call in result.tool_calls] == ["current_time"]

    async def test_a_non_string_result_is_rendered_as_json(self) -> None:
        def add(a: int, b: int) -> dict[str, int]:
            """Add two numbers."""
            return {"sum": a + b}

        agent = Agent(EchoModel(), tools=[add], deps_type=TurnDeps)
        assert await ask(agent, '/tool add {"a": 2, "b": 3}') == 'tool add returned: {"sum":5}'

    async def test_arguments_default_to_an_empty_object(self, factory: AgentFactory) -> None:
        built = build(factory, agent_config(tools=["current_time"]))
        result = await Conversation(built).say("/tool current_time")
        assert result.tool_calls[0].args == {}

    async def test_a_tool_the_agent_does_not_have_is_not_called(self, factory: AgentFactory) -> None:
        built = build(factory, agent_config(tools=["current_time"]))
        result = await Conversation(built).say('/tool update_instructions {"instructions": []}')
        assert result.output == "unknown tool: update_instructions"
        assert result.tool_calls == []
        assert result.usage.requests == 1

    async def test_bad_json_arguments_get_a_clear_answer_instead_of_a_crash(
        self, factory: AgentFactory
    ) -> None:
        built = build(factory, agent_config(tools=["current_time"]))
        result = await Conversation(built).say("/tool current_time {not json")
        assert result.output.startswith("invalid JSON arguments for tool current_time:")
        assert result.tool_calls == []

    async def test_arguments_that_are_not_an_object_are_refused(self, factory: AgentFactory) -> None:
        built = build(factory, agent_config(tools=["current_time"]))
        result = await Conversation(built).say("/tool current_time [1, 2]")
        assert result.output == "invalid arguments for tool current_time: expected a JSON object, got list"

    async def test_tool_without_a_name_explains_the_usage(self) -> None:
        assert await ask(echo_agent(), "/tool") == "usage: /tool NAME {json args}"

    async def test_arguments_the_tool_rejects_are_reported_as_a_failure(self) -> None:
        def double(n: int) -> int:
            """Double n."""
            return 2 * n

        agent = Agent(EchoModel(), tools=[double], deps_type=TurnDeps)
        answer = await ask(agent, '/tool double {"n": "not a number"}')
        assert answer.startswith("tool double failed: ")


class TestSleep:
    async def test_sleep_waits_then_echoes_the_text(self) -> None:
        started = time.monotonic()
        assert await ask(echo_agent(), "/sleep 50 good morning") == "echo: good morning"
        assert time.monotonic() - started >= 0.05

    async def test_sleep_without_milliseconds_explains_the_usage(self) -> None:
        assert await ask(echo_agent(), "/sleep soon") == "usage: /sleep MS <text>"

    async def test_sleep_is_cancellable(self) -> None:
        task = asyncio.create_task(ask(echo_agent(), "/sleep 10000 never"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1


class TestFail:
    async def test_fail_raises_a_provider_http_error(self) -> None:
        with pytest.raises(EchoProviderError) as caught:
            await ask(echo_agent(), "/fail")
        assert isinstance(caught.value, ModelHTTPError)
        assert isinstance(caught.value, ModelAPIError)
        assert isinstance(caught.value, ModelServerError)
        assert caught.value.status_code == 500

    async def test_fail_raises_while_streaming_too(self) -> None:
        with pytest.raises(EchoProviderError):
            await streamed_tokens(echo_agent(), "/fail")


class TestLatency:
    async def test_latency_is_added_to_every_reply(self) -> None:
        started = time.monotonic()
        assert await ask(echo_agent(latency_ms=60), "hi") == "echo: hi"
        assert time.monotonic() - started >= 0.06

    async def test_latency_is_added_to_each_step_of_a_tool_turn(self) -> None:
        def ping() -> str:
            """Ping."""
            return "pong"

        agent = Agent(EchoModel(latency_ms=40), tools=[ping], deps_type=TurnDeps)
        started = time.monotonic()
        assert await ask(agent, "/tool ping") == "tool ping returned: pong"
        assert time.monotonic() - started >= 0.08


class TestStreaming:
    @pytest.mark.parametrize(
        "prompt",
        ["hello brave  new world", "/recall", "/system", "  leading and trailing  ", "/sleep 1 one two"],
    )
    async def test_streamed_tokens_concatenate_to_the_plain_answer(self, prompt: str) -> None:
        agent = echo_agent(instructions="Be kind.\nAlways.")
        tokens = await streamed_tokens(agent, prompt)
        assert "".join(tokens) == await ask(agent, prompt)

    async def test_replies_stream_word_by_word(self) -> None:
        assert await streamed_tokens(echo_agent(), "one two three") == ["echo: ", "one ", "two ", "three"]

    async def test_streaming_a_tool_call_answers_like_the_plain_run(self) -> None:
        def ping() -> str:
            """Ping."""
            return "pong"

        agent = Agent(EchoModel(), tools=[ping], deps_type=TurnDeps)
        assert "".join(await streamed_tokens(agent, "/tool ping")) == "tool ping returned: pong"

    def test_tokens_keep_every_character(self) -> None:
        for text in ["", " ", "a", "a b", "  a\n\tb  ", "recall: "]:
            assert "".join(split_tokens(text)) == text


class TestUsage:
    async def test_usage_counts_requests_and_rough_tokens(self) -> None:
        result = await echo_agent().run("count these words please", deps=deps())
        assert result.usage.requests == 1
        assert result.usage.input_tokens > 0
        assert result.usage.output_tokens >= 5
