"""PromptCustomizationService on fakes: validation, ownership, ordering, cache invalidation, the tool."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chatserver.domain import AgentConfig
from chatserver.errors import Conflict, InvalidInput, NotFound
from chatserver.services.prompt_customization import (
    MAX_CONTENT_BYTES,
    MAX_CONTENT_DEPTH,
    PRIORITY_MAX,
    PRIORITY_MIN,
    CustomizationInput,
)
from tests.unit.services.conftest import World


def data(**overrides: Any) -> CustomizationInput:
    fields: dict[str, Any] = {
        "agent_name": "assistant",
        "customization_type": "instruction_set",
        "content": {"instructions": ["Be brief"]},
    }
    return CustomizationInput(**(fields | overrides))


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep: {"k": {"k": ... {}}}."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def content_of_size(size: int) -> dict[str, Any]:
    """An object whose compact JSON is exactly ``size`` bytes: {"k":"xxx..."} is 8 bytes + the x's."""
    return {"k": "x" * (size - 8)}


async def system_prompt(world: World, user: str, chat: str = "c1", agent: str = "assistant") -> str:
    reply = await world.chat.say(user, agent, chat, "/system")
    return reply.response


class TestCreate:
    async def test_a_new_customization_is_stored_audited_and_returned(self, world: World) -> None:
        row = await world.customizations.create("u1", data(priority=5, is_active=False))
        assert world.uow.store.customizations == {row.id: row}
        assert (row.user_id, row.agent_name, row.priority, row.is_active) == ("u1", "assistant", 5, False)
        assert row.created_at == row.updated_at == world.clock.now()
        [event] = world.uow.store.events
        assert (event.type, event.user_id, event.data["id"]) == ("customization.created", "u1", row.id)

    async def test_an_unknown_agent_is_not_found_and_nothing_is_stored(self, world: World) -> None:
        with pytest.raises(NotFound, match="agent 'nobody'"):
            await world.customizations.create("u1", data(agent_name="nobody"))
        assert world.uow.store.customizations == {} and world.uow.store.events == []

    async def test_the_same_type_twice_for_one_user_and_agent_is_a_conflict(self, world: World) -> None:
        first = await world.customizations.create("u1", data())
        with pytest.raises(Conflict):
            await world.customizations.create("u1", data(content={"instructions": ["Other"]}))
        assert list(world.uow.store.customizations.values()) == [first]

    async def test_the_same_type_is_free_for_another_user_or_another_type(self, world: World) -> None:
        await world.customizations.create("u1", data())
        await world.customizations.create("u2", data())
        await world.customizations.create("u1", data(customization_type="persona"))
        assert len(world.uow.store.customizations) == 3


BAD_INPUTS = [
    (data(customization_type=""), "customization_type"),
    (data(customization_type="Has-Capitals"), "customization_type"),
    (data(customization_type="x" * 65), "customization_type"),
    (data(customization_type="trailing_newline\n"), "customization_type"),
    (data(content=["not", "an", "object"]), "content"),
    (data(content=content_of_size(MAX_CONTENT_BYTES + 1)), "content"),
    (data(content=nested(MAX_CONTENT_DEPTH + 1)), "content"),
    (data(content={"ratio": float("nan")}), "content"),
    (data(content={"big": float("inf")}), "content"),
    (data(content={"nul": "a\x00b"}), "content"),
    (data(content={"a\x00": "nul in a key"}), "content"),
    (data(priority=PRIORITY_MAX + 1), "priority"),
    (data(priority=PRIORITY_MIN - 1), "priority"),
    (data(priority=True), "priority"),
    (data(agent_name="assi\x00stant"), "agent_name"),
]


@pytest.mark.parametrize(("bad", "field"), BAD_INPUTS)
async def test_invalid_input_names_the_field_on_create_and_on_update(
    world: World, bad: CustomizationInput, field: str
) -> None:
    existing = await world.customizations.create("u1", data(customization_type="existing"))
    with pytest.raises(InvalidInput) as created:
        await world.customizations.create("u1", bad)
    with pytest.raises(InvalidInput) as updated:
        await world.customizations.update("u1", existing.id, bad)
    assert (created.value.field, updated.value.field) == (field, field)
    assert list(world.uow.store.customizations.values()) == [existing]


