"""Reading and deleting the caller's chats and their messages."""

from __future__ import annotations

from datetime import datetime

from chatserver.domain import Chat, Message
from chatserver.errors import NotFound
from chatserver.storage.protocols import UnitOfWorkFactory


class ChatHistoryService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def list_chats(
        self, user_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> list[Chat]:
        async with self._uow(user_id=user_id) as uow:
            return await uow.chats.list(user_id, limit=limit, before=before)

    async def list_messages(
        self, user_id: str, chat_id: str, *, limit: int, before: int | None
    ) -> list[Message]:
        async with self._uow(user_id=user_id) as uow:
            if await uow.chats.get(user_id, chat_id) is None:
                raise NotFound(f"chat '{chat_id}' not found")
            return await uow.messages.page(user_id, chat_id, limit=limit, before=before)

    async def delete_chat(self, user_id: str, chat_id: str) -> None:
        async with self._uow(user_id=user_id) as uow:
            if not await uow.chats.delete(user_id, chat_id):
                raise NotFound(f"chat '{chat_id}' not found")
            await uow.commit()
