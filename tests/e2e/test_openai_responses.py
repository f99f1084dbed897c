"""The Responses API (`POST /v1/responses` and the routes of a stored response), driven by the
official `openai` package and pydantic-ai's `OpenAIResponsesModel` against a live server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.e2e.harness import LiveServer, mint_token
from tests.e2e.test_openai_api import client_for, stored_chats

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
async def ada(live: LiveServer) -> AsyncIterator[AsyncOpenAI]:
    async with client_for(live, f"ada-{uuid.uuid4().hex[:8]}") as client:
        yield client


class TestCreate:
    async def test_a_string_input_is_answered(self, ada: AsyncOpenAI) -> None:
        response = await ada.responses.create(model="assistant", input="hello there")
        assert response.id.startswith("resp_") and response.object == "response"
        assert (response.status, response.model) == ("completed", "assistant")
        assert response.output_text == "echo: hello there"
        [item] = response.output
        assert (item.type, item.role, item.status) == ("message", "assistant", "completed")  # type: ignore[union-attr]
        assert response.usage is not None and response.usage.input_tokens > 0
        assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens

    async def test_items_and_instructions_are_the_context(self, ada: AsyncOpenAI) -> None:
        items: Any = [
            {"role": "developer", "content": "Speak softly."},
            {"role": "user", "content": "alpha"},
            {"role": "assistant", "content": "echo: alpha"},
            {"role": "user", "content": [{"type": "input_text", "text": "/recall"}]},
        ]
        recalled = await ada.responses.create(model="assistant", input=items)
        system = await ada.responses.create(model="assistant", input="/system", instructions="Be brief.")
        assert recalled.output_text == "recall: alpha"
        assert system.output_text.endswith("Be brief.")

    async def test_an_unknown_model_is_a_404(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.NotFoundError) as raised:
            await ada.responses.create(model="ghost", input="hi")
        assert raised.value.code == "model_not_found"

    async def test_an_empty_input_is_a_422_naming_it(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.responses.create(model="assistant", input=[])
        assert raised.value.param == "input"


class TestChains:
    async def test_previous_response_id_continues_the_conversation_in_a_chat(self, live: LiveServer) -> None:
        async with client_for(live, "chaz") as chaz:
            first = await chaz.responses.create(model="assistant", input="alpha")
            second = await chaz.responses.create(
                model="assistant", input="beta", previous_response_id=first.id
            )
            third = await chaz.responses.create(
                model="assistant", input="/recall", previous_response_id=second.id
            )
            fresh = await chaz.responses.create(model="assistant", input="/recall")
        assert third.output_text == "recall: alpha | beta"
        assert third.previous_response_id == second.id
        assert fresh.output_text == "recall: "
        assert len(await stored_chats(live, "chaz")) == 2

    async def test_another_users_response_is_a_404(self, live: LiveServer) -> None:
        async with client_for(live, "owner") as owner, client_for(live, "other") as other:
            mine = await owner.responses.create(model="assistant", input="secret")
            with pytest.raises(openai.NotFoundError):
                await other.responses.create(model="assistant", input="/recall", previous_response_id=mine.id)
            with pytest.raises(openai.NotFoundError):
                await other.responses.retrieve(mine.id)
            with pytest.raises(openai.NotFoundError):
                await other.responses.delete(mine.id)
            assert (await owner.responses.retrieve(mine.id)).output_text == "echo: secret"

    async def test_continuing_a_response_that_still_runs_is_a_409(self, ada: AsyncOpenAI) -> None:
        running = await ada.responses.create(model="assistant", input="/sleep 30000 slow", background=True)
        with pytest.raises(openai.ConflictError) as raised:
            await ada.responses.create(model="assistant", input="next", previous_response_id=running.id)
        assert raised.value.code == "chat_busy"
        assert (await ada.responses.cancel(running.id)).status == "cancelled"

    async def test_store_false_keeps_nothing_to_retrieve_or_continue(self, live: LiveServer) -> None:
        async with client_for(live, "sten") as sten:
            response = await sten.responses.create(model="assistant", input="ephemeral", store=False)
            assert response.output_text == "echo: ephemeral"
            with pytest.raises(openai.NotFoundError):
                await sten.responses.retrieve(response.id)
            with pytest.raises(openai.NotFoundError):
                await sten.responses.create(model="assistant", input="more", previous_response_id=response.id)
        assert await stored_chats(live, "sten") == []


class TestStoredResponses:
    async def test_a_response_is_retrieved_with_its_input_items(self, ada: AsyncOpenAI) -> None:
        created = await ada.responses.create(model="assistant", input="keep me")
        retrieved = await ada.responses.retrieve(created.id)
        assert (retrieved.id, retrieved.status, retrieved.output_text) == (
            created.id,
            "completed",
            "echo: keep me",
        )
        items = [item async for item in ada.responses.input_items.list(created.id)]
        [item] = items
        assert (item.type, item.role) == ("message", "user")  # type: ignore[union-attr]
        assert item.content[0].text == "keep me"  # type: ignore[union-attr]

    async def test_a_deleted_response_is_gone(self, ada: AsyncOpenAI) -> None:
        created = await ada.responses.create(model="assistant", input="forget me")
        await ada.responses.delete(created.id)
        with pytest.raises(openai.NotFoundError):
            await ada.responses.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            await ada.responses.create(model="assistant", input="x", previous_response_id=created.id)

    async def test_a_background_response_is_polled_to_its_end(self, ada: AsyncOpenAI) -> None:
        created = await ada.responses.create(model="assistant", input="/sleep 200 later", background=True)
        assert created.status in ("queued", "in_progress") and created.background
        response = created
        for _ in range(100):
            response = await ada.responses.retrieve(created.id)
            if response.status == "completed":
                break
            await asyncio.sleep(0.05)
        assert (response.status, response.output_text) == ("completed", "echo: later")

    async def test_a_background_response_is_cancelled(self, ada: AsyncOpenAI) -> None:
        created = await ada.responses.create(model="assistant", input="/sleep 30000 never", background=True)
        cancelled = await ada.responses.cancel(created.id)
        assert cancelled.status == "cancelled"
        assert (await ada.responses.retrieve(created.id)).status == "cancelled"


class TestStreaming:
    async def test_events_are_typed_and_numbered_in_order(self, ada: AsyncOpenAI) -> None:
        stream = await ada.responses.create(model="assistant", input="stream this", stream=True)
        events = [event async for event in stream]
        types = [event.type for event in events]
        assert types[:2] == ["response.created", "response.in_progress"]
        assert types[-1] == "response.completed"
        assert [event.sequence_number for event in events] == list(range(len(events)))
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]  # type: ignore[union-attr]
        assert "".join(deltas) == "echo: stream this" and len(deltas) > 1
        assert {"response.output_text.done", "response.output_item.done"} <= set(types)
        assert events[-1].response.output_text == "echo: stream this"  # type: ignore[union-attr]

    async def test_the_clients_stream_helper_accumulates_the_answer(self, ada: AsyncOpenAI) -> None:
        async with ada.responses.stream(model="assistant", input="helper") as stream:
            final = await stream.get_final_response()
        assert final.output_text == "echo: helper"

    async def test_a_failing_model_ends_the_stream_with_response_failed(self, ada: AsyncOpenAI) -> None:
        stream = await ada.responses.create(model="assistant", input="/fail", stream=True)
        events = [event async for event in stream]
        assert events[-1].type == "response.failed"
        assert events[-1].response.error is not None  # type: ignore[union-attr]
        assert events[-1].response.error.code == "model_error"  # type: ignore[union-attr]


class TestFunctionTools:
    async def test_a_call_is_a_function_call_item_and_its_output_is_answered(self, ada: AsyncOpenAI) -> None:
        first = await ada.responses.create(
            model="assistant",
            input='/tool get_weather {"city": "Paris"}',
            tools=[WEATHER],  # type: ignore[list-item]
        )
        [call] = first.output
        assert call.type == "function_call"
        assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})  # type: ignore[union-attr]
        answer = await ada.responses.create(
            model="assistant",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],  # type: ignore[union-attr]
            tools=[WEATHER],  # type: ignore[list-item]
        )
        assert answer.output_text == "tool get_weather returned: sunny"

    async def test_a_streamed_call_comes_as_function_call_events(self, ada: AsyncOpenAI) -> None:
        stream = await ada.responses.create(
            model="assistant",
            input='/tool get_weather {"city": "Oslo"}',
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
        )
        events = [event async for event in stream]
        done = [e for e in events if e.type == "response.function_call_arguments.done"]
        assert [json.loads(e.arguments) for e in done] == [{"city": "Oslo"}]  # type: ignore[union-attr]
        assert events[-1].response.output[0].type == "function_call"  # type: ignore[union-attr]

    async def test_an_output_for_an_unknown_call_is_a_422(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.responses.create(
                model="assistant",
                input=[{"type": "function_call_output", "call_id": "call_x", "output": "?"}],
                tools=[WEATHER],  # type: ignore[list-item]
            )
        assert raised.value.param == "input.0.call_id"


class City(BaseModel):
    name: str
    population: int


class TestPydanticAiResponsesModel:
    def model(self, live: LiveServer) -> OpenAIResponsesModel:
        provider = OpenAIProvider(base_url=live.url + "/v1", api_key=mint_token(f"pr-{uuid.uuid4().hex[:8]}"))
        return OpenAIResponsesModel("assistant", provider=provider)

    async def test_a_plain_run_is_answered(self, live: LiveServer) -> None:
        result = await Agent(self.model(live)).run("hi from pydantic-ai")
        assert result.output == "echo: hi from pydantic-ai"

    async def test_a_tool_loop_runs_the_tool_in_the_client(self, live: LiveServer) -> None:
        agent = Agent(self.model(live))

        @agent.tool_plain
        def weather(city: str) -> str:
            """The weather in a city."""
            return f"hail in {city}"

        result = await agent.run('/tool weather {"city": "Bern"}')
        assert result.output == "tool weather returned: hail in Bern"

    async def test_a_streamed_tool_loop_runs_the_tool_in_the_client(self, live: LiveServer) -> None:
        agent = Agent(self.model(live))

        @agent.tool_plain
        def weather(city: str) -> str:
            """The weather in a city."""
            return f"fog in {city}"

        async with agent.run_stream('/tool weather {"city": "Lund"}') as run:
            output = await run.get_output()
        assert output == "tool weather returned: fog in Lund"

    async def test_output_type_comes_through_its_output_tool(self, live: LiveServer) -> None:
        agent = Agent(self.model(live), output_type=City)
        result = await agent.run('/tool final_result {"name": "Nice", "population": 340000}')
        assert result.output == City(name="Nice", population=340000)


class TestIdempotency:
    async def test_a_retried_key_gives_the_same_response(self, live: LiveServer) -> None:
        body = {"model": "assistant", "input": "once"}
        headers = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        async with live.client("ida") as client:
            first = await client.post("/v1/responses", json=body, headers=headers)
            again = await client.post("/v1/responses", json=body, headers=headers)
            other = await client.post("/v1/responses", json={**body, "input": "twice"}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"]
        assert other.status_code == 409
        assert isinstance(other, httpx.Response)


class TestStructuredOutput:
    async def test_a_json_schema_text_format_gives_json_valid_against_it(self, ada: AsyncOpenAI) -> None:
        response = await ada.responses.parse(
            model="assistant", input='/json {"name": "Turku", "population": 200000}', text_format=City
        )
        assert response.output_parsed == City(name="Turku", population=200000)

    async def test_an_answer_that_breaks_the_schema_is_a_502(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.InternalServerError) as raised:
            await ada.responses.parse(model="assistant", input='/json {"name": 1}', text_format=City)
        assert raised.value.code == "model_error"

    @pytest.mark.parametrize(
        ("extra", "param"),
        [
            ({"tools": [{"type": "function", "name": "f", "parameters": {"type": 3}}]}, "tools.0.parameters"),
            ({"tools": [{"type": "function", "name": "current_time"}]}, "tools.0.name"),
            (
                {"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": 3}}}},
                "text.format.schema",
            ),
        ],
    )
    async def test_bad_tools_and_formats_are_422s_naming_the_field(
        self, ada: AsyncOpenAI, extra: dict[str, Any], param: str
    ) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.responses.create(model="assistant", input="hi", extra_body=extra)
        assert raised.value.param == param
