"""MemoryService: long-term notes an agent keeps per user (tools ``remember`` / ``recall_memories``).

Notes belong to one (user, agent) pair. The tools act for the user of the run (``TurnDeps``), the
HTTP routes for the caller: nobody reads or erases another user's notes (and on PostgreSQL,
row-level security enforces it too).

Recall is a plain keyword search, documented as such: the query is split on whitespace into at
most ``MAX_KEYWORDS`` lower-cased keywords; a note matches when it contains any of them as a
substring, case-insensitively (on SQLite only ASCII letters fold case). No keywords lists the
newest notes. Results are newest first, at most ``RECALL_LIMIT``. The memories page's search
(``GET /api/memories?q=``) is the same match, but a note must contain every keyword.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatserver.clock import Clock
from chatserver.domain import Memory, NewEvent
from chatserver.errors import InvalidInput, NotFound
from chatserver.services.prompt_customization import PromptCustomizationService
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

MAX_NOTE_CHARS = 2000
MAX_NOTES_PER_AGENT = 1000
MAX_KEYWORDS = 8
MAX_KEYWORD_CHARS = 64
RECALL_LIMIT = 20
LIST_LIMIT_MAX = MAX_NOTES_PER_AGENT


def keywords_of(query: str) -> list[str]:
    """The search keywords of a recall query: distinct lower-cased words, in order, bounded."""
    words = dict.fromkeys(word.lower()[:MAX_KEYWORD_CHARS] for word in query.split())
    return list(words)[:MAX_KEYWORDS]


class MemoryService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def remember(self, user_id: str, agent_name: str, note: str) -> str:
        """The ``remember`` tool. Rule violations raise ``InvalidInput`` (the tool tells the model)."""
        text = note.strip()
        if not text:
            raise InvalidInput("the note is empty", field="note")
        if len(text) > MAX_NOTE_CHARS:
            raise InvalidInput(f"the note is longer than {MAX_NOTE_CHARS} characters", field="note")
        async with self._uow(user_id=user_id) as uow:
            if await uow.memories.count(user_id, agent_name) >= MAX_NOTES_PER_AGENT:
                raise InvalidInput(
                    f"memory is full ({MAX_NOTES_PER_AGENT} notes); the user can erase notes", field="note"
                )
            memory = await uow.memories.add(user_id, agent_name, text, now=self._clock.now())
            await uow.commit()
        return f"remembered (note {memory.id})"

    async def recall(self, user_id: str, agent_name: str, query: str) -> list[str]:
        """The ``recall_memories`` tool: matching notes, newest first, at most ``RECALL_LIMIT``."""
        async with self._uow(user_id=user_id) as uow:
            found = await uow.memories.search(
                user_id, agent_name, keywords=keywords_of(query), limit=RECALL_LIMIT
            )
        return [memory.content for memory in found]

    async def list(
        self,
        user_id: str,
        agent_name: str | None,
        *,
        limit: int = LIST_LIMIT_MAX,
        before: int | None = None,
        query: str = "",
    ) -> list[Memory]:
        """The caller's notes (of one agent, or of all), newest first; older than id ``before`` if
        given; with a ``query``, those containing every one of its words (``keywords_of``)."""
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise InvalidInput(f"must be between 1 and {LIST_LIMIT_MAX}", field="limit")
        words = keywords_of(query)
        async with self._uow(user_id=user_id) as uow:
            return await uow.memories.list(
                user_id, agent_name=agent_name, limit=limit, before=before, words=words
            )

    async def erase(self, user_id: str, agent_name: str) -> int:
        """Delete every note the caller's agent keeps; how many were deleted."""
        async with self._uow(user_id=user_id) as uow:
            deleted = await uow.memories.delete_all(user_id, agent_name)
            await _audit(uow, user_id, agent_name, {"deleted": deleted}, self._clock)
            await uow.commit()
        return deleted

    async def delete(self, user_id: str, memory_id: int) -> None:
        """Delete one of the caller's notes; ``NotFound`` when absent or someone else's."""
        async with self._uow(user_id=user_id) as uow:
            memory = await uow.memories.delete(user_id, memory_id)
            if memory is None:
                raise NotFound(f"memory '{memory_id}' not found")
            await _audit(uow, user_id, memory.agent_name, {"deleted": 1, "id": memory_id}, self._clock)
            await uow.commit()


async def _audit(uow: UnitOfWork, user_id: str, agent_name: str, data: dict[str, Any], clock: Clock) -> None:
    event = NewEvent("memories.deleted", user_id=user_id, agent_name=agent_name, data=data)
    await uow.events.add(event, now=clock.now())


@dataclass(frozen=True, slots=True)
class ToolBackends:
    """Everything built-in tools may do to storage, as one ``TurnDeps.backend``.

    It is a ``ToolBackend`` (instructions) and a ``MemoryBackend`` (notes), so the chat service
    keeps passing one backend and the memory tools find theirs on it.
    """

    customizations: PromptCustomizationService
    memories: MemoryService

    async def set_instructions(self, user_id: str, agent_name: str, instructions: list[str]) -> str:
        return await self.customizations.set_instructions(user_id, agent_name, instructions)

    async def remember(self, user_id: str, agent_name: str, note: str) -> str:
        return await self.memories.remember(user_id, agent_name, note)

    async def recall(self, user_id: str, agent_name: str, query: str) -> list[str]:
        return await self.memories.recall(user_id, agent_name, query)
