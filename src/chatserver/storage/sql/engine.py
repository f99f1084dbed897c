"""Engine construction per dialect, and the engine-level ``Database`` handle."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chatserver.config import Settings
from chatserver.storage.sql.driver_errors import unavailable_on_connection_errors
from chatserver.storage.sql.migrate import current_matches_head
from chatserver.storage.sql.roles import adopt_unprivileged_role


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, settings)
    if backend == "postgresql":
        return _postgres_engine(url, settings)
    raise ValueError(f"unsupported database {backend!r}: use sqlite+aiosqlite or postgresql+asyncpg")


def _pool_options(settings: Settings) -> dict[str, Any]:
    return {
        # Statement parameters hold message text and key hashes: never copy them into an error
        # message, where a log line would carry them.
        "hide_parameters": True,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_timeout_seconds,
    }


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL, settings: Settings) -> AsyncEngine:
    # In-memory databases keep SQLAlchemy's single shared connection (StaticPool): one per pool
    # connection would be separate, empty databases.
    options: dict[str, Any] = {"hide_parameters": True} if _is_memory(url) else _pool_options(settings)
    engine = create_async_engine(url, **options)
    busy_timeout_ms = int(settings.db_timeout_seconds * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers proceed while one writer commits; NORMAL sync is safe with WAL (a power
        # cut may lose the last commits, never corrupt the file).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Writers queue for the lock instead of failing at once with "database is locked".
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _postgres_connect_args(url: URL, timeout: float) -> dict[str, Any]:
    if url.get_driver_name() == "asyncpg":
        return {"timeout": timeout, "command_timeout": timeout}
    return {"connect_timeout": max(1, round(timeout))}


def _postgres_engine(url: URL, settings: Settings) -> AsyncEngine:
    # No pool_pre_ping: it costs a round trip per checkout. A connection found dead fails its
    # statement once (DatabaseUnavailable), and SQLAlchemy then invalidates the pool's connections.
    return create_async_engine(
        url,
        connect_args=_postgres_connect_args(url, settings.db_timeout_seconds),
        **_pool_options(settings),
    )


class SqlDatabase:
    """Implements ``storage.protocols.Database`` over an engine it takes ownership of."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def ping(self) -> None:
        with unavailable_on_connection_errors(connecting=True):
            async with self._engine.connect() as conn:
                await conn.execute(select(1))

    async def migrations_current(self) -> bool:
        with unavailable_on_connection_errors(connecting=True):
            return await current_matches_head(self._engine)

    async def enforce_row_level_security(self, app_role: str) -> None:
        if self._engine.dialect.name == "postgresql":
            await adopt_unprivileged_role(self._engine, app_role)

    async def dispose(self) -> None:
        await self._engine.dispose()
