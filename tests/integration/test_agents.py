"""Agents: a global catalogue keyed by name."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatserver.domain import AgentConfig
from chatserver.errors import Conflict
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW, at

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
