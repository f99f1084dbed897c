"""Agents: a global catalogue keyed by name."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatserver.domain import AgentConfig, NewMessage
from chatserver.errors import Conflict
from chatserver.storage.sql import SqlUnitOfWorkFactory
from chatserver.storage.sql.uow import SqlUnitOfWork
from tests.support.builders import NOW, at, chat, customization, session

HELPER = AgentConfig(
    name="helper",
    model="echo",
    system_prompt="Be helpful.",
    description="A helper",
    tools=("current_time", "remember"),
    history_window=7,
    created_at=NOW,
    updated_at=NOW,
)


async def _add(uow_factory: SqlUnitOfWorkFactory, *agents: AgentConfig) -> None:
    async with uow_factory() as uow:
        for agent in agents:
            await uow.agents.add(agent)
        await uow.commit()


async def test_an_added_agent_reads_back_field_for_field(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add(uow_factory, HELPER)
    async with uow_factory() as uow:
        assert await uow.agents.get("helper") == HELPER
        assert await uow.agents.get("nobody") is None


async def test_agents_are_listed_by_name(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add(uow_factory, replace(HELPER, name="zed"), HELPER, replace(HELPER, name="alpha"))
    async with uow_factory() as uow:
        assert [a.name for a in await uow.agents.list()] == ["alpha", "helper", "zed"]


async def test_a_taken_agent_name_is_a_conflict(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add(uow_factory, HELPER)
    async with uow_factory() as uow:
        with pytest.raises(Conflict, match="helper"):
            await uow.agents.add(replace(HELPER, model="openai:gpt-4.1-mini"))
        assert await uow.agents.get("helper") == HELPER


async def test_an_agent_without_timestamps_gets_the_database_time_in_utc(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _add(uow_factory, AgentConfig(name="plain", model="echo", system_prompt=""))
    async with uow_factory() as uow:
        stored = await uow.agents.get("plain")
    assert stored is not None and stored.created_at is not None and stored.updated_at is not None
    assert stored.created_at.utcoffset() is not None and stored.created_at.utcoffset().total_seconds() == 0
    assert stored.created_at > NOW


async def test_updating_an_agent_replaces_its_settings_but_not_its_creation_time(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _add(uow_factory, HELPER)
    changed = replace(
        HELPER, model="anthropic:x", tools=(), history_window=None, created_at=at(99), updated_at=at(5)
    )
    async with uow_factory() as uow:
        updated = await uow.agents.update(changed)
        missing = await uow.agents.update(replace(HELPER, name="nobody"))
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.agents.get("helper")
    assert (updated, missing) == (True, False)
    assert stored == replace(changed, created_at=NOW)


async def test_deleting_an_agent_removes_it_once(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add(uow_factory, HELPER)
    async with uow_factory() as uow:
        deleted = [await uow.agents.delete("helper"), await uow.agents.delete("helper")]
        assert await uow.agents.list() == []
    assert deleted == [True, False]


async def _keep_something_for(uow_factory: SqlUnitOfWorkFactory, agent: str, *users: str) -> None:
    """A chat with a message, a session, a memory and a customization of ``agent`` for each user."""
    async with uow_factory() as uow:
        for user_id in users:
            chat_id = f"{agent}-{user_id}"
            await uow.chats.create_if_absent(chat(chat_id, user_id, agent_name=agent))
            await uow.messages.add(user_id, chat_id, 1, [NewMessage("user", "hi")], now=NOW)
            await uow.sessions.add(session(user_id, chat_id, agent_name=agent))
            await uow.memories.add(user_id, agent, "likes tea", now=NOW)
            await uow.customizations.add(customization(user_id, id=f"c-{chat_id}", agent_name=agent))
        await uow.commit()


async def _kept_for(uow: SqlUnitOfWork, agent: str, user_id: str) -> list[int]:
    """How many chats, messages, sessions, memories and customizations ``user_id`` has of ``agent``."""
    chat_id = f"{agent}-{user_id}"
    return [
        len([c for c in await uow.chats.list(user_id, limit=10, before=None) if c.agent_name == agent]),
        len(await uow.messages.page(user_id, chat_id, limit=10, before=None)),
        len(await uow.sessions.list(user_id, agent_name=agent, active=None)),
        len(await uow.memories.list(user_id, agent_name=agent, limit=10)),
        len(await uow.customizations.list_active(user_id, agent)),
    ]


async def test_deleting_an_agent_deletes_what_every_user_kept_of_it_and_only_that(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    other = replace(HELPER, name="other")
    await _add(uow_factory, HELPER, other)
    await _keep_something_for(uow_factory, "helper", *users)
    await _keep_something_for(uow_factory, "other", "alice")
    async with uow_factory() as uow:
        assert await uow.agents.delete("helper")
        await uow.commit()
    await _add(uow_factory, HELPER)  # the same name again starts empty
    async with uow_factory() as uow:
        assert [await _kept_for(uow, "helper", user_id) for user_id in users] == [[0] * 5, [0] * 5]
        assert await _kept_for(uow, "other", "alice") == [1, 1, 1, 1, 1]


async def test_creating_an_agent_clears_what_a_deleted_one_of_that_name_left_behind(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _keep_something_for(uow_factory, "helper", *users)  # as a database from before deletion did
    await _add(uow_factory, HELPER)
    async with uow_factory() as uow:
        assert [await _kept_for(uow, "helper", user_id) for user_id in users] == [[0] * 5, [0] * 5]


async def test_a_refused_duplicate_create_leaves_the_agents_rows_alone(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add(uow_factory, HELPER)
    await _keep_something_for(uow_factory, "helper", "alice")
    with pytest.raises(Conflict):
        await _add(uow_factory, HELPER)
    async with uow_factory() as uow:
        assert await _kept_for(uow, "helper", "alice") == [1, 1, 1, 1, 1]
