"""A check that answers within a bound, however long the work behind it takes to give up.

Cancelling database work does not end it at once: closing a connection to a stalled server waits
for the server too. So the work is not cancelled: it runs in its own task (ending within its own
timeouts), callers wait at most ``timeout_seconds`` for it, and while it runs later callers join
it instead of starting more of the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedCheck(Generic[T]):
    def __init__(self, check: Callable[[], Awaitable[T]], timeout_seconds: float) -> None:
        self._check = check
        self._timeout = timeout_seconds
        self._running: asyncio.Task[T] | None = None

    async def __call__(self) -> T | None:
        """The check's result, or None when it did not finish within the bound."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run())
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(self._running)
        except TimeoutError:
            return None

    async def _run(self) -> T:
        return await self._check()
