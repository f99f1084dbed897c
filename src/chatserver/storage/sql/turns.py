"""A chat turn's two transactions on PostgreSQL, one statement each.

Opening a turn claims it, stores the user's message and reads the window in one statement
(data-modifying CTEs: the window's snapshot predates the insert, and reads earlier turns only).
Closing it stores the answer and the audit event in another. With the unit of work's BEGIN, the
row-level security context and COMMIT, that is 4 round trips per transaction instead of 6 and 5.

Both go to the driver directly, inside the unit of work's transaction: they run on every turn,
and SQLAlchemy's execution machinery costs several times the driver's own work for them. Their
errors are classified by the unit of work like any other (SQLSTATE and the driver's exceptions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import Chat, Message, NewEvent, NewMessage, ToolCall
from chatserver.errors import NotFound
from chatserver.storage.protocols import ClaimedTurn, EventRepository
from chatserver.storage.sql.chats import fit_title
from chatserver.storage.sql.messages import MAX_MESSAGES_PER_TURN

_OPEN = """
WITH claimed AS (
    UPDATE chats
    SET turn_count = turn_count + 1, title = coalesce(title, $3), updated_at = $4
    WHERE id = $1 AND user_id = $2
    RETURNING agent_name, title, turn_count, created_at, updated_at, turn_count - $6 AS first_turn
), added AS (
    INSERT INTO chat_messages (chat_id, user_id, turn, role, content, created_at)
    SELECT $1, $2, turn_count, 'user', $5, $4 FROM claimed
)
SELECT c.agent_name, c.title, c.turn_count, c.created_at, c.updated_at,
       w.id, w.turn, w.role, w.content, w.tool_calls, w.tool_call_id, w.tool_name, w.created_at
FROM claimed AS c
LEFT JOIN LATERAL (
    SELECT m.id, m.turn, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name, m.created_at
    FROM chat_messages AS m
    WHERE m.chat_id = $1 AND m.user_id = $2 AND m.turn >= c.first_turn AND m.turn < c.turn_count
    ORDER BY m.turn DESC, m.id DESC
    LIMIT $7
) AS w ON true
"""
"""One row per window message, newest first (the index is scanned backwards), or one row with no
message when the window is empty; no row when the caller owns no such chat.

The window's first turn is computed in the CTE: under row-level security PostgreSQL may not use a
condition holding an arithmetic expression as an index bound (the expression could raise, and the
policy must be checked first), and the scan would then walk the chat's whole history."""

_CLOSE = """
WITH owned AS (
    SELECT id FROM chats WHERE id = $1 AND user_id = $2
), added AS (
    INSERT INTO chat_messages
        (chat_id, user_id, turn, role, content, tool_calls, tool_call_id, tool_name, created_at)
    SELECT owned.id, $2, $3, m.role, m.content, m.tool_calls, m.tool_call_id, m.tool_name, $4
    FROM owned,
         unnest($5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[]) WITH ORDINALITY
             AS m(role, content, tool_calls, tool_call_id, tool_name, position)
    ORDER BY m.position
), event AS (
    INSERT INTO audit_events (type, user_id, agent_name, chat_id, data, created_at)
    SELECT $10, $11, $12, $13, $14::jsonb, $4 FROM owned
)
SELECT count(*) FROM owned
"""
"""The answer's messages in order (ids ascending) and the event, or nothing when the chat is gone."""


class PostgresTurnRepository:
    """Implements ``storage.protocols.TurnRepository`` on an asyncpg connection in a transaction."""

    def __init__(self, conn: AsyncConnection, events: EventRepository) -> None:
        self._conn = conn
        self._events = events

    async def open(
        self, user_id: str, chat_id: str, message: str, *, title: str, now: datetime, window_turns: int
    ) -> ClaimedTurn | None:
        turns = max(window_turns, 0)
        driver = await self._driver()
        rows = await driver.fetch(
            _OPEN, chat_id, user_id, fit_title(title), now, message, turns, turns * MAX_MESSAGES_PER_TURN
        )
        if not rows:
            return None
        agent_name, chat_title, turn_count, created_at, updated_at = rows[0][:5]
        chat = Chat(chat_id, user_id, agent_name, chat_title, turn_count, created_at, updated_at)
        window = [_message(chat_id, row) for row in reversed(rows) if row[5] is not None]
        return ClaimedTurn(chat, window)

    async def close(
        self,
        user_id: str,
        chat_id: str | None,
        turn: int,
        messages: Sequence[NewMessage],
        event: NewEvent,
        *,
        now: datetime,
    ) -> None:
        if chat_id is None:
            await self._events.add(event, now=now)
            return
        driver = await self._driver()
        owned = await driver.fetchval(
            _CLOSE,
            chat_id,
            user_id,
            turn,
            now,
            [m.role for m in messages],
            [m.content for m in messages],
            [_tool_calls_json(m) for m in messages],
            [m.tool_call_id for m in messages],
            [m.tool_name for m in messages],
            event.type,
            event.user_id,
            event.agent_name,
            event.chat_id,
            json.dumps(event.data),
        )
        if not owned:
            raise NotFound(f"chat {chat_id!r} not found")

    async def _driver(self) -> Any:
        return (await self._conn.get_raw_connection()).driver_connection


def _tool_calls_json(message: NewMessage) -> str | None:
    if not message.tool_calls:
        return None
    return json.dumps([{"id": c.id, "name": c.name, "args": c.args} for c in message.tool_calls])


def _message(chat_id: str, row: Sequence[Any]) -> Message:
    message_id, turn, role, content, calls, tool_call_id, tool_name, created_at = row[5:]
    if isinstance(calls, str):  # jsonb arrives as text unless a codec decodes it
        calls = json.loads(calls)
    return Message(
        id=message_id,
        chat_id=chat_id,
        turn=turn,
        role=role,
        content=content,
        created_at=created_at,
        tool_calls=tuple(ToolCall(c["id"], c["name"], c["args"]) for c in calls) if calls else (),
        tool_call_id=tool_call_id,
        tool_name=tool_name,
    )
