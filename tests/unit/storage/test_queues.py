"""In-process queues in front of the database: SQLite's one writer, and the advisory lock connection.

Both must queue callers in order for as long as the database makes progress, and fail with
``DatabaseUnavailable`` only when it stops making progress.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from chatserver.errors import DatabaseUnavailable
from chatserver.storage.sql.locks import _AdvisorySession
from chatserver.storage.sql.write_gate import WriteGate

BOUND = 10.0  # seconds: no test here may hang


class TestWriteGate:
    async def test_one_unit_of_work_at_a_time_in_arrival_order(self) -> None:
        gate = WriteGate(timeout_seconds=5.0)
        inside: list[int] = []
        order: list[int] = []

        async def work(n: int) -> None:
            await gate.acquire()
            try:
                inside.append(n)
                order.append(n)
                assert len(inside) == 1
                await asyncio.sleep(0.001)
                inside.remove(n)
            finally:
                gate.release()

        async with asyncio.timeout(BOUND):
            await asyncio.gather(*(work(n) for n in range(20)))
        assert order == list(range(20))

    async def test_the_task_inside_may_open_another_unit_of_work(self) -> None:
        gate = WriteGate(timeout_seconds=0.5)
        async with asyncio.timeout(BOUND):
            await gate.acquire()
            await gate.acquire()
            gate.release()
            gate.release()
            await gate.acquire()  # free again
            gate.release()

    async def test_a_caller_waiting_past_the_timeout_is_told_the_database_is_unavailable(self) -> None:
        gate = WriteGate(timeout_seconds=0.05)
        await gate.acquire()

        async def other() -> None:
            await gate.acquire()

        async with asyncio.timeout(BOUND):
            with pytest.raises(DatabaseUnavailable):
                await asyncio.create_task(other())
            gate.release()
            await gate.acquire()  # the gate still works
            gate.release()


def _session(wait_seconds: float) -> _AdvisorySession:
    # No query is run: the engine only has to exist.
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    return _AdvisorySession(engine, wait_seconds)


async def _query(session: _AdvisorySession, seconds: float) -> None:
    """What a lock query does to the queue: hold its place for as long as the database takes."""
    async with session._queue():
        await asyncio.sleep(seconds)


class TestAdvisoryLockQueue:
    async def test_a_long_queue_behind_a_healthy_connection_waits_its_turn(self) -> None:
        session = _session(wait_seconds=0.5)
        # 30 queries of 0.05 s: the last waits about 1.5 s, three times the stall limit, and gets served.
        async with asyncio.timeout(BOUND):
            await asyncio.gather(*(_query(session, 0.05) for _ in range(30)))

    async def test_a_stalled_connection_fails_the_waiters_instead_of_holding_them(self) -> None:
        session = _session(wait_seconds=0.2)
        async with asyncio.timeout(BOUND):
            stalled = asyncio.create_task(_query(session, 1.5))
            await asyncio.sleep(0.01)
            waiters = [asyncio.create_task(_query(session, 0.0)) for _ in range(3)]
            outcomes = await asyncio.gather(*waiters, return_exceptions=True)
            assert not stalled.done()
            await stalled
            await _query(session, 0.0)  # once it answers again, the queue works again
        assert all(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes)
