"""The executor cache: built agents per (user_id, agent_name), bounded by size (LRU) and age (TTL).

Single-threaded asyncio, so no locks. Two races are handled:

* concurrent misses for one key build once: ``get_or_build`` shares one build task per key;
* a build that read its inputs before an invalidation must not put stale data back afterwards:
  every invalidation stamps the key (or the whole agent) with a fresh number from a monotonic
  counter; callers read ``generation(key)`` before building and ``put(..., generation=g)`` is
  ignored when the key has been invalidated since.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chatserver.agents.types import BuiltAgent
from chatserver.clock import Clock, SystemClock

CacheKey = tuple[str, str]
"""(user_id, agent_name)"""


@dataclass(slots=True)
class _Entry:
    value: BuiltAgent
    expires_at: datetime


class AgentCache:
    """LRU + TTL cache of built agents with invalidation generations and build coalescing.

    Counters (plain ints, for metrics): ``hits``, ``misses``, ``evictions`` (entries dropped for
    size, age or an inactive session) and ``invalidations`` (entries dropped by ``invalidate*``).
    One generation number is kept per invalidated pair and per invalidated agent.
    """

    def __init__(self, max_size: int, ttl_seconds: float, clock: Clock | None = None) -> None:
        if max_size < 1:
            raise ValueError("max_size must be >= 1")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be > 0")
        self.max_size = max_size
        self.ttl = timedelta(seconds=ttl_seconds)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._stamps = itertools.count(1)
        self._key_generation: dict[CacheKey, int] = {}
        self._agent_generation: dict[str, int] = {}
        self._building: dict[CacheKey, tuple[int, asyncio.Task[BuiltAgent]]] = {}
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidations = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[CacheKey]:
        """Cached keys, least recently used first (expired ones not yet purged included)."""
        return list(self._entries)

    def get(self, key: CacheKey) -> BuiltAgent | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock.now():
            del self._entries[key]
            self.evictions += 1
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def generation(self, key: CacheKey) -> int:
        """Read before building; pass to ``put`` so a build older than an invalidation is dropped."""
        return max(self._key_generation.get(key, 0), self._agent_generation.get(key[1], 0))

    def put(self, key: CacheKey, value: BuiltAgent, *, generation: int | None = None) -> bool:
        """Store ``value``; ``False`` (nothing stored) when ``generation`` is stale."""
        if generation is not None and generation != self.generation(key):
            return False
        self._entries[key] = _Entry(value, self._clock.now() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
            self.evictions += 1
        return True

    def invalidate(self, user_id: str, agent_name: str) -> bool:
        """Drop one pair; builds already running for it will not be stored. ``True`` if it was cached."""
        key = (user_id, agent_name)
        self._key_generation[key] = next(self._stamps)
        self._building.pop(key, None)
        return self._drop([key]) == 1

    def invalidate_agent(self, agent_name: str) -> int:
        """Drop the agent for every user (admin changed it); returns how many entries were dropped."""
        self._agent_generation[agent_name] = next(self._stamps)
        for key in [key for key in self._building if key[1] == agent_name]:
            del self._building[key]
        return self._drop([key for key in self._entries if key[1] == agent_name])

    def _drop(self, keys: Iterable[CacheKey]) -> int:
        dropped = 0
        for key in keys:
            if self._entries.pop(key, None) is not None:
                dropped += 1
        self.invalidations += dropped
        return dropped

    def evict_inactive(self, active_pairs: set[tuple[str, str]]) -> int:
        """Evict every cached pair without an active session; returns how many were evicted."""
        inactive = [key for key in self._entries if key not in active_pairs]
        for key in inactive:
            del self._entries[key]
        self.evictions += len(inactive)
        return len(inactive)

    def purge_expired(self) -> int:
        now = self._clock.now()
        expired = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        for key in expired:
            del self._entries[key]
        self.evictions += len(expired)
        return len(expired)

    async def get_or_build(
        self, key: CacheKey, build: Callable[[], Awaitable[BuiltAgent]]
    ) -> tuple[BuiltAgent, bool]:
        """The cached agent (``True``), or one built now (``False``); concurrent misses share a build.

        The build runs in its own task: a caller that is cancelled stops waiting without cancelling
        it for the others. Callers that joined before an invalidation get that build's result; the
        result is cached only if no invalidation happened meanwhile.
        """
        cached = self.get(key)
        if cached is not None:
            return cached, True
        generation = self.generation(key)
        running = self._building.get(key)
        if running is None or running[0] != generation:
            task = asyncio.get_running_loop().create_task(self._build_and_store(key, generation, build))
            task.add_done_callback(_retrieve_exception)
            running = (generation, task)
            self._building[key] = running
        return await asyncio.shield(running[1]), False

    async def _build_and_store(
        self, key: CacheKey, generation: int, build: Callable[[], Awaitable[BuiltAgent]]
    ) -> BuiltAgent:
        try:
            value = await build()
            self.put(key, value, generation=generation)
            return value
        finally:
            running = self._building.get(key)
            if running is not None and running[1] is asyncio.current_task():
                del self._building[key]


def _retrieve_exception(task: asyncio.Task[BuiltAgent]) -> None:
    """Mark a failed build's exception as seen even if every waiter was cancelled."""
    if not task.cancelled():
        task.exception()
