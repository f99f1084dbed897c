"""The audit log, read: the admin listing, and the oldest-first feed the Redis publisher consumes.

Events are written by the use cases themselves, in the transaction of the change they record.
"""

from __future__ import annotations

import builtins

from chatserver.domain import AuditEvent
from chatserver.errors import InvalidInput
from chatserver.storage.protocols import UnitOfWorkFactory

MAX_TYPE_CHARS = 64
MAX_USER_CHARS = 255


class AuditEventService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def list(
        self,
        *,
        type: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> list[AuditEvent]:
        """Newest first, optionally of one type and one user; ``before`` is an event id cursor."""
        if type is not None and not 0 < len(type) <= MAX_TYPE_CHARS:
            raise InvalidInput(f"must be 1-{MAX_TYPE_CHARS} characters", field="type")
        if user_id is not None and not 0 < len(user_id) <= MAX_USER_CHARS:
            raise InvalidInput(f"must be 1-{MAX_USER_CHARS} characters", field="user_id")
        async with self._uow() as uow:
            return await uow.events.list(type=type, user_id=user_id, limit=limit, before=before)

    async def after(self, event_id: int, *, limit: int) -> builtins.list[AuditEvent]:
        """Events with an id above ``event_id``, oldest first (what a feed has not seen yet)."""
        async with self._uow() as uow:
            return await uow.events.list_after(event_id, limit=limit)
