"""The usage ledger on SQL: rows per run and model, totals grouped by day, agent, model or user."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain.usage import ModelUsage, UsageQuery, UsageTotals
from chatserver.storage.sql.tables import usage_records

_u = usage_records.c


def ledger_rows(
    user_id: str, agent_name: str, run_id: str, rows: Sequence[ModelUsage], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "user_id": user_id,
            "agent_name": agent_name,
            "run_id": run_id,
            "created_at": now,
            "model": row.model,
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "requests": row.requests,
            "cost_usd": row.cost_usd,
        }
        for row in rows
    ]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class SqlUsageRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, user_id: str, agent_name: str, run_id: str, rows: Sequence[ModelUsage], *, now: datetime
    ) -> None:
        if rows:
            values = ledger_rows(user_id, agent_name, run_id, rows, now)
            await self._conn.execute(insert(usage_records), values)

    async def totals(self, user_id: str, query: UsageQuery) -> list[UsageTotals]:
        return await self._totals(query, _u.user_id == user_id)

    async def totals_of_everyone(self, query: UsageQuery) -> list[UsageTotals]:
        where = [] if query.user_id is None else [_u.user_id == query.user_id]
        return await self._totals(query, *where)

    async def _totals(self, query: UsageQuery, *where: ColumnElement[bool]) -> list[UsageTotals]:
        rows = await self._conn.execute(self._statement(query, *where))
        return [
            UsageTotals(str(k), int(i), int(o), int(n), int(runs), None if cost is None else float(cost))
            for k, i, o, n, runs, cost in rows
        ]

    def _statement(self, query: UsageQuery, *where: ColumnElement[bool]) -> Select[Any]:
        key = self._key(query).label("key")
        # A group with a row of unknown price has no known cost.
        cost = case((func.count(_u.cost_usd) == func.count(), func.sum(_u.cost_usd)), else_=None)
        statement = select(
            key,
            func.sum(_u.input_tokens),
            func.sum(_u.output_tokens),
            func.sum(_u.requests),
            func.count(func.distinct(_u.run_id)),
            cost,
        ).where(*where)
        if query.agent_name is not None:
            statement = statement.where(_u.agent_name == query.agent_name)
        if query.start is not None:
            statement = statement.where(_u.created_at >= _midnight(query.start))
        if query.end is not None:
            statement = statement.where(_u.created_at < _midnight(query.end + timedelta(days=1)))
        return statement.group_by(key).order_by(key)

    def _key(self, query: UsageQuery) -> ColumnElement[Any]:
        if query.group_by == "day":
            if self._conn.dialect.name == "postgresql":
                return func.to_char(func.timezone("UTC", _u.created_at), "YYYY-MM-DD")
            return func.substr(_u.created_at, 1, 10)  # stored as naive UTC text
        column = {"agent": _u.agent_name, "model": _u.model, "user": _u.user_id}[query.group_by]
        return column
