"""A chat's messages as the page lists them: each answer with the run that wrote it, each user
message left without an answer with how its run ended (services on the in-memory fakes)."""

from __future__ import annotations

import pytest

from chatserver.domain.chats import BranchMessage
from chatserver.errors import ModelError, ModelTimeout
from chatserver.services.chats import ChatHistoryService
from tests.unit.services.conftest import World


async def listed(world: World, chat_id: str = "c1", **page: int | None) -> list[BranchMessage]:
    history = ChatHistoryService(world.uow)
    return await history.list_messages(
        "u1", chat_id, limit=page.get("limit") or 50, before=page.get("before")
    )


def shown(messages: list[BranchMessage]) -> list[tuple[str, str, str | None]]:
    """(role, content, the status of the run the message names)."""
    return [(p.message.role, p.message.content, p.run.status if p.run else None) for p in messages]


class TestAnswersNameTheirRun:
    async def test_each_answer_carries_the_model_and_tokens_of_the_run_that_wrote_it(
        self, world: World
    ) -> None:
        first = await world.chat.say("u1", "assistant", "c1", "one")
        second = await world.chat.say("u1", "assistant", "c1", "two words")
        messages = await listed(world)
        assert shown(messages) == [
            ("user", "one", None),
            ("assistant", "echo: one", "completed"),
            ("user", "two words", None),
            ("assistant", "echo: two words", "completed"),
        ]
        runs = [p.run for p in messages if p.message.role == "assistant"]
        assert [(r.id, r.model, r.usage) for r in runs if r] == [
            (first.run_id, "echo", first.usage),
            (second.run_id, "echo", second.usage),
        ]
        assert all(r is not None and r.result is None for r in runs)

    async def test_a_regenerated_answer_names_its_own_run_not_the_first_ones(self, world: World) -> None:
        await world.chat.say("u1", "assistant", "c1", "again")
        answer = (await listed(world))[1].message
        again = await world.chat.say("u1", "assistant", "c1", "", regenerate=answer.id)
        messages = await listed(world)
        assert [p.run.id for p in messages if p.run] == [again.run_id]


class TestTurnsLeftWithoutAnAnswer:
    async def test_a_failed_last_turn_names_its_failed_run_and_error_under_the_user_message(
        self, world: World
    ) -> None:
        await world.chat.say("u1", "assistant", "c1", "fine")
        with pytest.raises(ModelError):
            await world.chat.say("u1", "assistant", "c1", "/fail")
        last = (await listed(world))[-1]
        assert (last.message.content, last.run and last.run.status) == ("/fail", "failed")
        assert last.run is not None and last.run.error is not None
        assert last.run.error.code == "model_error"

    async def test_an_earlier_failed_turn_keeps_its_status_once_the_chat_goes_on(self, world: World) -> None:
        with pytest.raises(ModelTimeout):
            await world.chat.say("u1", "assistant", "c1", "/sleep 3000 slow")
        await world.chat.say("u1", "assistant", "c1", "next")
        messages = await listed(world)
        assert shown(messages) == [
            ("user", "/sleep 3000 slow", "failed"),
            ("user", "next", None),
            ("assistant", "echo: next", "completed"),
        ]
        failed = messages[0].run
        assert failed is not None and failed.error is not None and failed.error.code == "model_timeout"

    async def test_the_status_holds_on_an_older_page_whose_last_message_is_the_failed_one(
        self, world: World
    ) -> None:
        with pytest.raises(ModelError):
            await world.chat.say("u1", "assistant", "c1", "/fail")
        await world.chat.say("u1", "assistant", "c1", "after")
        newest = await listed(world, limit=2)
        older = await listed(world, limit=2, before=newest[0].message.id)
        assert shown(older) == [("user", "/fail", "failed")]

    async def test_an_answered_user_message_names_no_run(self, world: World) -> None:
        await world.chat.say("u1", "assistant", "c1", "answered")
        assert (await listed(world))[0].run is None
