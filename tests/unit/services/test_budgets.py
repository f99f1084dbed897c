"""Budgets on fakes with an injected clock: admission, what a refusal leaves, periods, reports."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chatserver.domain import User
from chatserver.domain.usage import Budget, UsageQuery
from chatserver.errors import BudgetExceeded, InvalidInput, NotFound
from tests.unit.services.conftest import World

DAY = 24 * 3600


def sign_up(world: World, user_id: str) -> None:
    world.uow.store.users[user_id] = User(user_id, None, False, world.clock.now())


async def set_budget(world: World, **fields: Any) -> Budget:
    return await world.chat.budgets.set(Budget("", **fields))


class TestAdmission:
    async def test_a_used_up_daily_budget_refuses_until_the_next_utc_day(self, world: World) -> None:
        sign_up(world, "ann")
        await set_budget(world, period="day", user_id="ann", max_requests=1)
        await world.chat.say("ann", "assistant", "c1", "first")
        with pytest.raises(BudgetExceeded) as refused:
            await world.chat.say("ann", "assistant", "c2", "second")
        assert refused.value.retry_after_seconds == 24 * 3600  # the fake clock stands at midnight
        assert ("ann", "c2") not in world.uow.store.chats
        world.clock.advance(DAY)
        assert (await world.chat.say("ann", "assistant", "c2", "third")).response == "echo: third"

    async def test_a_monthly_budget_resets_on_the_first_of_the_next_month(self, world: World) -> None:
        sign_up(world, "bo")
        await set_budget(world, period="month", user_id="bo", max_tokens=1)
        await world.chat.say("bo", "assistant", "c1", "spend tokens")
        world.clock.advance(30 * DAY)
        with pytest.raises(BudgetExceeded) as refused:
            await world.chat.say("bo", "assistant", "c2", "still January")
        assert refused.value.retry_after_seconds == 24 * 3600
        world.clock.advance(DAY)
        assert (await world.chat.say("bo", "assistant", "c2", "February")).response == "echo: February"

    async def test_a_tool_loop_refused_between_steps_keeps_the_tool_call_and_its_result(
        self, world: World
    ) -> None:
        sign_up(world, "cy")
        await set_budget(world, period="day", user_id="cy", max_requests=1)
        with pytest.raises(BudgetExceeded):
            await world.chat.say("cy", "assistant", "c1", "/tool current_time {}")
        stored = [m for m in world.uow.store.messages if m.chat_id == "c1"]
        assert [m.role for m in stored] == ["user", "assistant", "tool"]
        [run] = world.uow.store.runs.values()
        assert run.status == "failed" and run.error is not None and run.error.code == "budget_exceeded"
        [row] = world.uow.store.metering.ledger
        assert (row.model, row.requests, row.cost_usd) == ("echo", 1, 0.0)

    async def test_another_users_budget_never_binds_and_a_default_binds_those_without_their_own(
        self, world: World
    ) -> None:
        for user in ("dee", "eli"):
            sign_up(world, user)
        await set_budget(world, period="day", max_requests=0)
        await set_budget(world, period="day", user_id="eli", max_requests=5)
        with pytest.raises(BudgetExceeded):
            await world.chat.say("dee", "assistant", "c1", "hi")
        assert (await world.chat.say("eli", "assistant", "c1", "hi")).response == "echo: hi"

    async def test_the_ledger_has_one_row_per_model_of_each_run(self, world: World) -> None:
        await world.chat.say("fin", "assistant", "c1", "/tool current_time {}")
        [row] = world.uow.store.metering.ledger
        assert (row.user_id, row.agent_name, row.model, row.requests) == ("fin", "assistant", "echo", 2)
        report = await world.chat.budgets.usage("fin", UsageQuery("agent"))
        assert report.totals.requests == 2 and report.totals.runs == 1
        assert (await world.chat.budgets.usage("someone-else", UsageQuery("agent"))).items == []


class TestBudgetRules:
    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"period": "day"}, None),
            ({"period": "day", "max_tokens": -1}, "max_tokens"),
            ({"period": "week", "max_tokens": 1}, "period"),
        ],
    )
    async def test_a_budget_without_a_sane_limit_is_refused(
        self, world: World, fields: dict[str, Any], field: str | None
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            await set_budget(world, **fields)
        assert refused.value.field == field

    async def test_a_budget_of_an_unknown_agent_or_user_is_not_found(self, world: World) -> None:
        with pytest.raises(NotFound):
            await set_budget(world, period="day", agent_name="nobody", max_tokens=1)
        with pytest.raises(NotFound):
            await set_budget(world, period="day", user_id="nobody", max_tokens=1)
        with pytest.raises(NotFound):
            await world.chat.budgets.delete("no-such-budget")

    async def test_the_callers_status_shows_use_remaining_and_reset(self, world: World) -> None:
        sign_up(world, "gil")
        await set_budget(world, period="day", user_id="gil", max_requests=3)
        await world.chat.say("gil", "assistant", "c1", "hi")
        [status] = await world.chat.budgets.status("gil")
        assert status.used.requests == 1 and status.remaining()["requests"] == 2
        assert status.remaining()["tokens"] is None
        assert status.resets_at == world.clock.now() + timedelta(days=1)
