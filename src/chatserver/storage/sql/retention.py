"""Retention purges: old rows deleted a bounded batch at a time, so no transaction holds long locks.

A chat past retention goes piecewise: its messages, ended runs and inactive sessions first (each
counted in the batch), the chat itself once nothing is left under it, so its foreign-key cascade
never deletes an unbounded number of rows. A chat with a queued or running run, or an active
session, stays until those end.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, delete, exists, false, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain.runs import ENDED
from chatserver.storage.protocols import RetentionCutoffs
from chatserver.storage.sql.tables import audit_events, chat_messages, chat_session_instances, chats, runs


class SqlRetentionRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def purge(self, cutoffs: RetentionCutoffs, *, limit: int) -> dict[str, int]:
        expired = (
            select(chats.c.user_id, chats.c.id).where(chats.c.updated_at < cutoffs.chats)
            if cutoffs.chats
            else None
        )

        def in_expired(table: Table) -> ColumnElement[bool]:
            """A chat is named by its owner and its id."""
            if expired is None:
                return false()
            return tuple_(table.c.user_id, table.c.id if table is chats else table.c.chat_id).in_(expired)

        plan: list[tuple[str, Table, ColumnElement[bool]]] = [
            ("messages", chat_messages, in_expired(chat_messages)),
            (
                "runs",
                runs,
                runs.c.status.in_(ENDED)
                & or_(
                    in_expired(runs),
                    runs.c.finished_at < cutoffs.runs if cutoffs.runs else false(),
                ),
            ),
            (
                "sessions",
                chat_session_instances,
                ~chat_session_instances.c.is_active
                & or_(
                    in_expired(chat_session_instances),
                    chat_session_instances.c.updated_at < cutoffs.sessions if cutoffs.sessions else false(),
                ),
            ),
            ("chats", chats, in_expired(chats) & ~_has_children()),
            (
                "events",
                audit_events,
                audit_events.c.created_at < cutoffs.events if cutoffs.events else false(),
            ),
        ]
        counts: dict[str, int] = {}
        for kind, table, where in plan:
            counts[kind] = await self._delete_some(table, where, limit - sum(counts.values()))
        return counts

    async def _delete_some(self, table: Table, where: ColumnElement[bool], limit: int) -> int:
        """Delete up to ``limit`` rows matching ``where``, chosen by primary key."""
        if limit <= 0:
            return 0
        key = list(table.primary_key.columns)
        chosen = select(*key).where(where).limit(limit)
        result = await self._conn.execute(delete(table).where(tuple_(*key).in_(chosen)))
        return int(result.rowcount)


def _has_children() -> ColumnElement[bool]:
    return or_(
        *(
            exists().where(child.c.user_id == chats.c.user_id, child.c.chat_id == chats.c.id)
            for child in (chat_messages, runs, chat_session_instances)
        ),
    )
