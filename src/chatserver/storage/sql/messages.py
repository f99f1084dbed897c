"""Chat messages: the history window the model sees, and pages for the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, bindparam, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import Message, NewMessage, ToolCall
from chatserver.errors import NotFound
from chatserver.storage.sql.tables import chat_messages, chats

# The window's LIMIT is turns * this: generous for tool-heavy turns, yet it bounds the query's cost.
MAX_MESSAGES_PER_TURN = 64

# Statements of the turn's hot path are built once: building and hashing a statement per call costs
# more CPU than running it. Parameters are named apart from the columns they fill.
_m = chat_messages.c
_COLUMNS = (
    _m.id,
    _m.chat_id,
    _m.user_id,
    _m.turn,
    _m.role,
    _m.content,
    _m.tool_calls,
    _m.tool_call_id,
    _m.tool_name,
    _m.created_at,
    _m.incomplete,
)
_CHAT_ID = bindparam("p_chat_id", type_=_m.chat_id.type)
_USER_ID = bindparam("p_user_id", type_=_m.user_id.type)

_WINDOW = (
    select(*_COLUMNS)
    .where(_m.chat_id == _CHAT_ID)
    .where(
        _m.turn >= bindparam("p_first_turn", type_=Integer),
        _m.turn < bindparam("p_before_turn", type_=Integer),
    )
    .where(_m.user_id == _USER_ID)
    .order_by(_m.turn.desc(), _m.id.desc())
    .limit(bindparam("p_limit", type_=Integer))
)
"""Newest first, so the (chat_id, turn, id) index is scanned backwards and stops at the LIMIT."""

_OWNED_CHAT = select(chats.c.id).where(chats.c.id == _CHAT_ID, chats.c.user_id == _USER_ID)

_STORED = (
    _m.turn,
    _m.role,
    _m.content,
    _m.tool_calls,
    _m.tool_call_id,
    _m.tool_name,
    _m.created_at,
    _m.incomplete,
)
_ADD_IF_OWNED = (
    insert(chat_messages)
    .from_select(
        [_m.chat_id, _m.user_id, *_STORED],
        select(_CHAT_ID, _USER_ID, *(bindparam(f"p_{c.name}", type_=c.type) for c in _STORED)).where(
            exists(_OWNED_CHAT)
        ),
    )
    .returning(*_COLUMNS)
)
"""One message, inserted only into a chat of the caller's: the ownership check costs no round trip."""

_ADD = insert(chat_messages).returning(*_COLUMNS, sort_by_parameter_order=True)


def window_statement(user_id: str, chat_id: str, *, before_turn: int, turns: int) -> Select[Any]:
    return _WINDOW.params(_window_params(user_id, chat_id, before_turn=before_turn, turns=turns))


def _window_params(user_id: str, chat_id: str, *, before_turn: int, turns: int) -> dict[str, Any]:
    return {
        "p_user_id": user_id,
        "p_chat_id": chat_id,
        "p_first_turn": before_turn - turns,
        "p_before_turn": before_turn,
        "p_limit": turns * MAX_MESSAGES_PER_TURN,
    }


def stored_tool_calls(message: NewMessage) -> list[dict[str, Any]] | None:
    """The ``tool_calls`` column's value for a message: None when it calls no tool."""
    return [{"id": c.id, "name": c.name, "args": c.args} for c in message.tool_calls] or None


def tool_calls_of(stored: Sequence[Mapping[str, Any]] | None) -> tuple[ToolCall, ...]:
    """The ``tool_calls`` column's value back as tool calls."""
    return tuple(ToolCall(c["id"], c["name"], c["args"]) for c in stored) if stored else ()


def _message(row: Sequence[Any]) -> Message:
    # Unpacked by position (the order of _COLUMNS): a window reads ~100 rows per turn.
    message_id, chat_id, _owner, turn, role, content, calls, tool_call_id, tool_name, created_at = row[:10]
    return Message(
        id=message_id,
        chat_id=chat_id,
        turn=turn,
        role=role,
        content=content,
        created_at=created_at,
        tool_calls=tool_calls_of(calls),
        tool_call_id=tool_call_id,
        tool_name=tool_name,
        incomplete=bool(row[10]),
    )


def _row(user_id: str, chat_id: str, turn: int, message: NewMessage, now: datetime) -> dict[str, Any]:
    return {
        "chat_id": chat_id,
        "user_id": user_id,
        "turn": turn,
        "role": message.role,
        "content": message.content,
        "tool_calls": stored_tool_calls(message),
        "tool_call_id": message.tool_call_id,
        "tool_name": message.tool_name,
        "created_at": now,
        "incomplete": message.incomplete or None,
    }


class SqlMessageRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(
        self, user_id: str, chat_id: str, turn: int, messages: Sequence[NewMessage], *, now: datetime
    ) -> list[Message]:
        """Raises ``NotFound`` when the caller owns no such chat."""
        if not messages:
            await self._require_chat(user_id, chat_id)
            return []
        first, *rest = (_row(user_id, chat_id, turn, message, now) for message in messages)
        guarded = {f"p_{name}": value for name, value in first.items()}
        inserted = (await self._conn.execute(_ADD_IF_OWNED, guarded)).first()
        if inserted is None:
            raise NotFound(f"chat {chat_id!r} not found")
        added = [_message(inserted)]
        if rest:
            added += [_message(row) for row in await self._conn.execute(_ADD, rest)]
        return added

    async def window(self, user_id: str, chat_id: str, *, before_turn: int, turns: int) -> list[Message]:
        if turns <= 0:
            return []
        params = _window_params(user_id, chat_id, before_turn=before_turn, turns=turns)
        newest_first = [_message(row) for row in await self._conn.execute(_WINDOW, params)]
        return newest_first[::-1]

    async def page(self, user_id: str, chat_id: str, *, limit: int, before: int | None) -> list[Message]:
        m = chat_messages.c
        statement = (
            select(*_COLUMNS)
            .where(m.chat_id == chat_id, m.user_id == user_id)
            .order_by(m.id.desc())
            .limit(limit)
        )
        if before is not None:
            statement = statement.where(m.id < before)
        newest_first = [_message(row) for row in await self._conn.execute(statement)]
        return newest_first[::-1]

    async def _require_chat(self, user_id: str, chat_id: str) -> None:
        # Messages carry the owner id; refusing foreign chats keeps one user's rows out of another's chat.
        owned = await self._conn.execute(_OWNED_CHAT, {"p_user_id": user_id, "p_chat_id": chat_id})
        if owned.first() is None:
            raise NotFound(f"chat {chat_id!r} not found")
