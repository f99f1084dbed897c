"""A user's own data as a whole: who they are, and everything of theirs as one JSON document.

The export is written incrementally from keyset-paged reads, so its memory is bounded by a page
whatever the user holds. Each page is read in its own unit of work: on SQLite the units of work of
a process take turns, and one held open for a long download would stall every other request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from chatserver.clock import Clock
from chatserver.domain import User
from chatserver.errors import NotFound
from chatserver.storage.protocols import EXPORT_SECTIONS, UnitOfWorkFactory

PAGE_ROWS = 500
CHUNK_CHARS = 64 * 1024
"""Parts are sent in chunks of about this size: one per record would cost a write each."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class UserDataService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, *, page_rows: int = PAGE_ROWS) -> None:
        self._uow = uow
        self._clock = clock
        self._page_rows = page_rows

    async def me(self, user_id: str) -> User:
        async with self._uow(user_id=user_id) as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise NotFound(f"user '{user_id}' not found")
        return user

    async def export(self, user_id: str) -> AsyncIterator[bytes]:
        """The caller's export, as UTF-8 chunks; ``NotFound`` before the first chunk when no such user."""
        user = await self.me(user_id)
        return _chunked(self._document(user))

    async def _document(self, user: User) -> AsyncIterator[str]:
        yield _dumps(
            {
                "exported_at": self._clock.now().isoformat(),
                "user": {
                    "id": user.id,
                    "name": user.name,
                    "is_admin": user.is_admin,
                    "created_at": user.created_at.isoformat(),
                },
            }
        )[:-1]
        yield ',"chats":['
        first = True
        async for chat in self._rows(user.id, "chats"):
            # The chat's fields, then its messages as its last field.
            yield ("" if first else ",") + _dumps(chat)[:-1] + ',"messages":'
            async for part in self._array(user.id, "messages", chat_id=chat["id"]):
                yield part
            yield "}"
            first = False
        yield "]"
        for section in EXPORT_SECTIONS:
            if section not in ("chats", "messages"):
                yield f',"{section}":'
                async for part in self._array(user.id, section):
                    yield part
        yield "}"

    async def _array(self, user_id: str, section: str, *, chat_id: str | None = None) -> AsyncIterator[str]:
        yield "["
        first = True
        async for row in self._rows(user_id, section, chat_id=chat_id):
            yield ("" if first else ",") + _dumps(row)
            first = False
        yield "]"

    async def _rows(
        self, user_id: str, section: str, *, chat_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        after: Any | None = None
        while True:
            async with self._uow(user_id=user_id) as uow:
                page = await uow.user_data.export_page(
                    user_id, section, after=after, limit=self._page_rows, chat_id=chat_id
                )
            for row in page:
                yield row
            if len(page) < self._page_rows:
                return
            after = page[-1]["id"]


async def _chunked(parts: AsyncIterator[str]) -> AsyncIterator[bytes]:
    buffer: list[str] = []
    size = 0
    async for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= CHUNK_CHARS:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()
