"""Long-term notes per (user, agent). Every query names the owner; PostgreSQL also enforces it (RLS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, RowMapping, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import Memory
from chatserver.storage.sql.tables import memories as mem

_LIKE_ESCAPE = "\\"


def _memory(row: RowMapping) -> Memory:
    return Memory(
        id=row["id"],
        user_id=row["user_id"],
        agent_name=row["agent_name"],
        content=row["content"],
        created_at=row["created_at"],
    )


def _contains(keyword: str) -> ColumnElement[bool]:
    """Case-insensitive substring match, with LIKE's wildcards in the keyword taken literally."""
    escaped = (
        keyword.lower()
        .replace(_LIKE_ESCAPE, _LIKE_ESCAPE * 2)
        .replace("%", _LIKE_ESCAPE + "%")
        .replace("_", _LIKE_ESCAPE + "_")
    )
    return func.lower(mem.c.content).like(f"%{escaped}%", escape=_LIKE_ESCAPE)


class SqlMemoryRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, user_id: str, agent_name: str, content: str, *, now: datetime) -> Memory:
        statement = (
            insert(mem)
            .values(user_id=user_id, agent_name=agent_name, content=content, created_at=now)
            .returning(mem.c.id)
        )
        memory_id = (await self._conn.execute(statement)).scalar_one()
        return Memory(memory_id, user_id, agent_name, content, now)

    async def count(self, user_id: str, agent_name: str) -> int:
        statement = select(func.count()).where(mem.c.user_id == user_id, mem.c.agent_name == agent_name)
        return int((await self._conn.execute(statement)).scalar_one())

    async def search(
        self, user_id: str, agent_name: str, *, keywords: Sequence[str], limit: int
    ) -> list[Memory]:
        statement = select(mem).where(mem.c.user_id == user_id, mem.c.agent_name == agent_name)
        if keywords:
            statement = statement.where(or_(*(_contains(keyword) for keyword in keywords)))
        statement = statement.order_by(mem.c.id.desc()).limit(limit)
        return [_memory(row) for row in (await self._conn.execute(statement)).mappings()]

    async def list(
        self,
        user_id: str,
        *,
        agent_name: str | None,
        limit: int,
        before: int | None = None,
        words: Sequence[str] = (),
    ) -> list[Memory]:
        # A scan of the user's notes (their index), bounded by MAX_NOTES_PER_AGENT per agent: no
        # full-text index is worth it at that size.
        statement = select(mem).where(mem.c.user_id == user_id, *(_contains(word) for word in words))
        if agent_name is not None:
            statement = statement.where(mem.c.agent_name == agent_name)
        if before is not None:
            statement = statement.where(mem.c.id < before)
        statement = statement.order_by(mem.c.id.desc()).limit(limit)
        return [_memory(row) for row in (await self._conn.execute(statement)).mappings()]

    async def delete(self, user_id: str, memory_id: int) -> Memory | None:
        statement = delete(mem).where(mem.c.user_id == user_id, mem.c.id == memory_id).returning(mem)
        row = (await self._conn.execute(statement)).mappings().first()
        return _memory(row) if row else None

    async def delete_all(self, user_id: str, agent_name: str) -> int:
        statement = delete(mem).where(mem.c.user_id == user_id, mem.c.agent_name == agent_name)
        return (await self._conn.execute(statement)).rowcount
