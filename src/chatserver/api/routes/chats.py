"""The caller's chats and their messages, keyset-paged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from chatserver.api.cursors import decode_id_cursor, decode_stamp_cursor, encode_stamp_cursor
from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.schemas import CHAT_ID_PATTERN, ChatOut, ChatPage, MessageOut, MessagePage

router = APIRouter(prefix="/api/chats", tags=["chats"])

Limit = Annotated[int, Query(ge=1, le=200)]
ChatId = Annotated[str, Path(pattern=CHAT_ID_PATTERN)]


@router.get("", response_model=ChatPage)
async def list_chats(
    principal: CurrentUser, container: ContainerDep, limit: Limit = 50, before: str | None = None
) -> ChatPage:
    cursor = decode_stamp_cursor(before) if before else None
    chats = await container.chats.list_chats(principal.user_id, limit=limit, before=cursor)
    next_before = encode_stamp_cursor(chats[-1].updated_at, chats[-1].id) if len(chats) == limit else None
    return ChatPage(items=[ChatOut.of(chat) for chat in chats], next_before=next_before)


@router.get("/{chat_id}/messages", response_model=MessagePage)
async def list_messages(
    chat_id: ChatId,
    principal: CurrentUser,
    container: ContainerDep,
    limit: Limit = 50,
    before: str | None = None,
) -> MessagePage:
    cursor = decode_id_cursor(before) if before else None
    messages = await container.chats.list_messages(principal.user_id, chat_id, limit=limit, before=cursor)
    next_before = str(messages[0].id) if len(messages) == limit else None
    return MessagePage(items=[MessageOut.of(m) for m in messages], next_before=next_before)


@router.delete("/{chat_id}", status_code=204, response_class=Response)
async def delete_chat(chat_id: ChatId, principal: CurrentUser, container: ContainerDep) -> Response:
    await container.chats.delete_chat(principal.user_id, chat_id)
    return Response(status_code=204)
