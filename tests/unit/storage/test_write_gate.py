"""The in-process queue in front of the database's capacity (SQLite's one writer, PostgreSQL's pool).

It must queue callers in order for as long as the database makes progress, share turns out user by
user, and fail with ``DatabaseUnavailable`` only when it stops making progress.
"""

from __future__ import annotations

import asyncio

import pytest

from chatserver.errors import DatabaseUnavailable
from chatserver.storage.sql.write_gate import FairGate

BOUND = 10.0  # seconds: no test here may hang


async def inside(gate: FairGate, key: str | None, order: list[str], seconds: float = 0.001) -> None:
    ticket = await gate.acquire(key)
    try:
        order.append(str(key))
        await asyncio.sleep(seconds)
    finally:
        gate.release(ticket)


class TestOneAtATime:
    async def test_one_unit_of_work_at_a_time_in_arrival_order(self) -> None:
        gate = FairGate(1, timeout_seconds=5.0)
        present: list[int] = []
        order: list[int] = []

        async def work(n: int) -> None:
            ticket = await gate.acquire()
            try:
                present.append(n)
                order.append(n)
                assert len(present) == 1
                await asyncio.sleep(0.001)
                present.remove(n)
            finally:
                gate.release(ticket)

        async with asyncio.timeout(BOUND):
            await asyncio.gather(*(work(n) for n in range(20)))
        assert order == list(range(20))

    async def test_the_task_inside_may_open_another_unit_of_work(self) -> None:
        gate = FairGate(1, timeout_seconds=0.5)
        async with asyncio.timeout(BOUND):
            outer = await gate.acquire()
            nested = await gate.acquire()
            gate.release(nested)
            gate.release(outer)
            again = await gate.acquire()  # free again
            gate.release(again)

    async def test_a_caller_waiting_past_the_timeout_is_told_the_database_is_unavailable(self) -> None:
        gate = FairGate(1, timeout_seconds=0.05)
        held = await gate.acquire()

        async def other() -> None:
            await gate.acquire()

        async with asyncio.timeout(BOUND):
            with pytest.raises(DatabaseUnavailable):
                await asyncio.create_task(other())
            gate.release(held)
            again = await gate.acquire()  # the gate still works
            gate.release(again)

    async def test_a_ticket_may_be_given_back_from_another_task(self) -> None:
        gate = FairGate(1, timeout_seconds=0.5)
        ticket = await asyncio.create_task(gate.acquire())  # taken in a task that has ended since
        gate.release(ticket)
        async with asyncio.timeout(BOUND):
            gate.release(await gate.acquire())


class TestFairness:
    async def test_a_user_behind_another_users_crowd_waits_for_one_of_theirs_not_all(self) -> None:
        gate = FairGate(1, timeout_seconds=5.0)
        order: list[str] = []
        crowd = [asyncio.create_task(inside(gate, "ann", order)) for _ in range(20)]
        await asyncio.sleep(0)  # the crowd is queued first
        late = asyncio.create_task(inside(gate, "bob", order))
        async with asyncio.timeout(BOUND):
            await asyncio.gather(*crowd, late)
        assert order.index("bob") <= 2, order
        assert order.count("ann") == 20

    async def test_waiting_users_take_turns(self) -> None:
        gate = FairGate(1, timeout_seconds=5.0)
        order: list[str] = []
        holder = await gate.acquire()
        waiting = [asyncio.create_task(inside(gate, user, order)) for user in ["a"] * 3 + ["b"] * 3 + ["c"]]
        await asyncio.sleep(0)
        gate.release(holder)
        async with asyncio.timeout(BOUND):
            await asyncio.gather(*waiting)
        assert order == ["a", "b", "c", "a", "b", "a", "b"]

    async def test_as_many_as_the_capacity_are_inside_at_once(self) -> None:
        gate = FairGate(3, timeout_seconds=5.0)
        present = 0
        most = 0

        async def work() -> None:
            nonlocal present, most
            ticket = await gate.acquire("ann")
            present += 1
            most = max(most, present)
            await asyncio.sleep(0.01)
            present -= 1
            gate.release(ticket)

        async with asyncio.timeout(BOUND):
            await asyncio.gather(*(work() for _ in range(12)))
        assert most == 3

    async def test_a_waiter_that_gives_up_leaves_its_turn_to_the_next(self) -> None:
        gate = FairGate(1, timeout_seconds=5.0)
        order: list[str] = []
        holder = await gate.acquire()
        quitter = asyncio.create_task(inside(gate, "ann", order))
        stayer = asyncio.create_task(inside(gate, "bob", order))
        await asyncio.sleep(0)
        quitter.cancel()
        gate.release(holder)
        async with asyncio.timeout(BOUND):
            await stayer
        assert order == ["bob"] and quitter.cancelled()
