"""Configuration versions on both databases: every write of an agent or of a user's customizations
changes its stamp in the writing transaction, and opening a turn returns the current stamps."""

from __future__ import annotations

from dataclasses import replace

from chatserver.domain import AgentConfig, ConfigVersions, Run
from chatserver.services.ids import sortable_id
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW, chat, customization

HELPER = AgentConfig(name="helper", model="echo", system_prompt="Be helpful.", created_at=NOW, updated_at=NOW)


async def _versions(uow_factory: SqlUnitOfWorkFactory, user_id: str = "alice") -> ConfigVersions | None:
    async with uow_factory(user_id=user_id) as uow:
        return await uow.agents.versions("helper", user_id)


async def _add_helper(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.agents.add(HELPER)
        await uow.commit()


async def test_an_unknown_agent_has_no_versions(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    assert await _versions(uow_factory) is None


async def test_each_write_of_an_agent_changes_its_version_for_every_user(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add_helper(uow_factory)
    created = await _versions(uow_factory)
    async with uow_factory() as uow:
        await uow.agents.update(replace(HELPER, system_prompt="Be brief."))
        await uow.commit()
    updated, bobs = await _versions(uow_factory), await _versions(uow_factory, "bob")
    async with uow_factory() as uow:
        await uow.agents.update(replace(HELPER, system_prompt="Be brief."))  # the same again
        await uow.commit()
    again = await _versions(uow_factory)
    async with uow_factory() as uow:
        await uow.agents.delete("helper")
        await uow.agents.add(HELPER)
        await uow.commit()
    recreated = await _versions(uow_factory)
    assert created and updated and again and recreated and bobs
    stamps = [v.agent for v in (created, updated, again, recreated)]
    assert len(set(stamps)) == 4
    assert bobs.agent == updated.agent
    assert {v.customizations for v in (created, updated, again, recreated)} == {created.customizations}


async def test_an_update_that_matches_no_agent_changes_nothing(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add_helper(uow_factory)
    before = await _versions(uow_factory)
    async with uow_factory() as uow:
        assert not await uow.agents.update(replace(HELPER, name="ghost"))
        await uow.commit()
    assert await _versions(uow_factory) == before


async def test_each_write_of_a_users_customizations_changes_their_version_only(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add_helper(uow_factory)
    seen = [await _versions(uow_factory)]
    bobs_before = await _versions(uow_factory, "bob")
    row = customization("alice")
    async with uow_factory(user_id="alice") as uow:
        await uow.customizations.add(row)
        await uow.commit()
    seen.append(await _versions(uow_factory))
    async with uow_factory(user_id="alice") as uow:
        await uow.customizations.update(replace(row, content={"instructions": ["be loud"]}))
        await uow.commit()
    seen.append(await _versions(uow_factory))
    async with uow_factory(user_id="alice") as uow:
        await uow.customizations.delete("alice", row.id)
        await uow.commit()
    seen.append(await _versions(uow_factory))
    async with uow_factory(user_id="bob") as uow:
        assert not await uow.customizations.delete("bob", row.id)  # not bob's: nothing changes
        await uow.commit()
    assert all(seen)
    assert len({v.customizations for v in seen if v}) == 4
    assert {v.agent for v in seen if v} == {seen[0].agent if seen[0] else ""}
    assert await _versions(uow_factory, "bob") == bobs_before
    assert await _versions(uow_factory) == seen[-1]


async def test_a_change_rolled_back_leaves_the_version_as_it_was(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add_helper(uow_factory)
    before = await _versions(uow_factory)
    async with uow_factory(user_id="alice") as uow:
        await uow.customizations.add(customization("alice"))
        await uow.agents.update(replace(HELPER, system_prompt="never"))
    assert await _versions(uow_factory) == before


async def test_opening_a_turn_returns_the_versions_current_then(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add_helper(uow_factory)
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.create_if_absent(chat("c1", "alice"))
        await uow.commit()
    opened = []
    for change in range(2):
        async with uow_factory(user_id="alice") as uow:
            claimed = await uow.turns.open(
                "alice", "c1", "helper", f"m{change}", title="t", now=NOW, window_turns=5
            )
            await uow.commit()
        assert claimed is not None
        opened.append((claimed.versions, await _versions(uow_factory)))
        async with uow_factory(user_id="alice") as uow:
            await uow.customizations.add(customization("alice", customization_type=f"type-{change}"))
            await uow.commit()
    assert [claimed for claimed, _ in opened] == [current for _, current in opened]
    assert opened[0][0] != opened[1][0]


async def test_storing_a_stateless_run_returns_the_versions_current_then(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    await _add_helper(uow_factory)
    run = Run(sortable_id(NOW), "alice", None, "helper", "running", "hi", NOW, idempotency_key="k1")
    async with uow_factory(user_id="alice") as uow:
        added = await uow.runs.add_stateless(run, owner="r1", lease_until=NOW)
        again = await uow.runs.add_stateless(replace(run, id=sortable_id(NOW)), owner="r1", lease_until=NOW)
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        stored = await uow.runs.get("alice", run.id)
    assert added == (True, await _versions(uow_factory))
    assert again == (False, None)  # the key is taken: nothing stored
    assert stored is not None and stored.status == "running"
