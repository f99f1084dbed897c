"""Chat session instances: a live client's presence on a chat, kept alive by heartbeats."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import SessionInstance
from chatserver.storage.sql.statements import insert_or_conflict
from chatserver.storage.sql.tables import chat_session_instances as csi


def _session(row: RowMapping) -> SessionInstance:
    return SessionInstance(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        agent_name=row["agent_name"],
        is_active=row["is_active"],
        last_heartbeat_at=row["last_heartbeat_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlSessionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, session: SessionInstance) -> None:
        values = {
            "id": session.id,
            "user_id": session.user_id,
            "chat_id": session.chat_id,
            "agent_name": session.agent_name,
            "is_active": session.is_active,
            "last_heartbeat_at": session.last_heartbeat_at,
            "created_at": session.created_at,
            "updated_at": session.updated_at,
        }
        await insert_or_conflict(self._conn, csi, values, conflict=f"session {session.id!r} already exists")

    async def get(self, user_id: str, session_id: str) -> SessionInstance | None:
        statement = select(csi).where(csi.c.user_id == user_id, csi.c.id == session_id)
        row = (await self._conn.execute(statement)).mappings().first()
        return _session(row) if row else None

    async def list(
        self, user_id: str, *, agent_name: str | None, active: bool | None
    ) -> list[SessionInstance]:
        """Oldest first."""
        conditions: list[ColumnElement[bool]] = [csi.c.user_id == user_id]
        if agent_name is not None:
            conditions.append(csi.c.agent_name == agent_name)
        if active is not None:
            conditions.append(csi.c.is_active == active)
        statement = select(csi).where(*conditions).order_by(csi.c.created_at, csi.c.id)
        return [_session(row) for row in (await self._conn.execute(statement)).mappings()]

    async def heartbeat(self, user_id: str, session_id: str, *, now: datetime) -> SessionInstance | None:
        return await self._set(user_id, session_id, is_active=True, last_heartbeat_at=now, updated_at=now)

    async def end(self, user_id: str, session_id: str, *, now: datetime) -> SessionInstance | None:
        return await self._set(user_id, session_id, is_active=False, updated_at=now)

    async def deactivate_stale(self, *, cutoff: datetime, now: datetime) -> builtins.list[SessionInstance]:
        statement = (
            update(csi)
            .where(csi.c.is_active == true(), csi.c.last_heartbeat_at < cutoff)
            .values(is_active=False, updated_at=now)
            .returning(*csi.c)
        )
        return [_session(row) for row in (await self._conn.execute(statement)).mappings()]

    async def active_pairs(self) -> set[tuple[str, str]]:
        statement = select(csi.c.user_id, csi.c.agent_name).where(csi.c.is_active == true()).distinct()
        return {(row.user_id, row.agent_name) for row in await self._conn.execute(statement)}

    async def count_active(self) -> int:
        statement = select(func.count()).select_from(csi).where(csi.c.is_active == true())
        return int((await self._conn.execute(statement)).scalar_one())

    async def _set(self, user_id: str, session_id: str, **values: Any) -> SessionInstance | None:
        statement = (
            update(csi)
            .where(csi.c.user_id == user_id, csi.c.id == session_id)
            .values(**values)
            .returning(*csi.c)
        )
        row = (await self._conn.execute(statement)).mappings().first()
        return _session(row) if row else None
