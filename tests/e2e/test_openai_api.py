"""The OpenAI-compatible API, driven by the official `openai` package against a live server."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk

from tests.e2e.harness import LiveServer, mint_token
from tests.e2e.streams import events_of


def client_for(live: LiveServer, user: str, *, api_key: str | None = None) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=live.url + "/v1", api_key=api_key or mint_token(user), max_retries=0, timeout=30.0
    )


@pytest.fixture
async def ada(live: LiveServer) -> AsyncIterator[AsyncOpenAI]:
    async with client_for(live, f"ada-{uuid.uuid4().hex[:8]}") as client:
        yield client


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


async def chunks_of(stream: Any) -> list[ChatCompletionChunk]:
    return [chunk async for chunk in stream]


def text_of(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def stored_chats(live: LiveServer, owner: str) -> list[str]:
    async with live.client(owner) as client:
        return [c["id"] for c in (await client.get("/api/chats")).json()["items"]]


class TestModels:
    async def test_the_agents_are_listed_as_models(self, live: LiveServer, ada: AsyncOpenAI) -> None:
        await live.create_agent("lister")
        models = [model async for model in ada.models.list()]
        ids = {model.id for model in models}
        assert {"assistant", "lister"} <= ids
        assert {model.object for model in models} == {"model"}
        assert all(model.created > 0 and model.owned_by == "chatserver" for model in models)

    async def test_an_agent_is_retrieved_as_a_model(self, live: LiveServer, ada: AsyncOpenAI) -> None:
        await live.create_agent("retrievable")
        model = await ada.models.retrieve("retrievable")
        listed = {m.id: m async for m in ada.models.list()}
        assert model == listed["retrievable"]
        assert (model.id, model.object, model.owned_by) == ("retrievable", "model", "chatserver")
        assert model.created > 0

    async def test_retrieving_an_unknown_model_is_a_404_model_not_found(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.NotFoundError) as raised:
            await ada.models.retrieve("ghost")
        assert (raised.value.code, raised.value.param, raised.value.type) == (
            "model_not_found",
            "model",
            "invalid_request_error",
        )
        assert "ghost" in raised.value.message

    async def test_retrieving_a_model_needs_a_token(self, live: LiveServer) -> None:
        async with client_for(live, "x", api_key="not-a-valid-token") as client:
            with pytest.raises(openai.AuthenticationError):
                await client.models.retrieve("assistant")


class TestStateless:
    async def test_a_completion_has_openais_shape(self, live: LiveServer, ada: AsyncOpenAI) -> None:
        before = int(time.time())
        answer = await ada.chat.completions.create(model="assistant", messages=[user("hello there")])
        assert answer.id.startswith("chatcmpl-") and answer.object == "chat.completion"
        assert answer.model == "assistant" and before - 5 <= answer.created <= time.time() + 5
        [choice] = answer.choices
        assert (choice.index, choice.finish_reason) == (0, "stop")
        assert (choice.message.role, choice.message.content) == ("assistant", "echo: hello there")
        assert (
            answer.usage is not None and answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
        )
        assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens

    async def test_the_requests_messages_are_the_whole_context_and_nothing_is_stored(
        self, live: LiveServer
    ) -> None:
        async with client_for(live, "bert") as bert:
            answer = await bert.chat.completions.create(
                model="assistant",
                messages=[
                    user("alpha"),
                    assistant("echo: alpha"),
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "be"}, {"type": "text", "text": "ta"}],
                    },
                    assistant("echo: beta"),
                    user("/recall"),
                ],
            )
            again = await bert.chat.completions.create(model="assistant", messages=[user("/recall")])
        assert answer.choices[0].message.content == "recall: alpha | beta"
        assert again.choices[0].message.content == "recall: "
        assert await stored_chats(live, "bert") == []

    async def test_system_messages_are_appended_to_the_agents_prompt(
        self, live: LiveServer, ada: AsyncOpenAI
    ) -> None:
        await live.create_agent("poet", system_prompt="You write poems.")
        answer = await ada.chat.completions.create(
            model="poet",
            messages=[
                {"role": "system", "content": "Rhyme."},
                user("hi"),
                {"role": "developer", "content": "Be brief."},
                user("/system"),
            ],
        )
        assert answer.choices[0].message.content == "You write poems.\n\nRhyme.\n\nBe brief."

    async def test_tool_calls_and_results_in_the_request_are_accepted_as_history(
        self, ada: AsyncOpenAI
    ) -> None:
        call = {"id": "call_1", "type": "function", "function": {"name": "current_time", "arguments": "{}"}}
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[
                user("what time is it"),
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "noon"},
                assistant("it is noon"),
                user("/recall"),
            ],
        )
        assert answer.choices[0].message.content == "recall: what time is it"

    async def test_a_streamed_completion_sends_openai_chunks(self, live: LiveServer) -> None:
        async with client_for(live, "cleo") as cleo:
            stream = await cleo.chat.completions.create(
                model="assistant",
                messages=[user("one two three")],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = await chunks_of(stream)
        assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
        assert {c.object for c in chunks} == {"chat.completion.chunk"}
        assert {c.model for c in chunks} == {"assistant"}
        assert chunks[0].choices[0].delta.role == "assistant"
        assert text_of(chunks) == "echo: one two three"
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 4  # word by word
        *_, last_choice, usage = chunks
        assert last_choice.choices[0].finish_reason == "stop"
        assert [c.choices[0].finish_reason for c in chunks[:-2]] == [None] * (len(chunks) - 2)
        assert usage.choices == [] and usage.usage is not None and usage.usage.total_tokens > 0
        assert await stored_chats(live, "cleo") == []

    async def test_a_streamed_completion_sees_the_requests_history(self, ada: AsyncOpenAI) -> None:
        stream = await ada.chat.completions.create(
            model="assistant", messages=[user("red"), assistant("ok"), user("/recall")], stream=True
        )
        chunks = await chunks_of(stream)
        assert text_of(chunks) == "recall: red"
        assert all(c.usage is None for c in chunks)

    async def test_an_api_key_works_like_a_jwt(self, live: LiveServer) -> None:
        issued = await live.issue_key("keyholder")
        async with client_for(live, "keyholder", api_key=issued.key) as client:
            answer = await client.chat.completions.create(model="assistant", messages=[user("by key")])
        assert answer.choices[0].message.content == "echo: by key"


class TestKeptConversation:
    async def test_with_x_chat_id_the_server_keeps_the_conversation(self, live: LiveServer) -> None:
        chat_id = str(uuid.uuid4())
        headers = {"X-Chat-Id": chat_id}
        async with client_for(live, "dora") as dora:
            first = await dora.chat.completions.create(
                model="assistant",
                messages=[user("ignored"), assistant("ignored too"), user("first")],
                extra_headers=headers,
            )
            raw = await dora.chat.completions.with_raw_response.create(
                model="assistant", messages=[user("second")], extra_headers=headers
            )
            recall = await dora.chat.completions.create(
                model="assistant", messages=[user("/recall")], extra_headers=headers
            )
        assert first.choices[0].message.content == "echo: first"
        assert raw.headers["x-chat-id"] == chat_id
        assert recall.choices[0].message.content == "recall: first | second"
        async with live.client("dora") as client:
            page = await client.get(f"/api/chats/{chat_id}/messages")
        contents = [m["content"] for m in page.json()["items"]]
        assert contents == [
            "first",
            "echo: first",
            "second",
            "echo: second",
            "/recall",
            recall.choices[0].message.content,
        ]

    async def test_a_streamed_turn_with_x_chat_id_is_stored(self, live: LiveServer) -> None:
        chat_id = str(uuid.uuid4())
        async with client_for(live, "eli") as eli:
            stream = await eli.chat.completions.create(
                model="assistant", messages=[user("kept")], stream=True, extra_headers={"X-Chat-Id": chat_id}
            )
            chunks = await chunks_of(stream)
            recall = await eli.chat.completions.create(
                model="assistant", messages=[user("/recall")], extra_headers={"X-Chat-Id": chat_id}
            )
        assert text_of(chunks) == "echo: kept"
        assert recall.choices[0].message.content == "recall: kept"
        assert await stored_chats(live, "eli") == [chat_id]

    async def test_another_users_chat_id_names_a_new_chat_of_the_callers_own(self, live: LiveServer) -> None:
        chat_id = str(uuid.uuid4())
        async with client_for(live, "fay") as fay, client_for(live, "gus") as gus:
            await fay.chat.completions.create(
                model="assistant", messages=[user("mine")], extra_headers={"X-Chat-Id": chat_id}
            )
            answer = await gus.chat.completions.create(
                model="assistant", messages=[user("/recall")], extra_headers={"X-Chat-Id": chat_id}
            )
        assert answer.choices[0].message.content == "recall: "
        assert await stored_chats(live, "gus") == [chat_id]


class TestErrors:
    async def test_a_bad_token_is_a_401_in_openais_shape(self, live: LiveServer) -> None:
        async with client_for(live, "x", api_key="not-a-valid-token") as client:
            with pytest.raises(openai.AuthenticationError) as raised:
                await client.chat.completions.create(model="assistant", messages=[user("hi")])
            with pytest.raises(openai.AuthenticationError):
                await client.models.list()
        assert raised.value.status_code == 401
        body = raised.value.body
        assert isinstance(body, dict)
        assert body == {
            "message": body["message"],
            "type": "authentication_error",
            "code": "unauthorized",
            "param": None,
        }

    async def test_an_unknown_model_is_a_404_model_not_found(self, ada: AsyncOpenAI) -> None:
        for stream in (False, True):
            with pytest.raises(openai.NotFoundError) as raised:
                await ada.chat.completions.create(model="ghost", messages=[user("hi")], stream=stream)
            assert (raised.value.code, raised.value.param) == ("model_not_found", "model")
            assert "ghost" in raised.value.message

    @pytest.mark.parametrize(
        ("messages", "extra", "expected"),
        [
            ([], {}, "validation_error"),
            ([assistant("last word")], {}, "validation_error"),
            ([user("")], {}, "validation_error"),
            (
                [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
                {},
                "validation_error",
            ),
            ([user("hi")], {"extra_headers": {"X-Chat-Id": "not a valid id!"}}, "validation_error"),
            (
                [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
                    },
                    user("hi"),
                ],
                {},
                "validation_error",
            ),
        ],
    )
    async def test_bad_requests_are_422_in_openais_shape(
        self, ada: AsyncOpenAI, messages: list[Any], extra: dict[str, Any], expected: str
    ) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.chat.completions.create(model="assistant", messages=messages, **extra)
        assert raised.value.status_code == 422
        assert raised.value.code == expected and raised.value.type == "invalid_request_error"

    @pytest.mark.parametrize(
        ("messages", "extra", "param"),
        [
            ([user("")], {}, "messages.0.content"),
            ([user("hi"), {"role": "robot", "content": "x"}], {}, "messages.1.role"),
            ([{"role": "user", "content": 5}], {}, "messages.0.content"),
            ([user("hi")], {"extra_body": {"stream": "often"}}, "stream"),
            ([user("hi")], {"n": 2}, "n"),
            ([user("hi")], {"extra_headers": {"X-Chat-Id": "not a valid id!"}}, "X-Chat-Id"),
            ([assistant("last word")], {}, "messages.0.role"),
        ],
    )
    async def test_a_422_names_the_offending_field_in_param(
        self, ada: AsyncOpenAI, messages: list[Any], extra: dict[str, Any], param: str
    ) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.chat.completions.create(model="assistant", messages=messages, **extra)
        assert raised.value.param == param
        body = raised.value.body
        assert isinstance(body, dict) and body["param"] == param
        assert body["message"].startswith(f"{param}: ") and len(body["message"]) > len(f"{param}: ")

    async def test_a_missing_model_is_named_in_param(self, live: LiveServer) -> None:
        async with live.client("ida") as client:
            response = await client.post("/v1/chat/completions", json={"messages": [user("hi")]})
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["param"], error["code"]) == ("model", "validation_error")
        assert error["message"] == "model: Field required"

    async def test_the_api_routes_keep_their_detail_list(self, live: LiveServer) -> None:
        async with live.client("ida") as client:
            response = await client.post("/api/chat", json={"agent_name": "assistant", "message": "hi"})
        assert response.status_code == 422
        assert response.json().keys() == {"detail", "code"}
        assert any(item["loc"] == ["body", "session_id"] for item in response.json()["detail"])

    async def test_a_failing_model_is_a_502(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.InternalServerError) as raised:
            await ada.chat.completions.create(model="assistant", messages=[user("/fail")])
        assert raised.value.status_code == 502 and raised.value.code == "model_error"

    async def test_a_model_failing_mid_stream_raises_in_the_client(self, ada: AsyncOpenAI) -> None:
        stream = await ada.chat.completions.create(model="assistant", messages=[user("/fail")], stream=True)
        with pytest.raises(openai.APIError) as raised:
            await chunks_of(stream)
        assert raised.value.code == "model_error"


class TestWireFormat:
    async def test_a_stream_ends_with_done_and_an_error_has_exactly_openais_fields(
        self, live: LiveServer
    ) -> None:
        body = {"model": "assistant", "messages": [user("wire")], "stream": True}
        async with live.client("hal") as client:
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                events = [event async for event in events_of(response)]
            failing = {**body, "messages": [user("/fail")]}
            async with client.stream("POST", "/v1/chat/completions", json=failing) as response:
                failed = [event async for event in events_of(response)]
            missing = await client.post("/v1/chat/completions", json={"messages": [user("hi")]})
        assert response.headers["content-type"].startswith("text/event-stream")
        assert {event.name for event in events} == {"message"}
        assert events[-1].data == "[DONE]"
        assert [e.data["choices"][0]["delta"] for e in events[:-1]] == [
            {"role": "assistant", "content": ""},
            {"content": "echo: "},
            {"content": "wire"},
            {},
        ]
        first, error = failed
        assert first.data["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        assert error.data.keys() == {"error"}
        assert error.data["error"].keys() == {"message", "type", "code", "param"}
        assert (error.data["error"]["type"], error.data["error"]["code"]) == ("api_error", "model_error")
        assert missing.status_code == 422
        assert missing.json()["error"]["code"] == "validation_error"
