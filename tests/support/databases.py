"""Throwaway databases for tests: a SQLite file in a temporary folder, or a fresh PostgreSQL database.

Both are migrated to head unless asked not to, and yield a URL for ``Settings.database_url``.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from chatserver.config import Settings
from chatserver.storage.sql.migrate import upgrade_to_head

DatabaseKind = Literal["sqlite", "postgres"]

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """A URL with the right to create databases: env ``CHATSERVER_TEST_POSTGRES_URL`` or the default."""
    return os.environ.get("CHATSERVER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)


def postgres_address(admin_url: str) -> tuple[str, int]:
    url = make_url(admin_url)
    return url.host or "localhost", url.port or 5432


def postgres_reachable(admin_url: str, *, timeout_seconds: float = 0.5) -> bool:
    """A TCP connect only: cheap enough to run once per session before collecting tests."""
    try:
        with socket.create_connection(postgres_address(admin_url), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def settings_for(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, **overrides)


def sqlite_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'chatserver.db'}"


@asynccontextmanager
async def sqlite_database(directory: Path, *, migrate: bool = True) -> AsyncIterator[str]:
    url = sqlite_url(directory)
    if migrate:
        await upgrade_to_head(url)
    yield url


@asynccontextmanager
async def postgres_database(admin_url: str | None = None, *, migrate: bool = True) -> AsyncIterator[str]:
    """``CREATE DATABASE cs_test_<hex>``, yield its URL, then drop it even if connections linger."""
    admin_url = admin_url or postgres_admin_url()
    name = f"cs_test_{secrets.token_hex(6)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = _render(make_url(admin_url).set(database=name))
            if migrate:
                await upgrade_to_head(url)
            yield url
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@asynccontextmanager
async def throwaway_database(
    kind: DatabaseKind, directory: Path, *, migrate: bool = True
) -> AsyncIterator[str]:
    if kind == "sqlite":
        async with sqlite_database(directory, migrate=migrate) as url:
            yield url
    else:
        async with postgres_database(migrate=migrate) as url:
            yield url


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)
