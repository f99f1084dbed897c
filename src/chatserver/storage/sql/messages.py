"""Chat messages: the history window the model sees, and pages for the UI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, Select, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import Message, NewMessage, ToolCall
from chatserver.errors import NotFound
from chatserver.storage.sql.tables import chat_messages, chats

# The window's LIMIT is turns * this: generous for tool-heavy turns, yet it bounds the query's cost.
MAX_MESSAGES_PER_TURN = 64


def window_statement(user_id: str, chat_id: str, *, before_turn: int, turns: int) -> Select[Any]:
    """Newest first, so the (chat_id, turn, id) index is scanned backwards and stops at the LIMIT."""
    m = chat_messages.c
    return (
        select(chat_messages)
        .where(m.chat_id == chat_id, m.turn >= before_turn - turns, m.turn < before_turn)
        .where(m.user_id == user_id)
        .order_by(m.turn.desc(), m.id.desc())
        .limit(turns * MAX_MESSAGES_PER_TURN)
    )


def _message(row: RowMapping) -> Message:
    return Message(
        id=row["id"],
        chat_id=row["chat_id"],
        turn=row["turn"],
        role=row["role"],
        content=row["content"],
        created_at=row["created_at"],
        tool_calls=tuple(ToolCall(c["id"], c["name"], c["args"]) for c in row["tool_calls"] or ()),
        tool_call_id=row["tool_call_id"],
        tool_name=row["tool_name"],
    )


def _row(user_id: str, chat_id: str, turn: int, message: NewMessage, now: datetime) -> dict[str, Any]:
    calls = [{"id": c.id, "name": c.name, "args": c.args} for c in message.tool_calls]
    return {
        "chat_id": chat_id,
        "user_id": user_id,
        "turn": turn,
        "role": message.role,
        "content": message.content,
        "tool_calls": calls or None,
        "tool_call_id": message.tool_call_id,
        "tool_name": message.tool_name,
        "created_at": now,
    }


class SqlMessageRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, user_id: str, chat_id: str, turn: int, messages: Sequence[NewMessage], *, now: datetime
    ) -> list[Message]:
        """Raises ``NotFound`` when the caller owns no such chat."""
        await self._require_chat(user_id, chat_id)
        if not messages:
            return []
        rows = [_row(user_id, chat_id, turn, message, now) for message in messages]
        statement = insert(chat_messages).returning(*chat_messages.c, sort_by_parameter_order=True)
        result = await self._conn.execute(statement, rows)
        return [_message(row) for row in result.mappings()]

    async def window(self, user_id: str, chat_id: str, *, before_turn: int, turns: int) -> list[Message]:
        if turns <= 0:
            return []
        statement = window_statement(user_id, chat_id, before_turn=before_turn, turns=turns)
        newest_first = [_message(row) for row in (await self._conn.execute(statement)).mappings()]
        return newest_first[::-1]

    async def page(self, user_id: str, chat_id: str, *, limit: int, before: int | None) -> list[Message]:
        m = chat_messages.c
        statement = (
            select(chat_messages)
            .where(m.chat_id == chat_id, m.user_id == user_id)
            .order_by(m.id.desc())
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(m.id < before)
        newest_first = [_message(row) for row in (await self._conn.execute(statement)).mappings()]
        return newest_first[::-1]

    async def _require_chat(self, user_id: str, chat_id: str) -> None:
        # Messages carry the owner id; refusing foreign chats keeps one user's rows out of another's chat.
        statement = select(chats.c.id).where(chats.c.id == chat_id, chats.c.user_id == user_id)
        if (await self._conn.execute(statement)).first() is None:
            raise NotFound(f"chat {chat_id!r} not found")
