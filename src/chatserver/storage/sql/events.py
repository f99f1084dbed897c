"""The audit log: append-only, read newest first."""

from __future__ import annotations

import builtins
from datetime import datetime

from sqlalchemy import ColumnElement, RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import AuditEvent, NewEvent
from chatserver.storage.sql.tables import audit_events as ae

_INSERT = ae.insert()
"""Built once: every turn records an event."""


def _event(row: RowMapping) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        type=row["type"],
        user_id=row["user_id"],
        agent_name=row["agent_name"],
        chat_id=row["chat_id"],
        data=row["data"],
        created_at=row["created_at"],
    )


class SqlEventRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, event: NewEvent, *, now: datetime) -> None:
        values = {
            "type": event.type,
            "user_id": event.user_id,
            "agent_name": event.agent_name,
            "chat_id": event.chat_id,
            "data": event.data,
            "created_at": now,
        }
        await self._conn.execute(_INSERT, values)

    async def list(
        self, *, type: str | None, user_id: str | None, limit: int, before: int | None
    ) -> list[AuditEvent]:
        conditions: list[ColumnElement[bool]] = []
        if type is not None:
            conditions.append(ae.c.type == type)
        if user_id is not None:
            conditions.append(ae.c.user_id == user_id)
        if before is not None:
            conditions.append(ae.c.id < before)
        statement = select(ae).where(*conditions).order_by(ae.c.id.desc()).limit(limit)
        return [_event(row) for row in (await self._conn.execute(statement)).mappings()]

    async def list_after(self, event_id: int, *, limit: int) -> builtins.list[AuditEvent]:
        statement = select(ae).where(ae.c.id > event_id).order_by(ae.c.id).limit(limit)
        return [_event(row) for row in (await self._conn.execute(statement)).mappings()]
