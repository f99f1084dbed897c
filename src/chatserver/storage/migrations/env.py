"""Alembic environment.

``storage.sql.migrate`` hands over an open connection in ``config.attributes["connection"]`` (the
async engine runs this synchronously through ``run_sync``). Without one, this file builds its own
async engine from ``config.attributes["database_url"]``, e.g. to autogenerate a revision:
``command.revision(alembic_config(url), autogenerate=True, message="...")``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from chatserver.storage.sql.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(database_url: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_offline(database_url: str) -> None:
    context.configure(
        url=database_url, target_metadata=metadata, literal_binds=True, dialect_opts={"paramstyle": "named"}
    )
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    url = context.config.attributes.get("database_url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("pass a connection or a database_url in the Alembic config attributes")
    return str(url)


def main() -> None:
    connection = context.config.attributes.get("connection")
    if context.is_offline_mode():
        _run_offline(_database_url())
    elif connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_with_own_engine(_database_url()))


main()
