"""Bodies of chat management: renaming, flags, branches."""

from __future__ import annotations

from pydantic import Field

from chatserver.api.schemas import Strict
from chatserver.api.text import StoredText
from chatserver.domain.chats import ChatChange


class ChatPatch(Strict):
    title: StoredText | None = Field(None, min_length=1, max_length=200)
    pinned: bool | None = None
    archived: bool | None = None

    def change(self) -> ChatChange:
        return ChatChange(self.title, self.pinned, self.archived)


class BranchIn(Strict):
    message_id: int = Field(description="A message of the chat: the branch through it becomes active")
