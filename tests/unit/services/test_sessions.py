"""SessionService on fakes: opening on new and existing chats, heartbeats, ending, listing, owners only."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from chatserver.domain import AgentConfig
from chatserver.errors import Conflict, NotFound
from chatserver.services.sessions import SessionService
from tests.unit.services.conftest import World


@pytest.fixture
def sessions(world: World) -> SessionService:
    numbers = itertools.count(1)
    world.uow.store.agents["helper"] = AgentConfig("helper", "echo", "Helper prompt.")
    return SessionService(world.uow, world.clock, ids=lambda: f"id-{next(numbers)}")


def event_types(world: World) -> list[str]:
    return [event.type for event in world.uow.store.events]


async def test_opening_without_a_chat_id_creates_a_new_chat_for_the_caller(
    world: World, sessions: SessionService
) -> None:
    opened = await sessions.open("u1", "assistant")
    chat = world.uow.store.chats[("u1", opened.chat_id)]
    assert (opened.user_id, opened.agent_name, opened.is_active) == ("u1", "assistant", True)
    assert opened.last_heartbeat_at == opened.created_at == world.clock.now()
    assert (chat.user_id, chat.agent_name, chat.title, chat.turn_count) == ("u1", "assistant", None, 0)
    assert world.uow.store.sessions == {opened.id: opened}


async def test_opening_is_audited_with_the_session_id(world: World, sessions: SessionService) -> None:
    opened = await sessions.open("u1", "assistant")
    [event] = world.uow.store.events
    assert (event.type, event.user_id, event.agent_name, event.chat_id) == (
        "session.started",
        "u1",
        "assistant",
        opened.chat_id,
    )
    assert event.data == {"session_id": opened.id}


async def test_opening_on_the_callers_existing_chat_reuses_it(world: World, sessions: SessionService) -> None:
    await world.chat.say("u1", "assistant", "c1", "hello")
    turns_before = world.uow.store.chats[("u1", "c1")]
    first = await sessions.open("u1", "assistant", "c1")
    second = await sessions.open("u1", "assistant", "c1")
    assert (first.chat_id, second.chat_id) == ("c1", "c1")
    assert first.id != second.id
    assert list(world.uow.store.chats) == [("u1", "c1")]
    assert world.uow.store.chats[("u1", "c1")] == turns_before


async def test_opening_with_a_new_chat_id_creates_that_chat(world: World, sessions: SessionService) -> None:
    opened = await sessions.open("u1", "assistant", "client-chosen")
    assert opened.chat_id == "client-chosen"
    assert world.uow.store.chats[("u1", "client-chosen")].user_id == "u1"


async def test_a_chat_id_another_user_has_opens_on_a_new_chat_of_the_callers_own(
    world: World, sessions: SessionService
) -> None:
    first = await sessions.open("u1", "assistant", "c1")
    before = world.uow.store.chats[("u1", "c1")]
    second = await sessions.open("u2", "assistant", "c1")
    assert (second.user_id, second.chat_id) == ("u2", "c1") and second.id != first.id
    assert sorted(world.uow.store.chats) == [("u1", "c1"), ("u2", "c1")]
    assert world.uow.store.chats[("u1", "c1")] == before


async def test_an_unknown_agent_is_not_found_and_no_chat_is_created(
    world: World, sessions: SessionService
) -> None:
    with pytest.raises(NotFound):
        await sessions.open("u1", "nobody", "c1")
    assert (world.uow.store.chats, world.uow.store.sessions, world.uow.store.events) == ({}, {}, [])


async def test_the_callers_chat_with_another_agent_is_a_conflict(
    world: World, sessions: SessionService
) -> None:
    await sessions.open("u1", "assistant", "c1")
    with pytest.raises(Conflict):
        await sessions.open("u1", "helper", "c1")
    assert [s.agent_name for s in world.uow.store.sessions.values()] == ["assistant"]


async def test_a_heartbeat_refreshes_the_instance(world: World, sessions: SessionService) -> None:
    opened = await sessions.open("u1", "assistant")
    world.clock.advance(30)
    beaten = await sessions.heartbeat("u1", opened.id)
    assert beaten.last_heartbeat_at == beaten.updated_at == opened.created_at + timedelta(seconds=30)
    assert world.uow.store.sessions[opened.id] == beaten
    assert event_types(world) == ["session.started"]


async def test_ending_deactivates_and_audits_and_a_heartbeat_reactivates(
    world: World, sessions: SessionService
) -> None:
    opened = await sessions.open("u1", "assistant")
    ended = await sessions.end("u1", opened.id)
    assert not world.uow.store.sessions[opened.id].is_active
    revived = await sessions.heartbeat("u1", opened.id)
    assert (ended.is_active, revived.is_active) == (False, True)
    assert world.uow.store.sessions[opened.id].is_active
    assert event_types(world) == ["session.started", "session.ended"]
    assert world.uow.store.events[-1].data == {"session_id": opened.id}


async def test_nobody_heartbeats_or_ends_another_users_session(
    world: World, sessions: SessionService
) -> None:
    opened = await sessions.open("u1", "assistant")
    with pytest.raises(NotFound):
        await sessions.heartbeat("u2", opened.id)
    with pytest.raises(NotFound):
        await sessions.end("u2", opened.id)
    with pytest.raises(NotFound):
        await sessions.end("u1", "no-such-session")
    assert world.uow.store.sessions == {opened.id: opened}
    assert event_types(world) == ["session.started"]


async def test_listing_shows_the_callers_sessions_filtered_by_agent_and_activity(
    world: World, sessions: SessionService
) -> None:
    first = await sessions.open("u1", "assistant")
    second = await sessions.open("u1", "helper")
    await sessions.end("u1", second.id)
    await sessions.open("u2", "assistant")

    async def ids(agent_name: str | None = None, active: bool | None = None) -> list[str]:
        return [s.id for s in await sessions.list("u1", agent_name=agent_name, active=active)]

    assert await ids() == [first.id, second.id]
    assert await ids(agent_name="helper") == [second.id]
    assert await ids(active=True) == [first.id]
    assert await ids(active=False) == [second.id]
    assert await ids(agent_name="assistant", active=False) == []
