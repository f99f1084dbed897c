"""The caller's own tools on /v1/chat/completions, driven by the official `openai` package."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from tests.e2e.harness import LiveServer
from tests.e2e.test_openai_api import chunks_of, client_for, stored_chats, user

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CLOCK = {"type": "function", "function": {"name": "read_clock", "parameters": {"type": "object"}}}


@pytest.fixture
async def ada(live: LiveServer) -> AsyncIterator[AsyncOpenAI]:
    async with client_for(live, f"ada-{uuid.uuid4().hex[:8]}") as client:
        yield client


def called(call: Any) -> dict[str, Any]:
    return {"id": call.id, "name": call.function.name, "args": json.loads(call.function.arguments)}


def answered(call: dict[str, Any], result: str) -> list[dict[str, Any]]:
    """The assistant's call and the caller's result, as a client sends them back."""
    arguments = json.dumps(call["args"])
    tool_call = {
        "id": call["id"],
        "type": "function",
        "function": {"name": call["name"], "arguments": arguments},
    }
    return [
        {"role": "assistant", "content": None, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": call["id"], "content": result},
    ]


class TestStatelessToolLoop:
    async def test_a_call_of_the_callers_tool_is_handed_back_with_finish_reason_tool_calls(
        self, ada: AsyncOpenAI
    ) -> None:
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[user('/tool get_weather {"city": "Paris"}')],
            tools=[WEATHER],  # type: ignore[list-item]
        )
        [choice] = answer.choices
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        [call] = choice.message.tool_calls or []
        assert call.type == "function" and call.id
        assert called(call) == {"id": call.id, "name": "get_weather", "args": {"city": "Paris"}}

    async def test_the_callers_result_is_answered_by_the_model(self, ada: AsyncOpenAI) -> None:
        prompt = user('/tool get_weather {"city": "Paris"}')
        first = await ada.chat.completions.create(model="assistant", messages=[prompt], tools=[WEATHER])  # type: ignore[list-item]
        call = called((first.choices[0].message.tool_calls or [])[0])
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[prompt, *answered(call, "sunny, 21 C")],  # type: ignore[list-item]
            tools=[WEATHER],  # type: ignore[list-item]
        )
        [choice] = answer.choices
        assert choice.finish_reason == "stop"
        assert choice.message.content == "tool get_weather returned: sunny, 21 C"
        assert not choice.message.tool_calls

    async def test_the_agents_own_tools_still_run_on_the_server(self, ada: AsyncOpenAI) -> None:
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[user("/tool current_time")],
            tools=[WEATHER],  # type: ignore[list-item]
        )
        [choice] = answer.choices
        assert choice.finish_reason == "stop"
        assert (choice.message.content or "").startswith("tool current_time returned: 20")

    async def test_a_streamed_tool_call_comes_as_tool_call_deltas(self, ada: AsyncOpenAI) -> None:
        stream = await ada.chat.completions.create(
            model="assistant",
            messages=[user('/tool get_weather {"city": "Oslo"}')],
            tools=[WEATHER],  # type: ignore[list-item]
            stream=True,
        )
        chunks = await chunks_of(stream)
        deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
        [delta] = deltas
        [call] = delta.tool_calls or []
        assert (call.index, call.type) == (0, "function") and call.id
        assert call.function is not None and call.function.name == "get_weather"
        assert json.loads(call.function.arguments or "") == {"city": "Oslo"}
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"

    async def test_the_client_accumulates_a_streamed_call_like_openais(self, ada: AsyncOpenAI) -> None:
        async with ada.chat.completions.stream(
            model="assistant",
            messages=[user('/tool get_weather {"city": "Rome"}')],
            tools=[WEATHER],  # type: ignore[list-item]
        ) as stream:
            final = await stream.get_final_completion()
        [choice] = final.choices
        assert choice.finish_reason == "tool_calls"
        [call] = choice.message.tool_calls or []
        assert called(call)["args"] == {"city": "Rome"}


class TestToolChoice:
    async def test_none_lets_the_model_call_no_tool(self, ada: AsyncOpenAI) -> None:
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[user('/tool get_weather {"city": "Paris"}')],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice="none",
        )
        assert answer.choices[0].finish_reason == "stop"
        assert answer.choices[0].message.content == "unknown tool: get_weather"

    async def test_a_named_function_is_called(self, ada: AsyncOpenAI) -> None:
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[user("what time is it?")],
            tools=[WEATHER, CLOCK],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "read_clock"}},
        )
        [call] = answer.choices[0].message.tool_calls or []
        assert call.function.name == "read_clock"

    async def test_required_calls_a_tool(self, ada: AsyncOpenAI) -> None:
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[user("anything")],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice="required",
        )
        assert answer.choices[0].finish_reason == "tool_calls"
        assert [c.function.name for c in answer.choices[0].message.tool_calls or []] == ["get_weather"]


class TestBadToolRequests:
    @pytest.mark.parametrize(
        ("extra", "param"),
        [
            ({"tools": [{"type": "retrieval"}]}, "tools.0.type"),
            (
                {"tools": [{"type": "function", "function": {"name": "current_time"}}]},
                "tools.0.function.name",
            ),
            (
                {
                    "tools": [
                        {"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}
                    ]
                },
                "tools.0.function.parameters",
            ),
            (
                {"tools": [{"type": "function", "function": {"name": "f", "parameters": [1, 2]}}]},
                "tools.0.function.parameters",
            ),
            (
                {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "ghost"}}},
                "tool_choice.function.name",
            ),
            ({"tool_choice": "required"}, "tool_choice"),
        ],
    )
    async def test_a_bad_tool_definition_is_a_422_naming_it(
        self, ada: AsyncOpenAI, extra: dict[str, Any], param: str
    ) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.chat.completions.create(model="assistant", messages=[user("hi")], extra_body=extra)
        assert raised.value.param == param

    async def test_an_orphan_tool_message_is_a_422(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.chat.completions.create(
                model="assistant",
                messages=[user("hi"), {"role": "tool", "tool_call_id": "call_1", "content": "x"}],
                tools=[WEATHER],  # type: ignore[list-item]
            )
        assert raised.value.param == "messages.1"

    async def test_a_result_for_an_unknown_tool_call_id_is_a_422(self, ada: AsyncOpenAI) -> None:
        call = {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}
        call_message, _ = answered(call, "sunny")
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.chat.completions.create(
                model="assistant",
                messages=[
                    user("hi"),
                    call_message,
                    {"role": "tool", "tool_call_id": "call_2", "content": "x"},
                ],  # type: ignore[list-item]
                tools=[WEATHER],  # type: ignore[list-item]
            )
        assert raised.value.param == "messages.2.tool_call_id"
        assert "call_2" in raised.value.message


class TestToolLoopInAChat:
    async def test_the_call_and_its_result_are_kept_in_the_chat(self, live: LiveServer) -> None:
        chat_id = f"tools-{uuid.uuid4().hex[:8]}"
        headers = {"X-Chat-Id": chat_id}
        async with client_for(live, "tina") as tina:
            first = await tina.chat.completions.create(
                model="assistant",
                messages=[user('/tool get_weather {"city": "Lima"}')],
                tools=[WEATHER],  # type: ignore[list-item]
                extra_headers=headers,
            )
            call = called((first.choices[0].message.tool_calls or [])[0])
            answer = await tina.chat.completions.create(
                model="assistant",
                messages=answered(call, "foggy"),  # type: ignore[arg-type]
                tools=[WEATHER],  # type: ignore[list-item]
                extra_headers=headers,
            )
            recall = await tina.chat.completions.create(
                model="assistant", messages=[user("/recall")], extra_headers=headers
            )
        assert answer.choices[0].message.content == "tool get_weather returned: foggy"
        assert recall.choices[0].message.content == 'recall: /tool get_weather {"city": "Lima"}'
        assert await stored_chats(live, "tina") == [chat_id]
        async with live.client("tina") as client:
            messages = (await client.get(f"/api/chats/{chat_id}/messages")).json()["items"]
        roles = [(m["role"], m["content"]) for m in messages]
        assert roles[:4] == [
            ("user", '/tool get_weather {"city": "Lima"}'),
            ("assistant", ""),
            ("tool", "foggy"),
            ("assistant", "tool get_weather returned: foggy"),
        ]
        assert messages[1]["tool_calls"] == [
            {"id": call["id"], "name": "get_weather", "args": {"city": "Lima"}}
        ]
