"""Everything chatserver does with Redis, built from settings and started with the container."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis

from chatserver.config import Settings
from chatserver.observability.metrics import Metrics
from chatserver.redis_bus.connection import RedisKeys, connect
from chatserver.redis_bus.events import TASK_NAME, AuditEventPublisher, EventFeed
from chatserver.redis_bus.guard import RedisGuard, RedisUnavailable
from chatserver.redis_bus.invalidation import InvalidatableCache, RedisInvalidationBus
from chatserver.redis_bus.rate_limit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, Unlimited
from chatserver.redis_bus.run_events import RedisRunEvents, RedisRunSignals
from chatserver.services.agent_loader import InvalidationBus

log = logging.getLogger("chatserver.redis")


@dataclass
class RedisRuntime:
    client: Redis
    keys: RedisKeys
    invalidations: RedisInvalidationBus
    publisher: AuditEventPublisher
    run_events: RedisRunEvents
    publish_interval_seconds: float
    metrics: Metrics
    guard: RedisGuard
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _signals: RedisRunSignals | None = None

    async def start(self) -> None:
        await self.invalidations.start()
        if self._signals is not None:
            await self._signals.start()
        if not self._tasks:
            run = self.publisher.run(
                self.publish_interval_seconds, lambda ok: self.metrics.task_run(TASK_NAME, ok=ok)
            )
            self._tasks.append(asyncio.create_task(run, name="chatserver-audit-publisher"))

    def run_signals(
        self, on_cancel: Callable[[str], bool], on_steer: Callable[[str], bool]
    ) -> RedisRunSignals:
        """Cancel and steer signals for this replica's runs; started and closed with the runtime."""
        if self._signals is None:
            self._signals = RedisRunSignals(self.client, self.keys.run_signals, on_cancel, on_steer)
        return self._signals

    async def ready(self) -> bool:
        """Whether Redis answers a ping, within the guard's bound (at once while its circuit is open)."""
        try:
            return bool(await self.guard.call(self.client.ping, "readiness ping"))
        except RedisUnavailable:
            return False

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.invalidations.aclose()
        if self._signals is not None:
            await self._signals.aclose()
        await self.client.aclose()


class Loader(Protocol):
    def use_bus(self, bus: InvalidationBus) -> None: ...


def build_replication(
    settings: Settings, *, cache: InvalidatableCache, loader: Loader, feed: EventFeed, metrics: Metrics
) -> tuple[RedisRuntime | None, RateLimiter]:
    """Redis (when configured) and the rate limiter; no I/O until ``RedisRuntime.start``.

    Without ``redis_url`` nothing is shared: invalidations stay local and requests are counted in
    this process.
    """
    limit = settings.rate_limit_per_minute
    if settings.redis_url is None:
        local = MemoryRateLimiter(limit, on_refused=metrics.rate_limited.inc) if limit else Unlimited()
        return None, local
    client = connect(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)
    keys = RedisKeys(settings.redis_prefix)
    guard = RedisGuard(
        settings.redis_timeout_seconds,
        settings.redis_circuit_seconds,
        open_gauge=metrics.redis_circuit_open,
        skipped=metrics.redis_skipped,
    )
    bus = RedisInvalidationBus(
        client,
        keys.invalidations,
        cache,
        sent=metrics.invalidations_sent,
        received=metrics.invalidations_received,
        guard=guard,
    )
    loader.use_bus(bus)
    runtime = RedisRuntime(
        client=client,
        keys=keys,
        invalidations=bus,
        publisher=AuditEventPublisher(client, keys, feed, on_published=metrics.events_published.inc),
        run_events=RedisRunEvents(
            client,
            keys,
            ttl_seconds=settings.run_events_ttl_seconds,
            running_ttl_seconds=settings.model_timeout_seconds * (settings.max_model_requests + 1),
            block_seconds=settings.redis_timeout_seconds / 2,
        ),
        publish_interval_seconds=settings.event_stream_interval_seconds,
        metrics=metrics,
        guard=guard,
    )
    shared: RateLimiter = (
        RedisRateLimiter(client, keys, limit, guard=guard, on_refused=metrics.rate_limited.inc)
        if limit
        else Unlimited()
    )
    return runtime, shared
