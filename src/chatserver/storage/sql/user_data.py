"""Everything of one user at once: keyset-paged export reads and erasure of every row naming them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.storage.protocols import EXPORT_SECTIONS
from chatserver.storage.sql.tables import (
    audit_events,
    chat_messages,
    chat_session_instances,
    chats,
    memories,
    prompt_customizations,
    runs,
)

_SECTION_TABLES: dict[str, Table] = {
    "chats": chats,
    "messages": chat_messages,
    "customizations": prompt_customizations,
    "memories": memories,
    "sessions": chat_session_instances,
    "runs": runs,
    "events": audit_events,
}
assert set(_SECTION_TABLES) == set(EXPORT_SECTIONS)

# Internal bookkeeping of a run's lease and retry identity: nothing the user said or got.
_NOT_EXPORTED = {"lease_owner", "lease_expires_at", "request_hash"}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class SqlUserDataRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def export_page(
        self, user_id: str, section: str, *, after: Any | None, limit: int, chat_id: str | None = None
    ) -> list[dict[str, Any]]:
        table = _SECTION_TABLES[section]
        statement = select(table).where(table.c.user_id == user_id).order_by(table.c.id).limit(limit)
        if chat_id is not None:
            statement = statement.where(table.c.chat_id == chat_id)
        if after is not None:
            statement = statement.where(table.c.id > after)
        rows = (await self._conn.execute(statement)).mappings()
        return [
            {key: _jsonable(value) for key, value in row.items() if key not in _NOT_EXPORTED} for row in rows
        ]
