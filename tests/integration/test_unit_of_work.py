"""The unit of work: one transaction per use case, connection failures surface as DatabaseUnavailable."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from chatserver.errors import Conflict, DatabaseUnavailable
from chatserver.storage.sql import SqlDatabase, SqlUnitOfWorkFactory, create_engine
from tests.support.builders import NOW, chat, customization, user
from tests.support.databases import settings_for, sqlite_database


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until_new_threads_exit(before: set[threading.Thread]) -> None:
    """aiosqlite stops a failed connection's worker thread without awaiting it: let the thread finish
    while the event loop still runs, or it reports to a closed loop after the test."""
    for thread in set(threading.enumerate()) - before:
        await asyncio.to_thread(thread.join, 5)


def _unreachable_urls(tmp_path: Path) -> list[str]:
    return [
        f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nowhere",
        f"sqlite+aiosqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'chatserver.db'}",
    ]


async def test_committed_work_is_visible_to_the_next_unit_of_work(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.users.add(user("carol"))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.users.get("carol") == user("carol")


async def test_work_not_committed_is_rolled_back_on_exit(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.users.add(user("carol"))
    async with uow_factory() as uow:
        assert await uow.users.get("carol") is None


async def test_an_exception_rolls_back_and_propagates_unchanged(uow_factory: SqlUnitOfWorkFactory) -> None:
    with pytest.raises(KeyError, match="boom"):
        async with uow_factory() as uow:
            await uow.users.add(user("carol"))
            raise KeyError("boom")
    async with uow_factory() as uow:
        assert await uow.users.count() == 0


async def test_work_after_a_commit_needs_its_own_commit(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.users.add(user("carol"))
        await uow.commit()
        await uow.users.add(user("dave"))
    async with uow_factory() as uow:
        assert (await uow.users.get("carol"), await uow.users.get("dave")) == (user("carol"), None)


async def test_a_conflict_leaves_the_unit_of_work_usable(
    uow_factory: SqlUnitOfWorkFactory, users: tuple[str, str]
) -> None:
    async with uow_factory(user_id="alice") as uow:
        await uow.customizations.add(customization("alice", id="c1"))
        with pytest.raises(Conflict):
            await uow.customizations.add(customization("alice", id="c2"))
        await uow.chats.create_if_absent(chat("after-conflict", "alice"))
        await uow.commit()
    async with uow_factory(user_id="alice") as uow:
        assert await uow.chats.get("alice", "after-conflict") is not None
        assert await uow.customizations.get("alice", "c1") is not None


async def test_integrity_errors_other_than_duplicates_are_not_mapped(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    with pytest.raises(IntegrityError):
        async with uow_factory() as uow:
            await uow.chats.create_if_absent(chat("orphan", "nobody"))


async def test_the_connection_goes_back_to_the_pool_whatever_happens(
    engine: AsyncEngine, uow_factory: SqlUnitOfWorkFactory
) -> None:
    async with uow_factory() as uow:
        await uow.users.count()
        await uow.commit()
    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await uow.users.count()
            raise RuntimeError
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("which", ["postgres-closed-port", "sqlite-missing-folder"])
async def test_an_unreachable_database_raises_database_unavailable(which: str, tmp_path: Path) -> None:
    url = _unreachable_urls(tmp_path)[0 if which.startswith("postgres") else 1]
    engine = create_engine(settings_for(url, db_timeout_seconds=2.0))
    threads = set(threading.enumerate())
    try:
        with pytest.raises(DatabaseUnavailable, match="database unavailable") as caught:
            async with SqlUnitOfWorkFactory(engine)() as uow:
                await uow.users.count()
    finally:
        await engine.dispose()
        await _until_new_threads_exit(threads)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize("which", ["postgres-closed-port", "sqlite-missing-folder"])
async def test_the_database_handle_reports_an_unreachable_database(which: str, tmp_path: Path) -> None:
    url = _unreachable_urls(tmp_path)[0 if which.startswith("postgres") else 1]
    database = SqlDatabase(create_engine(settings_for(url, db_timeout_seconds=2.0)))
    threads = set(threading.enumerate())
    try:
        with pytest.raises(DatabaseUnavailable):
            await database.ping()
        with pytest.raises(DatabaseUnavailable):
            await database.migrations_current()
    finally:
        await database.dispose()
        await _until_new_threads_exit(threads)


async def test_the_database_handle_pings_and_sees_current_migrations(engine: AsyncEngine) -> None:
    database = SqlDatabase(engine)
    await database.ping()
    assert await database.migrations_current()


@pytest.mark.postgres
async def test_a_connection_killed_mid_transaction_is_unavailable_and_then_replaced(
    postgres_url: str,
) -> None:
    engine = create_engine(settings_for(postgres_url))
    admin = create_async_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            async with SqlUnitOfWorkFactory(engine)() as uow:
                pid = (await uow.connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                async with admin.connect() as conn:
                    await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                await uow.users.count()
        async with SqlUnitOfWorkFactory(engine)() as uow:
            assert await uow.users.count() == 0
    finally:
        await admin.dispose()
        await engine.dispose()
    assert caught.value.__cause__ is not None


@pytest.mark.postgres
async def test_a_unit_of_work_acting_for_a_user_tells_postgres_who_it_is(postgres_url: str) -> None:
    engine = create_engine(settings_for(postgres_url))
    acting = text("SELECT current_setting('app.user_id', true)")
    try:
        async with SqlUnitOfWorkFactory(engine)(user_id="alice") as uow:
            first = (await uow.connection.execute(acting)).scalar_one()
            await uow.users.ensure("alice", is_admin=False, now=NOW)
            await uow.commit()
            after_commit = (await uow.connection.execute(acting)).scalar_one()
        async with SqlUnitOfWorkFactory(engine)() as uow:
            system = (await uow.connection.execute(acting)).scalar_one()
    finally:
        await engine.dispose()
    assert (first, after_commit, system or None) == ("alice", "alice", None)


async def test_on_sqlite_units_of_work_take_turns_in_arrival_order_and_all_commit(tmp_path: Path) -> None:
    # SQLite has one writer: concurrent writers queue in this process instead of racing for the
    # file lock, so none fails with "database is locked" however many there are.
    async with sqlite_database(tmp_path) as url:
        engine = create_engine(settings_for(url))
        uow_factory = SqlUnitOfWorkFactory(engine, timeout_seconds=30.0)
        log: list[tuple[str, int]] = []

        async def write(n: int) -> None:
            async with uow_factory() as uow:
                log.append(("in", n))
                await uow.users.add(user(f"writer-{n}"))
                await asyncio.sleep(0.002)  # other writers get the event loop meanwhile
                await uow.commit()
                log.append(("out", n))

        try:
            async with asyncio.timeout(60):
                await asyncio.gather(*(write(n) for n in range(40)))
            async with uow_factory() as uow:
                stored = await uow.users.count()
        finally:
            await engine.dispose()
    assert log == [(side, n) for n in range(40) for side in ("in", "out")]
    assert stored == 40


@pytest.mark.postgres
async def test_after_every_pooled_connection_is_terminated_the_next_turns_succeed(postgres_url: str) -> None:
    """The turn statements go to the driver directly: a dead pooled connection must not fail turn
    after turn (it once did, for 18 s, until some other statement made SQLAlchemy notice)."""
    engine = create_engine(settings_for(postgres_url, db_pool_size=4, db_max_overflow=0))
    admin = create_async_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    factory = SqlUnitOfWorkFactory(engine)
    try:
        async with factory() as uow:
            await uow.users.ensure("alice", is_admin=False, now=NOW)
            await uow.commit()
        async with factory(user_id="alice") as uow:
            await uow.chats.create_if_absent(chat("c1", "alice"))
            await uow.commit()

        async def open_turn(n: int) -> None:
            async with factory(user_id="alice") as uow:
                claimed = await uow.turns.open(
                    "alice", "c1", "helper", f"m{n}", title="t", now=NOW, window_turns=5
                )
                assert claimed is not None
                await uow.commit()

        await asyncio.gather(*(open_turn(n) for n in range(4)))  # four pooled connections
        async with admin.connect() as conn:
            terminated = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert len(terminated.all()) >= 4
        outcomes = []
        for n in range(4, 12):
            try:
                await open_turn(n)
                outcomes.append("ok")
            except DatabaseUnavailable:
                outcomes.append("unavailable")
    finally:
        await admin.dispose()
        await engine.dispose()
    assert outcomes.count("unavailable") <= 1 and outcomes[-7:] == ["ok"] * 7, outcomes


async def test_use_cases_beyond_the_pool_wait_for_its_connections_rather_than_open_more(
    database_url: str,
) -> None:
    """With the default settings, twelve use cases at once on a pool of three open three connections:
    a connection opened past the pool would be closed after one use, and reopened on the next."""
    engine = create_engine(settings_for(database_url, db_pool_size=3))
    opened: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda connection, _record: opened.append(connection))
    factory = SqlUnitOfWorkFactory(engine)
    try:

        async def use_case(n: int) -> None:
            async with factory() as uow:
                await uow.users.ensure(f"user-{n}", is_admin=False, now=NOW)
                await asyncio.sleep(0.01)
                await uow.commit()

        for _ in range(3):
            await asyncio.gather(*(use_case(n) for n in range(12)))
        async with factory() as uow:
            stored = await uow.users.count()
    finally:
        await engine.dispose()
    assert stored == 12
    assert len(opened) <= 3
