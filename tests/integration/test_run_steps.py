"""Run steps and paused runs on both databases: the ledger in order, a pending call decided once,
overdue calls found, and a paused run holding its chat until it is taken up again."""

from __future__ import annotations

import asyncio

import pytest

from chatserver.domain import Run, RunOutcome, TurnUsage
from chatserver.domain.steps import RunStep
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.integration.test_runs import add, claim, run
from tests.support.builders import at, chat


@pytest.fixture
async def alices_chat(uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]) -> str:
    async with uow_factory(user_id="alice") as uow:
        await uow.chats.create_if_absent(chat("c1", "alice"))
        await uow.commit()
    return "c1"


def steps_of(run_id: str) -> list[RunStep]:
    return [
        RunStep(run_id, 0, "model", "echo", "completed", at(1), at(1), payload={"parts": []}),
        RunStep(run_id, 1, "tool", "remember", "started", at(1), tool_call_id="call-1", args={"note": "x"}),
        RunStep(run_id, 2, "tool", "send_mail", "pending", at(1), tool_call_id="call-2", args={"to": "y"}),
    ]


async def paused_run(uow_factory: SqlUnitOfWorkFactory) -> Run:
    await add(uow_factory, run())
    claimed = await claim(uow_factory)
    assert claimed is not None
    async with uow_factory(user_id="alice") as uow:
        await uow.steps.add("alice", steps_of(claimed.id))
        assert await uow.pauses.pause("alice", claimed.id, owner="r1", result={"pending_approvals": []})
        await uow.commit()
    return claimed


async def decide(uow_factory: SqlUnitOfWorkFactory, run_id: str, call: str, user: str = "alice") -> bool:
    async with uow_factory(user_id=user) as uow:
        decided = await uow.steps.decide(
            user, run_id, call, status="approved", args={"to": "z"}, reason=None, now=at(9)
        )
        await uow.commit()
    return decided


@pytest.mark.usefixtures("alices_chat")
class TestTheLedger:
    async def test_steps_are_listed_in_order_and_finished_with_their_results(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        paused = await paused_run(uow_factory)
        async with uow_factory(user_id="alice") as uow:
            await uow.steps.finish("alice", paused.id, 1, status="completed", payload={"ok": 1}, now=at(2))
            await uow.commit()
        async with uow_factory(user_id="alice") as uow:
            steps = await uow.steps.list("alice", paused.id)
        assert [(s.seq, s.kind, s.status) for s in steps] == [
            (0, "model", "completed"),
            (1, "tool", "completed"),
            (2, "tool", "pending"),
        ]
        assert steps[1].payload == {"ok": 1} and steps[1].finished_at == at(2)
        assert steps[2].args == {"to": "y"}

    async def test_a_pending_call_is_decided_once_even_when_decisions_race(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        paused = await paused_run(uow_factory)
        decided = await asyncio.gather(*(decide(uow_factory, paused.id, "call-2") for _ in range(4)))
        not_pending = await decide(uow_factory, paused.id, "call-1")
        async with uow_factory(user_id="alice") as uow:
            steps = await uow.steps.list("alice", paused.id)
        assert sorted(decided) == [False, False, False, True]
        assert not_pending is False
        assert (steps[2].status, steps[2].args, steps[2].decided_at) == ("approved", {"to": "z"}, at(9))

    async def test_another_users_steps_are_neither_listed_nor_decided(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        paused = await paused_run(uow_factory)
        by_bob = await decide(uow_factory, paused.id, "call-2", user="bob")
        async with uow_factory(user_id="bob") as uow:
            listed = await uow.steps.list("bob", paused.id)
        assert by_bob is False and listed == []

    async def test_runs_with_calls_pending_too_long_are_found(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        paused = await paused_run(uow_factory)
        async with uow_factory() as uow:
            early = await uow.steps.overdue(before=at(1))
            late = await uow.steps.overdue(before=at(2))
        assert early == [] and late == [("alice", paused.id)]

    async def test_a_cancelled_runs_pending_calls_are_not_overdue(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        paused = await paused_run(uow_factory)
        cancelled = RunOutcome(paused.id, "r1", "cancelled", None, TurnUsage())
        async with uow_factory(user_id="alice") as uow:
            assert await uow.runs.finish("alice", cancelled, now=at(3), fenced=False)
            await uow.commit()
        async with uow_factory() as uow:
            overdue = await uow.steps.overdue(before=at(9))
        assert overdue == []


@pytest.mark.usefixtures("alices_chat")
class TestAPausedRun:
    async def test_it_holds_its_chat_until_it_is_taken_up_and_ends(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        paused = await paused_run(uow_factory)
        await add(uow_factory, run(seconds=1))
        behind = await claim(uow_factory, owner="r2")
        async with uow_factory(user_id="alice") as uow:
            stored = await uow.runs.get("alice", paused.id)
            startable = await uow.runs.startable()
            taken = await uow.pauses.take_up(
                "alice", paused.id, status="requires_action", owner="r2", lease_until=at(40)
            )
            again = await uow.pauses.take_up(
                "alice", paused.id, status="requires_action", owner="r3", lease_until=at(40)
            )
            await uow.commit()
        assert behind is None and startable == []
        assert stored is not None and stored.status == "requires_action"
        assert taken is not None and taken.status == "running" and again is None

    async def test_a_new_turn_on_its_chat_is_refused_as_busy_or_queued_behind_it(
        self, uow_factory: SqlUnitOfWorkFactory
    ) -> None:
        await paused_run(uow_factory)
        async with uow_factory(user_id="alice") as uow:
            rejected = await uow.turns.start(run(seconds=1), policy="reject", owner="r2", lease_until=at(40))
            queued = await uow.turns.start(run(seconds=2), policy="enqueue", owner="r2", lease_until=at(40))
            await uow.commit()
        assert rejected.outcome == "busy"
        assert queued.outcome == "accepted" and queued.claimed is None

    async def test_only_the_lease_holder_pauses_a_run(self, uow_factory: SqlUnitOfWorkFactory) -> None:
        await add(uow_factory, run())
        claimed = await claim(uow_factory)
        assert claimed is not None
        async with uow_factory(user_id="alice") as uow:
            by_other = await uow.pauses.pause("alice", claimed.id, owner="r9", result={})
            await uow.commit()
        assert by_other is False
