"""A pub/sub subscription that outlives any failure: resubscribes with backoff, for ever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("chatserver.redis")

RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


async def subscribe_forever(
    redis: Redis, channel: str, handle: Callable[[dict[str, Any]], None], subscribed: asyncio.Event, what: str
) -> None:
    """Feed every message of ``channel`` (subscription confirmations too) to ``handle``.

    ``subscribed`` is set while the subscription is confirmed; a listener that died would leave its
    replica deaf for good, so every failure is followed by a new subscription.
    """
    failures = 0
    while True:
        try:
            await _listen(redis, channel, handle)
            delay = RETRY_SECONDS[0]
        except Exception as error:
            failures = 0 if subscribed.is_set() else failures + 1
            delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            if isinstance(error, RedisError | OSError):
                log.warning("%s subscription lost; retrying in %ss", what, delay)
            else:
                log.exception("%s listener failed; retrying in %ss", what, delay)
        subscribed.clear()
        await asyncio.sleep(delay)


async def _listen(redis: Redis, channel: str, handle: Callable[[dict[str, Any]], None]) -> None:
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(channel)
        async for message in pubsub.listen():
            handle(message)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
