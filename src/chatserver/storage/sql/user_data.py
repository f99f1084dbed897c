"""Everything of one user at once: keyset-paged export reads and erasure of every row naming them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.storage.protocols import EXPORT_SECTIONS
from chatserver.storage.sql.tables import (
    api_keys,
    audit_events,
    budget_counters,
    budgets,
    chat_messages,
    chat_session_instances,
    chats,
    memories,
    prompt_customizations,
    run_steps,
    runs,
    usage_records,
    users,
)

_SECTION_TABLES: dict[str, Table] = {
    "chats": chats,
    "messages": chat_messages,
    "customizations": prompt_customizations,
    "memories": memories,
    "sessions": chat_session_instances,
    "runs": runs,
    "events": audit_events,
    "usage": usage_records,
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

    async def active_run_ids(self, user_id: str) -> list[str]:
        statement = select(runs.c.id).where(
            runs.c.user_id == user_id, runs.c.status.in_(("queued", "running", "requires_action"))
        )
        return list((await self._conn.execute(statement.order_by(runs.c.id))).scalars())

    async def erase(self, user_id: str) -> dict[str, int]:
        """Children before parents, so the counts are of rows really deleted (not cascaded)."""
        await self._delete(run_steps, run_steps.c.user_id == user_id)
        counts = {
            "runs": await self._delete(runs, runs.c.user_id == user_id),
            "messages": await self._delete(chat_messages, chat_messages.c.user_id == user_id),
            "sessions": await self._delete(
                chat_session_instances, chat_session_instances.c.user_id == user_id
            ),
            # By owner only: a chat id names a chat of each user who has one, so it names nobody.
            "events": await self._delete(audit_events, audit_events.c.user_id == user_id),
            "chats": await self._delete(chats, chats.c.user_id == user_id),
            "memories": await self._delete(memories, memories.c.user_id == user_id),
            "customizations": await self._delete(
                prompt_customizations, prompt_customizations.c.user_id == user_id
            ),
            "api_keys": await self._delete(api_keys, api_keys.c.user_id == user_id),
            "usage": await self._delete(usage_records, usage_records.c.user_id == user_id),
            "budgets": await self._erase_budgets(user_id),
        }
        await self._delete(users, users.c.id == user_id)
        return counts

    async def _erase_budgets(self, user_id: str) -> int:
        """The user's budgets, and the counters naming them (under the default budget too); an
        agent's total is counted under no one's name and stays."""
        own = select(budgets.c.id).where(budgets.c.user_id == user_id)
        counters = budget_counters.c
        await self._delete(budget_counters, or_(counters.subject == user_id, counters.budget_id.in_(own)))
        return await self._delete(budgets, budgets.c.user_id == user_id)

    async def _delete(self, table: Table, where: ColumnElement[bool]) -> int:
        result = await self._conn.execute(delete(table).where(where))
        return int(result.rowcount)
