"""The AI SDK's UI message stream (``POST /api/ui/chat``): its request, and a run rendered in it.

The request is what the AI SDK's ``DefaultChatTransport`` sends, ``{id, messages, trigger}`` plus
the transport's ``body`` (``agent_name``). The server keeps the chat, so only the newest message is
read, and it must be the user's. The answer is pydantic-ai's ``VercelAIEventStream`` over the run's
events (``api/agent_events.py``): ``start`` (the run id as the message id), text and tool parts,
then ``finish`` with the run's metadata, or ``error``, or ``abort`` for a cancelled run.
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
    agent_name: StoredText = Field(min_length=1, max_length=64)
    busy_policy: BusyPolicy | None = Field(None, description="When the chat is mid-run; default: server's")

    def command(self, user_id: str) -> StartRun:
        if self.trigger == "regenerate-message":
            raise InvalidInput("regenerate-message is not supported: send the message again", field="trigger")
        newest = self.messages[-1]
        if newest.role != "user":
            raise InvalidInput("the newest message must be the user's", field="messages")
        text = "".join(part.text or "" for part in newest.parts if part.type == "text")
        return StartRun(
            user_id=user_id,
            agent_name=self.agent_name,
            message=checked_text(text, "messages"),
            chat_id=self.id,
            busy_policy=self.busy_policy,
        )


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
