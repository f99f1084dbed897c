"""The usage ledger and budget counters on both databases."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from chatserver.domain import NewEvent, Run, RunOutcome, TurnUsage
from chatserver.domain.usage import Budget, ModelUsage, Spend, UsageQuery
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW, at, chat

DAY = NOW.date()


async def record(
    uow_factory: SqlUnitOfWorkFactory, user: str, run_id: str, *rows: ModelUsage, when: datetime = NOW
) -> None:
    async with uow_factory(user_id=user) as uow:
        await uow.usage.add(user, "helper", run_id, rows, now=when)
        await uow.commit()


class TestTheLedger:
    async def test_totals_group_by_model_and_count_runs_and_unknown_prices(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        alice, bob = users
        priceless = ModelUsage("openai:x", 3, 2, 1, None)
        await record(uow_factory, alice, "r1", ModelUsage("echo", 10, 5, 1), priceless)
        await record(uow_factory, alice, "r2", ModelUsage("echo", 1, 1, 2))
        await record(uow_factory, bob, "r3", ModelUsage("echo", 100, 100, 1))
        async with uow_factory(user_id=alice) as uow:
            totals = await uow.usage.totals(alice, UsageQuery("model"))
        assert [(t.key, t.input_tokens, t.output_tokens, t.requests, t.runs, t.cost_usd) for t in totals] == [
            ("echo", 11, 6, 3, 2, 0.0),
            ("openai:x", 3, 2, 1, 1, None),
        ]

    async def test_days_are_utc_days_and_the_range_includes_both_ends(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        alice, _ = users
        for days in (0, 1, 2):
            when = NOW + timedelta(days=days)
            await record(uow_factory, alice, f"d{days}", ModelUsage("echo", 1, 1, 1), when=when)
        query = UsageQuery("day", start=DAY + timedelta(days=1), end=DAY + timedelta(days=2))
        async with uow_factory(user_id=alice) as uow:
            totals = await uow.usage.totals(alice, query)
        assert [t.key for t in totals] == [(DAY + timedelta(days=n)).isoformat() for n in (1, 2)]

    async def test_everyones_totals_group_by_user_and_narrow_to_one(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        alice, bob = users
        await record(uow_factory, alice, "a1", ModelUsage("echo", 1, 1, 1))
        await record(uow_factory, bob, "b1", ModelUsage("echo", 2, 2, 1))
        async with uow_factory() as uow:
            everyone = await uow.usage.totals_of_everyone(UsageQuery("user"))
            only_bob = await uow.usage.totals_of_everyone(UsageQuery("agent", user_id=bob))
        assert [(t.key, t.input_tokens) for t in everyone] == [(alice, 1), (bob, 2)]
        assert [(t.key, t.input_tokens) for t in only_bob] == [("helper", 2)]

    async def test_a_runs_end_writes_its_usage_only_when_the_end_is_written(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        alice, _ = users
        async with uow_factory(user_id=alice) as uow:
            await uow.chats.create_if_absent(chat("c1", alice))
            await uow.runs.add(Run("run-1", alice, "c1", "helper", "running", "hi", at(1)), owner="me")
            await uow.commit()
        rows = (ModelUsage("echo", 4, 3, 1),)
        event = NewEvent("turn.completed", user_id=alice, agent_name="helper", chat_id="c1")
        for owner in ("someone-else", "me"):
            outcome = RunOutcome("run-1", owner, "completed", "echo", TurnUsage(4, 3, 1), usage_by_model=rows)
            async with uow_factory(user_id=alice) as uow:
                await uow.turns.close(alice, "c1", 0, [], event, now=NOW, outcome=outcome)
                await uow.commit()
        async with uow_factory(user_id=alice) as uow:
            totals = await uow.usage.totals(alice, UsageQuery("agent"))
        assert [(t.key, t.requests, t.runs) for t in totals] == [("helper", 1, 1)]


def budget(*, max_requests: int | None = None, max_tokens: int | None = None) -> Budget:
    return Budget(
        "b-1", "day", user_id="alice", max_tokens=max_tokens, max_requests=max_requests, created_at=NOW
    )


class TestBudgetCounters:
    async def test_concurrent_admissions_never_pass_a_limit_of_requests(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        async with uow_factory() as uow:
            stored = await uow.budgets.put(budget(max_requests=5))
            await uow.commit()

        async def admit() -> bool:
            async with uow_factory(user_id="alice") as uow:
                admitted = await uow.budgets.admit(stored, "alice", DAY)
                await uow.commit()
                return admitted

        results = await asyncio.gather(*(admit() for _ in range(12)))
        async with uow_factory() as uow:
            spent = await uow.budgets.spent(stored, "alice", DAY)
        assert results.count(True) == 5 and spent.requests == 5

    async def test_spending_counts_up_and_a_spent_limit_of_tokens_refuses_the_next_request(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        async with uow_factory() as uow:
            stored = await uow.budgets.put(budget(max_tokens=10))
            assert await uow.budgets.admit(stored, "alice", DAY)
            await uow.budgets.spend(stored, "alice", DAY, Spend(tokens=6, cost_usd=0.5))
            assert await uow.budgets.admit(stored, "alice", DAY)
            await uow.budgets.spend(stored, "alice", DAY, Spend(tokens=6))
            refused = not await uow.budgets.admit(stored, "alice", DAY)
            tomorrow = await uow.budgets.admit(stored, "alice", DAY + timedelta(days=1))
            spent = await uow.budgets.spent(stored, "alice", DAY)
        assert refused and tomorrow
        assert spent == Spend(tokens=12, requests=2, cost_usd=0.5)

    async def test_putting_a_budget_of_the_same_scope_replaces_it_and_keeps_its_counters(
        self, uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
    ) -> None:
        async with uow_factory() as uow:
            first = await uow.budgets.put(budget(max_requests=1))
            await uow.budgets.admit(first, "alice", DAY)
            second = await uow.budgets.put(Budget("b-2", "day", "alice", max_requests=3, created_at=NOW))
            other = await uow.budgets.put(Budget("b-3", "month", "alice", max_requests=3, created_at=NOW))
            listed = await uow.budgets.list()
            spent = await uow.budgets.spent(second, "alice", DAY)
            assert await uow.budgets.delete(other.id) and not await uow.budgets.delete("nope")
        assert second.id == first.id and other.id == "b-3"
        assert [(b.id, b.max_requests) for b in listed] == [("b-1", 3), ("b-3", 3)]
        assert spent.requests == 1
