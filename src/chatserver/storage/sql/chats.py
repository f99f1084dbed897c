"""Chats: one conversation of one user with one agent."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import RowMapping, bindparam, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from chatserver.domain import Chat
from chatserver.domain.chats import ANY_CHAT, ChatChange, ChatFilters
from chatserver.storage.sql.statements import insert_unless_taken
from chatserver.storage.sql.tables import chats

TITLE_MAX_CHARS = 200

# Built once (the turn's hot path); parameters are named apart from the columns they fill.
_CLAIM_TURN = (
    update(chats)
    .where(chats.c.id == bindparam("p_chat_id"), chats.c.user_id == bindparam("p_user_id"))
    .values(
        turn_count=chats.c.turn_count + 1,
        title=func.coalesce(chats.c.title, bindparam("p_title", type_=chats.c.title.type)),
        updated_at=bindparam("p_now", type_=chats.c.updated_at.type),
    )
    .returning(*chats.c)
)


def chat_of(row: RowMapping) -> Chat:
    return Chat(
        id=row["id"],
        user_id=row["user_id"],
        agent_name=row["agent_name"],
        title=row["title"],
        turn_count=row["turn_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        active_message_id=row["active_message_id"],
        pinned=row["pinned"],
        archived=row["archived"],
    )


class SqlChatRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, user_id: str, chat_id: str) -> Chat | None:
        statement = select(chats).where(chats.c.id == chat_id, chats.c.user_id == user_id)
        row = (await self._conn.execute(statement)).mappings().first()
        return chat_of(row) if row else None

    async def create_if_absent(self, chat: Chat) -> bool:
        values = {
            "id": chat.id,
            "user_id": chat.user_id,
            "agent_name": chat.agent_name,
            "title": fit_title(chat.title),
            "turn_count": chat.turn_count,
            "created_at": chat.created_at,
            "updated_at": chat.updated_at,
        }
        return await insert_unless_taken(self._conn, chats, values)

    async def claim_turn(self, user_id: str, chat_id: str, *, title: str, now: datetime) -> Chat | None:
        params = {"p_chat_id": chat_id, "p_user_id": user_id, "p_title": fit_title(title), "p_now": now}
        row = (await self._conn.execute(_CLAIM_TURN, params)).mappings().first()
        return chat_of(row) if row else None

    async def list(
        self,
        user_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        filters: ChatFilters = ANY_CHAT,
    ) -> list[Chat]:
        statement = (
            select(chats)
            .where(chats.c.user_id == user_id, *conditions(filters))
            .order_by(chats.c.updated_at.desc(), chats.c.id.desc())
            .limit(limit)
        )
        if before is not None:
            # A row-value comparison in index order, so the (user_id, updated_at, id) index serves it.
            statement = statement.where(tuple_(chats.c.updated_at, chats.c.id) < before)
        return [chat_of(row) for row in (await self._conn.execute(statement)).mappings()]

    async def set_active(self, user_id: str, chat_id: str, message_id: int | None) -> None:
        statement = (
            update(chats)
            .where(chats.c.id == chat_id, chats.c.user_id == user_id)
            .values(active_message_id=message_id)
        )
        await self._conn.execute(statement)

    async def change(self, user_id: str, chat_id: str, change: ChatChange) -> Chat | None:
        """Set what ``change`` names; None when the caller owns no such chat."""
        values = {k: v for k, v in asdict(change).items() if v is not None}
        if "title" in values:
            values["title"] = fit_title(values["title"])
        mine = (chats.c.id == chat_id, chats.c.user_id == user_id)
        if values:
            changed = update(chats).where(*mine).values(values).returning(*chats.c)
            row = (await self._conn.execute(changed)).mappings().first()
        else:
            row = (await self._conn.execute(select(chats).where(*mine))).mappings().first()
        return chat_of(row) if row else None

    async def retitle(self, user_id: str, chat_id: str, *, was: str, title: str) -> bool:
        """Replace the title only while it is still ``was`` (the chat was not renamed meanwhile)."""
        statement = (
            update(chats)
            .where(chats.c.id == chat_id, chats.c.user_id == user_id, chats.c.title == fit_title(was))
            .values(title=fit_title(title))
        )
        return (await self._conn.execute(statement)).rowcount > 0

    async def delete(self, user_id: str, chat_id: str) -> bool:
        statement = delete(chats).where(chats.c.id == chat_id, chats.c.user_id == user_id)
        return (await self._conn.execute(statement)).rowcount > 0


def conditions(filters: ChatFilters) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.pinned is not None:
        found.append(chats.c.pinned.is_(filters.pinned))
    if filters.archived is not None:
        found.append(chats.c.archived.is_(filters.archived))
    return found


def fit_title(title: str | None) -> str | None:
    return None if title is None else title[:TITLE_MAX_CHARS]
