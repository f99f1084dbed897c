"""Figures an operator watches that live in the database (read at scrape time)."""

from __future__ import annotations

from chatserver.storage.protocols import UnitOfWorkFactory


class OperationsService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def active_sessions(self) -> int:
        """Active session instances of every user, on every replica."""
        async with self._uow() as uow:
            return await uow.sessions.count_active()
