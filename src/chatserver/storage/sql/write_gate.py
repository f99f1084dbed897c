"""SQLite's one writer, queued in-process: units of work take turns instead of racing for the lock.

SQLite lets one connection write at a time. Left to its busy timeout, waiting writers poll with
growing sleeps, so under load some wait far longer than others and fail with ``database is locked``
while the pool's connections sit idle. Queueing the units of work here instead is first come, first
served and wakes the next one as soon as the last commits. Units of work are short (none spans a
model call), so turns do not wait long. Other processes (the CLI) still meet the busy timeout.
"""

from __future__ import annotations

import asyncio

from chatserver.errors import DatabaseUnavailable


class WriteGate:
    """One unit of work at a time in this process; a task already inside may nest without waiting."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner: asyncio.Task[object] | None = None
        self._depth = 0

    async def acquire(self) -> None:
        """Wait for the turn (``DatabaseUnavailable`` after the timeout)."""
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            self._depth += 1
            return
        lock = self._lock_for(asyncio.get_running_loop())
        try:
            async with asyncio.timeout(self._timeout):
                await lock.acquire()
        except TimeoutError:
            raise DatabaseUnavailable("database unavailable: busy with other work") from None
        self._owner = task
        self._depth = 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()

    def _lock_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        # An asyncio lock belongs to one event loop; a factory outliving its loop (tests) starts afresh.
        if loop is not self._loop:
            self._loop = loop
            if not self._lock.locked():
                self._lock = asyncio.Lock()
        return self._lock
