"""The AI SDK's UI message stream (``POST /api/ui/chat``): its request, and a run rendered in it.

The request is what the AI SDK's ``DefaultChatTransport`` sends, ``{id, messages, trigger,
messageId}`` plus the transport's ``body`` (``agent_name``). The server keeps the chat, so only the
newest message is read, and it must be the user's; ``regenerate-message`` names the answer to
regenerate by ``messageId`` (the run id the answer streamed as), and ``submit-message`` with a
``messageId`` is an edit of that user message, found by its place among the user messages sent.
The answer is pydantic-ai's ``VercelAIEventStream`` over the run's events (``api/agent_events.py``):
``start`` (the run id as the message id), text and tool parts, then ``finish`` with the run's
metadata, or ``error``, or ``abort`` for a cancelled run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import KW_ONLY, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_ai.ui.vercel_ai import VercelAIEventStream
from pydantic_ai.ui.vercel_ai.response_types import BaseChunk, FinishChunk, StartChunk

from chatserver.api.agent_events import AgentEvents, encoded
from chatserver.api.openai_schemas import ContentPart
from chatserver.api.run_streams import EventStream
from chatserver.api.schemas import CHAT_ID_PATTERN
from chatserver.api.text import StoredText, checked_text
from chatserver.domain import BusyPolicy, StartRun
from chatserver.errors import InvalidInput
from chatserver.services.chats import ChatHistoryService
from chatserver.services.runs import RunHandle

SDK_VERSION: Literal[7] = 7
"""The AI SDK major version the chunks are written for (its v6 and v7 wire is one)."""


class UIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = ""
    role: Literal["system", "user", "assistant"]
    parts: list[ContentPart]
    """Only text parts are read; any other kind is passed over."""


class UIChatRequest(BaseModel):
    """The AI SDK's chat request; ``agent_name`` (and ``busy_policy``) come from the transport's ``body``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=CHAT_ID_PATTERN, description="The chat id (the AI SDK's `Chat.id`)")
    messages: list[UIMessage] = Field(min_length=1, description="The chat's UI messages; the last is read")
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    message_id: str | None = Field(
        None,
        alias="messageId",
        max_length=255,
        description="regenerate-message: the answer to regenerate (the run id it streamed as, or our "
        "message id; none: the newest answer). submit-message: the user message edited and resent",
    )
    agent_name: StoredText = Field(min_length=1, max_length=64)
    busy_policy: BusyPolicy | None = Field(None, description="When the chat is mid-run; default: server's")

    async def command(self, user_id: str, chats: ChatHistoryService) -> StartRun:
        """The run the request asks for; an edit or a regeneration placed by the chat's stored messages."""
        if self.trigger == "regenerate-message":
            answer = await chats.answer_named(user_id, self.id, self.message_id)
            return self._start(user_id, "", regenerate=answer)
        newest = self.messages[-1]
        if newest.role != "user":
            raise InvalidInput("the newest message must be the user's", field="messages")
        text = checked_text(_text(newest), "messages")
        if self.message_id is None:
            return self._start(user_id, text)
        if self.message_id.isdigit():
            return self._start(user_id, text, edit_of=int(self.message_id))
        earlier = [_text(m) for m in self.messages[:-1] if m.role == "user"]
        return self._start(user_id, text, edit_of=await chats.user_message_at(user_id, self.id, earlier))

    def _start(
        self, user_id: str, text: str, *, edit_of: int | None = None, regenerate: int | None = None
    ) -> StartRun:
        return StartRun(
            user_id=user_id,
            agent_name=self.agent_name,
            message=text,
            chat_id=self.id,
            busy_policy=self.busy_policy,
            edit_of=edit_of,
            regenerate=regenerate,
        )


def _text(message: UIMessage) -> str:
    return "".join(part.text or "" for part in message.parts if part.type == "text")


@dataclass
class UIMessageStream(VercelAIEventStream[None, str]):
    """The framework's stream, with the run's ids on ``start`` and its metadata on ``finish``."""

    _: KW_ONLY
    agent_events: AgentEvents | None = None

    async def before_stream(self) -> AsyncIterator[BaseChunk]:
        run_id = self.server_message_id
        chat_id = self.agent_events.chat_id if self.agent_events else None
        yield StartChunk(message_id=run_id, message_metadata={"run_id": run_id, "chat_id": chat_id})

    async def after_stream(self) -> AsyncIterator[BaseChunk]:
        done = self.agent_events.done if self.agent_events else None
        if done is not None:
            self._finish_reason = "stop"
        async for chunk in super().after_stream():
            if isinstance(chunk, FinishChunk) and done is not None:
                chunk.message_metadata = message_metadata(done)
            yield chunk


def message_metadata(done: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "chat_id", "model", "usage")
    return {key: done.get(key) for key in keys}


def ui_message_stream(handle: RunHandle) -> EventStream:
    """The run from its first event: a resumed stream is replayed whole, as the AI SDK expects."""
    events = AgentEvents(handle.run.id, handle.run.chat_id, handle.events())
    stream = UIMessageStream(sdk_version=SDK_VERSION, server_message_id=handle.run.id, agent_events=events)
    return EventStream(encoded(stream, events), headers=dict(stream.response_headers or {}))
