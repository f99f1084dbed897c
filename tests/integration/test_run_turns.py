"""Each run knows the turn it opened (migration 0011's trigger), so a chat's messages can name the
run that wrote them: ``RunRepository.of_turns`` on both databases, for the caller only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chatserver.domain import NewEvent, NewMessage, Run, RunError, RunOutcome, RunStatus, TurnUsage
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW

LATER = NOW + timedelta(minutes=5)
OWNER = "replica-1"


def _event() -> NewEvent:
    return NewEvent("turn.completed", user_id="alice", agent_name="helper", chat_id="c1")


async def _turn(
    uow_factory: SqlUnitOfWorkFactory,
    run_id: str,
    outcome: RunOutcome,
    answer: list[NewMessage],
    *,
    minutes: int,
    regenerate: int | None = None,
) -> int:
    """One run of alice's chat ``c1`` opening a turn and ending as ``outcome`` says: its turn."""
    at = NOW + timedelta(minutes=minutes)
    run = Run(run_id, "alice", "c1", "helper", "running", "hi", at, started_at=at, regenerate=regenerate)
    async with uow_factory(user_id="alice") as uow:
        assert await uow.runs.add(run, owner=OWNER, lease_until=LATER)
        claimed = await uow.turns.open(
            "alice", "c1", "helper", "hi", title="hi", now=at, window_turns=10, run_id=run_id
        )
        assert claimed is not None
        turn = claimed.chat.turn_count
        closed = await uow.turns.close("alice", "c1", turn, answer, _event(), now=at, outcome=outcome)
        assert closed.written
        await uow.commit()
    return turn


def _ended(run_id: str, status: RunStatus = "completed") -> RunOutcome:
    error = RunError("model_error", "the provider said no") if status == "failed" else None
    return RunOutcome(run_id, OWNER, status, "echo", TurnUsage(7, 3, 1), error=error)


@pytest.mark.usefixtures("alices_chat")
async def test_a_run_records_the_turn_it_opened_with_its_model_usage_and_end(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    first = await _turn(
        uow_factory, "run-1", _ended("run-1"), [NewMessage("assistant", "echo: hi")], minutes=0
    )
    second = await _turn(uow_factory, "run-2", _ended("run-2", "failed"), [], minutes=1)
    async with uow_factory(user_id="alice") as uow:
        found = await uow.runs.of_turns("alice", "c1", turns=[first, second], answering=[])
    by_turn = {turn_run.turn: turn_run.run for turn_run in found}
    assert sorted(by_turn) == [first, second] == [1, 2]
    assert (by_turn[1].id, by_turn[1].status, by_turn[1].model, by_turn[1].usage) == (
        "run-1",
        "completed",
        "echo",
        TurnUsage(7, 3, 1),
    )
    assert by_turn[2].status == "failed"
    assert by_turn[2].error == RunError("model_error", "the provider said no")


@pytest.mark.usefixtures("alices_chat")
async def test_a_regeneration_is_found_by_the_user_message_it_answered_again(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _turn(uow_factory, "run-1", _ended("run-1"), [NewMessage("assistant", "echo: hi")], minutes=0)
    async with uow_factory(user_id="alice") as uow:
        asked = await uow.messages.children("alice", "c1", [None])
    again = await _turn(
        uow_factory, "run-2", _ended("run-2", "failed"), [], minutes=1, regenerate=asked[0].id
    )
    async with uow_factory(user_id="alice") as uow:
        found = await uow.runs.of_turns("alice", "c1", turns=[], answering=[asked[0].id])
    assert [(r.turn, r.run.id, r.run.regenerate) for r in found] == [(again, "run-2", asked[0].id)]


@pytest.mark.usefixtures("alices_chat")
async def test_only_the_callers_runs_are_found_and_a_queued_run_has_no_turn_yet(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _turn(uow_factory, "run-1", _ended("run-1"), [NewMessage("assistant", "echo: hi")], minutes=0)
    async with uow_factory(user_id="alice") as uow:
        assert await uow.runs.add(Run("run-q", "alice", "c1", "helper", "queued", "later", LATER))
        await uow.commit()
    async with uow_factory(user_id="bob") as uow:
        assert await uow.runs.of_turns("bob", "c1", turns=[1], answering=[1]) == []
    async with uow_factory(user_id="alice") as uow:
        found = await uow.runs.of_turns("alice", "c1", turns=[1, 2], answering=[])
        assert await uow.runs.of_turns("alice", "c1", turns=[], answering=[]) == []
    assert [(r.turn, r.run.id) for r in found] == [(1, "run-1")]


@pytest.mark.usefixtures("alices_chat")
async def test_a_runs_first_answer_and_last_message_are_found_by_the_run_id_for_its_owner_only(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    answer = [NewMessage("assistant", "thinking", tool_calls=()), NewMessage("assistant", "done")]
    await _turn(uow_factory, "run-1", _ended("run-1"), answer, minutes=0)
    await _turn(uow_factory, "run-2", _ended("run-2", "failed"), [], minutes=1)
    async with uow_factory(user_id="alice") as uow:
        first = await uow.messages.answer_of_run("alice", "c1", "run-1")
        none = await uow.messages.answer_of_run("alice", "c1", "run-2")
        unknown = await uow.messages.answer_of_run("alice", "c1", "no-such-run")
        stored = await uow.messages.children("alice", "c1", [None])
        answers = await uow.messages.children("alice", "c1", [stored[0].id])
        lasts = [await uow.messages.last_of_run("alice", "c1", r) for r in ("run-1", "run-2", "no-such-run")]
        done = await uow.messages.children("alice", "c1", [answers[0].id])
        asked_again = await uow.messages.children("alice", "c1", [done[0].id])
    async with uow_factory(user_id="bob") as uow:
        bobs = await uow.messages.answer_of_run("bob", "c1", "run-1")
        bobs_last = await uow.messages.last_of_run("bob", "c1", "run-1")
    assert first == answers[0].id and answers[0].content == "thinking"
    assert (none, unknown, bobs, bobs_last) == (None, None, None, None)
    # run-1's last message is its final answer; run-2 failed and left only its user message.
    assert [m.content for m in done] == ["done"] and lasts[0] == done[0].id
    assert lasts[2] is None and [m.id for m in asked_again] == [lasts[1]]

