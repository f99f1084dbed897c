"""Managing chats: their flags, search over them, and where a message stands among its siblings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chatserver.domain.models import Chat, Message
from chatserver.domain.runs import Run


@dataclass(frozen=True, slots=True)
class ChatFilters:
    """None: either."""

    pinned: bool | None = None
    archived: bool | None = None


ANY_CHAT = ChatFilters()


@dataclass(frozen=True, slots=True)
class ChatChange:
    """What ``PATCH /api/chats/{id}`` sets; None: unchanged."""

    title: str | None = None
    pinned: bool | None = None
    archived: bool | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    chat: Chat
    snippet: str
    """Text around the match (the newest matching message's, or the title)."""
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    """A message's place among its siblings (the messages following the same parent)."""

    index: int
    """1-based, oldest first."""
    count: int
    siblings: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TurnRun:
    """A run of a chat with the turn it opened (None: stored before runs knew theirs)."""

    turn: int | None
    run: Run


UNANSWERED = frozenset({"cancelled", "failed", "interrupted"})
"""How a run can end that leaves its user message without an answer to show."""


@dataclass(frozen=True, slots=True)
class BranchMessage:
    message: Message
    branch: Branch
    run: Run | None = None
    """An answer's: the run that wrote it. A user message's with no answer after it: the run that
    ended so (its newest, a regeneration's included), when it ended cancelled, failed or interrupted."""


def runs_of(
    messages: Sequence[Message], runs: Sequence[TurnRun], follower: Message | None
) -> list[Run | None]:
    """For each of ``messages`` (a stretch of a branch, oldest first, that ``follower`` follows, None:
    the branch ends there), the run ``BranchMessage.run`` names."""
    by_turn = {turn_run.turn: turn_run.run for turn_run in runs if turn_run.turn is not None}
    found: list[Run | None] = []
    for at, message in enumerate(messages):
        if message.role != "user":
            found.append(by_turn.get(message.turn) if message.role == "assistant" else None)
            continue
        after = messages[at + 1] if at + 1 < len(messages) else follower
        found.append(None if after is not None and after.role != "user" else _left_unanswered(message, runs))
    return found


def _left_unanswered(asked: Message, runs: Sequence[TurnRun]) -> Run | None:
    tried = [r.run for r in runs if r.turn == asked.turn or r.run.regenerate == asked.id]
    newest = max(tried, key=lambda run: (run.created_at, run.id), default=None)
    return newest if newest is not None and newest.status in UNANSWERED else None
