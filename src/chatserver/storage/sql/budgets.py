"""Budgets and their counters on SQL. A counter is checked and counted up by one UPDATE, whose
row lock (PostgreSQL) or the single writer (SQLite) makes concurrent admissions take turns."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain.usage import Budget, Spend
from chatserver.storage.sql.statements import dialect_insert
from chatserver.storage.sql.tables import budget_counters, budgets

_b = budgets.c
_c = budget_counters.c


def _budget(row: RowMapping) -> Budget:
    return Budget(
        id=row["id"],
        period=row["period"],
        user_id=row["user_id"],
        agent_name=row["agent_name"],
        max_tokens=row["max_tokens"],
        max_requests=row["max_requests"],
        max_cost_usd=row["max_cost_usd"],
        created_at=row["created_at"],
    )


def _values(budget: Budget) -> dict[str, Any]:
    return {
        "user_id": budget.user_id,
        "agent_name": budget.agent_name,
        "period": budget.period,
        "max_tokens": budget.max_tokens,
        "max_requests": budget.max_requests,
        "max_cost_usd": budget.max_cost_usd,
        "created_at": budget.created_at,
    }


def _counter(budget: Budget, subject: str, period_start: date) -> list[ColumnElement[bool]]:
    return [_c.budget_id == budget.id, _c.subject == subject, _c.period_start == period_start]


def _under_limits(budget: Budget) -> list[ColumnElement[bool]]:
    limits = []
    if budget.max_requests is not None:
        limits.append(_c.requests < budget.max_requests)
    if budget.max_tokens is not None:
        limits.append(_c.tokens < budget.max_tokens)
    if budget.max_cost_usd is not None:
        limits.append(_c.cost_usd < budget.max_cost_usd)
    return limits


class SqlBudgetRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def list(self) -> list[Budget]:
        statement = select(budgets).order_by(_b.created_at, _b.id)
        return [_budget(row) for row in (await self._conn.execute(statement)).mappings()]

    async def put(self, budget: Budget) -> Budget:
        same = select(_b.id).where(
            _b.user_id.is_not_distinct_from(budget.user_id),
            _b.agent_name.is_not_distinct_from(budget.agent_name),
            _b.period == budget.period,
        )
        existing = (await self._conn.execute(same.limit(1))).scalar()
        if existing is None:
            await self._conn.execute(budgets.insert().values(id=budget.id, **_values(budget)))
            return budget
        await self._conn.execute(update(budgets).where(_b.id == existing).values(_values(budget)))
        # What was spent under the old limits still counts under the new ones.
        return replace(budget, id=existing)

    async def delete(self, budget_id: str) -> bool:
        await self._conn.execute(delete(budget_counters).where(_c.budget_id == budget_id))
        result = await self._conn.execute(delete(budgets).where(_b.id == budget_id))
        return result.rowcount > 0

    async def spend(self, budget: Budget, subject: str, period_start: date, spent: Spend) -> None:
        values = {
            "budget_id": budget.id,
            "subject": subject,
            "period_start": period_start,
            "tokens": spent.tokens,
            "requests": spent.requests,
            "cost_usd": spent.cost_usd,
        }
        insert = dialect_insert(self._conn, budget_counters).values(values)
        excluded = insert.excluded
        statement = insert.on_conflict_do_update(
            index_elements=[_c.budget_id, _c.subject, _c.period_start],
            set_={
                "tokens": _c.tokens + excluded.tokens,
                "requests": _c.requests + excluded.requests,
                "cost_usd": _c.cost_usd + excluded.cost_usd,
            },
        )
        await self._conn.execute(statement)

    async def admit(self, budget: Budget, subject: str, period_start: date) -> bool:
        await self.spend(budget, subject, period_start, Spend())
        statement = (
            update(budget_counters)
            .where(*_counter(budget, subject, period_start), *_under_limits(budget))
            .values(requests=_c.requests + 1)
        )
        return (await self._conn.execute(statement)).rowcount > 0

    async def spent(self, budget: Budget, subject: str, period_start: date) -> Spend:
        columns = select(_c.tokens, _c.requests, _c.cost_usd)
        statement = columns.where(*_counter(budget, subject, period_start))
        row = (await self._conn.execute(statement)).first()
        return Spend() if row is None else Spend(int(row[0]), int(row[1]), float(row[2]))
