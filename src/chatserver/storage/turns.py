"""``TurnRepository`` from the other repositories, one statement each: SQLite and the in-memory fakes.

PostgreSQL has its own (``storage.sql.turns``), which does each transaction in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from chatserver.domain import NewEvent, NewMessage, RunOutcome
from chatserver.storage.protocols import (
    ChatRepository,
    ClaimedTurn,
    EventRepository,
    MessageRepository,
    RunRepository,
)


class ComposedTurnRepository:
    """Implements ``storage.protocols.TurnRepository``."""

    def __init__(
        self,
        chats: ChatRepository,
        messages: MessageRepository,
        events: EventRepository,
        runs: RunRepository,
    ) -> None:
        self._chats = chats
        self._messages = messages
        self._events = events
        self._runs = runs

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
    ) -> ClaimedTurn | None:
        """Claims before it knows the chat's agent: of another agent, the caller's error rolls it back."""
        chat = await self._chats.claim_turn(user_id, chat_id, title=title, now=now)
        if chat is None:
            return None
        if chat.agent_name != agent_name:
            return ClaimedTurn(chat, [])
        turn = chat.turn_count
        await self._messages.add(user_id, chat_id, turn, [NewMessage("user", message)], now=now)
        window = await self._messages.window(user_id, chat_id, before_turn=turn, turns=window_turns)
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
        outcome: RunOutcome,
    ) -> bool:
        if not await self._runs.finish(user_id, outcome, now=now):
            return False
        if chat_id is not None and messages:
            await self._messages.add(user_id, chat_id, turn, messages, now=now)
        await self._events.add(event, now=now)
        return True
