"""What metering needs from storage: the usage ledger and the budgets with their counters."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from chatserver.domain.usage import Budget, ModelUsage, Spend, UsageQuery, UsageTotals


class UsageRepository(Protocol):
    async def add(
        self, user_id: str, agent_name: str, run_id: str, rows: Sequence[ModelUsage], *, now: datetime
    ) -> None:
        """One ledger row per model of a run (the end of the run writes them)."""

    async def totals(self, user_id: str, query: UsageQuery) -> builtins.list[UsageTotals]:
        """The user's usage grouped by ``query.group_by``, in key order."""

    async def totals_of_everyone(self, query: UsageQuery) -> builtins.list[UsageTotals]:
        """System work (administrators): every user's usage, ``query.user_id`` narrowing it."""


class BudgetRepository(Protocol):
    """Administrators' data: budgets are nobody's own rows."""

    async def list(self) -> builtins.list[Budget]: ...
    async def put(self, budget: Budget) -> Budget:
        """Store ``budget``, replacing one of the same user, agent and period (which keeps its id)."""

    async def delete(self, budget_id: str) -> bool: ...
    async def spend(self, budget: Budget, subject: str, period_start: date, spent: Spend) -> None:
        """Add ``spent`` to the counter (created at zero when absent)."""

    async def admit(self, budget: Budget, subject: str, period_start: date) -> bool:
        """Count one more request unless the counter is at one of the budget's limits: in one
        statement, so concurrent requests never pass a limit together."""

    async def spent(self, budget: Budget, subject: str, period_start: date) -> Spend: ...
