"""Usage of models and the budgets that bound it: plain values and the arithmetic of periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

Period = Literal["day", "month"]
UsageGroup = Literal["day", "agent", "model", "user"]
FREE_MODELS = ("echo", "local:")
"""Model strings (or their prefixes) that cost nothing: no provider bills them."""


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """What one model did in one run: its requests, tokens and cost (None: no price known)."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def plus(self, other: ModelUsage) -> ModelUsage:
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return ModelUsage(
            self.model,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.requests + other.requests,
            cost,
        )


def is_free(model: str) -> bool:
    return any(model == free or (free.endswith(":") and model.startswith(free)) for free in FREE_MODELS)


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """One line of a usage report: ``key`` is the group's value (a day, an agent, a model, a user)."""

    key: str
    input_tokens: int
    output_tokens: int
    requests: int
    runs: int
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class UsageQuery:
    group_by: UsageGroup
    start: date | None = None
    end: date | None = None
    """Inclusive, UTC."""
    user_id: str | None = None
    agent_name: str | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """A limit per period. No user and no agent: every user's default, for users without one of
    their own. An agent's budget (no user) is that agent's total, all users together."""

    id: str
    period: Period
    user_id: str | None = None
    agent_name: str | None = None
    max_tokens: int | None = None
    max_requests: int | None = None
    max_cost_usd: float | None = None
    created_at: datetime | None = None

    @property
    def is_default(self) -> bool:
        return self.user_id is None and self.agent_name is None

    def subject(self, user_id: str) -> str:
        """Whose spending one counter of this budget holds: the user's, or the agent's (``""``)."""
        return "" if self.user_id is None and self.agent_name is not None else user_id


@dataclass(frozen=True, slots=True)
class Spend:
    """What a budget's counter holds for one period."""

    tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    budget: Budget
    used: Spend
    resets_at: datetime

    def remaining(self) -> dict[str, float | int | None]:
        b, used = self.budget, self.used
        return {
            "tokens": None if b.max_tokens is None else max(b.max_tokens - used.tokens, 0),
            "requests": None if b.max_requests is None else max(b.max_requests - used.requests, 0),
            "cost_usd": None if b.max_cost_usd is None else max(b.max_cost_usd - used.cost_usd, 0.0),
        }


def applicable(budgets: list[Budget], user_id: str, agent_name: str | None = None) -> list[Budget]:
    """The budgets a user's turn on ``agent_name`` is bound by (on any agent, when None).

    The default applies only to users with no budget of their own for every agent.
    """

    def reaches(budget: Budget) -> bool:
        if budget.is_default or budget.user_id not in (None, user_id):
            return False
        return agent_name is None or budget.agent_name in (None, agent_name)

    has_own = any(b.user_id == user_id and b.agent_name is None for b in budgets)
    defaults = [] if has_own else [b for b in budgets if b.is_default]
    return [*filter(reaches, budgets), *defaults]


def period_start(period: Period, now: datetime) -> date:
    today = now.astimezone(UTC).date()
    return today if period == "day" else today.replace(day=1)


def period_end(period: Period, now: datetime) -> datetime:
    """When the period holding ``now`` ends (UTC midnight)."""
    start = period_start(period, now)
    if period == "day":
        following = date.fromordinal(start.toordinal() + 1)
    else:
        following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return datetime(following.year, following.month, following.day, tzinfo=UTC)
