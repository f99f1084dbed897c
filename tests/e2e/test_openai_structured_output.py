"""Structured output on /v1/chat/completions (`response_format`), driven by the official `openai`
package; the echo model's `/json TEXT` stands for a model's answer, valid or not."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from tests.e2e.harness import LiveServer
from tests.e2e.test_openai_api import chunks_of, client_for, text_of, user

CITY_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
    "additionalProperties": False,
}
CITY_FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True}}
PARIS = '{"name": "Paris", "population": 2100000}'


class City(BaseModel):
    name: str
    population: int


@pytest.fixture
async def ada(live: LiveServer) -> AsyncIterator[AsyncOpenAI]:
    async with client_for(live, f"ada-{uuid.uuid4().hex[:8]}") as client:
        yield client


class TestJsonSchema:
    async def test_an_answer_valid_against_the_schema_is_the_content(self, ada: AsyncOpenAI) -> None:
        answer = await ada.chat.completions.create(
            model="assistant",
            messages=[user(f"/json {PARIS}")],
            response_format=CITY_FORMAT,  # type: ignore[arg-type]
        )
        assert answer.choices[0].finish_reason == "stop"
        assert json.loads(answer.choices[0].message.content or "") == {"name": "Paris", "population": 2100000}

    async def test_the_client_parses_it_into_its_model(self, ada: AsyncOpenAI) -> None:
        answer = await ada.chat.completions.parse(
            model="assistant", messages=[user(f"/json {PARIS}")], response_format=City
        )
        assert answer.choices[0].message.parsed == City(name="Paris", population=2100000)

    async def test_a_streamed_answer_comes_whole_once_checked(self, ada: AsyncOpenAI) -> None:
        stream = await ada.chat.completions.create(
            model="assistant",
            messages=[user(f"/json {PARIS}")],
            response_format=CITY_FORMAT,  # type: ignore[arg-type]
            stream=True,
        )
        chunks = await chunks_of(stream)
        assert json.loads(text_of(chunks)) == json.loads(PARIS)
        assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == [
            PARIS
        ]

    @pytest.mark.parametrize(
        ("answer", "problem"),
        [
            ('{"name": "Paris"}', "'population' is a required property"),
            ('{"name": "Paris", "population": "many"}', "at population"),
            ("echo: not json at all", "not valid JSON"),
        ],
    )
    async def test_an_answer_that_breaks_the_schema_is_a_502_and_never_passed_on(
        self, ada: AsyncOpenAI, answer: str, problem: str
    ) -> None:
        with pytest.raises(openai.InternalServerError) as raised:
            await ada.chat.completions.create(
                model="assistant",
                messages=[user(f"/json {answer}")],
                response_format=CITY_FORMAT,  # type: ignore[arg-type]
            )
        assert (raised.value.status_code, raised.value.code) == (502, "model_error")
        assert "response format" in raised.value.message and problem in raised.value.message

    async def test_a_streamed_answer_that_breaks_the_schema_is_an_error_not_content(
        self, ada: AsyncOpenAI
    ) -> None:
        stream = await ada.chat.completions.create(
            model="assistant",
            messages=[user('/json {"name": 5}')],
            response_format=CITY_FORMAT,  # type: ignore[arg-type]
            stream=True,
        )
        seen: list[Any] = []
        with pytest.raises(openai.APIError) as raised:
            async for chunk in stream:
                seen.append(chunk)
        assert raised.value.code == "model_error"
        assert text_of(seen) == ""


class TestJsonObject:
    async def test_any_json_object_is_the_content(self, ada: AsyncOpenAI) -> None:
        answer = await ada.chat.completions.create(
            model="assistant", messages=[user('/json {"ok": true}')], response_format={"type": "json_object"}
        )
        assert json.loads(answer.choices[0].message.content or "") == {"ok": True}

    async def test_json_that_is_not_an_object_is_a_502(self, ada: AsyncOpenAI) -> None:
        with pytest.raises(openai.InternalServerError) as raised:
            await ada.chat.completions.create(
                model="assistant", messages=[user("/json [1, 2]")], response_format={"type": "json_object"}
            )
        assert raised.value.code == "model_error"

    async def test_a_chat_keeps_the_checked_answer(self, live: LiveServer) -> None:
        chat_id = f"json-{uuid.uuid4().hex[:8]}"
        async with client_for(live, "jo") as jo:
            answer = await jo.chat.completions.create(
                model="assistant",
                messages=[user('/json {"kept": 1}')],
                response_format={"type": "json_object"},
                extra_headers={"X-Chat-Id": chat_id},
            )
        assert answer.choices[0].message.content == '{"kept": 1}'
        async with live.client("jo") as client:
            messages = (await client.get(f"/api/chats/{chat_id}/messages")).json()["items"]
        assert [m["content"] for m in messages] == ['/json {"kept": 1}', '{"kept": 1}']


class TestBadFormats:
    @pytest.mark.parametrize(
        ("response_format", "param"),
        [
            ({"type": "xml"}, "response_format"),
            ({"type": "json_schema", "json_schema": {"name": "x"}}, "response_format.json_schema"),
            (
                {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}},
                "response_format.json_schema.schema",
            ),
            (
                {"type": "json_schema", "json_schema": {"name": "x", "schema": {"required": "name"}}},
                "response_format.json_schema.schema",
            ),
        ],
    )
    async def test_a_format_that_is_not_json_schema_is_a_422_naming_it(
        self, ada: AsyncOpenAI, response_format: dict[str, Any], param: str
    ) -> None:
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            await ada.chat.completions.create(
                model="assistant",
                messages=[user("hi")],
                response_format=response_format,  # type: ignore[arg-type]
            )
        assert raised.value.param == param
