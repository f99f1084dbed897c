"""Text no database can hold (NUL, unpaired surrogates) and numbers past 64 bits: 4xx, never 500.

PostgreSQL refuses NUL in text and JSON, no driver can encode an unpaired surrogate, and a 64-bit
column cannot take 2**63. The schemas refuse such values first, naming the field (the same on
SQLite, which would store them); whatever reaches the database anyway (a query parameter, a path)
is a 422 through the storage layer's safety net. Each case runs on both databases.
"""

from __future__ import annotations

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
