"""Search over a user's chats: their titles, and their messages' text through the full-text index
of migration 0009 (PostgreSQL: a GIN index of ``to_tsvector('simple', content)``; SQLite: FTS5)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain.chats import ChatFilters, SearchHit
from chatserver.storage.sql.chats import chat_of, conditions
from chatserver.storage.sql.tables import chats

_WORD = re.compile(r"\w+")
_FILTERS = (
    " AND (CAST(:pinned AS boolean) IS NULL OR c.pinned = CAST(:pinned AS boolean))"
    " AND (CAST(:archived AS boolean) IS NULL OR c.archived = CAST(:archived AS boolean))"
)


def _matches(source: str, condition: str = "") -> str:
    """The newest matching message of each chat, the newest such chats first."""
    return (
        f"{source} JOIN chats AS c ON c.user_id = m.user_id AND c.id = m.chat_id"
        f" WHERE m.user_id = :user_id{condition}{_FILTERS}"
        " GROUP BY m.chat_id ORDER BY message_id DESC LIMIT :limit"
    )


# Row-level security keeps the GIN index out (``@@`` is not leakproof): the user's messages come
# through their btree index, and each one's stored vector is matched, none computed.
_PG_MATCHES = text(
    _matches(
        "SELECT m.chat_id, max(m.id) AS message_id FROM chat_messages AS m",
        " AND m.search_vector @@ plainto_tsquery('simple', :q)",
    )
)
# The FTS5 table first, materialized: joined the other way, SQLite would query it once per chat.
_SQLITE_MATCHES = text(
    _matches(
        "WITH found AS MATERIALIZED"
        " (SELECT rowid AS id FROM chat_messages_fts WHERE chat_messages_fts MATCH :q)"
        " SELECT m.chat_id, max(m.id) AS message_id FROM found JOIN chat_messages AS m ON m.id = found.id"
    )
)
_PG_SNIPPETS = text(
    "SELECT m.id, ts_headline('simple', m.content, plainto_tsquery('simple', :q),"
    ' \'MaxWords=24, MinWords=8, StartSel="", StopSel=""\') FROM chat_messages AS m'
    " WHERE m.user_id = :user_id AND m.id = ANY(CAST(:ids AS bigint[]))"
)
_SQLITE_SNIPPETS = text(
    "SELECT f.rowid, snippet(chat_messages_fts, 0, '', '', '…', 16) FROM chat_messages_fts AS f"
    " WHERE chat_messages_fts MATCH :q AND f.rowid IN :ids"
).bindparams(bindparam("ids", expanding=True))


def fts5_query(query: str) -> str:
    """Every word of ``query`` as a quoted FTS5 string (all must match): its syntax never leaks."""
    return " ".join(f'"{word}"' for word in _WORD.findall(query))


class SqlChatSearch:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def search(self, user_id: str, query: str, filters: ChatFilters, *, limit: int) -> list[SearchHit]:
        """Chats whose title or messages match every word of ``query``, newest first."""
        if not _WORD.search(query):
            return []
        hits = {hit.chat.id: hit for hit in await self._in_messages(user_id, query, filters, limit)}
        for chat in await self._in_titles(user_id, query, filters, limit):
            hits.setdefault(chat.id, SearchHit(chat, chat.title or ""))
        ordered = sorted(hits.values(), key=lambda h: (h.chat.updated_at, h.chat.id), reverse=True)
        return ordered[:limit]

    async def _in_messages(
        self, user_id: str, query: str, filters: ChatFilters, limit: int
    ) -> list[SearchHit]:
        postgres = self._conn.dialect.name == "postgresql"
        q = query if postgres else fts5_query(query)
        params: dict[str, Any] = {"user_id": user_id, "q": q, "limit": limit}
        params |= {"pinned": filters.pinned, "archived": filters.archived}
        found = (await self._conn.execute(_PG_MATCHES if postgres else _SQLITE_MATCHES, params)).all()
        if not found:
            return []
        ids = [row[1] for row in found]
        snippet_query = _PG_SNIPPETS if postgres else _SQLITE_SNIPPETS
        snippet_params: dict[str, Any] = {"user_id": user_id, "q": q, "ids": ids}
        snippet_rows = await self._conn.execute(snippet_query, snippet_params)
        snippets: dict[int, str] = {row[0]: row[1] for row in snippet_rows}
        statement = select(chats).where(chats.c.user_id == user_id, chats.c.id.in_([r[0] for r in found]))
        by_id = {row["id"]: chat_of(row) for row in (await self._conn.execute(statement)).mappings()}
        return [
            SearchHit(by_id[chat_id], snippets.get(message_id, ""), message_id)
            for chat_id, message_id in found
            if chat_id in by_id
        ]

    async def _in_titles(self, user_id: str, query: str, filters: ChatFilters, limit: int) -> list[Any]:
        # One user's chats only: their own index range, never the whole table.
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", query.strip().lower()) + "%"
        statement = (
            select(chats)
            .where(chats.c.user_id == user_id, *conditions(filters))
            .where(func.lower(chats.c.title).like(bindparam("pattern", type_=String), escape="\\"))
            .order_by(chats.c.updated_at.desc())
            .limit(limit)
        )
        rows = await self._conn.execute(statement, {"pattern": pattern})
        return [chat_of(row) for row in rows.mappings()]
