"""Background task cycles are counted per task and outcome, failures included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatserver.agents.cache import AgentCache
from chatserver.observability.metrics import Metrics
from chatserver.observability.tasks import ObservedBackgroundTasks
from chatserver.services.background_tasks import MaintenancePolicy
from chatserver.storage.protocols import MaintenanceWork
from tests.unit.fakes import FakeClock, FakeMaintenanceGate, FakeSleeper, FakeUnitOfWorkFactory
from tests.unit.observability.test_metrics import value

INTERVAL = 60.0


class BrokenGate(FakeMaintenanceGate):
    async def run_exclusive(
        self, job: str, work: MaintenanceWork, *, now: datetime, min_gap: timedelta
    ) -> dict[str, Any] | None:
        raise ConnectionError("database went away")


def service(
    gate: type[FakeMaintenanceGate] = FakeMaintenanceGate,
) -> tuple[ObservedBackgroundTasks, Metrics, FakeSleeper]:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    uow = FakeUnitOfWorkFactory()
    metrics = Metrics()
    sleeper = FakeSleeper(clock)
    tasks = ObservedBackgroundTasks(
        uow,
        gate(uow),
        AgentCache(10, 900, clock),
        clock,
        MaintenancePolicy(INTERVAL, 300.0),
        sleeper=sleeper,
        metrics=metrics,
    )
    return tasks, metrics, sleeper


def runs(metrics: Metrics, task: str, outcome: str) -> float:
    return value(metrics, "chatserver_background_task_runs_total", task=task, outcome=outcome)


async def test_each_cycle_is_counted_as_ok_and_its_result_passed_through() -> None:
    tasks, metrics, _ = service()
    report = await tasks.sweep_once()
    evicted = await tasks.evict_once()
    assert report is not None and report["deactivated"] == 0 and evicted == []
    assert runs(metrics, "session_sweep", "ok") == 1
    assert runs(metrics, "agent_eviction", "ok") == 1


async def test_each_retention_purge_is_counted_as_a_cycle_of_its_own() -> None:
    tasks, metrics, _ = service()
    purged = await tasks.purge_once()
    assert not any(purged.values())
    assert runs(metrics, "retention", "ok") == 1


async def test_a_failing_cycle_is_counted_as_failed_and_still_raises() -> None:
    tasks, metrics, _ = service(BrokenGate)
    with pytest.raises(ConnectionError):
        await tasks.sweep_once()
    assert (runs(metrics, "session_sweep", "failed"), runs(metrics, "session_sweep", "ok")) == (1, 0)


async def test_the_running_loops_are_counted_cycle_by_cycle() -> None:
    tasks, metrics, sleeper = service(BrokenGate)
    await tasks.start()
    try:
        await sleeper.settle(2)
        await sleeper.advance(INTERVAL * 3)
    finally:
        await tasks.stop()
    assert runs(metrics, "session_sweep", "failed") == 3
    assert runs(metrics, "agent_eviction", "ok") == 3
