"""AG-UI (``POST /api/agui``): its ``RunAgentInput``, and a run rendered as its event stream.

``threadId`` is the chat id and ``forwardedProps.agent_name`` the agent. The server keeps the chat,
so only the newest message is read, and it must be the user's; tools the client offers are not
given to the model (the agent's own tools run on the server). The events are pydantic-ai's
``AGUIEventStream`` over the run's events (``api/agent_events.py``): RUN_STARTED, TEXT_MESSAGE_*,
TOOL_CALL_* with TOOL_CALL_RESULT, then RUN_FINISHED, whose ``result`` names the run and its model,
or RUN_ERROR. Right after RUN_STARTED a CUSTOM event ``run`` names the server's run (RUN_STARTED
keeps the client's ``runId``), so a client can cancel it or follow it elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import KW_ONLY, dataclass

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    RunAgentInput,
    RunFinishedEvent,
    TextInputContent,
    UserMessage,
)
from pydantic_ai.ui.ag_ui import AGUIEventStream

from chatserver.api.agent_events import AgentEvents, encoded
from chatserver.api.run_streams import EventStream
from chatserver.api.schemas import CHAT_ID_PATTERN
from chatserver.api.text import checked_text
from chatserver.api.ui_stream import message_metadata
from chatserver.domain import StartRun
from chatserver.errors import InvalidInput
from chatserver.services.runs import RunHandle


def agui_command(run_input: RunAgentInput, user_id: str) -> StartRun:
    if re.fullmatch(CHAT_ID_PATTERN, run_input.thread_id) is None:
        raise InvalidInput("threadId (the chat id) must be 1-128 of A-Z, a-z, 0-9, _ and -", field="threadId")
    props = run_input.forwarded_props
    agent_name = props.get("agent_name") if isinstance(props, dict) else None
    if not isinstance(agent_name, str) or not agent_name:
        raise InvalidInput("forwardedProps.agent_name must name the agent", field="forwardedProps")
    return StartRun(
        user_id=user_id,
        agent_name=checked_text(agent_name, "forwardedProps"),
        message=checked_text(_newest_user_text(run_input), "messages"),
        chat_id=run_input.thread_id,
    )


def _newest_user_text(run_input: RunAgentInput) -> str:
    newest = run_input.messages[-1] if run_input.messages else None
    if not isinstance(newest, UserMessage):
        raise InvalidInput("the newest message must be the user's", field="messages")
    if isinstance(newest.content, str):
        return newest.content
    return "".join(part.text for part in newest.content if isinstance(part, TextInputContent))


@dataclass
class AGUIRunStream(AGUIEventStream[None, str]):
    """The framework's stream, with the server's run named first and its model and usage at the end."""

    _: KW_ONLY
    agent_events: AgentEvents | None = None

    async def before_stream(self) -> AsyncIterator[BaseEvent]:
        async for event in super().before_stream():
            yield event
        if self.agent_events is not None:
            # The server's run, as /api/chat/stream's first event names it: to cancel or follow it.
            run = {"run_id": self.agent_events.run_id, "chat_id": self.agent_events.chat_id}
            yield CustomEvent(name="run", value=run, timestamp=self._get_timestamp())

    async def after_stream(self) -> AsyncIterator[BaseEvent]:
        done = self.agent_events.done if self.agent_events else None
        async for event in super().after_stream():
            if isinstance(event, RunFinishedEvent) and done is not None:
                event.result = message_metadata(done)
            yield event


def agui_stream(handle: RunHandle, run_input: RunAgentInput) -> EventStream:
    """Always Server-Sent Events (AG-UI's default encoding), whatever else the client accepts."""
    events = AgentEvents(handle.run.id, handle.run.chat_id, handle.events())
    stream = AGUIRunStream(run_input=run_input, agent_events=events)
    return EventStream(encoded(stream, events))
