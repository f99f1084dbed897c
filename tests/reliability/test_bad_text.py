"""Text no database can hold (NUL, unpaired surrogates) and numbers past 64 bits: 4xx, never 500.

PostgreSQL refuses NUL in text and JSON, no driver can encode an unpaired surrogate, and a 64-bit
column cannot take 2**63. The schemas refuse such values first, naming the field (the same on
SQLite, which would store them); whatever reaches the database anyway (a query parameter, a path)
is a 422 through the storage layer's safety net. Each case runs on both databases.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatserver.errors import InvalidInput
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from tests.e2e.harness import LiveServer
from tests.support.builders import NOW
from tests.support.databases import settings_for

NUL = "\u0000"
LONE_SURROGATE = "\ud800"


def raw_json(value: Any) -> bytes:
    """JSON as a client may send it: an unpaired surrogate is a valid ``\\ud800`` escape."""
    return json.dumps(value, ensure_ascii=True).encode()


BODIES = [
    ("/api/chat", {"agent_name": "assistant", "message": f"hi{NUL}", "session_id": "s1"}, "message"),
    ("/api/chat", {"agent_name": f"assistant{NUL}", "message": "hi", "session_id": "s1"}, "agent_name"),
    (
        "/api/chat",
        {"agent_name": "assistant", "message": f"hi{LONE_SURROGATE}", "session_id": "s1"},
        "message",
    ),
    ("/api/chat/stream", {"agent_name": "assistant", "message": f"{NUL}", "session_id": "s1"}, "message"),
    (
        "/api/agent/prompt_customizations/",
        {"agent_name": f"a{NUL}", "content": {"instructions": ["x"]}},
        "agent_name",
    ),
    ("/api/admin/agents", {"name": "nul", "model": "echo", "system_prompt": f"be{NUL}"}, "system_prompt"),
    ("/api/admin/agents", {"name": "nul", "model": "echo", "system_prompt": "", "tools": [NUL]}, "tools"),
    (
        "/api/admin/agents",
        {"name": "nul", "model": "echo", "description": LONE_SURROGATE, "system_prompt": ""},
        "description",
    ),
]


@pytest.mark.parametrize(("path", "payload", "field"), BODIES)
async def test_text_no_database_can_hold_is_a_422_naming_the_field(
    live: LiveServer, path: str, payload: dict[str, Any], field: str
) -> None:
    async with live.client("nul-sender", admin=True) as client:
        response = await client.post(
            path, content=raw_json(payload), headers={"content-type": "application/json"}
        )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
    assert any(field in error["loc"] for error in response.json()["detail"])


async def test_the_openai_api_refuses_it_in_its_own_shape(live: LiveServer) -> None:
    payload = {"model": "assistant", "messages": [{"role": "user", "content": f"hi{NUL}"}]}
    async with live.client("nul-openai") as client:
        response = await client.post("/v1/chat/completions", json=payload)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_error")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/memories", {"agent_name": f"a{NUL}"}),
        ("/api/chat_sessions", {"agent_name": f"a{NUL}"}),
        ("/api/admin/events", {"user_id": f"u{NUL}"}),
        ("/api/admin/events", {"type": f"t{NUL}"}),
        ("/api/agent/prompt_customizations/a%00b", {}),
        ("/api/admin/agents/a%00b", {}),
    ],
)
async def test_what_reaches_the_database_anyway_is_refused_without_a_500(
    live: LiveServer, path: str, params: dict[str, str]
) -> None:
    async with live.client("nul-reader", admin=True) as client:
        response = await client.get(path, params=params)
    assert response.status_code in (200, 404, 422), response.text
    if response.status_code == 422:
        assert response.json()["code"] == "validation_error"


async def test_an_id_past_64_bits_is_a_422(live: LiveServer) -> None:
    async with live.client("big-ids") as client:
        responses = [
            await client.delete(f"/api/memories/{2**63}"),
            await client.delete(f"/api/memories/{10**30}"),
        ]
    assert [(r.status_code, r.json()["code"]) for r in responses] == [(422, "validation_error")] * 2


async def test_the_server_keeps_serving_after_all_of_it(live: LiveServer) -> None:
    async with live.client("after-nul") as client:
        response = await client.post(
            "/api/chat", json={"agent_name": "assistant", "message": "still fine", "session_id": "fine"}
        )
    assert response.json()["response"] == "echo: still fine"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


CRAFTED_BODIES = [
    (
        "/api/agent/prompt_customizations/",
        {"agent_name": "assistant", "content": {"instructions": [LONE_SURROGATE]}},
        ["body", "content", "instructions", 0],
    ),
    (
        "/api/agent/prompt_customizations/",
        {"agent_name": "assistant", "content": {f"key{LONE_SURROGATE}": "x"}},
        ["body", "content", "key\\ud800"],
    ),
    ("/api/chat", {"agent_name": "assistant", "message": "hi", "session_id": "s", "n": 2**63}, ["body", "n"]),
    ("/api/chat", {"agent_name": "a", "message": "", "session_id": "s", "n": -(10**30)}, ["body", "n"]),
    (
        "/api/admin/agents",
        {"name": "deep", "model": "echo", "system_prompt": "", "x": nested(40)},
        ["body", "x", *[0] * 31],
    ),
]


@pytest.mark.parametrize(("path", "payload", "loc"), CRAFTED_BODIES)
async def test_a_body_value_no_storage_can_hold_is_a_422_naming_where_it_is(
    live: LiveServer, path: str, payload: dict[str, Any], loc: list[str | int]
) -> None:
    async with live.client("crafted-body", admin=True) as client:
        response = await client.post(
            path, content=raw_json(payload), headers={"content-type": "application/json"}
        )
    assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


@pytest.mark.parametrize(
    "raw",
    ["9" * 5000, "[" * 5000 + "]" * 5000, "NaN", "-Infinity", "1e999"],
    ids=["5000-digit integer", "nesting past the stack", "NaN", "Infinity", "overflowing float"],
)
async def test_numbers_and_nesting_python_cannot_take_are_a_422_not_a_500(live: LiveServer, raw: str) -> None:
    body = '{"agent_name": "assistant", "message": "hi", "session_id": "s1", "extra": ' + raw + "}"
    async with live.client("crafted-numbers") as client:
        response = await client.post("/api/chat", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text


def chat_cursor(stamp: str, chat_id: str = "c1") -> str:
    return base64.urlsafe_b64encode(f"{stamp}|{chat_id}".encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/api/chats", chat_cursor("2026-01-01T00:00:00")),
        ("/api/chats", chat_cursor("2026-01-01T00:00:00+00:00", "a b")),
        ("/api/chats/c1/messages", "²"),
        ("/api/chats/c1/messages", "١٢٣"),
        ("/api/admin/events", "²"),
        ("/api/admin/events", "9" * 5000),
    ],
    ids=["naive time", "not a chat id", "superscript digit", "arabic digits", "event superscript", "long"],
)
async def test_a_cursor_we_never_issued_is_a_422(live: LiveServer, path: str, cursor: str) -> None:
    async with live.client("crafted-cursor", admin=True) as client:
        response = await client.get(path, params={"before": cursor})
    assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text


def openai_turn_with_tool_arguments(arguments: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "current_time", "arguments": arguments}}
    return {
        "model": "assistant",
        "messages": [
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "noon"},
            {"role": "user", "content": "and now?"},
        ],
    }


@pytest.mark.parametrize(
    "arguments",
    ['{"a": ' + "9" * 30 + "}", '{"a": ' + "9" * 5000 + "}", "[" * 5000 + "]" * 5000, '{"a": "\\ud800"}'],
    ids=["huge integer", "5000 digits", "deep nesting", "unpaired surrogate"],
)
async def test_openai_tool_call_arguments_no_storage_can_hold_are_a_422(
    live: LiveServer, arguments: str
) -> None:
    async with live.client("crafted-arguments") as client:
        response = await client.post("/v1/chat/completions", json=openai_turn_with_tool_arguments(arguments))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ("/sleep ² hi", "usage: /sleep MS"),
        (f"/sleep {'9' * 5000} hi", "usage: /sleep MS"),
        ('/tool current_time {"x": "\\ud800"}', "invalid arguments for tool current_time"),
        ('/tool current_time {"x": NaN}', "invalid arguments for tool current_time"),
    ],
    ids=["superscript digit", "5000 digits", "surrogate in tool arguments", "NaN in tool arguments"],
)
async def test_the_echo_model_answers_crafted_commands_with_usage_not_a_500(
    live: LiveServer, message: str, answer: str
) -> None:
    body = {"agent_name": "assistant", "message": message, "session_id": "crafted-echo"}
    async with live.client("crafted-echo") as client:
        plain = await client.post("/api/chat", json=body)
        streamed = await client.post("/api/chat/stream", json=body)
    assert plain.status_code == 200, plain.text
    assert plain.json()["response"].startswith(answer)
    assert "event: error" not in streamed.text and "event: done" in streamed.text


@pytest.fixture
async def uow_factory(database_url: str) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(settings_for(database_url))
    try:
        yield SqlUnitOfWorkFactory(engine)
    finally:
        await engine.dispose()


async def store_user(uow_factory: SqlUnitOfWorkFactory, user_id: str) -> None:
    async with uow_factory() as uow:
        await uow.users.ensure(user_id, is_admin=False, now=NOW)
        await uow.commit()


async def assert_still_usable(uow_factory: SqlUnitOfWorkFactory) -> None:
    await store_user(uow_factory, "carol")
    async with uow_factory() as uow:
        assert (await uow.users.get("carol")) is not None


async def test_the_storage_layer_refuses_an_unpaired_surrogate_as_invalid_input(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    """The safety net under the schemas, on the unit of work itself: a 4xx, and a usable database."""
    with pytest.raises(InvalidInput):
        await store_user(uow_factory, f"carol{LONE_SURROGATE}")
    await assert_still_usable(uow_factory)


async def test_postgresql_refusing_nul_is_invalid_input_in_a_query_and_in_the_callers_context(
    postgres_url: str,
) -> None:
    """SQLSTATE 22021 from a statement, and from the row-level security context of the caller."""
    engine = create_engine(settings_for(postgres_url))
    uow_factory = SqlUnitOfWorkFactory(engine)
    try:
        with pytest.raises(InvalidInput):
            await store_user(uow_factory, f"carol{NUL}")
        with pytest.raises(InvalidInput):
            async with uow_factory(user_id=f"carol{NUL}") as uow:
                await uow.chats.list(f"carol{NUL}", limit=1, before=None)
        await assert_still_usable(uow_factory)
    finally:
        await engine.dispose()
