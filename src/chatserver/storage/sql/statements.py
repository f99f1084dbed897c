"""Statement helpers shared by the repositories: dialect inserts, conflict mapping, lock keys."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.errors import Conflict
from chatserver.storage.sql.driver_errors import is_unique_violation


def int4_key(text: str) -> int:
    """``text`` as one half of a two-int PostgreSQL advisory lock key, the same on every replica."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big", signed=True)


def dialect_insert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT on the connection's database."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"chatserver supports SQLite and PostgreSQL, not {name}")


async def insert_unless_taken(conn: AsyncConnection, table: Table, values: Mapping[str, Any]) -> bool:
    """Insert one row; False when a unique key is taken (also by a concurrent transaction).

    ON CONFLICT DO NOTHING instead of catching the violation keeps the transaction usable on
    PostgreSQL, where an error aborts it.
    """
    primary_key = next(iter(table.primary_key.columns))
    statement = dialect_insert(conn, table).values(dict(values)).on_conflict_do_nothing()
    result = await conn.execute(statement.returning(primary_key))
    return result.first() is not None


async def insert_or_conflict(
    conn: AsyncConnection, table: Table, values: Mapping[str, Any], *, conflict: str
) -> None:
    if not await insert_unless_taken(conn, table, values):
        raise Conflict(conflict)


async def execute_or_conflict(
    conn: AsyncConnection, statement: Executable, *, conflict: str
) -> CursorResult[Any]:
    """Execute; a unique violation becomes ``Conflict`` (on PostgreSQL the transaction is then void)."""
    try:
        return await conn.execute(statement)
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise Conflict(conflict) from exc
        raise
