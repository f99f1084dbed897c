"""Session instances over real HTTP: the API contract, and heartbeats, TTL deactivation and agent
eviction on a server whose background tasks run every half second."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from chatserver.domain import AuditEvent
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from chatserver.storage.sql.tables import agents
from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer

SESSIONS = "/api/chat_sessions"
SESSION_FIELDS = {"id", "chat_id", "agent_name", "is_active", "created_at", "updated_at"}
INTERVAL = 0.5
TTL = 3.0
WAIT_SECONDS = 60.0


def new_chat_id() -> str:
    return str(uuid.uuid4())


async def turn(client: httpx.AsyncClient, agent: str, chat_id: str, message: str) -> str:
    response = await client.post(
        "/api/chat", json={"agent_name": agent, "message": message, "session_id": chat_id}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["response"])


# The contract, on the module's default server (background tasks every 300 s: they stay out of the way)


async def test_opening_without_a_chat_id_creates_a_chat_the_caller_sees(live: LiveServer) -> None:
    async with live.client("sessions-ann") as client:
        opened = await client.post(SESSIONS, json={"agent_name": "assistant"})
        chats = await client.get("/api/chats")
    body = opened.json()
    assert opened.status_code == 201
    assert set(body) == SESSION_FIELDS
    assert (body["agent_name"], body["is_active"]) == ("assistant", True)
    assert uuid.UUID(body["chat_id"]) and uuid.UUID(body["id"])
    assert [(c["id"], c["agent_name"], c["title"]) for c in chats.json()["items"]] == [
        (body["chat_id"], "assistant", None)
    ]


async def test_a_session_opened_on_an_existing_chat_continues_its_conversation(live: LiveServer) -> None:
    chat_id = new_chat_id()
    async with live.client("sessions-ben") as client:
        await turn(client, "assistant", chat_id, "apple")
        opened = await client.post(SESSIONS, json={"agent_name": "assistant", "chat_id": chat_id})
        recalled = await turn(client, "assistant", chat_id, "/recall")
    assert opened.status_code == 201 and opened.json()["chat_id"] == chat_id
    assert recalled == "recall: apple"


async def test_heartbeat_end_and_reactivation_are_visible_in_the_list(live: LiveServer) -> None:
    async with live.client("sessions-cid") as client:
        opened = (await client.post(SESSIONS, json={"agent_name": "assistant"})).json()
        beat = await client.post(f"{SESSIONS}/{opened['id']}/heartbeat")
        ended = await client.delete(f"{SESSIONS}/{opened['id']}")
        inactive = (await client.get(SESSIONS, params={"active": "false"})).json()
        revived = await client.post(f"{SESSIONS}/{opened['id']}/heartbeat")
        active = (await client.get(SESSIONS, params={"active": "true", "agent_name": "assistant"})).json()
    assert beat.status_code == 200 and beat.json()["id"] == opened["id"] and beat.json()["is_active"]
    assert beat.json()["updated_at"] >= opened["updated_at"]
    assert ended.status_code == 204 and ended.content == b""
    assert [(s["id"], s["is_active"]) for s in inactive] == [(opened["id"], False)]
    assert revived.status_code == 200 and revived.json()["is_active"] is True
    assert [s["id"] for s in active] == [opened["id"]]


async def test_lists_are_filtered_by_agent_and_activity(live: LiveServer) -> None:
    await live.create_agent("sessions-other")
    async with live.client("sessions-dee") as client:
        first = (await client.post(SESSIONS, json={"agent_name": "assistant"})).json()
        second = (await client.post(SESSIONS, json={"agent_name": "sessions-other"})).json()
        await client.delete(f"{SESSIONS}/{second['id']}")
        everything = (await client.get(SESSIONS)).json()
        other_agent = (await client.get(SESSIONS, params={"agent_name": "sessions-other"})).json()
        unknown_agent = (await client.get(SESSIONS, params={"agent_name": "nobody"})).json()
    assert [s["id"] for s in everything] == [first["id"], second["id"]]
    assert [s["id"] for s in other_agent] == [second["id"]]
    assert unknown_agent == []


async def test_another_users_sessions_and_chats_are_not_found(live: LiveServer) -> None:
    async with live.client("sessions-eve") as eve, live.client("sessions-fay") as fay:
        mine = (await eve.post(SESSIONS, json={"agent_name": "assistant"})).json()
        beat = await fay.post(f"{SESSIONS}/{mine['id']}/heartbeat")
        ended = await fay.delete(f"{SESSIONS}/{mine['id']}")
        listed = (await fay.get(SESSIONS)).json()
        on_her_chat_id = await fay.post(
            SESSIONS, json={"agent_name": "assistant", "chat_id": mine["chat_id"]}
        )
        still = (await eve.get(SESSIONS)).json()
    for response in (beat, ended):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert listed == []
    # A chat id names a chat of the caller's own: fay's session opens on her new chat of that id.
    assert on_her_chat_id.status_code == 201 and on_her_chat_id.json()["id"] != mine["id"]
    assert [(s["id"], s["is_active"]) for s in still] == [(mine["id"], True)]


async def test_bad_requests_are_clear_4xx_answers(live: LiveServer) -> None:
    await live.create_agent("sessions-second")
    async with live.client("sessions-gus") as client, live.raw_client() as anonymous:
        chat_id = new_chat_id()
        await client.post(SESSIONS, json={"agent_name": "assistant", "chat_id": chat_id})
        answers = {
            "unknown agent": await client.post(SESSIONS, json={"agent_name": "nobody"}),
            "bad chat id": await client.post(SESSIONS, json={"agent_name": "assistant", "chat_id": "a b"}),
            "extra field": await client.post(SESSIONS, json={"agent_name": "assistant", "x": 1}),
            "bad filter": await client.get(SESSIONS, params={"active": "maybe"}),
            "unknown session": await client.post(f"{SESSIONS}/{uuid.uuid4()}/heartbeat"),
            "other agent's chat": await client.post(
                SESSIONS, json={"agent_name": "sessions-second", "chat_id": chat_id}
            ),
            "no token": await anonymous.post(SESSIONS, json={"agent_name": "assistant"}),
        }
    codes = {name: (r.status_code, r.json()["code"]) for name, r in answers.items()}
    assert codes == {
        "unknown agent": (404, "not_found"),
        "bad chat id": (422, "validation_error"),
        "extra field": (422, "validation_error"),
        "bad filter": (422, "validation_error"),
        "unknown session": (404, "not_found"),
        "other agent's chat": (409, "conflict"),
        "no token": (401, "unauthorized"),
    }


# The background tasks, on a server that sweeps every half second


@pytest.fixture(scope="module", params=DATABASES)
def fast(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("sessions")
    with live_server(
        request.param, directory, cleanup_interval_seconds=INTERVAL, session_ttl_seconds=TTL
    ) as server:
        yield server


@pytest.fixture
async def database(fast: LiveServer) -> AsyncIterator[SqlUnitOfWorkFactory]:
    """The server's database, read and written beside it (as an operator's SQL session would)."""
    engine = create_engine(fast.settings)
    yield SqlUnitOfWorkFactory(engine)
    await engine.dispose()


async def events(database: SqlUnitOfWorkFactory, type: str, user_id: str | None = None) -> list[AuditEvent]:
    async with database() as uow:
        return await uow.events.list(type=type, user_id=user_id, limit=1000, before=None)


async def set_prompt_behind_the_servers_back(database: SqlUnitOfWorkFactory, agent: str, prompt: str) -> None:
    """Change the stored prompt without telling the server, so only a rebuilt agent shows it: a raw
    update that leaves the agent's version stamp as it was (an update through the repository bumps
    it, and the next turn would rebuild for that reason instead)."""
    async with database() as uow:
        statement = update(agents).where(agents.c.name == agent).values(system_prompt=prompt)
        assert (await uow.connection.execute(statement)).rowcount == 1
        await uow.commit()


async def eventually(check: Any, what: str) -> Any:
    """Poll ``check`` (async, returns a truthy value when done) for at most WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_heartbeating_session_keeps_its_agent_cached_across_sweeps(
    fast: LiveServer, database: SqlUnitOfWorkFactory
) -> None:
    await fast.create_agent("kept", system_prompt="Prompt one.")
    async with fast.client("hal") as client:
        opened = (await client.post(SESSIONS, json={"agent_name": "kept"})).json()
        assert "Prompt one." in await turn(client, "kept", opened["chat_id"], "/system")
        await set_prompt_behind_the_servers_back(database, "kept", "Prompt two.")
        sweeps_before = len(await events(database, "sweep.completed"))

        async def three_more_sweeps_while_beating() -> bool:
            beat = await client.post(f"{SESSIONS}/{opened['id']}/heartbeat")
            assert beat.status_code == 200 and beat.json()["is_active"], beat.text
            return len(await events(database, "sweep.completed")) >= sweeps_before + 3

        await eventually(three_more_sweeps_while_beating, "three sweeps")
        answer = await turn(client, "kept", opened["chat_id"], "/system")
    assert "Prompt one." in answer
    assert await events(database, "agent.evicted", "hal") == []


async def test_a_silent_session_is_deactivated_and_its_agent_evicted_then_rebuilt(
    fast: LiveServer, database: SqlUnitOfWorkFactory
) -> None:
    await fast.create_agent("dropped", system_prompt="Prompt one.")
    async with fast.client("ida") as client:
        opened = (await client.post(SESSIONS, json={"agent_name": "dropped"})).json()
        assert "Prompt one." in await turn(client, "dropped", opened["chat_id"], "/system")
        await set_prompt_behind_the_servers_back(database, "dropped", "Prompt two.")

        async def inactive() -> list[Any]:
            listed = (await client.get(SESSIONS, params={"active": "false"})).json()
            return [s for s in listed if s["id"] == opened["id"]]

        await eventually(inactive, "the silent session to be deactivated")
        evicted = await eventually(lambda: events(database, "agent.evicted", "ida"), "the eviction")
        answer = await turn(client, "dropped", opened["chat_id"], "/system")
    deactivated = await events(database, "session.deactivated", "ida")
    assert [(e.agent_name, e.data["session_id"]) for e in deactivated] == [("dropped", opened["id"])]
    assert [(e.agent_name, e.data["reason"]) for e in evicted] == [("dropped", "no_active_session")]
    assert "Prompt two." in answer
