"""Migrations ship in the package, reach head, are idempotent, and create exactly the declared schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import chatserver
from chatserver.domain import Run
from chatserver.storage.sql import SqlDatabase, SqlUnitOfWorkFactory, create_engine, tables, upgrade_to_head
from chatserver.storage.sql.migrate import MIGRATIONS_DIR, alembic_config, head_revisions
from chatserver.storage.sql.tables import metadata
from tests.support.builders import NOW
from tests.support.databases import DatabaseKind, settings_for, throwaway_database

T = TypeVar("T")
KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def _run_sync(url: str, fn: Callable[[Connection], T]) -> T:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


async def _is_current(url: str) -> bool:
    database = SqlDatabase(create_engine(settings_for(url)))
    try:
        return await database.migrations_current()
    finally:
        await database.dispose()


def _table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


@pytest.mark.parametrize("kind", KINDS)
async def test_a_fresh_database_is_not_current_until_upgraded_to_head(
    kind: DatabaseKind, tmp_path: Path
) -> None:
    async with throwaway_database(kind, tmp_path, migrate=False) as url:
        before = await _is_current(url)
        await upgrade_to_head(url)
        after = await _is_current(url)
    assert (before, after) == (False, True)


async def test_upgrading_twice_is_a_no_op_that_keeps_the_data(database_url: str, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO users (id, name, is_admin, created_at) VALUES ('keep', NULL, false, '2025-01-01')"
        )
    await upgrade_to_head(database_url)
    async with engine.connect() as conn:
        kept = (await conn.exec_driver_sql("SELECT id FROM users")).scalars().all()
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars().all()
    assert kept == ["keep"]
    assert set(version) == head_revisions()


async def test_the_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    def differences(conn: Connection) -> list[object]:
        def declared(name: str | None, type_: str, parents: object) -> bool:
            return not tables.is_search_index(name)

        context = MigrationContext.configure(conn, opts={"include_name": declared})
        return list(compare_metadata(context, metadata))

    assert await _run_sync(database_url, differences) == []


async def test_migrations_run_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    async with throwaway_database("sqlite", tmp_path, migrate=False) as url:
        await upgrade_to_head(url)
        assert await _is_current(url)


async def test_downgrading_to_base_removes_every_table_and_upgrading_restores_them(database_url: str) -> None:
    def downgrade(conn: Connection) -> set[str]:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        return _table_names(conn) - {"alembic_version"}

    assert await _run_sync(database_url, downgrade) == set()
    await upgrade_to_head(database_url)
    assert await _run_sync(database_url, _table_names) >= set(metadata.tables)


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def upgrade(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    return upgrade


def _rows_of_0005(conn: Connection) -> None:
    """Alice's chat "c1" with messages, a running run and a session, as 0005 stored them."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.set_config("app.system", "on", True)))
    conn.execute(
        insert(tables.users), [{"id": u, "is_admin": False, "created_at": NOW} for u in ("alice", "bob")]
    )
    conn.execute(
        insert(tables.chats).values(
            id="c1", user_id="alice", agent_name="helper", turn_count=1, created_at=NOW, updated_at=NOW
        )
    )
    conn.execute(
        insert(tables.chat_messages),
        [
            {"chat_id": "c1", "user_id": "alice", "turn": 1, "role": r, "content": r, "created_at": NOW}
            for r in ("user", "assistant")
        ],
    )
    conn.execute(
        insert(tables.runs).values(
            id="run-1",
            user_id="alice",
            chat_id="c1",
            agent_name="helper",
            status="running",
            message="m",
            created_at=NOW,
        )
    )
    conn.execute(insert(tables.chat_session_instances).values(
        id="s1", user_id="alice", chat_id="c1", agent_name="helper", is_active=True,
        last_heartbeat_at=NOW, created_at=NOW, updated_at=NOW))  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
async def test_upgrading_from_0005_keeps_every_chat_and_frees_its_id_for_other_users(
    kind: DatabaseKind, tmp_path: Path
) -> None:
    async with throwaway_database(kind, tmp_path, migrate=False) as url:
        await _run_sync(url, _upgrade_to("0005"))
        await _run_sync(url, _rows_of_0005)
        await upgrade_to_head(url)
        engine = create_engine(settings_for(url))
        try:
            uow_factory = SqlUnitOfWorkFactory(engine)
            async with uow_factory(user_id="bob") as uow:
                bobs = await uow.turns.start(
                    Run("run-2", "bob", "c1", "helper", "queued", "hi", NOW), policy="reject", owner="r",
                    lease_until=NOW,
                )  # fmt: skip
                await uow.commit()
            async with uow_factory(user_id="alice") as uow:
                alices = await uow.chats.get("alice", "c1")
                page = await uow.messages.page("alice", "c1", limit=10, before=None)
                runs = await uow.runs.active("alice", "c1")
                session = await uow.sessions.get("alice", "s1")
                deleted = await uow.chats.delete("alice", "c1")
                left = await uow.messages.page("alice", "c1", limit=10, before=None)
                await uow.commit()
        finally:
            await engine.dispose()
    assert alices is not None and alices.turn_count == 1
    assert [m.content for m in page] == ["user", "assistant"]
    assert [r.id for r in runs] == ["run-1"] and session is not None
    assert bobs.outcome == "accepted" and bobs.claimed == "run-2"
    assert deleted and left == []  # the new foreign keys cascade as the old ones did


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_one_at_a_time(tmp_path: Path) -> None:
    async with throwaway_database("postgres", tmp_path, migrate=False) as url:
        await asyncio.wait_for(asyncio.gather(upgrade_to_head(url), upgrade_to_head(url)), timeout=30)
        assert await _is_current(url)


def test_the_environment_and_the_revision_template_ship_inside_the_package() -> None:
    shipped = {path.name for path in MIGRATIONS_DIR.iterdir()}
    assert {"env.py", "script.py.mako", "versions"} <= shipped
    assert MIGRATIONS_DIR.is_relative_to(Path(chatserver.__file__).parent)
    assert len(head_revisions()) == 1  # one linear chain: 0001 -> 0002 -> 0003 ...
