"""Cross-replica invalidation of cached agents over Redis pub/sub.

The loader invalidates its own cache at once and hands the change to ``publish``, which sends it in
a task (services stay synchronous); the HTTP layer awaits ``settle()`` before a response starts, so
once a client sees the change acknowledged every subscribed replica has been sent it.

Pub/sub delivers at most once: a replica whose subscription drops may miss messages. Each time
the subscription is (re)confirmed the whole local cache is invalidated, so what was missed while
disconnected can never be served afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Protocol

from redis.asyncio import Redis

from chatserver.redis_bus.guard import RedisGuard, RedisUnavailable
from chatserver.redis_bus.subscription import subscribe_forever

log = logging.getLogger("chatserver.invalidation")

SETTLE_SECONDS = 2.0


class InvalidatableCache(Protocol):
    def invalidate(self, user_id: str, agent_name: str) -> bool: ...
    def invalidate_agent(self, agent_name: str) -> int: ...
    def keys(self) -> list[tuple[str, str]]: ...


class Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class RedisInvalidationBus:
    """Publishes this replica's invalidations and applies the other replicas' to ``cache``."""

    def __init__(
        self,
        redis: Redis,
        channel: str,
        cache: InvalidatableCache,
        *,
        sent: Counter | None = None,
        received: Counter | None = None,
        guard: RedisGuard | None = None,
    ) -> None:
        self._guard = guard or RedisGuard()
        self._redis = redis
        self._channel = channel
        self._cache = cache
        self._sent = sent
        self._received = received
        self.origin = uuid.uuid4().hex
        self._pending: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def publish(self, user_id: str | None, agent_name: str) -> None:
        """Tell the other replicas; ``user_id`` None means every user's copy of the agent."""
        message = json.dumps({"origin": self.origin, "user_id": user_id, "agent_name": agent_name})
        task = asyncio.get_running_loop().create_task(self._send(message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, message: str) -> None:
        try:
            await self._guard.call(lambda: self._redis.publish(self._channel, message), "invalidation")
        except RedisUnavailable:
            log.warning("cache invalidation not sent to other replicas: Redis unavailable")
            return
        if self._sent is not None:
            self._sent.inc()

    async def settle(self) -> None:
        """Wait (at most ``SETTLE_SECONDS``) until the invalidations published so far have been sent."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=SETTLE_SECONDS)

    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen_forever(), name="chatserver-invalidations")

    async def aclose(self) -> None:
        await self.settle()
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    async def _listen_forever(self) -> None:
        channel = self._channel
        await subscribe_forever(self._redis, channel, self.handle, self.subscribed, "cache invalidation")

    def handle(self, message: dict[str, Any]) -> None:
        """Apply one pub/sub message (a subscription confirmation clears the whole cache)."""
        if message.get("type") == "subscribe":
            self._drop_everything()
            self.subscribed.set()
            return
        if message.get("type") != "message":
            return
        try:
            body = json.loads(message["data"])
            origin, user_id, agent_name = body["origin"], body["user_id"], body["agent_name"]
        except (TypeError, ValueError, KeyError):
            log.warning("ignored a malformed cache invalidation message")
            return
        if origin == self.origin or not isinstance(agent_name, str):
            return
        if isinstance(user_id, str):
            self._cache.invalidate(user_id, agent_name)
        else:
            self._cache.invalidate_agent(agent_name)
        if self._received is not None:
            self._received.inc()

    def _drop_everything(self) -> None:
        cached = self._cache.keys()
        for agent_name in {agent for _user, agent in cached}:
            self._cache.invalidate_agent(agent_name)
