"""A user's run starts, one at a time in this process, and never more waiting than could start.

The start of a run counts the user's active runs under a lock per user in the database (so the
limit holds across replicas). Were a user's hundreds of concurrent starts to wait for that lock
each holding a pooled connection, everyone else would wait for a connection behind them; here they
wait in-process instead, holding nothing, and one past ``limit`` waiting is refused at once: even
if every start ahead of it succeeded, it would find no room.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chatserver.errors import DatabaseUnavailable, TooManyRuns

RETRY_AFTER_SECONDS = 1
"""What a user at the run limit is told to wait: runs end at any moment, the next may be soon."""


def too_many_runs(limit: int) -> TooManyRuns:
    return TooManyRuns(
        f"you have {limit} runs queued or running, the most allowed; wait for one to end",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


class UserStarts:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._waiting: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._outages: dict[str, int] = {}
        """Per user: how many starts ahead failed for want of the database, while others waited."""

    @asynccontextmanager
    async def turn(self, user_id: str) -> AsyncIterator[None]:
        """Within the block, no other start of ``user_id`` runs in this process.

        Starts that waited behind one the database failed fail too, at once: one after another,
        each would otherwise wait its own database timeout, and the last of them all of theirs.
        """
        waiting = self._waiting.get(user_id, 0)
        if waiting >= self._limit:
            raise too_many_runs(self._limit)
        self._waiting[user_id] = waiting + 1
        lock = self._locks.setdefault(user_id, asyncio.Lock())
        outages = self._outages.get(user_id, 0)
        try:
            async with lock:
                if self._outages.get(user_id, 0) != outages:
                    raise DatabaseUnavailable("database unavailable")
                try:
                    yield
                except DatabaseUnavailable:
                    self._outages[user_id] = self._outages.get(user_id, 0) + 1
                    raise
        finally:
            self._waiting[user_id] -= 1
            if not self._waiting[user_id]:
                del self._waiting[user_id]
                del self._locks[user_id]
                self._outages.pop(user_id, None)
