"""The database's capacity, shared out in-process: units of work wait their turn, user by user.

SQLite lets one connection write at a time. Left to its busy timeout, waiting writers poll with
growing sleeps, so under load some wait far longer than others and fail with ``database is locked``
while the pool's connections sit idle. Queued first come, first served, one user with hundreds of
requests in flight would queue everyone else behind all of them (one user's 1,000 streams made
another's turn take 7-15 s).

``FairGate`` lets ``capacity`` units of work in at once (1 for SQLite) and, when they are all
taken, serves the waiting ones in turn across keys (user ids;
``None`` for system work), each key's in arrival order: a user waits for at most one unit of work
of each other user waiting, however many those have queued. A slot is handed to the next waiter
the moment it is freed. Units of work are short (none spans a model call), so turns do not wait
long. Other processes (the CLI) still meet SQLite's busy timeout.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass

from chatserver.errors import DatabaseUnavailable


@dataclass(eq=False, slots=True)
class Ticket:
    """What ``acquire`` gives and ``release`` takes back (from any task)."""

    task: asyncio.Task[object] | None
    holds_slot: bool


class FairGate:
    """``capacity`` units of work at once; a task already inside may nest without waiting."""

    def __init__(self, capacity: int, timeout_seconds: float) -> None:
        self._capacity = capacity
        self._timeout = timeout_seconds
        self._used = 0
        self._holders: set[asyncio.Task[object] | None] = set()
        self._waiting: OrderedDict[str | None, deque[asyncio.Future[None]]] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self, key: str | None = None) -> Ticket:
        """Wait for a turn (``DatabaseUnavailable`` after the timeout)."""
        task = asyncio.current_task()
        if task is not None and task in self._holders:
            return Ticket(task, holds_slot=False)
        loop = asyncio.get_running_loop()
        self._reset_for(loop)
        if self._used < self._capacity and not self._waiting:
            self._used += 1
        else:
            await self._wait(loop, key)
        self._holders.add(task)
        return Ticket(task, holds_slot=True)

    def release(self, ticket: Ticket) -> None:
        if not ticket.holds_slot:
            return
        ticket.holds_slot = False
        self._holders.discard(ticket.task)
        self._used -= 1
        self._hand_on()

    async def _wait(self, loop: asyncio.AbstractEventLoop, key: str | None) -> None:
        turn: asyncio.Future[None] = loop.create_future()
        self._waiting.setdefault(key, deque()).append(turn)
        try:
            async with asyncio.timeout(self._timeout):
                await turn
        except BaseException as error:
            if turn.done() and not turn.cancelled():
                # Handed a slot just as it gave up: the slot goes to the next one.
                self._used -= 1
                self._hand_on()
            else:
                turn.cancel()
            if isinstance(error, TimeoutError):
                raise DatabaseUnavailable("database unavailable: busy with other work") from None
            raise

    def _hand_on(self) -> None:
        """Free slots to the waiters, one key after another (the key served goes to the back)."""
        while self._used < self._capacity and self._waiting:
            key, queue = next(iter(self._waiting.items()))
            turn = queue.popleft()
            if queue:
                self._waiting.move_to_end(key)
            else:
                del self._waiting[key]
            if not turn.done():
                self._used += 1
                turn.set_result(None)

    def _reset_for(self, loop: asyncio.AbstractEventLoop) -> None:
        # Futures belong to one event loop; a factory outliving its loop (tests) starts afresh.
        if loop is not self._loop:
            self._loop = loop
            if not self._holders:
                self._used = 0
                self._waiting.clear()
