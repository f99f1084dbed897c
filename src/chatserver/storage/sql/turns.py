"""A chat turn's writes on PostgreSQL: one round trip each, through the functions of migrations 0004-0007.

Opening a turn claims it, stores the user's message and reads the window in one statement
(data-modifying CTEs: the window's snapshot predates the insert, and reads earlier turns only).
Closing it stores the answer and the audit event in another. Each function sets the row-level
security context itself and is atomic, so called first in a unit of work, which begins its
transaction with its first SQLAlchemy statement, it needs no BEGIN, context statement or COMMIT:
one round trip instead of 6 and 5. Called later in a unit of work, it joins its transaction.

Both go to the driver directly: they run on every turn, and SQLAlchemy's execution machinery costs
several times the driver's own work for them. Their errors are classified by the unit of work like
any other (SQLSTATE and the driver's exceptions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from chatserver.domain import Chat, ConfigVersions, Message, NewEvent, NewMessage, Run, RunOutcome
from chatserver.domain.usage import ModelUsage
from chatserver.storage.protocols import ClaimedTurn, ClosedRun, HandOn, StartedRun
from chatserver.storage.sql.agents import SqlAgentRepository
from chatserver.storage.sql.chats import SqlChatRepository, fit_title
from chatserver.storage.sql.events import SqlEventRepository
from chatserver.storage.sql.messages import (
    MAX_MESSAGES_PER_TURN,
    SqlMessageRepository,
    stored_tool_calls,
    tool_calls_of,
)
from chatserver.storage.sql.runs import USER_STARTS_SPACE, SqlRunRepository, user_key
from chatserver.storage.sql.usage import SqlUsageRepository
from chatserver.storage.turns import ComposedTurnRepository

_OPEN = "SELECT * FROM chatserver_open_turn($1, $2, $3, $4, $5, $6, $7, $8, $9)"
"""One row per window message, newest first, or one row with no message when the window is empty;
one row with no message and the chat unclaimed when the chat belongs to another agent; no row when
the caller owns no such chat. Each claimed row ends with the agent's and the caller's customizations'
version stamps (migration 0006), the message's parent and the message the window ends at (0009:
the window walks the turn's branch, placed by the run's ``edit_of`` / ``regenerate``)."""

_CLOSE = (
    "SELECT * FROM chatserver_end_metered_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
    " $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)"
)
"""Ends the run (fenced by its lease holder), then stores the answer's messages in order (ids
ascending) and the event, then starts the chat's next queued run (migration 0007), and stores the
run's usage ledger rows (migration 0008); one row:
``written`` 0 (nothing written) when the run is no longer this replica's, and the started run's
columns (``next_*``, null when none started)."""


_START = "SELECT * FROM chatserver_start_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"

DIRECT_STATEMENTS = {
    _OPEN: "chatserver_open_turn",
    _CLOSE: "chatserver_end_metered_run",
    _START: "chatserver_start_run",
}
"""The statements sent past SQLAlchemy, by the function each calls (tracing names their spans so)."""


class PostgresTurnRepository:
    """Implements ``storage.protocols.TurnRepository`` on the unit of work's asyncpg connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def start(
        self, run: Run, *, policy: str, owner: str, lease_until: datetime, max_active: int | None = None
    ) -> StartedRun:
        driver = await self._driver()
        row = await driver.fetchrow(
            _START,
            run.id,
            run.user_id,
            run.chat_id,
            run.agent_name,
            run.message,
            run.created_at,
            run.idempotency_key,
            run.request_hash,
            policy,
            owner,
            lease_until,
            max_active,
            USER_STARTS_SPACE,
            user_key(run.user_id),
        )
        outcome, claimed, running, chat_agent = row
        return StartedRun(outcome, claimed=claimed, running=running, chat_agent=chat_agent)

    async def open(
        self,
        user_id: str,
        chat_id: str,
        agent_name: str,
        message: str,
        *,
        title: str,
        now: datetime,
        window_turns: int,
        run_id: str | None = None,
    ) -> ClaimedTurn | None:
        turns = max(window_turns, 0)
        driver = await self._driver()
        limit = turns * MAX_MESSAGES_PER_TURN
        args = (chat_id, user_id, agent_name, fit_title(title), now, message, turns, limit, run_id)
        rows = await driver.fetch(_OPEN, *args)
        if not rows:
            return None
        owner_agent, chat_title, turn_count, created_at, updated_at = rows[0][:5]
        chat = Chat(chat_id, user_id, owner_agent, chat_title, turn_count, created_at, updated_at)
        window = [_message(chat_id, row) for row in reversed(rows) if row[5] is not None]
        agent_version, customizations_version = rows[0][13:15]
        versions = (
            None if agent_version is None else ConfigVersions(agent_version, customizations_version or "")
        )
        return ClaimedTurn(chat, window, versions, window_from=rows[0][16])

    async def resume(
        self,
        user_id: str,
        chat_id: str,
        agent_name: str,
        opening: Sequence[NewMessage],
        *,
        now: datetime,
        window_turns: int,
    ) -> ClaimedTurn | None:
        """Rare (a client tool's result), so in plain statements: no function of its own."""
        composed = ComposedTurnRepository(
            SqlChatRepository(self._conn),
            SqlMessageRepository(self._conn),
            SqlEventRepository(self._conn),
            SqlRunRepository(self._conn),
            SqlAgentRepository(self._conn),
            SqlUsageRepository(self._conn),
        )
        return await composed.resume(
            user_id, chat_id, agent_name, opening, now=now, window_turns=window_turns
        )

    async def close(
        self,
        user_id: str,
        chat_id: str | None,
        turn: int,
        messages: Sequence[NewMessage],
        event: NewEvent,
        *,
        now: datetime,
        outcome: RunOutcome,
        hand_on: HandOn | None = None,
    ) -> ClosedRun:
        driver = await self._driver()
        usage, error = outcome.usage, outcome.error
        row = await driver.fetchrow(
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
            [m.incomplete or None for m in messages],
            event.type,
            event.user_id,
            event.agent_name,
            event.chat_id,
            json.dumps(event.data),
            outcome.run_id,
            outcome.owner,
            outcome.status,
            outcome.model,
            usage.input_tokens,
            usage.output_tokens,
            usage.requests,
            error.code if error else None,
            error.detail if error else None,
            None if outcome.result is None else json.dumps(outcome.result, default=str),
            hand_on.chat_id if hand_on else None,
            hand_on.lease_until if hand_on else None,
            _usage_json(outcome.usage_by_model),
        )
        written, next_id = bool(row["written"]), row["next_id"]
        if next_id is None or hand_on is None:
            return ClosedRun(written)
        started = Run(
            next_id,
            user_id,
            hand_on.chat_id,
            row["next_agent_name"],
            "running",
            row["next_message"],
            row["next_created_at"],
            started_at=now,
            idempotency_key=row["next_idempotency_key"],
            request_hash=row["next_request_hash"],
            steers=row["next_steers"],
        )
        return ClosedRun(written, started)

    async def _driver(self) -> Any:
        return (await self._conn.get_raw_connection()).driver_connection


def _tool_calls_json(message: NewMessage) -> str | None:
    calls = stored_tool_calls(message)
    return None if calls is None else json.dumps(calls)


def _message(chat_id: str, row: Sequence[Any]) -> Message:
    message_id, turn, role, content, calls, tool_call_id, tool_name, created_at = row[5:13]
    if isinstance(calls, str):  # jsonb arrives as text unless a codec decodes it
        calls = json.loads(calls)
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
        parent_id=row[15],
    )


def _usage_json(rows: Sequence[ModelUsage]) -> str | None:
    if not rows:
        return None
    return json.dumps([asdict(row) for row in rows])
