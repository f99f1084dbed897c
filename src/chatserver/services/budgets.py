"""Budgets (administrators set them; each user sees the ones that bind them) and usage reports."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chatserver.clock import Clock
from chatserver.domain.usage import (
    Budget,
    BudgetStatus,
    Period,
    UsageQuery,
    UsageTotals,
    applicable,
    period_end,
    period_start,
)
from chatserver.errors import InvalidInput, NotFound
from chatserver.services.ids import sortable_id
from chatserver.services.metering import BudgetGate
from chatserver.storage.protocols import UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class UsageReport:
    items: list[UsageTotals]
    totals: UsageTotals


def _sum(items: list[UsageTotals]) -> UsageTotals:
    costs = [item.cost_usd for item in items]
    return UsageTotals(
        "total",
        sum(item.input_tokens for item in items),
        sum(item.output_tokens for item in items),
        sum(item.requests for item in items),
        sum(item.runs for item in items),
        None if any(cost is None for cost in costs) else sum(cost or 0.0 for cost in costs),
    )


class BudgetService:
    def __init__(self, uow: UnitOfWorkFactory, gate: BudgetGate, clock: Clock) -> None:
        self._uow = uow
        self._gate = gate
        self._clock = clock

    async def set(self, budget: Budget) -> Budget:
        """Store ``budget`` (its id is made here), replacing one of the same user, agent and period."""
        _check_limits(budget)
        stored = replace(budget, id=sortable_id(self._clock.now()), created_at=self._clock.now())
        async with self._uow() as uow:
            if budget.agent_name is not None and await uow.agents.get(budget.agent_name) is None:
                raise NotFound(f"agent '{budget.agent_name}' not found")
            if budget.user_id is not None and await uow.users.get(budget.user_id) is None:
                raise NotFound(f"user '{budget.user_id}' not found")
            stored = await uow.budgets.put(stored)
            await uow.commit()
        self._gate.changed()
        return stored

    async def all(self) -> list[Budget]:
        async with self._uow() as uow:
            return await uow.budgets.list()

    async def overview(self) -> list[tuple[Budget, BudgetStatus | None]]:
        """Every budget with what its counter used this period; None for the default, whose
        counters are each user's own."""
        now = self._clock.now()
        async with self._uow() as uow:
            budgets = await uow.budgets.list()
            rows: list[tuple[Budget, BudgetStatus | None]] = []
            for budget in budgets:
                if budget.is_default:
                    rows.append((budget, None))
                    continue
                start = period_start(budget.period, now)
                used = await uow.budgets.spent(budget, budget.subject(budget.user_id or ""), start)
                rows.append((budget, BudgetStatus(budget, used, period_end(budget.period, now))))
            return rows

    async def delete(self, budget_id: str) -> None:
        async with self._uow() as uow:
            deleted = await uow.budgets.delete(budget_id)
            await uow.commit()
        if not deleted:
            raise NotFound(f"budget '{budget_id}' not found")
        self._gate.changed()

    async def status(self, user_id: str) -> list[BudgetStatus]:
        """The budgets that bind the caller (on any agent), with what they used this period."""
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            statuses = []
            for budget in applicable(await uow.budgets.list(), user_id):
                start = period_start(budget.period, now)
                used = await uow.budgets.spent(budget, budget.subject(user_id), start)
                statuses.append(BudgetStatus(budget, used, period_end(budget.period, now)))
            return statuses

    async def usage(self, user_id: str, query: UsageQuery) -> UsageReport:
        async with self._uow(user_id=user_id) as uow:
            items = await uow.usage.totals(user_id, query)
        return UsageReport(items, _sum(items))

    async def usage_of_everyone(self, query: UsageQuery) -> UsageReport:
        async with self._uow() as uow:
            items = await uow.usage.totals_of_everyone(query)
        return UsageReport(items, _sum(items))


def _check_limits(budget: Budget) -> None:
    limits = {
        "max_tokens": budget.max_tokens,
        "max_requests": budget.max_requests,
        "max_cost_usd": budget.max_cost_usd,
    }
    if all(value is None for value in limits.values()):
        raise InvalidInput("a budget needs at least one of max_tokens, max_requests, max_cost_usd")
    for name, value in limits.items():
        if value is not None and value < 0:
            raise InvalidInput(f"{name} must be >= 0", field=name)
    periods: tuple[Period, ...] = ("day", "month")
    if budget.period not in periods:
        raise InvalidInput("period must be 'day' or 'month'", field="period")
