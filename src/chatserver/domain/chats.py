"""Managing chats: their flags, search over them, and where a message stands among its siblings."""

from __future__ import annotations

from dataclasses import dataclass

from chatserver.domain.models import Chat, Message


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
class BranchMessage:
    message: Message
    branch: Branch
