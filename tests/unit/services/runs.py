"""Run services on fakes, and the plain answer of a run as the tests read it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chatserver.agents.types import ToolBackend, TurnResult
from chatserver.domain import NewMessage, StartRun, ToolCallRecord, TurnUsage
from chatserver.domain.usage import ModelUsage
from chatserver.services.agent_loader import AgentLoader
from chatserver.services.budgets import BudgetService
from chatserver.services.metering import BudgetGate, Metering
from chatserver.services.run_errors import error_of
from chatserver.services.run_events import MemoryRunEvents
from chatserver.services.run_executor import RunExecutor
from chatserver.services.run_supervisor import RunSupervisor
from chatserver.services.runs import LocalRunSignals, RunService
from chatserver.services.turn_policy import TurnListener, TurnPolicy
from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory


@dataclass
class RecordingListener:
    completed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    usage: list[tuple[str, ModelUsage]] = field(default_factory=list)

    def turn_completed(self, agent_name: str, result: TurnResult, seconds: float) -> None:
        self.completed.append((agent_name, result.output))

    def turn_failed(self, agent_name: str, code: str, seconds: float) -> None:
        self.failed.append((agent_name, code))

    def usage_recorded(self, agent_name: str, rows: Sequence[ModelUsage]) -> None:
        self.usage.extend((agent_name, row) for row in rows)


@dataclass(frozen=True)
class Reply:
    response: str
    tool_calls: list[ToolCallRecord]
    usage: TurnUsage
    run_id: str


@dataclass
class Runs:
    service: RunService
    executor: RunExecutor
    supervisor: RunSupervisor
    events: MemoryRunEvents
    budgets: BudgetService

    async def say(self, user_id: str, agent_name: str, chat_id: str, message: str, **extra: Any) -> Reply:
        """One turn on a chat, as ``POST /api/chat`` takes it: the answer, or the run's error raised."""
        return await self._answer(StartRun(user_id, agent_name, message, chat_id=chat_id, **extra))

    async def ask(
        self,
        user_id: str,
        agent_name: str,
        message: str,
        *,
        history: tuple[NewMessage, ...] = (),
        instructions: str | None = None,
    ) -> Reply:
        """A stateless turn: the caller's history is the whole context."""
        return await self._answer(
            StartRun(user_id, agent_name, message, history=history, instructions=instructions)
        )

    async def _answer(self, command: StartRun) -> Reply:
        handle = await self.service.start(command)
        outcome = await handle.outcome()
        if outcome.kind != "done":
            raise error_of(outcome.data.get("code", ""), outcome.data.get("detail", ""))
        data = outcome.data
        calls = [ToolCallRecord(**call) for call in data["tool_calls"]]
        return Reply(data["response"], calls, TurnUsage(**data["usage"]), data["run_id"])


def build_runs(
    uow: FakeUnitOfWorkFactory,
    loader: AgentLoader,
    clock: FakeClock,
    policy: TurnPolicy,
    *,
    tool_backend: ToolBackend | None = None,
    listener: TurnListener | None = None,
    replica: str = "replica-1",
) -> Runs:
    events = MemoryRunEvents(3600)
    gate = BudgetGate(uow, clock, refresh_seconds=0)
    executor = RunExecutor(
        uow,
        loader,
        events,
        clock,
        policy,
        replica=replica,
        tool_backend=tool_backend,
        listener=listener,
        metering=Metering(uow, gate),
    )
    signals = LocalRunSignals(executor)
    service = RunService(uow, loader, executor, events, signals, clock, policy, budgets=gate)
    supervisor = RunSupervisor(uow, executor, events, clock, lease_seconds=policy.lease_seconds)
    return Runs(service, executor, supervisor, events, BudgetService(uow, gate, clock))
