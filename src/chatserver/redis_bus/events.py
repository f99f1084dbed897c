"""Audit events to a Redis stream, at least once, from the stored events.

The database is the source: the publisher reads events above a cursor kept in Redis and adds them
to the stream with explicit entry ids ``<event id>-0``, in one atomic script that also moves the
cursor. A replica that restarts resumes from the cursor; two replicas publishing at once, or a
replay after a crash, cannot add an event twice (Redis rejects an id that is not above the stream's
last one, and the script counts that as already published).

Ids are allocated when a transaction inserts, not when it commits, so event 11 can be visible
before event 10 commits. The publisher stops at such a gap and waits for the missing id up to
``gap_grace_seconds``; an id still missing then belonged to a transaction that rolled back (or is
improbably slow) and is skipped with a warning, so the stream stays in id order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatserver.domain import AuditEvent
from chatserver.redis_bus.connection import RedisKeys

log = logging.getLogger("chatserver.events")

TASK_NAME = "audit_event_publisher"

_PUBLISH = """
local cursor = tonumber(redis.call('GET', KEYS[2]) or '0')
local added = 0
for i = 2, #ARGV, 3 do
  local id = tonumber(ARGV[i])
  if id > cursor then
    local reply = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0',
                              'type', ARGV[i + 1], 'event', ARGV[i + 2])
    if not (type(reply) == 'table' and reply['err']) then added = added + 1 end
    cursor = id
  end
end
redis.call('SET', KEYS[2], string.format('%d', cursor))
return {added, string.format('%d', cursor)}
"""


class EventFeed(Protocol):
    async def after(self, event_id: int, *, limit: int) -> list[AuditEvent]: ...


def event_json(event: AuditEvent) -> str:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "user_id": event.user_id,
            "agent_name": event.agent_name,
            "chat_id": event.chat_id,
            "data": event.data,
            "created_at": event.created_at.isoformat(),
        },
        separators=(",", ":"),
        default=str,
    )


class AuditEventPublisher:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        feed: EventFeed,
        *,
        batch: int = 200,
        maxlen: int = 100_000,
        gap_grace_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._feed = feed
        self._batch = batch
        self._maxlen = maxlen
        self._grace = gap_grace_seconds
        self._clock = clock
        self._on_published = on_published
        self._gaps: dict[int, float] = {}
        self._script = redis.register_script(_PUBLISH)

    async def cursor(self) -> int:
        return int(await self._redis.get(self._keys.events_cursor) or 0)

    async def publish_once(self) -> int:
        """Publish what is ready above the cursor; returns how many events the stream gained."""
        cursor = await self.cursor()
        ready = self._ready(cursor, await self._feed.after(cursor, limit=self._batch))
        if not ready:
            return 0
        args: list[Any] = [self._maxlen]
        for event in ready:
            args += [event.id, event.type, event_json(event)]
        added, _cursor = await self._script(keys=[self._keys.events, self._keys.events_cursor], args=args)
        if added and self._on_published:
            self._on_published(int(added))
        return int(added)

    def _ready(self, cursor: int, events: list[AuditEvent]) -> list[AuditEvent]:
        """The events to publish now: in id order, stopping at a gap younger than the grace time."""
        ready: list[AuditEvent] = []
        expected = cursor + 1
        now = self._clock()
        for event in events:
            if event.id != expected:
                first_seen = self._gaps.setdefault(expected, now)
                if now - first_seen < self._grace:
                    break
                log.warning("audit event ids %d-%d never committed; skipped", expected, event.id - 1)
            ready.append(event)
            expected = event.id + 1
        self._gaps = {gap: seen for gap, seen in self._gaps.items() if gap >= expected}
        return ready

    async def run(self, interval_seconds: float, on_cycle: Callable[[bool], None] | None = None) -> None:
        """Publish forever: at once again while a full batch came back, else every interval."""
        while True:
            added = 0
            try:
                added = await self.publish_once()
                ok = True
            except (RedisError, OSError) as error:
                log.warning("publishing audit events failed (%s); retrying", type(error).__name__)
                ok = False
            except Exception:
                log.exception("publishing audit events failed; retrying next interval")
                ok = False
            if on_cycle:
                on_cycle(ok)
            if added < self._batch:
                await asyncio.sleep(interval_seconds)
