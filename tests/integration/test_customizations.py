"""Prompt customizations: one per (user, agent, type), active ones by priority, invisible to others."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatserver.domain import PromptCustomization
from chatserver.errors import Conflict
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW, at, customization


async def _add(uow_factory: SqlUnitOfWorkFactory, *items: PromptCustomization) -> None:
    async with uow_factory() as uow:
        for item in items:
            await uow.customizations.add(item)
        await uow.commit()


async def test_an_added_customization_is_found_by_id_and_by_agent_and_type(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    mine = customization("alice", id="c1", content={"tone": "dry", "rules": ["a", "b"]}, priority=3)
    await _add(uow_factory, mine)
    async with uow_factory(user_id="alice") as uow:
        found = (
            await uow.customizations.get("alice", "c1"),
            await uow.customizations.find("alice", "helper", "instruction_set"),
            await uow.customizations.find("alice", "helper", "persona"),
            await uow.customizations.get("alice", "no-such-id"),
        )
    assert found == (mine, mine, None, None)


async def test_a_second_customization_of_the_same_type_is_a_conflict(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add(uow_factory, customization("alice", id="c1"))
    async with uow_factory(user_id="alice") as uow:
        with pytest.raises(
            Conflict, match="'instruction_set' customization of agent 'helper' already exists"
        ):
            await uow.customizations.add(customization("alice", id="c2"))


async def test_the_same_type_is_free_for_another_agent_or_another_user(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add(
        uow_factory,
        customization("alice", id="c1"),
        customization("alice", id="c2", agent_name="other"),
        customization("bob", id="c3"),
    )
    async with uow_factory() as uow:
        found = [
            await uow.customizations.get(u, i) for u, i in [("alice", "c1"), ("alice", "c2"), ("bob", "c3")]
        ]
    assert all(found)


async def test_active_customizations_are_listed_by_priority_then_creation_order(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add(
        uow_factory,
        customization("alice", id="late", customization_type="t1", priority=1, created_at=at(2)),
        customization("alice", id="early", customization_type="t2", priority=1, created_at=at(1)),
        customization("alice", id="first", customization_type="t3", priority=-5),
        customization("alice", id="off", customization_type="t4", is_active=False),
        customization("alice", id="elsewhere", customization_type="t5", agent_name="other"),
        customization("bob", id="bobs", customization_type="t6"),
    )
    async with uow_factory(user_id="alice") as uow:
        listed = [c.id for c in await uow.customizations.list_active("alice", "helper")]
    assert listed == ["first", "early", "late"]


async def test_inactive_ones_are_listed_too_when_asked_in_the_same_order(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add(
        uow_factory,
        customization("alice", id="on", customization_type="t1", priority=1),
        customization("alice", id="off", customization_type="t2", is_active=False),
        customization("alice", id="elsewhere", customization_type="t3", agent_name="other", is_active=False),
        customization("bob", id="bobs", customization_type="t4", is_active=False),
    )
    async with uow_factory(user_id="alice") as uow:
        every = await uow.customizations.list_for_agent("alice", "helper", include_inactive=True)
        active = await uow.customizations.list_for_agent("alice", "helper", include_inactive=False)
    assert [(c.id, c.is_active) for c in every] == [("off", False), ("on", True)]
    assert [c.id for c in active] == ["on"]


async def test_updating_replaces_the_fields_but_keeps_id_owner_and_creation_time(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    original = customization("alice", id="c1")
    await _add(uow_factory, original)
    changed = replace(
        original,
        content={"new": True},
        is_active=False,
        priority=9,
        customization_type="persona",
        updated_at=at(60),
    )
    async with uow_factory(user_id="alice") as uow:
        updated = await uow.customizations.update(replace(changed, created_at=at(999)))
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.customizations.get("alice", "c1")
    assert updated is True
    assert stored == changed and stored.created_at == NOW


async def test_updating_into_a_type_that_is_already_taken_is_a_conflict(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add(
        uow_factory,
        customization("alice", id="c1"),
        customization("alice", id="c2", customization_type="persona"),
    )
    async with uow_factory(user_id="alice") as uow:
        second = await uow.customizations.get("alice", "c2")
        assert second is not None
        with pytest.raises(Conflict):
            await uow.customizations.update(replace(second, customization_type="instruction_set"))
    async with uow_factory(user_id="alice") as uow:
        assert await uow.customizations.get("alice", "c2") == second


async def test_nobody_reads_updates_or_deletes_another_users_customization(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    mine = customization("alice", id="c1")
    await _add(uow_factory, mine)
    async with uow_factory(user_id="bob") as uow:
        seen = (
            await uow.customizations.get("bob", "c1"),
            await uow.customizations.find("bob", "helper", "instruction_set"),
            await uow.customizations.list_active("bob", "helper"),
            await uow.customizations.update(replace(mine, user_id="bob", content={"hijacked": True})),
            await uow.customizations.delete("bob", "c1"),
        )
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        assert await uow.customizations.get("alice", "c1") == mine
    assert seen == (None, None, [], False, False)


async def test_deleting_a_customization_removes_it_once(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add(uow_factory, customization("alice", id="c1"))
    async with uow_factory(user_id="alice") as uow:
        deleted = [
            await uow.customizations.delete("alice", "c1"),
            await uow.customizations.delete("alice", "c1"),
        ]
        assert await uow.customizations.get("alice", "c1") is None
    assert deleted == [True, False]
