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
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import chatserver
from chatserver.storage.sql import SqlDatabase, create_engine, upgrade_to_head
from chatserver.storage.sql.migrate import MIGRATIONS_DIR, alembic_config, head_revisions
from chatserver.storage.sql.tables import metadata
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
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

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
