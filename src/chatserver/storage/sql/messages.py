"""Chat messages: the history window the model sees, and pages for the UI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Select, bindparam, case, exists, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from chatserver.domain import Message, NewMessage, ToolCall
from chatserver.errors import NotFound
from chatserver.storage.sql.tables import chat_messages, chats, runs

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
    _m.parent_id,
)
_CHAT_ID = bindparam("p_chat_id", type_=_m.chat_id.type)
_USER_ID = bindparam("p_user_id", type_=_m.user_id.type)

_FROM_ID = bindparam("p_from_id", type_=_m.id.type)
_TURNS = bindparam("p_turns", type_=Integer)
_LIMIT = bindparam("p_limit", type_=Integer)


def _branch_walk() -> Any:
    """The ancestors of ``p_from_id`` (itself first), counting turns at each change of turn, while
    within ``p_turns`` turns and ``p_limit`` messages: one primary-key lookup per message.

    Each step names the parent's id alone, and the owner and chat are checked on the walk's rows:
    given ``user_id`` beside the id, a planner without fresh statistics reads every one of the
    owner's messages at each step (migration 0012 says more). The rows carry every column read."""
    m, p = chat_messages.alias("s"), chat_messages.alias("p")
    seed = select(
        *(m.c[c.name] for c in _COLUMNS),
        literal(1, Integer).label("turns"),
        literal(1, Integer).label("depth"),
    ).where(m.c.id == _FROM_ID, _TURNS > 0)
    branch = seed.cte("branch", recursive=True)
    step = branch.c.turns + case((p.c.turn != branch.c.turn, 1), else_=0)
    return branch.union_all(
        select(*(p.c[c.name] for c in _COLUMNS), step, branch.c.depth + 1)
        .join_from(branch, p, p.c.id == branch.c.parent_id)
        .where(_owned(branch), step <= _TURNS, branch.c.depth < _LIMIT)
    )


def _owned(walk: Any) -> ColumnElement[bool]:
    owned: ColumnElement[bool] = (walk.c.user_id == _USER_ID) & (walk.c.chat_id == _CHAT_ID)
    return owned


_BRANCH = _branch_walk()
_WINDOW = (
    select(*(_BRANCH.c[c.name] for c in _COLUMNS)).where(_owned(_BRANCH)).order_by(_BRANCH.c.id.desc())
)
"""The active branch up to a message, newest first: the model's window and the page's history."""

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
_ACTIVE = (
    select(chats.c.active_message_id)
    .where(chats.c.id == _CHAT_ID, chats.c.user_id == _USER_ID)
    .scalar_subquery()
)
_ADD_IF_OWNED = (
    insert(chat_messages)
    .from_select(
        [_m.chat_id, _m.user_id, _m.parent_id, *_STORED],
        select(_CHAT_ID, _USER_ID, _ACTIVE, *(bindparam(f"p_{c.name}", type_=c.type) for c in _STORED)).where(
            exists(_OWNED_CHAT)
        ),
    )
    .returning(*_COLUMNS)
)
"""One message, inserted only into a chat of the caller's: the ownership check costs no round trip.
Its parent is named here as the chaining trigger (migration 0009) names it, so that what RETURNING
reads is right on SQLite too, whose trigger runs after the insert."""

_ADD = insert(chat_messages).returning(*_COLUMNS, sort_by_parameter_order=True)


def window_statement(user_id: str, chat_id: str, *, from_id: int | None, turns: int) -> Select[Any]:
    return _WINDOW.params(_window_params(user_id, chat_id, from_id=from_id, turns=turns))


