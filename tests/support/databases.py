"""Throwaway databases for tests: a SQLite file in a temporary folder, or a fresh PostgreSQL database.

Both are migrated to head unless asked not to, and yield a URL for ``Settings.database_url``.

A PostgreSQL test database is owned by, and its URL connects as, the role ``chatserver_app``
(LOGIN, NOSUPERUSER, NOBYPASSRLS), created when missing through the admin URL. The application
therefore runs every PostgreSQL test the way it must run in production: with row-level security
enforced. Only ``postgres_admin_url()`` connects as a superuser.
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
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from chatserver.config import Settings
from chatserver.storage.sql.migrate import upgrade_to_head

DatabaseKind = Literal["sqlite", "postgres"]

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

APP_ROLE = "chatserver_app"
# Test-only credentials: local servers usually trust loopback, and a password makes the role work
# under password authentication too.
APP_ROLE_PASSWORD = "chatserver_app"

# Test runs in parallel processes may race to create the role: the loser's error is harmless.
_CREATE_APP_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
            PASSWORD '{APP_ROLE_PASSWORD}';
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$
"""
_APP_ROLE_PRIVILEGED = text(
    "SELECT rolsuper OR rolbypassrls OR NOT rolcanlogin FROM pg_roles WHERE rolname = :name"
)


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
    """``CREATE DATABASE cs_test_<hex>`` owned by the app role, yield the app role's URL, then drop it
    even if connections linger."""
    admin_url = admin_url or postgres_admin_url()
    name = f"cs_test_{secrets.token_hex(6)}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await _ensure_app_role(conn)
            await conn.execute(text(f'CREATE DATABASE "{name}" OWNER {APP_ROLE}'))
        try:
            url = app_role_url(admin_url, name)
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


def app_role_url(admin_url: str, database: str) -> str:
    """The URL of ``database`` on the admin URL's server, connecting as the non-superuser app role."""
    url = make_url(admin_url).set(username=APP_ROLE, password=APP_ROLE_PASSWORD, database=database)
    return _render(url)


async def _ensure_app_role(conn: AsyncConnection) -> None:
    await conn.execute(text(_CREATE_APP_ROLE))
    privileged = (await conn.execute(_APP_ROLE_PRIVILEGED, {"name": APP_ROLE})).scalar_one()
    if privileged:
        # A role left over from elsewhere must not quietly turn row-level security off in tests.
        await conn.execute(text(f"ALTER ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"))


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)
