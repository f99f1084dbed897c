"""Chat turns (runs) on fakes: what a turn stores, what the model sees, what fails how."""

from __future__ import annotations

import asyncio

import pytest

from chatserver.domain import AuditEvent
from chatserver.errors import Conflict, InvalidInput, ModelError, ModelTimeout, NotFound, PayloadTooLarge
from chatserver.services.turn_policy import TurnPolicy
from tests.unit.services.conftest import World


async def test_a_turn_stores_the_question_and_the_answer_in_order(world: World) -> None:
    reply = await world.chat.say("u1", "assistant", "c1", "hello")
    assert reply.response == "echo: hello"
    stored = [(m.turn, m.role, m.content) for m in world.uow.store.messages]
    assert stored == [(1, "user", "hello"), (1, "assistant", "echo: hello")]
    assert world.uow.store.chats[("u1", "c1")].user_id == "u1"
    assert world.uow.store.chats[("u1", "c1")].title == "hello"


def turn_events(world: World) -> list[AuditEvent]:
    """The turn's own audit trail (building the agent is audited too, as ``agent.built``)."""
    return [e for e in world.uow.store.events if e.type.startswith("turn.")]


async def test_a_completed_turn_is_audited_with_its_usage(world: World) -> None:
    await world.chat.say("u1", "assistant", "c1", "hello")
    [event] = turn_events(world)
    assert (event.type, event.user_id, event.chat_id) == ("turn.completed", "u1", "c1")
    assert event.data["turn"] == 1 and event.data["requests"] == 1


async def test_the_model_sees_earlier_turns_of_its_own_chat_only(world: World) -> None:
    await world.chat.say("u1", "assistant", "c1", "apple")
    await world.chat.say("u1", "assistant", "c2", "banana")
    reply = await world.chat.say("u1", "assistant", "c1", "/recall")
    assert reply.response == "recall: apple"


async def test_the_window_is_limited_to_the_configured_number_of_turns(world: World) -> None:
    world.chat.executor._policy = TurnPolicy(2, 100, 1.0, 5)
    for word in ["a", "b", "c"]:
        await world.chat.say("u1", "assistant", "c1", word)
    reply = await world.chat.say("u1", "assistant", "c1", "/recall")
    assert reply.response == "recall: b | c"


async def test_a_failing_model_keeps_the_users_message_and_audits_the_failure(world: World) -> None:
    with pytest.raises(ModelError):
        await world.chat.say("u1", "assistant", "c1", "/fail")
    assert [(m.role, m.content) for m in world.uow.store.messages] == [("user", "/fail")]
    assert [e.type for e in turn_events(world)] == ["turn.failed"]
    assert turn_events(world)[0].data["code"] == "model_error"


async def test_a_model_slower_than_the_timeout_raises_model_timeout(world: World) -> None:
    with pytest.raises(ModelTimeout):
        await world.chat.say("u1", "assistant", "c1", "/sleep 3000 zz")
    assert [m.content for m in world.uow.store.messages] == ["/sleep 3000 zz"]
    assert turn_events(world)[0].data["code"] == "model_timeout"


async def test_another_users_chat_id_starts_the_callers_own_chat_of_that_id(world: World) -> None:
    await world.chat.say("u1", "assistant", "c1", "mine")
    await world.chat.say("u2", "assistant", "c1", "theirs")
    chats = world.uow.store.chats
    assert (chats[("u1", "c1")].turn_count, chats[("u2", "c1")].turn_count) == (1, 1)
    owners = world.uow.store.message_owners
    stored = [(owners[m.id], m.chat_id, m.content) for m in world.uow.store.messages]
    assert stored == [
        ("u1", "c1", "mine"),
        ("u1", "c1", "echo: mine"),
        ("u2", "c1", "theirs"),
        ("u2", "c1", "echo: theirs"),
    ]


async def test_an_unknown_agent_is_not_found_and_creates_no_chat(world: World) -> None:
    with pytest.raises(NotFound):
        await world.chat.say("u1", "ghost", "c1", "hi")
    assert world.uow.store.chats == {}


async def test_a_chat_continued_with_another_agent_is_a_conflict(world: World) -> None:
    world.uow.store.agents["other"] = world.uow.store.agents["assistant"].__class__("other", "echo", "x")
    await world.chat.say("u1", "assistant", "c1", "hi")
    with pytest.raises(Conflict):
        await world.chat.say("u1", "other", "c1", "hi")


@pytest.mark.parametrize(
    ("message", "error"), [("", InvalidInput), ("   ", InvalidInput), ("x" * 101, PayloadTooLarge)]
)
async def test_empty_or_oversized_messages_are_refused_before_anything_is_stored(
    world: World, message: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await world.chat.say("u1", "assistant", "c1", message)
    assert world.uow.store.messages == []


async def test_concurrent_turns_on_one_chat_are_serialized(world: World) -> None:
    await asyncio.gather(*[world.chat.say("u1", "assistant", "c1", f"/sleep 5 m{i}") for i in range(8)])
    roles = [m.role for m in world.uow.store.messages]
    assert roles == ["user", "assistant"] * 8
    turns = [m.turn for m in world.uow.store.messages]
    assert turns == [t for t in range(1, 9) for _ in range(2)]


async def test_the_update_instructions_tool_writes_the_callers_own_instruction_set(world: World) -> None:
    reply = await world.chat.say(
        "u1", "assistant", "c1", '/tool update_instructions {"instructions": ["Speak French"]}'
    )
    assert reply.tool_calls[0].name == "update_instructions"
    [row] = world.uow.store.customizations.values()
    assert (row.user_id, row.agent_name, row.customization_type) == ("u1", "assistant", "instruction_set")
    assert row.content == {"instructions": ["Speak French"]}
    system = await world.chat.say("u1", "assistant", "c1", "/system")
    assert "- Speak French" in system.response
    other = await world.chat.say("u2", "assistant", "c9", "/system")
    assert other.response == "Base prompt."
