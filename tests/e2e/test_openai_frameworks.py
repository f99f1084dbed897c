"""Agent frameworks pointed at /v1 as at OpenAI: LangChain's `ChatOpenAI` and pydantic-ai's OpenAI
models, their tools running in the test (the client), the agent's on the server."""

from __future__ import annotations

import uuid

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import DefaultAsyncHttpxClient
from pydantic import BaseModel
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.e2e.harness import LiveServer, mint_token


class City(BaseModel):
    name: str
    population: int


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def langchain_model(live: LiveServer) -> ChatOpenAI:
    # A client of this test's own: LangChain's shared default outlives the test's event loop.
    return ChatOpenAI(
        model="assistant",
        base_url=live.url + "/v1",
        api_key=mint_token(f"lc-{uuid.uuid4().hex[:8]}"),  # type: ignore[arg-type]
        max_retries=0,
        timeout=30,
        http_async_client=DefaultAsyncHttpxClient(),
    )


def pydantic_ai_model(live: LiveServer) -> OpenAIChatModel:
    provider = OpenAIProvider(base_url=live.url + "/v1", api_key=mint_token(f"pa-{uuid.uuid4().hex[:8]}"))
    return OpenAIChatModel("assistant", provider=provider)


class TestLangChain:
    async def test_bind_tools_gets_the_models_tool_calls(self, live: LiveServer) -> None:
        model = langchain_model(live).bind_tools([get_weather])
        message = await model.ainvoke('/tool get_weather {"city": "Paris"}')
        [call] = message.tool_calls  # type: ignore[attr-defined]
        assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})

    async def test_a_tool_loop_runs_the_tool_in_the_client(self, live: LiveServer) -> None:
        model = langchain_model(live).bind_tools([get_weather])
        prompt = '/tool get_weather {"city": "Oslo"}'
        called = await model.ainvoke(prompt)
        [call] = called.tool_calls  # type: ignore[attr-defined]
        result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
        answer = await model.ainvoke([("user", prompt), called, result])
        assert answer.content == "tool get_weather returned: sunny in Oslo"

    async def test_with_structured_output_parses_the_answer(self, live: LiveServer) -> None:
        model = langchain_model(live).with_structured_output(City)
        city = await model.ainvoke('/json {"name": "Lima", "population": 10000000}')
        assert city == City(name="Lima", population=10000000)


class TestPydanticAi:
    async def test_output_type_comes_through_its_output_tool(self, live: LiveServer) -> None:
        agent = Agent(pydantic_ai_model(live), output_type=City)
        result = await agent.run('/tool final_result {"name": "Rome", "population": 2800000}')
        assert result.output == City(name="Rome", population=2800000)

    async def test_native_output_comes_through_the_response_format(self, live: LiveServer) -> None:
        agent = Agent(pydantic_ai_model(live), output_type=NativeOutput(City))
        result = await agent.run('/json {"name": "Kyiv", "population": 2900000}')
        assert result.output == City(name="Kyiv", population=2900000)

    async def test_a_tool_loop_runs_the_tool_in_the_client(self, live: LiveServer) -> None:
        agent = Agent(pydantic_ai_model(live))
        seen: list[str] = []

        @agent.tool_plain
        def weather(city: str) -> str:
            """The weather in a city."""
            seen.append(city)
            return f"rain in {city}"

        result = await agent.run('/tool weather {"city": "Bergen"}')
        assert seen == ["Bergen"]
        assert result.output == "tool weather returned: rain in Bergen"

    async def test_a_streamed_tool_loop_runs_the_tool_in_the_client(self, live: LiveServer) -> None:
        agent = Agent(pydantic_ai_model(live))

        @agent.tool_plain
        def weather(city: str) -> str:
            """The weather in a city."""
            return f"snow in {city}"

        async with agent.run_stream('/tool weather {"city": "Tromso"}') as run:
            output = await run.get_output()
        assert output == "tool weather returned: snow in Tromso"
