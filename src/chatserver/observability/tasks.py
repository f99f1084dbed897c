"""The background tasks, counted: each sweep and eviction cycle as a run, ok or failed.

A subclass rather than a hook inside the service: the service's loop calls ``sweep_once`` and
``evict_once`` through ``self``, so counting here sees every cycle, the ones that raise included,
without the service knowing about metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from chatserver.agents.cache import CacheKey
from chatserver.observability.metrics import Metrics
from chatserver.services.background_tasks import BackgroundTaskService

T = TypeVar("T")

SWEEP_TASK = "session_sweep"
EVICTION_TASK = "agent_eviction"
RETENTION_TASK = "retention"


class ObservedBackgroundTasks(BackgroundTaskService):
    def __init__(self, *args: Any, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics

    async def sweep_once(self) -> dict[str, Any] | None:
        return await self._counted(SWEEP_TASK, super().sweep_once())

    async def purge_once(self) -> dict[str, int]:
        return await self._counted(RETENTION_TASK, super().purge_once())

    async def evict_once(self) -> list[CacheKey]:
        return await self._counted(EVICTION_TASK, super().evict_once())

    async def _counted(self, task: str, cycle: Awaitable[T]) -> T:
        try:
            result = await cycle
        except Exception:
            self._metrics.task_run(task, ok=False)
            raise
        self._metrics.task_run(task, ok=True)
        return result
