"""``TurnRepository`` from the other repositories, one statement each: SQLite and the in-memory fakes.

PostgreSQL has its own (``storage.sql.turns``), which does each transaction in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from chatserver.domain import Chat, NewEvent, NewMessage, Run, RunOutcome
from chatserver.storage.metering import UsageRepository
from chatserver.storage.protocols import (
    AgentRepository,
    ChatRepository,
    ClaimedTurn,
    ClosedRun,
    EventRepository,
    HandOn,
    MessageRepository,
    RunRepository,
    StartedRun,
)


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a turn goes in its chat's tree (``Run.edit_of``, ``Run.regenerate``)."""

    edit_of: int | None = None
    regenerate: int | None = None


class ComposedTurnRepository:
    """Implements ``storage.protocols.TurnRepository``."""

    def __init__(
        self,
        chats: ChatRepository,
        messages: MessageRepository,
        events: EventRepository,
        runs: RunRepository,
        agents: AgentRepository,
        usage: UsageRepository,
    ) -> None:
        self._agents = agents
        self._usage = usage
        self._chats = chats
        self._messages = messages
        self._events = events
        self._runs = runs

    async def start(
        self, run: Run, *, policy: str, owner: str, lease_until: datetime, max_active: int | None = None
    ) -> StartedRun:
        assert run.chat_id is not None
        if max_active is not None and await self._runs.count_active(run.user_id) >= max_active:
            return StartedRun("too_many")
        now = run.created_at
        await self._chats.create_if_absent(Chat(run.chat_id, run.user_id, run.agent_name, None, 0, now, now))
        chat = await self._chats.get(run.user_id, run.chat_id)
        if chat is None:
            return StartedRun("not_found")
        if chat.agent_name != run.agent_name:
            return StartedRun("other_agent", chat_agent=chat.agent_name)
        active = await self._runs.active(run.user_id, run.chat_id)
        if active and policy == "reject":
            return StartedRun("busy")
        running = next((r.id for r in active if r.status == "running"), None)
        if not await self._runs.add(replace(run, steers=running if policy == "steer" else None)):
            return StartedRun("key_taken")
        if running is not None and policy == "interrupt":
            await self._runs.request_cancel(run.user_id, running)
        claimed = await self._runs.claim_next(
            run.user_id, run.chat_id, owner=owner, now=now, lease_until=lease_until
        )
        return StartedRun("accepted", claimed=claimed.id if claimed else None, running=running)

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
        """Claims before it knows the chat's agent: of another agent, the caller's error rolls it back."""
        run = None if run_id is None else await self._runs.get(user_id, run_id)
        edit_of, regenerate = (run.edit_of, run.regenerate) if run else (None, None)
        opening = [] if regenerate is not None else [NewMessage("user", message)]
        place = _Place(edit_of, regenerate)
        return await self._open(user_id, chat_id, agent_name, opening, title, now, window_turns, place)

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
        title = next((message.content for message in opening if message.role == "user"), "")
        return await self._open(user_id, chat_id, agent_name, opening, title, now, window_turns)

    async def _open(
        self,
        user_id: str,
        chat_id: str,
        agent_name: str,
        opening: Sequence[NewMessage],
        title: str,
        now: datetime,
        window_turns: int,
        place: _Place | None = None,
    ) -> ClaimedTurn | None:
        chat = await self._chats.claim_turn(user_id, chat_id, title=title, now=now)
        if chat is None:
            return None
        if chat.agent_name != agent_name:
            return ClaimedTurn(chat, [])
        anchor, window_from = await self._anchor(chat, place or _Place())
        if anchor != chat.active_message_id:
            await self._chats.set_active(user_id, chat_id, anchor)
        turn = chat.turn_count
        if opening:
            await self._messages.add(user_id, chat_id, turn, opening, now=now)
        window = await self._messages.window(user_id, chat_id, from_id=window_from, turns=window_turns)
        versions = await self._agents.versions(agent_name, user_id)
        return ClaimedTurn(chat, window, versions, window_from=window_from)

    async def _anchor(self, chat: Chat, place: _Place) -> tuple[int | None, int | None]:
        """The message the turn's first message follows, and the one its window ends at."""
        named = place.regenerate if place.regenerate is not None else place.edit_of
        if named is None:
            return chat.active_message_id, chat.active_message_id
        message = await self._messages.get(chat.user_id, chat.id, named)
        parent = message.parent_id if message else None
        if place.regenerate is not None:
            return place.regenerate, parent
        return parent, parent

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
        if not await self._runs.finish(user_id, outcome, now=now):
            return ClosedRun(written=False)
        rows = outcome.usage_by_model
        await self._usage.add(user_id, event.agent_name or "", outcome.run_id, rows, now=now)
        if chat_id is not None and messages:
            await self._messages.add(user_id, chat_id, turn, messages, now=now)
        await self._events.add(event, now=now)
        if hand_on is None:
            return ClosedRun(written=True)
        started = await self._runs.claim_next(
            user_id, hand_on.chat_id, owner=outcome.owner, now=now, lease_until=hand_on.lease_until
        )
        return ClosedRun(written=True, started=started)
