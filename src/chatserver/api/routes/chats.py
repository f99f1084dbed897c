"""The caller's chats and their messages, keyset-paged."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.schemas import CHAT_ID_PATTERN, ChatOut, ChatPage, MessageOut, MessagePage
from chatserver.domain import Chat
from chatserver.errors import InvalidInput
from chatserver.untrusted import ascii_int

router = APIRouter(prefix="/api/chats", tags=["chats"])

Limit = Annotated[int, Query(ge=1, le=200)]
ChatId = Annotated[str, Path(pattern=CHAT_ID_PATTERN)]


def encode_chat_cursor(chat: Chat) -> str:
    raw = f"{chat.updated_at.isoformat()}|{chat.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_chat_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, chat_id = raw.split("|", 1)
        updated_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidInput("invalid cursor", field="before") from error
    # A naive time cannot be compared with the stored (aware) ones; we never issue one.
    if updated_at.tzinfo is None or not re.fullmatch(CHAT_ID_PATTERN, chat_id):
        raise InvalidInput("invalid cursor", field="before")
    return updated_at, chat_id


def decode_message_cursor(cursor: str) -> int:
    number = ascii_int(cursor, max_digits=18)
    if number is None:
        raise InvalidInput("invalid cursor", field="before")
    return number


@router.get("", response_model=ChatPage)
async def list_chats(
    principal: CurrentUser, container: ContainerDep, limit: Limit = 50, before: str | None = None
) -> ChatPage:
    cursor = decode_chat_cursor(before) if before else None
    chats = await container.chats.list_chats(principal.user_id, limit=limit, before=cursor)
    next_before = encode_chat_cursor(chats[-1]) if len(chats) == limit else None
    return ChatPage(items=[ChatOut.of(chat) for chat in chats], next_before=next_before)


@router.get("/{chat_id}/messages", response_model=MessagePage)
async def list_messages(
    chat_id: ChatId,
    principal: CurrentUser,
    container: ContainerDep,
    limit: Limit = 50,
    before: str | None = None,
) -> MessagePage:
    cursor = decode_message_cursor(before) if before else None
    messages = await container.chats.list_messages(principal.user_id, chat_id, limit=limit, before=cursor)
    next_before = str(messages[0].id) if len(messages) == limit else None
    return MessagePage(items=[MessageOut.of(m) for m in messages], next_before=next_before)


@router.delete("/{chat_id}", status_code=204, response_class=Response)
async def delete_chat(chat_id: ChatId, principal: CurrentUser, container: ContainerDep) -> Response:
    await container.chats.delete_chat(principal.user_id, chat_id)
    return Response(status_code=204)
