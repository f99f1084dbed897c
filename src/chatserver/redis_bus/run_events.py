"""Run event logs in Redis streams and run cancellation over Redis pub/sub, for several replicas.

One stream per run (``<prefix>run:<id>:events``), capped with ``MAXLEN ~`` and expiring: while the
run goes on every write pushes the expiry out, and once it ends the log is kept for the configured
time. Entry ids are Redis's own, so they increase within the run on every replica.

Blocking reads are cut into slices shorter than the client's socket timeout, so a reader that waits
for a slow model never looks like a dead connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatserver.domain import RunEvent
from chatserver.redis_bus.connection import RedisKeys
from chatserver.redis_bus.subscription import subscribe_forever
from chatserver.services.run_events import MemoryRunEvents, bad_event_id

log = logging.getLogger("chatserver.redis")

_ENTRY_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_LOCAL_ID = re.compile(r"^[0-9]{1,12}$")
_BATCH = 1000


_UNAVAILABLE = (RedisError, OSError, TimeoutError)


class RedisRunEvents:
    """Implements ``services.run_events.RunEventLog``.

    A run whose log Redis could not take goes on in this process's memory from that event on (its
    ids then have the memory log's shape): a Redis outage costs other replicas' readers the live
    events, never the run or this replica's own readers.
    """

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        *,
        ttl_seconds: float,
        running_ttl_seconds: float,
        block_seconds: float,
        max_events: int = 100_000,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = max(int(ttl_seconds), 1)
        self._running_ttl = max(int(running_ttl_seconds), 1)
        self._block_ms = max(int(block_seconds * 1000), 1)
        self._max_events = max_events
        self._local = MemoryRunEvents(ttl_seconds, max_events=max_events)
        self._local_runs: set[str] = set()

    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        if run_id not in self._local_runs:
            try:
                return await self._append(run_id, kind, data)
            except _UNAVAILABLE:
                log.warning(
                    "Redis unavailable: this run's events stay in this process", extra={"run_id": run_id}
                )
                self._local_runs.add(run_id)
        return await self._local.append(run_id, kind, data)

    async def read(self, run_id: str, after: str | None, *, wait_seconds: float) -> list[RunEvent] | None:
        if after is not None:
            self.check_id(after)
        if after is not None and _LOCAL_ID.match(after):
            return await self._local.read(run_id, after, wait_seconds=wait_seconds)
        try:
            if run_id in self._local_runs:
                shared = await self._read(run_id, after, wait_seconds=0)
                if shared:
                    return shared
                return await self._local.read(run_id, None, wait_seconds=wait_seconds)
            return await self._read(run_id, after, wait_seconds=wait_seconds)
        except _UNAVAILABLE:
            log.warning(
                "Redis unavailable: reading a run's events from this process", extra={"run_id": run_id}
            )
            return await self._local.read(run_id, None, wait_seconds=wait_seconds)

    async def close(self, run_id: str) -> None:
        await self._local.close(run_id)
        self._local_runs.discard(run_id)
        try:
            await self._redis.expire(self._keys.run_events(run_id), self._ttl)
        except _UNAVAILABLE:
            log.warning(
                "Redis unavailable: a run's event log keeps its longer expiry", extra={"run_id": run_id}
            )

    def check_id(self, event_id: str) -> None:
        if not (_ENTRY_ID.match(event_id) or _LOCAL_ID.match(event_id)):
            raise bad_event_id()

    async def _append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        key = self._keys.run_events(run_id)
        fields = {"k": kind, "d": json.dumps(data, default=str)}
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, fields, maxlen=self._max_events, approximate=True)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl + self._running_ttl)
            entry_id, _ = await pipe.execute()
        return str(entry_id)

    async def _read(self, run_id: str, after: str | None, *, wait_seconds: float) -> list[RunEvent] | None:
        key = self._keys.run_events(run_id)
        start = "0-0" if after is None else after
        events = await self._xread(key, start, block_ms=None)
        if events:
            return events
        if not await self._redis.exists(key):
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while (remaining := deadline - loop.time()) > 0:
            block = min(self._block_ms, max(int(remaining * 1000), 1))
            events = await self._xread(key, start, block_ms=block)
            if events:
                return events
        return []

    async def _xread(self, key: str, start: str, *, block_ms: int | None) -> list[RunEvent]:
        reply: Any = await self._redis.xread({key: start}, count=_BATCH, block=block_ms)
        if not reply:
            return []
        entries: list[tuple[str, dict[str, str]]] = reply[0][1]  # RESP2: [[key, entries]]
        return [RunEvent(entry_id, fields["k"], json.loads(fields["d"])) for entry_id, fields in entries]


class RedisRunSignals:
    """Implements ``services.runs.RunSignals``: ``cancel:<run id>`` and ``steer:<run id>`` messages
    reach every replica, whose ``on_cancel`` / ``on_steer`` act if the run is theirs."""

    def __init__(
        self,
        redis: Redis,
        channel: str,
        on_cancel: Callable[[str], bool],
        on_steer: Callable[[str], bool],
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._handlers = {"cancel": on_cancel, "steer": on_steer}
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def cancel(self, run_id: str) -> None:
        # Should this not get through, the flag on the run's record reaches it at its next renewal.
        await self._send("cancel", run_id)

    async def steer(self, run_id: str) -> None:
        # Should this not get through, the message runs after the run it was meant for.
        await self._send("steer", run_id)

    async def _send(self, kind: str, run_id: str) -> None:
        try:
            await self._redis.publish(self._channel, f"{kind}:{run_id}")
        except _UNAVAILABLE:
            log.warning("run %s not sent to other replicas: Redis unavailable", kind)

    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen_forever(), name="chatserver-run-signals")

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    async def _listen_forever(self) -> None:
        await subscribe_forever(self._redis, self._channel, self._handle, self.subscribed, "run signal")

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") == "subscribe":
            self.subscribed.set()
        elif message.get("type") == "message" and isinstance(message.get("data"), str):
            kind, _, run_id = message["data"].partition(":")
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(run_id)
