"""In-memory fakes of the metering protocols (``storage/metering.py``), on ``FakeStore``'s state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Protocol

from chatserver.domain.usage import Budget, ModelUsage, Spend, UsageQuery, UsageTotals


@dataclass(frozen=True)
class LedgerRow:
    """As a row of ``usage_records``."""

    id: int
    user_id: str
    agent_name: str
    run_id: str
    created_at: datetime
    model: str
    input_tokens: int
    output_tokens: int
    requests: int
    cost_usd: float | None


@dataclass
class MeteringState:
    ledger: list[LedgerRow] = field(default_factory=list)
    budgets: dict[str, Budget] = field(default_factory=dict)
    counters: dict[tuple[str, str, date], Spend] = field(default_factory=dict)

    def copy(self) -> MeteringState:
        return MeteringState(list(self.ledger), dict(self.budgets), dict(self.counters))


class HasMetering(Protocol):
    metering: MeteringState


class FakeUsage:
    def __init__(self, s: HasMetering) -> None:
        self._s = s

    async def add(
        self, user_id: str, agent_name: str, run_id: str, rows: Sequence[ModelUsage], *, now: datetime
    ) -> None:
        ledger = self._s.metering.ledger
        for row in rows:
            ledger.append(
                LedgerRow(
                    len(ledger) + 1,
                    user_id,
                    agent_name,
                    run_id,
                    now,
                    row.model,
                    row.input_tokens,
                    row.output_tokens,
                    row.requests,
                    row.cost_usd,
                )
            )

    async def totals(self, user_id: str, query: UsageQuery) -> list[UsageTotals]:
        return self._totals(query, [r for r in self._s.metering.ledger if r.user_id == user_id])

    async def totals_of_everyone(self, query: UsageQuery) -> list[UsageTotals]:
        rows = self._s.metering.ledger
        return self._totals(query, [r for r in rows if query.user_id in (None, r.user_id)])

    def _totals(self, query: UsageQuery, rows: list[LedgerRow]) -> list[UsageTotals]:
        groups: dict[str, list[LedgerRow]] = {}
        for row in rows:
            day = row.created_at.date()
            if (query.start and day < query.start) or (query.end and day > query.end):
                continue
            if query.agent_name not in (None, row.agent_name):
                continue
            groups.setdefault(_key(query, row), []).append(row)
        return [_summed(key, groups[key]) for key in sorted(groups)]


def _key(query: UsageQuery, row: LedgerRow) -> str:
    return {
        "day": row.created_at.date().isoformat(),
        "agent": row.agent_name,
        "model": row.model,
        "user": row.user_id,
    }[query.group_by]


def _summed(key: str, rows: list[LedgerRow]) -> UsageTotals:
    costs = [r.cost_usd for r in rows]
    return UsageTotals(
        key,
        sum(r.input_tokens for r in rows),
        sum(r.output_tokens for r in rows),
        sum(r.requests for r in rows),
        len({r.run_id for r in rows}),
        None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
    )


class FakeBudgets:
    def __init__(self, s: HasMetering) -> None:
        self._s = s

    async def list(self) -> list[Budget]:
        return sorted(self._s.metering.budgets.values(), key=lambda b: (b.created_at or datetime.min, b.id))

    async def put(self, budget: Budget) -> Budget:
        budgets = self._s.metering.budgets
        same = next(
            (
                b
                for b in budgets.values()
                if (b.user_id, b.agent_name, b.period) == (budget.user_id, budget.agent_name, budget.period)
            ),
            None,
        )
        stored = budget if same is None else replace(budget, id=same.id)
        budgets[stored.id] = stored
        return stored

    async def delete(self, budget_id: str) -> bool:
        counters = self._s.metering.counters
        for key in [k for k in counters if k[0] == budget_id]:
            del counters[key]
        return self._s.metering.budgets.pop(budget_id, None) is not None

    async def spend(self, budget: Budget, subject: str, period_start: date, spent: Spend) -> None:
        key = (budget.id, subject, period_start)
        now = self._s.metering.counters.get(key, Spend())
        self._s.metering.counters[key] = Spend(
            now.tokens + spent.tokens, now.requests + spent.requests, now.cost_usd + spent.cost_usd
        )

    async def admit(self, budget: Budget, subject: str, period_start: date) -> bool:
        used = await self.spent(budget, subject, period_start)
        at_limit = (
            (budget.max_requests is not None and used.requests >= budget.max_requests)
            or (budget.max_tokens is not None and used.tokens >= budget.max_tokens)
            or (budget.max_cost_usd is not None and used.cost_usd >= budget.max_cost_usd)
        )
        if at_limit:
            return False
        await self.spend(budget, subject, period_start, Spend(requests=1))
        return True

    async def spent(self, budget: Budget, subject: str, period_start: date) -> Spend:
        return self._s.metering.counters.get((budget.id, subject, period_start), Spend())
