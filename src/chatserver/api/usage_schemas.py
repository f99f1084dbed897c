"""Bodies of the usage and budget routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from chatserver.api.schemas import Strict
from chatserver.domain.usage import Budget, BudgetStatus, UsageTotals
from chatserver.services.budgets import UsageReport


class UsageLine(BaseModel):
    key: str
    input_tokens: int
    output_tokens: int
    requests: int
    runs: int
    cost_usd: float | None = Field(description="null when a model's price is not known")

    @classmethod
    def of(cls, totals: UsageTotals) -> UsageLine:
        return cls(
            key=totals.key,
            input_tokens=totals.input_tokens,
            output_tokens=totals.output_tokens,
            requests=totals.requests,
            runs=totals.runs,
            cost_usd=totals.cost_usd,
        )


class UsageOut(BaseModel):
    items: list[UsageLine]
    totals: UsageLine

    @classmethod
    def of(cls, report: UsageReport) -> UsageOut:
        return cls(items=[UsageLine.of(item) for item in report.items], totals=UsageLine.of(report.totals))


class BudgetIn(Strict):
    user_id: str | None = Field(None, min_length=1, max_length=255, description="omit: every user")
    agent_name: str | None = Field(None, min_length=1, max_length=64, description="omit: every agent")
    period: Literal["day", "month"]
    max_tokens: int | None = Field(None, ge=0, le=10**15)
    max_requests: int | None = Field(None, ge=0, le=10**15)
    max_cost_usd: float | None = Field(None, ge=0, le=10**9)

    def to_domain(self) -> Budget:
        return Budget(
            id="",
            period=self.period,
            user_id=self.user_id,
            agent_name=self.agent_name,
            max_tokens=self.max_tokens,
            max_requests=self.max_requests,
            max_cost_usd=self.max_cost_usd,
        )


class BudgetOut(BaseModel):
    id: str
    user_id: str | None
    agent_name: str | None
    period: Literal["day", "month"]
    max_tokens: int | None
    max_requests: int | None
    max_cost_usd: float | None
    created_at: datetime | None

    @classmethod
    def of(cls, budget: Budget) -> BudgetOut:
        return cls(
            id=budget.id,
            user_id=budget.user_id,
            agent_name=budget.agent_name,
            period=budget.period,
            max_tokens=budget.max_tokens,
            max_requests=budget.max_requests,
            max_cost_usd=budget.max_cost_usd,
            created_at=budget.created_at,
        )


class Amounts(BaseModel):
    tokens: int | None
    requests: int | None
    cost_usd: float | None


class BudgetStatusOut(BudgetOut):
    used: Amounts
    remaining: Amounts = Field(description="null where the budget sets no such limit")
    resets_at: datetime

    @classmethod
    def of_status(cls, status: BudgetStatus) -> BudgetStatusOut:
        used = status.used
        return cls(
            **BudgetOut.of(status.budget).model_dump(),
            used=Amounts(tokens=used.tokens, requests=used.requests, cost_usd=used.cost_usd),
            remaining=Amounts.model_validate(status.remaining()),
            resets_at=status.resets_at,
        )


class BudgetOverviewOut(BudgetOut):
    used: Amounts | None = Field(description="this period; null for the default (each user has their own)")
    remaining: Amounts | None
    resets_at: datetime | None

    @classmethod
    def of_row(cls, budget: Budget, status: BudgetStatus | None) -> BudgetOverviewOut:
        if status is None:
            return cls(**BudgetOut.of(budget).model_dump(), used=None, remaining=None, resets_at=None)
        return cls(**BudgetStatusOut.of_status(status).model_dump())
