"""A change whose cache invalidation never arrived (another replica wrote it, and pub/sub lost the
message) is in the next chat turn all the same: the turn's versions show the cached agent is old."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chatserver.domain import PromptCustomization
from chatserver.errors import NotFound
from tests.unit.services.conftest import World


def builds(world: World) -> int:
    return sum(event.type == "agent.built" for event in world.uow.store.events)


def written_elsewhere(world: World, **changes: object) -> None:
    """What another replica's admin change leaves in the database; nothing tells this one."""
    store = world.uow.store
    store.agents["assistant"] = replace(store.agents["assistant"], **changes)  # type: ignore[arg-type]
    store.versions["agent:assistant"] = f"elsewhere-{len(store.versions)}-{sorted(changes)}"


async def test_an_agent_changed_without_an_invalidation_is_rebuilt_for_the_next_turn(world: World) -> None:
    assert (await world.chat.say("u1", "assistant", "c1", "/system")).response == "Base prompt."
    written_elsewhere(world, system_prompt="Changed elsewhere.")
    after = await world.chat.say("u1", "assistant", "c1", "/system")
    again = await world.chat.say("u1", "assistant", "c1", "/system")
    assert (after.response, again.response) == ("Changed elsewhere.", "Changed elsewhere.")
    assert builds(world) == 2  # once at first, once for the change: the third turn hit the cache


async def test_unchanged_versions_keep_the_cached_agent(world: World) -> None:
    for n in range(3):
        await world.chat.say("u1", "assistant", "c1", f"turn {n}")
    assert builds(world) == 1


async def test_a_customization_written_elsewhere_is_in_the_next_turn(world: World) -> None:
    await world.chat.say("u1", "assistant", "c1", "hello")
    row = PromptCustomization(
        "cz-1",
        "u1",
        "assistant",
        "instruction_set",
        {"instructions": ["speak like a pirate"]},
        True,
        0,
        world.clock.now(),
        world.clock.now(),
    )
    world.uow.store.customizations[row.id] = row
    world.uow.store.versions["user:u1"] = "elsewhere"
    answer = await world.chat.say("u1", "assistant", "c1", "/system")
    others = await world.chat.say("u2", "assistant", "c1", "/system")
    assert answer.response is not None and "speak like a pirate" in answer.response
    assert others.response == "Base prompt."


async def test_a_rebuilt_agent_with_another_history_window_reads_its_own_window(world: World) -> None:
    await world.chat.say("u1", "assistant", "c1", "first")
    assert (await world.chat.say("u1", "assistant", "c1", "/recall")).response == "recall: first"
    written_elsewhere(world, history_window=1)
    recalled = await world.chat.say("u1", "assistant", "c1", "/recall")
    assert recalled.response == "recall: /recall"


async def test_a_stateless_turn_after_a_change_written_elsewhere_runs_with_it(world: World) -> None:
    assert (await world.chat.ask("u1", "assistant", "/system")).response == "Base prompt."
    written_elsewhere(world, system_prompt="Changed elsewhere.")
    assert (await world.chat.ask("u1", "assistant", "/system")).response == "Changed elsewhere."
    assert builds(world) == 2


async def test_an_agent_deleted_elsewhere_is_not_found_by_the_next_turn_despite_the_cache(
    world: World,
) -> None:
    await world.chat.say("u1", "assistant", "c1", "hello")
    del world.uow.store.agents["assistant"]
    with pytest.raises(NotFound):
        await world.chat.say("u1", "assistant", "c2", "still there?")
    with pytest.raises(NotFound):
        await world.chat.ask("u1", "assistant", "still there?")
