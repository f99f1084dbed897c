"""Reading, managing, searching and exporting the caller's chats and their messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from chatserver.domain import Chat, Message
from chatserver.domain.chats import (
    ANY_CHAT,
    Branch,
    BranchMessage,
    ChatChange,
    ChatFilters,
    SearchHit,
    runs_of,
)
from chatserver.errors import ChatBusy, InvalidInput, NotFound
from chatserver.storage.protocols import UnitOfWork, UnitOfWorkFactory

SEARCH_LIMIT = 50
EXPORT_LIMIT = 10_000
"""The most messages of a branch an export holds."""
NEWEST_ANSWER_WITHIN = 64
"""How far back from a branch's end its newest answer is looked for (a failed turn has none)."""


class ChatHistoryService:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def list_chats(
        self,
        user_id: str,
        *,
        limit: int,
        before: tuple[datetime, str] | None,
        filters: ChatFilters = ANY_CHAT,
    ) -> list[Chat]:
        async with self._uow(user_id=user_id) as uow:
            return await uow.chats.list(user_id, limit=limit, before=before, filters=filters)

    async def search(self, user_id: str, query: str, filters: ChatFilters) -> list[SearchHit]:
        async with self._uow(user_id=user_id) as uow:
            return await uow.search.search(user_id, query, filters, limit=SEARCH_LIMIT)

    async def list_messages(
        self, user_id: str, chat_id: str, *, limit: int, before: int | None
    ) -> list[BranchMessage]:
        """The active branch's messages before ``before`` (the newest ``limit``), oldest first."""
        async with self._uow(user_id=user_id) as uow:
            chat = await _owned(uow, user_id, chat_id)
            start, older = chat.active_message_id, None
            if before is not None:
                older = await uow.messages.get(user_id, chat_id, before)
                start = older.parent_id if older else None
            messages = await uow.messages.branch(user_id, chat_id, from_id=start, limit=limit)
            placed = await _with_branches(uow, user_id, chat_id, messages)
            return await _with_runs(uow, user_id, chat_id, placed, follower=older)

    async def answer_named(self, user_id: str, chat_id: str, named: str | None) -> int:
        """The stored answer a front end names: by our message id, by the id of the run that wrote
        it (the AI SDK's id of a streamed answer), or, None, the active branch's newest answer."""
        if named is not None and named.isdigit():
            return int(named)
        async with self._uow(user_id=user_id) as uow:
            if named is not None:
                found = await uow.messages.answer_of_run(user_id, chat_id, named)
            else:
                chat = await _owned(uow, user_id, chat_id)
                leaf = chat.active_message_id
                branch = await uow.messages.branch(user_id, chat_id, from_id=leaf, limit=NEWEST_ANSWER_WITHIN)
                found = next((m.id for m in reversed(branch) if m.role == "assistant"), None)
        if found is None:
            which = f" {named!r}" if named else ""
            raise NotFound(f"no answer{which} to regenerate in chat '{chat_id}'")
        return found

    async def user_message_at(self, user_id: str, chat_id: str, earlier: Sequence[str]) -> int:
        """The stored user message a front end edits, named by its place: the one after the user
        messages whose texts are ``earlier``, which must be the active branch's first ones."""
        async with self._uow(user_id=user_id) as uow:
            chat = await _owned(uow, user_id, chat_id)
            branch = await uow.messages.branch(
                user_id, chat_id, from_id=chat.active_message_id, limit=EXPORT_LIMIT
            )
        asked = [m for m in branch if m.role == "user"]
        if len(asked) <= len(earlier) or [m.content for m in asked[: len(earlier)]] != list(earlier):
            raise InvalidInput(
                "the edited message is not one of this chat's: send the chat's messages as they are, "
                "or our id of the message as messageId",
                field="messageId",
            )
        return asked[len(earlier)].id

    async def active_branch(self, user_id: str, chat_id: str) -> tuple[Chat, list[Message]]:
        async with self._uow(user_id=user_id) as uow:
            chat = await _owned(uow, user_id, chat_id)
            branch = await uow.messages.branch(
                user_id, chat_id, from_id=chat.active_message_id, limit=EXPORT_LIMIT
            )
            return chat, branch

    async def switch_branch(self, user_id: str, chat_id: str, message_id: int) -> None:
        """Make the branch through ``message_id`` active (its newest continuation)."""
        async with self._uow(user_id=user_id) as uow:
            await _owned(uow, user_id, chat_id)
            if await uow.runs.active(user_id, chat_id):
                raise ChatBusy(f"chat '{chat_id}' has a run in progress")
            leaf = await uow.messages.newest_under(user_id, chat_id, message_id)
            if leaf is None:
                raise NotFound(f"message {message_id} not found in chat '{chat_id}'")
            await uow.chats.set_active(user_id, chat_id, leaf)
            await uow.commit()

    async def change(self, user_id: str, chat_id: str, change: ChatChange) -> Chat:
        if change.title is not None and not change.title.strip():
            raise InvalidInput("a title cannot be blank", field="title")
        async with self._uow(user_id=user_id) as uow:
            chat = await uow.chats.change(user_id, chat_id, change)
            if chat is None:
                raise NotFound(f"chat '{chat_id}' not found")
            await uow.commit()
            return chat

    async def delete_chat(self, user_id: str, chat_id: str) -> None:
        async with self._uow(user_id=user_id) as uow:
            if not await uow.chats.delete(user_id, chat_id):
                raise NotFound(f"chat '{chat_id}' not found")
            await uow.commit()


async def _owned(uow: UnitOfWork, user_id: str, chat_id: str) -> Chat:
    chat = await uow.chats.get(user_id, chat_id)
    if chat is None:
        raise NotFound(f"chat '{chat_id}' not found")
    return chat


async def _with_branches(
    uow: UnitOfWork, user_id: str, chat_id: str, messages: list[Message]
) -> list[BranchMessage]:
    parents = list({m.parent_id for m in messages})
    siblings: dict[int | None, list[int]] = {}
    for child in await uow.messages.children(user_id, chat_id, parents) if messages else []:
        siblings.setdefault(child.parent_id, []).append(child.id)
    placed = []
    for message in messages:
        ids = siblings.get(message.parent_id) or [message.id]
        index = ids.index(message.id) + 1 if message.id in ids else 1
        placed.append(BranchMessage(message, Branch(index, len(ids), tuple(ids))))
    return placed


async def _with_runs(
    uow: UnitOfWork, user_id: str, chat_id: str, placed: list[BranchMessage], *, follower: Message | None
) -> list[BranchMessage]:
    """Each answer with the run that wrote it, each user message left unanswered with how its run
    ended: one statement for the page."""
    messages = [p.message for p in placed]
    asked = [m.id for m in messages if m.role == "user"]
    turns = [m.turn for m in messages if m.role in ("user", "assistant")]
    found = await uow.runs.of_turns(user_id, chat_id, turns=turns, answering=asked) if messages else []
    return [replace(p, run=run) for p, run in zip(placed, runs_of(messages, found, follower), strict=True)]
