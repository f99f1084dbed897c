"""Chat locks: one turn per chat at a time, in one process (SQLite) and across replicas (PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from chatserver.config import Settings
from chatserver.errors import ChatBusy
from chatserver.storage.protocols import ChatLocks
from chatserver.storage.sql import LocalChatLocks, PostgresChatLocks, create_engine, make_chat_locks
from chatserver.storage.sql.locks import advisory_key
from tests.support.databases import settings_for

BOUND = 10.0  # seconds: no test here may hang


@pytest.fixture
async def locks(engine: AsyncEngine, settings: Settings) -> AsyncIterator[ChatLocks]:
    locks = make_chat_locks(engine, settings)
    yield locks
    await locks.close()


@pytest.fixture
async def replicas(
    postgres_url: str,
) -> AsyncIterator[tuple[PostgresChatLocks, PostgresChatLocks, AsyncEngine]]:
    """Two lock managers on two engines, as two server processes would have, and an admin engine."""
    async with AsyncExitStack() as stack:
        engines = [create_engine(settings_for(postgres_url)) for _ in range(2)]
        admin = create_async_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        for each in [*engines, admin]:
            stack.push_async_callback(each.dispose)
        first, second = (PostgresChatLocks(e, timeout_seconds=5.0) for e in engines)
        stack.push_async_callback(first.close)
        stack.push_async_callback(second.close)
        yield first, second, admin


async def test_concurrent_holders_of_one_chat_never_overlap(locks: ChatLocks) -> None:
    inside: list[int] = []
    overlaps: list[list[int]] = []
    finished: list[int] = []

    async def turn(i: int) -> None:
        async with locks.hold("chat-1", wait=True):
            inside.append(i)
            if len(inside) > 1:
                overlaps.append(list(inside))
            await asyncio.sleep(0.002)  # a real await, where an overlapping holder would slip in
            inside.remove(i)
            finished.append(i)

    await asyncio.wait_for(asyncio.gather(*(turn(i) for i in range(12))), BOUND)
    assert overlaps == []
    assert sorted(finished) == list(range(12))


async def test_a_busy_chat_refuses_a_caller_that_will_not_wait(locks: ChatLocks) -> None:
    async with locks.hold("chat-1", wait=True):
        with pytest.raises(ChatBusy):
            async with locks.hold("chat-1", wait=False):
                pass
    async with asyncio.timeout(BOUND), locks.hold("chat-1", wait=False):
        pass


async def test_different_chats_do_not_wait_for_each_other(locks: ChatLocks) -> None:
    async with asyncio.timeout(BOUND), locks.hold("chat-1", wait=True), locks.hold("chat-2", wait=False):
        entered = True
    assert entered


async def test_a_waiter_past_the_lock_timeout_gets_chat_busy(engine: AsyncEngine, settings: Settings) -> None:
    impatient = make_chat_locks(engine, settings.model_copy(update={"chat_lock_timeout_seconds": 0.2}))
    loop = asyncio.get_running_loop()
    try:
        async with impatient.hold("chat-1", wait=True):
            started = loop.time()
            with pytest.raises(ChatBusy):
                async with asyncio.timeout(BOUND), impatient.hold("chat-1", wait=True):
                    pass
            waited = loop.time() - started
    finally:
        await impatient.close()
    assert 0.15 <= waited < 2


async def test_a_cancelled_waiter_leaves_the_chat_free(locks: ChatLocks) -> None:
    async def wait_forever() -> None:
        async with locks.hold("chat-1", wait=True):
            pass

    async with locks.hold("chat-1", wait=True):
        waiter = asyncio.create_task(wait_forever())
        await asyncio.sleep(0.02)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with asyncio.timeout(BOUND), locks.hold("chat-1", wait=False):
        pass


async def test_the_backend_decides_the_kind_of_lock(engine: AsyncEngine, locks: ChatLocks) -> None:
    expected = PostgresChatLocks if engine.dialect.name == "postgresql" else LocalChatLocks
    assert type(locks) is expected


async def test_the_local_lock_table_empties_once_nobody_holds_or_waits() -> None:
    locks = LocalChatLocks(timeout_seconds=5.0)

    async def turn(chat_id: str) -> None:
        async with locks.hold(chat_id, wait=True):
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(*(turn(f"chat-{i % 5}") for i in range(50))), BOUND)
    assert locks._slots == {}


def test_the_advisory_key_is_a_stable_signed_64_bit_hash_of_the_chat_id() -> None:
    keys = {advisory_key(f"chat-{i}") for i in range(1000)}
    assert advisory_key("chat-1") == advisory_key("chat-1")
    assert len(keys) == 1000
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert any(key < 0 for key in keys)


async def test_two_replicas_exclude_each_other(
    replicas: tuple[PostgresChatLocks, PostgresChatLocks, AsyncEngine],
) -> None:
    first, second, _ = replicas
    events: list[str] = []

    async def second_replica_turn() -> None:
        async with second.hold("chat-1", wait=True):
            events.append("second in")

    async with asyncio.timeout(BOUND):
        async with first.hold("chat-1", wait=True):
            with pytest.raises(ChatBusy):
                async with second.hold("chat-1", wait=False):
                    pass
            waiting = asyncio.create_task(second_replica_turn())
            await asyncio.sleep(0.05)
            events.append("first out")
        await waiting
    assert events == ["first out", "second in"]


async def test_a_replica_past_the_lock_timeout_gets_chat_busy(postgres_url: str) -> None:
    engines = [create_engine(settings_for(postgres_url)) for _ in range(2)]
    holder, impatient = PostgresChatLocks(engines[0], 5.0), PostgresChatLocks(engines[1], 0.3)
    loop = asyncio.get_running_loop()
    try:
        async with holder.hold("chat-1", wait=True):
            started = loop.time()
            with pytest.raises(ChatBusy):
                async with asyncio.timeout(BOUND), impatient.hold("chat-1", wait=True):
                    pass
            waited = loop.time() - started
    finally:
        for each in (holder, impatient):
            await each.close()
        for engine in engines:
            await engine.dispose()
    assert 0.25 <= waited < 2


async def test_a_lock_held_by_a_closed_replica_is_released(
    replicas: tuple[PostgresChatLocks, PostgresChatLocks, AsyncEngine],
) -> None:
    first, second, _ = replicas
    async with asyncio.timeout(BOUND):
        async with first.hold("chat-1", wait=True):
            await first.close()
            async with second.hold("chat-1", wait=False):
                taken_over = True
    assert taken_over


async def test_a_cancelled_remote_waiter_leaves_no_lock_behind(
    replicas: tuple[PostgresChatLocks, PostgresChatLocks, AsyncEngine],
) -> None:
    first, second, _ = replicas

    async def wait_for_chat() -> None:
        async with second.hold("chat-1", wait=True):
            pass

    async with asyncio.timeout(BOUND):
        async with first.hold("chat-1", wait=True):
            waiter = asyncio.create_task(wait_for_chat())
            await asyncio.sleep(0.05)  # several polls of pg_try_advisory_lock
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        async with second.hold("chat-1", wait=False):
            pass
        async with first.hold("chat-1", wait=False):
            pass


async def test_a_lost_lock_connection_is_replaced_and_its_locks_are_gone(
    replicas: tuple[PostgresChatLocks, PostgresChatLocks, AsyncEngine],
) -> None:
    first, second, admin = replicas
    # pg_locks is server-wide: only this test database's locks are ours to count and cut.
    holders = text(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    async with asyncio.timeout(BOUND):
        async with first.hold("chat-1", wait=True), admin.connect() as conn:
            pids = (await conn.execute(holders)).scalars().all()
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with (
            second.hold("chat-1", wait=False),
            first.hold("chat-2", wait=False),
            admin.connect() as conn,
        ):
            still_locked = len((await conn.execute(holders)).all())
    assert (len(pids), still_locked) == (1, 2)


async def test_holding_a_lock_takes_no_request_connection(postgres_url: str) -> None:
    engine = create_engine(settings_for(postgres_url, db_pool_size=1, db_max_overflow=0))
    locks = PostgresChatLocks(engine, timeout_seconds=5.0)
    try:
        async with asyncio.timeout(BOUND), locks.hold("chat-1", wait=True):
            checked_out = engine.pool.checkedout()  # type: ignore[attr-defined]
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await locks.close()
        await engine.dispose()
    assert checked_out == 0
