"""The caller's chats and their messages: keyset-paged, searched, managed, exported."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from chatserver.api.chat_schemas import BranchIn, ChatPatch
from chatserver.api.cursors import decode_id_cursor, decode_stamp_cursor, encode_stamp_cursor
from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.schemas import (
    CHAT_ID_PATTERN,
    BranchOut,
    ChatOut,
    ChatPage,
    MessageOut,
    MessagePage,
    MessageRunOut,
)
from chatserver.domain.chats import BranchMessage, ChatFilters
from chatserver.services.chat_export import as_json, as_markdown

router = APIRouter(prefix="/api/chats", tags=["chats"])

Limit = Annotated[int, Query(ge=1, le=200)]
ChatId = Annotated[str, Path(pattern=CHAT_ID_PATTERN)]
SearchText = Annotated[str | None, Query(max_length=200, description="Words to find in titles and messages")]


@router.get("", response_model=ChatPage)
async def list_chats(
    principal: CurrentUser,
    container: ContainerDep,
    limit: Limit = 50,
    before: str | None = None,
    q: SearchText = None,
    pinned: bool | None = None,
    archived: bool | None = None,
) -> ChatPage:
    filters = ChatFilters(pinned=pinned, archived=archived)
    if q is not None and q.strip():
        hits = await container.chats.search(principal.user_id, q, filters)
        return ChatPage(items=[ChatOut.of(hit.chat, hit.snippet) for hit in hits], next_before=None)
    cursor = decode_stamp_cursor(before) if before else None
    chats = await container.chats.list_chats(principal.user_id, limit=limit, before=cursor, filters=filters)
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
    next_before = str(messages[0].message.id) if len(messages) == limit else None
    return MessagePage(items=[_placed(m) for m in messages], next_before=next_before)


@router.patch("/{chat_id}", response_model=ChatOut)
async def change_chat(
    chat_id: ChatId, body: ChatPatch, principal: CurrentUser, container: ContainerDep
) -> ChatOut:
    return ChatOut.of(await container.chats.change(principal.user_id, chat_id, body.change()))


@router.put("/{chat_id}/branch", status_code=204, response_class=Response)
async def switch_branch(
    chat_id: ChatId, body: BranchIn, principal: CurrentUser, container: ContainerDep
) -> Response:
    await container.chats.switch_branch(principal.user_id, chat_id, body.message_id)
    return Response(status_code=204)


@router.get("/{chat_id}/export")
async def export_chat(
    chat_id: ChatId,
    principal: CurrentUser,
    container: ContainerDep,
    format: Literal["markdown", "json"] = "markdown",
) -> Response:
    chat, messages = await container.chats.active_branch(principal.user_id, chat_id)
    disposition = {
        "content-disposition": f'attachment; filename="chat.{"md" if format == "markdown" else "json"}"'
    }
    if format == "json":
        body = json.dumps(as_json(chat, messages), ensure_ascii=False, indent=2)
        return Response(body, media_type="application/json", headers=disposition)
    return Response(
        as_markdown(chat, messages), media_type="text/markdown; charset=utf-8", headers=disposition
    )


@router.delete("/{chat_id}", status_code=204, response_class=Response)
async def delete_chat(chat_id: ChatId, principal: CurrentUser, container: ContainerDep) -> Response:
    await container.chats.delete_chat(principal.user_id, chat_id)
    return Response(status_code=204)


def _placed(placed: BranchMessage) -> MessageOut:
    branch = placed.branch
    out = MessageOut.of(placed.message)
    out.branch = BranchOut(index=branch.index, count=branch.count, siblings=list(branch.siblings))
    out.run = MessageRunOut.of(placed.run) if placed.run else None
    return out
