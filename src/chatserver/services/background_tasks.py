"""BackgroundTaskService: the stale-session sweep, retention and the agent-cache eviction.

Two asyncio tasks. The sweep runs every interval and marks instances whose last heartbeat is older
than the session TTL inactive; with several replicas the maintenance gate lets one of them sweep per
interval. Right after it, the retention purge deletes rows older than their retention, at most
``PURGE_BATCH_ROWS`` a transaction, one replica per interval too. The eviction runs half an interval
later in every process (the cache is per process) and drops cached agents of (user, agent) pairs
that have no active instance, and expired ones.

A failing cycle is logged with its exception and the loop goes on. A task that ends any other way
than through ``stop()`` is logged too, so nothing dies silently. Time comes from an injectable clock
and waiting from an injectable sleeper, so tests drive cycles without real sleeps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from chatserver.agents.cache import AgentCache, CacheKey
from chatserver.clock import Clock
from chatserver.domain import NewEvent
from chatserver.storage.protocols import MaintenanceGate, RetentionCutoffs, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger("chatserver.background")

SWEEP_JOB = "sweep"
# A replica skips its sweep when another one completed a sweep less than this share of an interval
# ago: replicas tick at unrelated phases, and the slack absorbs scheduling jitter and clock skew.
SWEEP_GAP_SHARE = 0.9


class Sleeper(Protocol):
    async def sleep(self, seconds: float) -> None: ...


class AsyncioSleeper:
    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


RETENTION_JOB = "retention"
PURGE_BATCH_ROWS = 1000
"""At most this many rows a transaction: a purge never holds long locks."""
MAX_BATCHES_PER_CYCLE = 100
"""A cycle's bound; a larger backlog goes on next interval."""


@dataclass(frozen=True, slots=True)
class MaintenancePolicy:
    interval_seconds: float
    session_ttl_seconds: float
    chat_days: int = 0
    """Retention in days (0: forever) of chats without activity, inactive sessions, audit events
    and ended runs."""
    session_days: int = 30
    event_days: int = 0
    run_days: int = 90

    def cutoffs(self, now: datetime) -> RetentionCutoffs:
        def before(days: int) -> datetime | None:
            return now - timedelta(days=days) if days else None

        return RetentionCutoffs(
            before(self.chat_days), before(self.session_days), before(self.run_days), before(self.event_days)
        )


class BackgroundTaskService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        gate: MaintenanceGate,
        cache: AgentCache,
        clock: Clock,
        policy: MaintenancePolicy,
        *,
        sleeper: Sleeper | None = None,
        replica: str = "",
    ) -> None:
        self._uow = uow
        self._gate = gate
        self._cache = cache
        self._clock = clock
        self._policy = policy
        self._sleeper: Sleeper = sleeper or AsyncioSleeper()
        self._replica = replica
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopping = False
        interval = self._policy.interval_seconds
        for name, first_delay, cycle in (
            ("session-sweep", interval, self._sweep_and_purge),
            ("agent-eviction", interval / 2, self.evict_once),
        ):
            task = asyncio.create_task(self._loop(name, first_delay, cycle), name=f"chatserver-{name}")
            task.add_done_callback(self._report_exit)
            self._tasks.append(task)
        log.info("background tasks started (every %ss)", interval)

    async def stop(self) -> None:
        """Cancel both tasks and wait until they have finished, a cycle in progress included."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        self._stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("background tasks stopped")

    async def sweep_once(self) -> dict[str, Any] | None:
        """Deactivate stale instances, unless another replica swept within this interval (None)."""
        now = self._clock.now()
        cutoff = now - timedelta(seconds=self._policy.session_ttl_seconds)

        async def deactivate(uow: UnitOfWork) -> dict[str, Any]:
            stale = await uow.sessions.deactivate_stale(cutoff=cutoff, now=now)
            for session in stale:
                event = NewEvent(
                    "session.deactivated",
                    user_id=session.user_id,
                    agent_name=session.agent_name,
                    chat_id=session.chat_id,
                    data={
                        "session_id": session.id,
                        "last_heartbeat_at": session.last_heartbeat_at.isoformat(),
                    },
                )
                await uow.events.add(event, now=now)
            return {"deactivated": len(stale), "replica": self._replica}

        min_gap = timedelta(seconds=self._policy.interval_seconds * SWEEP_GAP_SHARE)
        report = await self._gate.run_exclusive(SWEEP_JOB, deactivate, now=now, min_gap=min_gap)
        if report and report["deactivated"]:
            log.info("session sweep deactivated %d instance(s)", report["deactivated"])
        return report

    async def _sweep_and_purge(self) -> None:
        await self.sweep_once()
        await self.purge_once()

    async def purge_once(self) -> dict[str, int]:
        """Delete what retention says is too old, a batch a transaction, one replica per interval
        (later batches of the same cycle follow at once); the counts, empty when skipped."""
        now = self._clock.now()
        cutoffs = self._policy.cutoffs(now)
        total: dict[str, int] = {}

        async def purge(uow: UnitOfWork) -> dict[str, Any]:
            counts = await uow.retention.purge(cutoffs, limit=PURGE_BATCH_ROWS)
            if any(counts.values()):
                await uow.events.add(NewEvent("retention.purged", data=counts), now=now)
            return {**counts, "replica": self._replica}

        min_gap = timedelta(seconds=self._policy.interval_seconds * SWEEP_GAP_SHARE)
        for _ in range(MAX_BATCHES_PER_CYCLE):
            report = await self._gate.run_exclusive(RETENTION_JOB, purge, now=now, min_gap=min_gap)
            if report is None:
                break
            counts = {kind: count for kind, count in report.items() if kind != "replica"}
            total = {kind: total.get(kind, 0) + count for kind, count in counts.items()}
            if sum(counts.values()) < PURGE_BATCH_ROWS:
                break
            min_gap = timedelta(0)  # this replica's own batch just ran: the next one follows it
        if any(total.values()):
            log.info("retention purged %s", total)
        return total

    async def evict_once(self) -> list[CacheKey]:
        """Evict cached agents of pairs without an active instance (audited), then expired ones."""
        async with self._uow() as uow:
            active = await uow.sessions.active_pairs()
        # No await between choosing and evicting: the cache cannot change in between.
        cached = self._cache.keys()
        evicted = [key for key in cached if key not in active]
        self._cache.evict_inactive(active)
        expired = self._cache.purge_expired()
        if evicted:
            await self._record_evictions(evicted)
            log.info("evicted %d cached agent(s) without an active session", len(evicted))
        if expired:
            log.info("evicted %d expired cached agent(s)", expired)
        return evicted

    async def _record_evictions(self, evicted: list[CacheKey]) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            for user_id, agent_name in evicted:
                event = NewEvent(
                    "agent.evicted",
                    user_id=user_id,
                    agent_name=agent_name,
                    data={"reason": "no_active_session", "replica": self._replica},
                )
                await uow.events.add(event, now=now)
            await uow.commit()

    async def _loop(self, name: str, first_delay: float, cycle: Callable[[], Awaitable[object]]) -> None:
        await self._sleeper.sleep(first_delay)
        while True:
            try:
                await cycle()
            except Exception:
                log.exception("background %s cycle failed; retrying next interval", name)
            await self._sleeper.sleep(self._policy.interval_seconds)

    def _report_exit(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() and self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        log.critical("background task %s stopped unexpectedly", task.get_name(), exc_info=error or None)
