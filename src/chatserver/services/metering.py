"""Budgets enforced before every model request, and each run's usage by model.

A turn is admitted when it starts (``BudgetGate.admit`` in the transaction that stores the run, so
a refused turn stores nothing): that counts its first model request. Each later request of the run
(tool steps) is admitted by its ``RunMeter`` in a transaction of its own, which also adds what the
requests before it spent. Requests are counted by one conditional UPDATE per budget, so a limit of
requests is never passed, across replicas; tokens and cost are known only once a request is
answered, so a budget of tokens or cost can be passed by what the requests already in flight spend
(at most one request per run in flight). Runs bound by no budget cost no statement at all.

Which budgets exist is read at most every ``refresh_seconds`` (and at once after a change through
this process): a budget set elsewhere binds within that time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime

from pydantic_ai.messages import ModelResponse

from chatserver.clock import Clock
from chatserver.domain import Run, TurnUsage
from chatserver.domain.usage import Budget, ModelUsage, Spend, applicable, is_free, period_end, period_start
from chatserver.errors import BudgetExceeded, ChatServerError
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("chatserver.budgets")


def exceeded(budget: Budget, now: datetime) -> BudgetExceeded:
    resets = period_end(budget.period, now)
    seconds = max(1, math.ceil((resets - now).total_seconds()))
    scope = "your" if budget.user_id else ("this agent's" if budget.agent_name else "the default")
    return BudgetExceeded(
        f"{scope} {budget.period}ly budget is used up; it resets at {resets.isoformat()}",
        retry_after_seconds=seconds,
    )


def price(model: str, response: ModelResponse) -> float | None:
    """The response's cost in USD from pydantic-ai's price data; 0 for our own models, None unknown."""
    if is_free(model):
        return 0.0
    try:
        return float(response.cost().total_price)
    except Exception:  # unknown model or provider, or a response without usage: no price known
        return None


class BudgetGate:
    """Which budgets bind a user's turns, and the admission of their model requests."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, refresh_seconds: float = 5.0) -> None:
        self._uow = uow
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._budgets: list[Budget] = []
        self._read_at = -math.inf
        self._reading = asyncio.Lock()

    def changed(self) -> None:
        """Budgets were changed here: read them again before the next turn."""
        self._read_at = -math.inf

    async def binding(self, user_id: str, agent_name: str | None = None) -> list[Budget]:
        if time.monotonic() - self._read_at >= self._refresh_seconds:
            async with self._reading:
                if time.monotonic() - self._read_at >= self._refresh_seconds:
                    read_at = time.monotonic()
                    async with self._uow() as uow:
                        self._budgets = await uow.budgets.list()
                    self._read_at = read_at
        return applicable(self._budgets, user_id, agent_name)

    async def admit(
        self, uow: UnitOfWork, budgets: list[Budget], user_id: str, spent: Spend | None = None
    ) -> None:
        """Add ``spent`` and count one more request on each budget, in ``uow``; raise
        ``BudgetExceeded`` (the caller rolls back) when one is used up."""
        now = self._clock.now()
        for budget in budgets:
            subject, start = budget.subject(user_id), period_start(budget.period, now)
            if spent is not None and spent != Spend():
                await uow.budgets.spend(budget, subject, start, spent)
            if not await uow.budgets.admit(budget, subject, start):
                raise exceeded(budget, now)

    async def spend(self, budgets: list[Budget], user_id: str, spent: Spend) -> None:
        """Add what requests spent, in a transaction of its own."""
        now = self._clock.now()
        async with self._uow(user_id=user_id) as uow:
            for budget in budgets:
                start = period_start(budget.period, now)
                await uow.budgets.spend(budget, budget.subject(user_id), start, spent)
            await uow.commit()


class RunMeter:
    """Implements ``agents.types.Meter`` for one run; its first request was admitted at its start."""

    def __init__(self, gate: BudgetGate, uow: UnitOfWorkFactory, run: Run, budgets: list[Budget]) -> None:
        self._gate = gate
        self._uow = uow
        self._run = run
        self._budgets = budgets
        self._by_model: dict[str, ModelUsage] = {}
        self._unposted = Spend()
        self._requests = 0
        self.answered: str | None = None
        """The model string of the model that gave the latest answer."""

    async def before_request(self) -> None:
        if self._requests == 0 or not self._budgets:
            return
        spent, self._unposted = self._unposted, Spend()
        user_id = self._run.user_id
        try:
            async with self._uow(user_id=user_id) as uow:
                await self._gate.admit(uow, self._budgets, user_id, spent)
                await uow.commit()
        except BudgetExceeded:
            await self._gate.spend(self._budgets, user_id, spent)
            raise

    def record(self, model: str, response: ModelResponse) -> None:
        usage = response.usage
        row = ModelUsage(model, usage.input_tokens, usage.output_tokens, 1, price(model, response))
        known = self._by_model.get(model)
        self._by_model[model] = row if known is None else known.plus(row)
        cost = self._unposted.cost_usd + (row.cost_usd or 0.0)
        self._unposted = Spend(self._unposted.tokens + row.tokens, self._unposted.requests, cost)
        self._requests += 1
        self.answered = model

    async def settle(self) -> None:
        """Add what the last requests spent to the budgets (at the run's end)."""
        spent, self._unposted = self._unposted, Spend()
        if not self._budgets or spent == Spend():
            return
        try:
            await self._gate.spend(self._budgets, self._run.user_id, spent)
        except ChatServerError:
            # The run's answer is stored already; its budgets miss what its last request spent.
            log.warning("could not count a run's spending", extra={"run_id": self._run.id}, exc_info=True)

    def rows(self) -> tuple[ModelUsage, ...]:
        return tuple(self._by_model.values())

    def total(self) -> TurnUsage:
        rows = self._by_model.values()
        return TurnUsage(
            input_tokens=sum(r.input_tokens for r in rows),
            output_tokens=sum(r.output_tokens for r in rows),
            requests=sum(r.requests for r in rows),
        )


class Metering:
    """What the run pipeline meters with: the gate, and a meter per run."""

    def __init__(self, uow: UnitOfWorkFactory, gate: BudgetGate) -> None:
        self._uow = uow
        self.gate = gate

    async def meter(self, run: Run) -> RunMeter:
        budgets = await self.gate.binding(run.user_id, run.agent_name)
        return RunMeter(self.gate, self._uow, run, budgets)
