"""Alembic, driven programmatically: migrations ship inside the package, so no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import BigInteger, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Replicas that start together migrate one at a time ("chatmigr" in ASCII).
_MIGRATION_LOCK = select(func.pg_advisory_xact_lock(literal(0x636861746D696772, BigInteger)))


def alembic_config(database_url: str | None = None) -> Config:
    """A config for any Alembic command; ``database_url`` is only needed when no connection is shared.

    The URL goes into ``attributes``, not the ini options, which would %-interpolate passwords.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


async def upgrade_to_head(database_url: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Transaction-scoped: released at commit, after the version row is written.
                await conn.execute(_MIGRATION_LOCK)
            await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current_matches_head(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        current = await conn.run_sync(_current_revisions)
    return current == head_revisions()


def _current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())