def _window_params(user_id: str, chat_id: str, *, from_id: int | None, turns: int) -> dict[str, Any]:
    return {
        "p_user_id": user_id,
        "p_chat_id": chat_id,
        "p_from_id": from_id,
        "p_turns": turns,
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
        parent_id=row[11],
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
            for row in await self._conn.execute(_ADD, rest):
                # Each follows the one before it: the trigger chains them in insertion order.
                added.append(replace(_message(row), parent_id=added[-1].id))
        return added

    async def window(self, user_id: str, chat_id: str, *, from_id: int | None, turns: int) -> list[Message]:
        if turns <= 0 or from_id is None:
            return []
        params = _window_params(user_id, chat_id, from_id=from_id, turns=turns)
        newest_first = [_message(row) for row in await self._conn.execute(_WINDOW, params)]
        return newest_first[::-1]

    async def page(self, user_id: str, chat_id: str, *, limit: int, before: int | None) -> list[Message]:
        """Every branch's messages in the order they were written, newest page first."""
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

    async def branch(self, user_id: str, chat_id: str, *, from_id: int | None, limit: int) -> list[Message]:
        """Up to ``limit`` messages of the branch ending at ``from_id``, oldest first."""
        if from_id is None:
            return []
        params = {"p_user_id": user_id, "p_chat_id": chat_id, "p_from_id": from_id}
        params |= {"p_turns": limit, "p_limit": limit}
        newest_first = [_message(row) for row in await self._conn.execute(_WINDOW, params)]
        return newest_first[::-1]

    async def get(self, user_id: str, chat_id: str, message_id: int) -> Message | None:
        statement = select(*_COLUMNS).where(_m.id == message_id, _m.user_id == user_id, _m.chat_id == chat_id)
        row = (await self._conn.execute(statement)).first()
        return _message(row) if row else None

    async def children(self, user_id: str, chat_id: str, parent_ids: Sequence[int | None]) -> list[Message]:
        """The messages following any of ``parent_ids`` (None: the chat's first ones), by id."""
        known = [p for p in parent_ids if p is not None]
        parent: ColumnElement[bool] = _m.parent_id.in_(known)
        if None in parent_ids:
            parent = or_(parent, _m.parent_id.is_(None))
        statement = (
            select(*_COLUMNS).where(_m.user_id == user_id, _m.chat_id == chat_id, parent).order_by(_m.id)
        )
        return [_message(row) for row in await self._conn.execute(statement)]

    async def newest_under(self, user_id: str, chat_id: str, message_id: int) -> int | None:
        """The newest message of the subtree from ``message_id``: a leaf, the end of its newest branch."""
        m, d = chat_messages.alias("m"), chat_messages.alias("d")
        seed = select(m.c.id).where(m.c.id == message_id, m.c.user_id == user_id, m.c.chat_id == chat_id)
        down = seed.cte("down", recursive=True)
        down = down.union_all(
            select(d.c.id)
            .join_from(down, d, d.c.parent_id == down.c.id)
            .where(d.c.user_id == user_id, d.c.chat_id == chat_id)
        )
        found: int | None = (await self._conn.execute(select(func.max(down.c.id)))).scalar()
        return found

    async def answer_of_run(self, user_id: str, chat_id: str, run_id: str) -> int | None:
        """The first answer message the run wrote (of the turn it opened, ``runs.turn``)."""
        statement = _of_run(user_id, chat_id, run_id).where(_m.role == "assistant").order_by(_m.id).limit(1)
        found: int | None = (await self._conn.execute(statement)).scalar()
        return found

    async def last_of_run(self, user_id: str, chat_id: str, run_id: str) -> int | None:
        statement = _of_run(user_id, chat_id, run_id).order_by(_m.id.desc()).limit(1)
        found: int | None = (await self._conn.execute(statement)).scalar()
        return found

    async def _require_chat(self, user_id: str, chat_id: str) -> None:
        # Messages carry the owner id; refusing foreign chats keeps one user's rows out of another's chat.
        owned = await self._conn.execute(_OWNED_CHAT, {"p_user_id": user_id, "p_chat_id": chat_id})
        if owned.first() is None:
            raise NotFound(f"chat {chat_id!r} not found")


def _of_run(user_id: str, chat_id: str, run_id: str) -> Select[Any]:
    """The ids of the messages of the turn run ``run_id`` opened (``runs.turn``)."""
    r = runs.c
    return (
        select(_m.id)
        .join_from(chat_messages, runs, (r.user_id == _m.user_id) & (r.chat_id == _m.chat_id))
        .where(r.id == run_id, r.user_id == user_id, r.chat_id == chat_id, _m.turn == r.turn)
    )
