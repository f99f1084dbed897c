"""Per-user rate limiting: a fixed one-minute window that opens at the user's first request.

``RedisRateLimiter`` counts in Redis, so every replica shares one count per user; one atomic script
per request (increment, start the window on the first hit, read what is left of it), and no
agreement between the replicas' clocks is needed. ``MemoryRateLimiter`` does the same in one
process. When Redis cannot be reached, or answers too slowly, the request is let through (the
``RedisGuard`` bounds the wait and logs the outage): the limiter protects capacity, and an outage of
it should not take the whole API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from chatserver.errors import RateLimited
from chatserver.redis_bus.connection import RedisKeys
from chatserver.redis_bus.guard import RedisGuard, RedisUnavailable

log = logging.getLogger("chatserver.rate_limit")

WINDOW_SECONDS = 60.0
_MEMORY_SWEEP_AT = 10_000
UNAVAILABLE = "rate limiter: Redis unavailable; requests let through"

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
"""


class RateLimiter(Protocol):
    async def hit(self, subject: str) -> None:
        """Count one request of ``subject``; raise ``RateLimited`` past the limit."""


class Unlimited:
    async def hit(self, subject: str) -> None:
        return None


def _refuse(limit: int, seconds_left: float) -> RateLimited:
    retry_after = max(1, math.ceil(seconds_left))
    return RateLimited(
        f"rate limit of {limit} requests per minute exceeded; retry in {retry_after}s",
        retry_after_seconds=retry_after,
    )


class MemoryRateLimiter:
    """One process's counts; ``clock`` is monotonic seconds (injectable for tests)."""

    def __init__(
        self,
        limit: int,
        *,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        self._on_refused = on_refused
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, subject: str) -> None:
        now = self._clock()
        ends, count = self._windows.get(subject, (0.0, 0))
        if ends <= now:
            ends, count = now + self._window, 0
            if len(self._windows) >= _MEMORY_SWEEP_AT:
                self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
        self._windows[subject] = (ends, count + 1)
        if count + 1 > self._limit:
            if self._on_refused:
                self._on_refused()
            raise _refuse(self._limit, ends - now)


class RedisRateLimiter:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        limit: int,
        *,
        guard: RedisGuard | None = None,
        window_seconds: float = WINDOW_SECONDS,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self._guard = guard or RedisGuard()
        self._redis = redis
        self._keys = keys
        self._limit = limit
        self._window_ms = int(window_seconds * 1000)
        self._on_refused = on_refused
        self._script = redis.register_script(_HIT)

    async def hit(self, subject: str) -> None:
        try:
            count, left_ms = await self._guard.call(
                lambda: self._script(keys=[self._keys.rate(subject)], args=[self._window_ms]), "rate limit"
            )
        except RedisUnavailable as error:
            # Once per failed call, not per skipped one: a line per request would flood the log.
            log.log(logging.DEBUG if error.skipped else logging.WARNING, UNAVAILABLE)
            return
        if int(count) > self._limit:
            if self._on_refused:
                self._on_refused()
            raise _refuse(self._limit, int(left_ms) / 1000)
