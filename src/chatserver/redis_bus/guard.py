"""A circuit breaker for the Redis calls a request waits on: each bounded, a sick Redis skipped.

A stalled Redis answers nothing, so every call waits for its timeout (and the client's retries):
seconds per request. Each guarded call is bounded as a whole by ``timeout_seconds``; the first that
fails or times out opens the circuit for ``open_seconds``, during which calls fail at once, without
touching Redis. The first call after that is the trial (the others still fail at once while it
runs): when it succeeds the circuit closes, else it stays open for another interval. So a sick
Redis costs one timeout per interval, not one per request. Opening and closing are logged once
each and shown by the ``chatserver_redis_circuit_open`` gauge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger("chatserver.redis")

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis failed or timed out (``skipped`` False), or was not asked: the circuit is open."""

    def __init__(self, reason: str, *, skipped: bool = False) -> None:
        super().__init__(reason)
        self.skipped = skipped


class Gauge(Protocol):
    def set(self, value: float) -> None: ...


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class RedisGuard:
    def __init__(
        self,
        timeout_seconds: float = 0.5,
        open_seconds: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        open_gauge: Gauge | None = None,
        skipped: Counter | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._open_seconds = open_seconds
        self._clock = clock
        self._open_gauge = open_gauge
        self._skipped = skipped
        self._retry_at: float | None = None  # None: closed

    @property
    def is_open(self) -> bool:
        return self._retry_at is not None

    async def call(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """``operation``'s result, or ``RedisUnavailable`` within ``timeout_seconds``."""
        if self._retry_at is not None:
            if self._clock() < self._retry_at:
                if self._skipped is not None:
                    self._skipped.inc()
                raise RedisUnavailable("circuit open", skipped=True)
            # This call is the trial; the others skip until it ends.
            self._retry_at = self._clock() + self._open_seconds
        try:
            async with asyncio.timeout(self._timeout):
                result = await operation()
        except (RedisError, OSError, TimeoutError) as error:
            self._open(what, error)
            raise RedisUnavailable(type(error).__name__) from error
        self._close()
        return result

    def _open(self, what: str, error: BaseException) -> None:
        if self._retry_at is None:
            log.warning(
                "Redis circuit open: %s failed (%s); Redis skipped for %ss at a time "
                "(rate limiting lets requests through)",
                what,
                type(error).__name__
                if not isinstance(error, TimeoutError)
                else f"no answer in {self._timeout}s",
                self._open_seconds,
            )
        self._retry_at = self._clock() + self._open_seconds
        if self._open_gauge is not None:
            self._open_gauge.set(1)

    def _close(self) -> None:
        if self._retry_at is not None:
            log.warning("Redis circuit closed: Redis answers again")
        self._retry_at = None
        if self._open_gauge is not None:
            self._open_gauge.set(0)
