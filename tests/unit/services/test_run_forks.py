"""A turn that follows an older run of its chat (``StartRun.follows_run``, as `/v1/responses`
continues an older response): it begins a branch after that run's last message, on fakes."""

from __future__ import annotations

import pytest

from chatserver.errors import ChatBusy, InvalidInput
from tests.unit.services.test_runs import POLICY, Rig, make_rig, settled


@pytest.fixture
def rig() -> Rig:
    return make_rig(POLICY)


async def _done(rig: Rig, message: str, **extra: object) -> str:
    handle = await rig.start(message, **extra)
    assert (await handle.outcome()).kind == "done"
    return handle.run.id


def _message(rig: Rig, content: str) -> tuple[int, int | None]:
    [found] = [m for m in rig.store.messages if m.content == content]
    return found.id, found.parent_id


class TestFollowingARun:
    async def test_following_an_older_run_places_the_turn_after_its_answer(self, rig: Rig) -> None:
        first = await _done(rig, "alpha")
        await _done(rig, "beta")
        await _done(rig, "/recall", follows_run=first)
        answer, _ = _message(rig, "echo: alpha")
        recall, parent = _message(rig, "/recall")
        assert parent == answer
        assert _message(rig, "recall: alpha")[1] == recall
        assert rig.store.chats[("u1", "c1")].active_message_id == _message(rig, "recall: alpha")[0]

    async def test_following_the_newest_run_goes_on_as_a_plain_turn(self, rig: Rig) -> None:
        await _done(rig, "alpha")
        second = await _done(rig, "beta")
        await _done(rig, "gamma", follows_run=second)
        assert _message(rig, "gamma")[1] == _message(rig, "echo: beta")[0]

    async def test_a_run_that_stored_no_message_cannot_be_followed(self, rig: Rig) -> None:
        rig.hang()
        running = await rig.start("first")
        queued = await rig.start("second")
        await rig.runs.service.cancel("u1", queued.run.id)
        await rig.runs.service.cancel("u1", running.run.id)
        await settled(rig)
        rig.cache.invalidate("u1", "assistant")
        with pytest.raises(InvalidInput):
            await rig.start("third", follows_run=queued.run.id)
        assert [m for _, m, _ in rig.stored()] == ["first"]

    async def test_forking_while_a_run_goes_on_is_busy_and_moves_no_leaf(self, rig: Rig) -> None:
        first = await _done(rig, "alpha")
        model = rig.hang()
        running = await rig.start("slow")
        await model.waiting.wait()
        leaf = rig.store.chats[("u1", "c1")].active_message_id
        with pytest.raises(ChatBusy):
            await rig.start("fork", follows_run=first)
        assert rig.store.chats[("u1", "c1")].active_message_id == leaf
        assert [m for _, m, _ in rig.stored()] == ["alpha", "echo: alpha", "slow"]
        await rig.runs.service.cancel("u1", running.run.id)

    async def test_a_turn_following_a_run_names_no_other_message(self, rig: Rig) -> None:
        first = await _done(rig, "alpha")
        [asked] = [m.id for m in rig.store.messages if m.content == "alpha"]
        with pytest.raises(InvalidInput):
            await rig.start("again", follows_run=first, edit_of=asked)
