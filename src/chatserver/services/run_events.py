"""A run's event log: what every connection to the run reads, from any point, in order.

In one process the log is in memory (``MemoryRunEvents``); with several replicas it is a Redis
stream (``redis_bus.run_events``). Either way an event id is opaque to clients and increases
within the run, and a log is kept for ``ttl_seconds`` after its run ends, then dropped: a reader
that comes later gets the run's end from its stored record instead.

``RunWriter`` coalesces tokens: the first token after a quiet spell is written at once, later ones
are batched for ``flush_seconds``, so a long answer costs a bounded number of writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from typing import Any, Protocol

from chatserver.domain import RunEvent
from chatserver.errors import InvalidInput


class RunEventLog(Protocol):
    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        """Add an event; its id."""

    async def read(self, run_id: str, after: str | None, *, wait_seconds: float) -> list[RunEvent] | None:
        """Events after ``after`` (all when None), waiting up to ``wait_seconds`` for one to come.

        ``[]`` when none came in time; None when the run has no log (never written, or expired).
        """

    async def close(self, run_id: str) -> None:
        """The run ended: keep its log for the configured time, then drop it."""

    def check_id(self, event_id: str) -> None:
        """Raise ``InvalidInput`` unless ``event_id`` has the shape of this log's ids."""


def bad_event_id() -> InvalidInput:
    return InvalidInput("Last-Event-ID is not an event id of this run", field="last_event_id")


class _Log:
    __slots__ = ("changed", "events")

    def __init__(self) -> None:
        self.events: list[RunEvent] = []
        self.changed = asyncio.Event()


class MemoryRunEvents:
    """Implements ``RunEventLog`` in this process; ids are 1, 2, 3, ..."""

    def __init__(self, ttl_seconds: float, *, max_events: int = 100_000) -> None:
        self._ttl = ttl_seconds
        self._max_events = max_events
        self._logs: dict[str, _Log] = {}
        self._expiry: list[tuple[float, str]] = []

    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        self._purge()
        log = self._logs.setdefault(run_id, _Log())
        if len(log.events) >= self._max_events:
            raise RuntimeError(f"run {run_id} has more than {self._max_events} events")
        event = RunEvent(str(len(log.events) + 1), kind, data)
        log.events.append(event)
        log.changed.set()
        log.changed = asyncio.Event()
        return event.id

    async def read(self, run_id: str, after: str | None, *, wait_seconds: float) -> list[RunEvent] | None:
        self._purge()
        log = self._logs.get(run_id)
        if log is None:
            return None
        start = self._position(after)
        if start >= len(log.events):
            changed = log.changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_seconds):
                    await changed.wait()
        return log.events[start:]

    async def close(self, run_id: str) -> None:
        loop = asyncio.get_running_loop()
        heapq.heappush(self._expiry, (loop.time() + self._ttl, run_id))

    def check_id(self, event_id: str) -> None:
        if not (event_id.isascii() and event_id.isdigit() and len(event_id) <= 12):
            raise bad_event_id()

    def _position(self, after: str | None) -> int:
        if after is None:
            return 0
        self.check_id(after)
        return int(after)

    def _purge(self) -> None:
        now = asyncio.get_running_loop().time()
        while self._expiry and self._expiry[0][0] <= now:
            _, run_id = heapq.heappop(self._expiry)
            self._logs.pop(run_id, None)


class RunWriter:
    """Writes one run's events; tokens are coalesced, and every other event flushes them first."""

    def __init__(self, log: RunEventLog, run_id: str, *, flush_seconds: float) -> None:
        self._log = log
        self._run_id = run_id
        self._flush_seconds = flush_seconds
        self._pending: list[str] = []
        self._last_write = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.text = ""
        """Every token so far: the partial answer, should the run be cancelled."""
        self.ended = False
        self.last: tuple[str, dict[str, Any]] | None = None
        """The run's end (kind and data), once written."""

    async def token(self, delta: str) -> None:
        self.text += delta
        self._pending.append(delta)
        loop = asyncio.get_running_loop()
        if self._timer is None and loop.time() - self._last_write >= self._flush_seconds:
            await self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._flush_seconds, self._flush_later)

    async def emit(self, kind: str, data: dict[str, Any]) -> None:
        await self.flush()
        if kind in ("done", "error", "cancelled"):
            self.ended = True
            self.last = (kind, data)
        await self._log.append(self._run_id, kind, data)

    async def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        await self._flush_pending()

    def _flush_later(self) -> None:
        self._timer = None
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush_pending())

    async def _flush_pending(self) -> None:
        if self._pending:
            delta, self._pending = "".join(self._pending), []
            await self._log.append(self._run_id, "token", {"delta": delta})
            self._last_write = asyncio.get_running_loop().time()
