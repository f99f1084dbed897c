"""Session instances: heartbeats keep them active, the sweep deactivates stale ones, owners only."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatserver.domain import SessionInstance
from chatserver.errors import Conflict
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import at, chat, session


@pytest.fixture
async def chats(uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]) -> None:
    async with uow_factory() as uow:
        await uow.chats.create_if_absent(chat("chat-a", "alice"))
        await uow.chats.create_if_absent(chat("chat-b", "bob"))
        await uow.commit()


async def _add(uow_factory: SqlUnitOfWorkFactory, *sessions: SessionInstance) -> None:
    async with uow_factory() as uow:
        for each in sessions:
            await uow.sessions.add(each)
        await uow.commit()


async def test_an_added_session_is_read_back_by_its_owner_only(
    uow_factory: SqlUnitOfWorkFactory, chats: None
) -> None:
    mine = session("alice", "chat-a", id="s1")
    await _add(uow_factory, mine)
    async with uow_factory() as uow:
        seen = (await uow.sessions.get("alice", "s1"), await uow.sessions.get("bob", "s1"))
    assert seen == (mine, None)


async def test_a_duplicate_session_id_is_a_conflict(uow_factory: SqlUnitOfWorkFactory, chats: None) -> None:
    await _add(uow_factory, session("alice", "chat-a", id="s1"))
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.sessions.add(session("alice", "chat-a", id="s1"))


async def test_sessions_are_listed_oldest_first_and_filtered_by_agent_and_activity(
    uow_factory: SqlUnitOfWorkFactory, chats: None
) -> None:
    await _add(
        uow_factory,
        session("alice", "chat-a", id="s2", created_at=at(2)),
        session("alice", "chat-a", id="s1", created_at=at(1)),
        session("alice", "chat-a", id="s3", created_at=at(3), agent_name="other"),
        session("alice", "chat-a", id="s4", created_at=at(4), is_active=False),
        session("bob", "chat-b", id="s5"),
    )
    async with uow_factory(user_id="alice") as uow:
        listed = {
            (agent, active): [s.id for s in await uow.sessions.list("alice", agent_name=agent, active=active)]
            for agent in (None, "helper")
            for active in (None, True, False)
        }
    assert listed == {
        (None, None): ["s1", "s2", "s3", "s4"],
        (None, True): ["s1", "s2", "s3"],
        (None, False): ["s4"],
        ("helper", None): ["s1", "s2", "s4"],
        ("helper", True): ["s1", "s2"],
        ("helper", False): ["s4"],
    }


async def test_a_heartbeat_refreshes_and_reactivates_and_ending_deactivates(
    uow_factory: SqlUnitOfWorkFactory, chats: None
) -> None:
    original = session("alice", "chat-a", id="s1")
    await _add(uow_factory, original)
    async with uow_factory(user_id="alice") as uow:
        ended = await uow.sessions.end("alice", "s1", now=at(10))
        revived = await uow.sessions.heartbeat("alice", "s1", now=at(20))
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.sessions.get("alice", "s1")
    assert ended == replace(original, is_active=False, updated_at=at(10))
    assert revived == stored == replace(original, last_heartbeat_at=at(20), updated_at=at(20))


async def test_nobody_heartbeats_or_ends_another_users_session(
    uow_factory: SqlUnitOfWorkFactory, chats: None
) -> None:
    mine = session("alice", "chat-a", id="s1")
    await _add(uow_factory, mine)
    async with uow_factory(user_id="bob") as uow:
        touched = (
            await uow.sessions.heartbeat("bob", "s1", now=at(5)),
            await uow.sessions.end("bob", "s1", now=at(5)),
            await uow.sessions.list("bob", agent_name=None, active=None),
        )
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        assert await uow.sessions.get("alice", "s1") == mine
    assert touched == (None, None, [])


async def test_the_sweep_deactivates_only_active_sessions_with_a_heartbeat_before_the_cutoff(
    uow_factory: SqlUnitOfWorkFactory, chats: None
) -> None:
    await _add(
        uow_factory,
        session("alice", "chat-a", id="stale", last_heartbeat_at=at(0)),
        session("bob", "chat-b", id="stale-too", last_heartbeat_at=at(5)),
        session("alice", "chat-a", id="fresh", last_heartbeat_at=at(100)),
        session("alice", "chat-a", id="ended", last_heartbeat_at=at(0), is_active=False),
    )
    async with uow_factory() as uow:
        swept = await uow.sessions.deactivate_stale(cutoff=at(50), now=at(200))
        again = await uow.sessions.deactivate_stale(cutoff=at(50), now=at(201))
        await uow.commit()
    async with uow_factory() as uow:
        active = [s.id for s in await uow.sessions.list("alice", agent_name=None, active=True)]
    assert sorted((s.id, s.is_active, s.updated_at) for s in swept) == [
        ("stale", False, at(200)),
        ("stale-too", False, at(200)),
    ]
    assert (again, active) == ([], ["fresh"])


async def test_active_pairs_name_each_user_and_agent_with_a_live_session_once(
    uow_factory: SqlUnitOfWorkFactory, chats: None
) -> None:
    await _add(
        uow_factory,
        session("alice", "chat-a", id="s1"),
        session("alice", "chat-a", id="s2"),
        session("alice", "chat-a", id="s3", agent_name="other", is_active=False),
        session("bob", "chat-b", id="s4", agent_name="other"),
    )
    async with uow_factory() as uow:
        assert await uow.sessions.active_pairs() == {("alice", "helper"), ("bob", "other")}
