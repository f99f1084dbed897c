"""The in-process queue in front of SQLite's one writer.

It must queue callers in order for as long as the database makes progress, and fail with
``DatabaseUnavailable`` only when it stops making progress.
"""

from __future__ import annotations

import asyncio

import pytest

from chatserver.errors import DatabaseUnavailable
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