async def test_the_limits_themselves_are_accepted(world: World) -> None:
    await world.customizations.create("u1", data(customization_type="a", priority=PRIORITY_MIN))
    await world.customizations.create(
        "u1", data(customization_type="b" * 64, priority=PRIORITY_MAX, content=nested(MAX_CONTENT_DEPTH))
    )
    await world.customizations.create(
        "u1", data(customization_type="c", content=content_of_size(MAX_CONTENT_BYTES))
    )
    assert len(world.uow.store.customizations) == 3


async def test_content_size_counts_utf8_bytes_not_characters(world: World) -> None:
    # "é" is 2 bytes in UTF-8: half the limit in characters is already at the limit in bytes.
    with pytest.raises(InvalidInput, match="bytes"):
        await world.customizations.create("u1", data(content={"k": "é" * (MAX_CONTENT_BYTES // 2)}))


class TestList:
    async def test_only_the_callers_active_ones_for_that_agent_by_priority(self, world: World) -> None:
        world.uow.store.agents["other"] = AgentConfig("other", "echo", "Other.")
        late = await world.customizations.create("u1", data(customization_type="late", priority=10))
        early = await world.customizations.create("u1", data(customization_type="early", priority=-10))
        await world.customizations.create("u1", data(customization_type="off", is_active=False))
        await world.customizations.create("u1", data(agent_name="other"))
        await world.customizations.create("u2", data(customization_type="theirs", priority=0))
        listed = await world.customizations.list_active("u1", "assistant")
        assert [row.id for row in listed] == [early.id, late.id]

    async def test_an_unknown_agent_lists_nothing(self, world: World) -> None:
        assert await world.customizations.list_active("u1", "nobody") == []
        assert await world.customizations.list_active("u1", "bad\x00name") == []


class TestUpdate:
    async def test_every_field_but_id_owner_and_creation_time_is_replaced(self, world: World) -> None:
        original = await world.customizations.create("u1", data())
        world.clock.advance(60)
        new = data(customization_type="persona", content={"tone": "dry"}, is_active=False, priority=7)
        updated = await world.customizations.update("u1", original.id, new)
        expected = replace(
            original,
            customization_type="persona",
            content={"tone": "dry"},
            is_active=False,
            priority=7,
            updated_at=world.clock.now(),
        )
        assert updated == expected == world.uow.store.customizations[original.id]
        assert world.uow.store.events[-1].type == "customization.updated"

    async def test_another_users_or_an_absent_id_is_not_found_and_nothing_changes(self, world: World) -> None:
        mine = await world.customizations.create("u1", data())
        for user, customization_id in [("u2", mine.id), ("u1", "no-such-id"), ("u1", "nul\x00id")]:
            with pytest.raises(NotFound):
                await world.customizations.update(user, customization_id, data(content={"hijacked": True}))
        assert world.uow.store.customizations == {mine.id: mine}

    async def test_updating_into_a_type_the_caller_already_has_is_a_conflict(self, world: World) -> None:
        await world.customizations.create("u1", data())
        persona = await world.customizations.create("u1", data(customization_type="persona"))
        with pytest.raises(Conflict):
            await world.customizations.update("u1", persona.id, data())
        assert world.uow.store.customizations[persona.id] == persona

    async def test_moving_to_an_unknown_agent_is_not_found(self, world: World) -> None:
        mine = await world.customizations.create("u1", data())
        with pytest.raises(NotFound, match="agent 'nobody'"):
            await world.customizations.update("u1", mine.id, data(agent_name="nobody"))
        assert world.uow.store.customizations[mine.id] == mine


class TestDelete:
    async def test_the_owner_deletes_it_once(self, world: World) -> None:
        mine = await world.customizations.create("u1", data())
        await world.customizations.delete("u1", mine.id)
        with pytest.raises(NotFound):
            await world.customizations.delete("u1", mine.id)
        assert world.uow.store.customizations == {}
        assert [e.type for e in world.uow.store.events] == ["customization.created", "customization.deleted"]

    async def test_another_user_cannot_delete_it(self, world: World) -> None:
        mine = await world.customizations.create("u1", data())
        with pytest.raises(NotFound):
            await world.customizations.delete("u2", mine.id)
        assert world.uow.store.customizations == {mine.id: mine}


class TestTheNextTurnUsesTheNewPrompt:
    async def test_create_update_and_delete_each_reach_the_very_next_turn(self, world: World) -> None:
        assert await system_prompt(world, "u1") == "Base prompt."
        row = await world.customizations.create("u1", data(content={"instructions": ["One"]}))
        assert await system_prompt(world, "u1") == "Base prompt.\n\n## instruction_set\n- One"
        await world.customizations.update("u1", row.id, data(content={"instructions": ["Two"]}))
        assert await system_prompt(world, "u1") == "Base prompt.\n\n## instruction_set\n- Two"
        await world.customizations.delete("u1", row.id)
        assert await system_prompt(world, "u1") == "Base prompt."

    async def test_customizations_appear_in_priority_order(self, world: World) -> None:
        await world.customizations.create(
            "u1", data(customization_type="second", content={"b": 2}, priority=2)
        )
        await world.customizations.create(
            "u1", data(customization_type="first", content={"a": 1}, priority=-2)
        )
        assert await system_prompt(world, "u1") == "Base prompt.\n\n## first\na: 1\n\n## second\nb: 2"

    async def test_the_instructions_lead_their_section_wherever_the_key_was_stored(
        self, world: World
    ) -> None:
        await world.customizations.create("u1", data(content={"tone": "dry", "instructions": ["A", "B"]}))
        assert await system_prompt(world, "u1") == "Base prompt.\n\n## instruction_set\n- A\n- B\ntone: dry"

    async def test_other_users_cached_agents_are_untouched(self, world: World) -> None:
        await system_prompt(world, "u2", chat="c2")
        theirs = world.cache.get(("u2", "assistant"))
        await world.customizations.create("u1", data())
        assert theirs is not None and world.cache.get(("u2", "assistant")) is theirs
        assert await system_prompt(world, "u2", chat="c2") == "Base prompt."

    async def test_moving_a_customization_to_another_agent_refreshes_both(self, world: World) -> None:
        world.uow.store.agents["other"] = AgentConfig("other", "echo", "Other.")
        row = await world.customizations.create("u1", data())
        assert "- Be brief" in await system_prompt(world, "u1")
        assert await system_prompt(world, "u1", chat="c2", agent="other") == "Other."
        await world.customizations.update("u1", row.id, data(agent_name="other"))
        assert await system_prompt(world, "u1") == "Base prompt."
        assert "- Be brief" in await system_prompt(world, "u1", chat="c2", agent="other")


class TestSetInstructions:
    async def test_the_first_call_creates_the_instruction_set(self, world: World) -> None:
        result = await world.customizations.set_instructions("u1", "assistant", ["Be kind"])
        [row] = world.uow.store.customizations.values()
        assert result == "saved 1 instructions"
        assert (row.user_id, row.customization_type, row.content) == (
            "u1",
            "instruction_set",
            {"instructions": ["Be kind"]},
        )

    async def test_a_later_call_replaces_only_the_instructions(self, world: World) -> None:
        mine = await world.customizations.create(
            "u1", data(content={"instructions": ["Old"], "tone": "dry"}, priority=3)
        )
        persona = await world.customizations.create(
            "u1", data(customization_type="persona", content={"x": 1})
        )
        result = await world.customizations.set_instructions("u1", "assistant", ["New", "Newer"])
        stored = world.uow.store.customizations
        assert result == "replaced instructions with 2 instructions"
        assert stored[mine.id].content == {"instructions": ["New", "Newer"], "tone": "dry"}
        assert stored[mine.id].priority == 3 and stored[persona.id] == persona
        assert await system_prompt(world, "u1") == (
            "Base prompt.\n\n## persona\nx: 1\n\n## instruction_set\n- New\n- Newer\ntone: dry"
        )

    async def test_it_touches_nothing_of_other_users_or_other_agents(self, world: World) -> None:
        world.uow.store.agents["other"] = AgentConfig("other", "echo", "Other.")
        theirs = await world.customizations.create("u2", data())
        elsewhere = await world.customizations.create("u1", data(agent_name="other"))
        await world.customizations.set_instructions("u1", "assistant", ["Mine"])
        stored = world.uow.store.customizations
        assert stored[theirs.id] == theirs and stored[elsewhere.id] == elsewhere
        assert len(stored) == 3

    async def test_oversized_instructions_are_refused(self, world: World) -> None:
        with pytest.raises(InvalidInput):
            await world.customizations.set_instructions("u1", "assistant", ["x" * MAX_CONTENT_BYTES])
        assert world.uow.store.customizations == {}

    async def test_through_the_tool_a_refusal_is_told_to_the_model_not_raised(self, world: World) -> None:
        reply = await world.chat.say(
            "u1", "assistant", "c1", '/tool update_instructions {"instructions": ["a\\u0000b"]}'
        )
        assert reply.response == "tool update_instructions returned: error: must not contain NUL characters"
        assert world.uow.store.customizations == {}
