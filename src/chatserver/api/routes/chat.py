"""POST /api/chat (seed-compatible) and POST /api/chat/stream (Server-Sent Events)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.types import Send

from chatserver.agents.types import StreamEvent, TokenEvent, ToolCallEvent, ToolResultEvent
from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.errors import status_and_code
from chatserver.api.json_text import json_text
from chatserver.api.schemas import ChatRequest, ChatResponse, ToolCallOut, UsageOut
from chatserver.domain import ToolCallRecord, TurnUsage
from chatserver.errors import ChatServerError
from chatserver.services.turn_stream import TurnStream

router = APIRouter(prefix="/api", tags=["chat"])
log = logging.getLogger("chatserver.api")

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStream(StreamingResponse):
    """``text/event-stream`` that closes its turn as soon as the response ends, however it ends.

    On a client disconnect Starlette cancels the body iteration (uvicorn reports ASGI 2.3, so
    Starlette listens for ``http.disconnect`` beside the body; from 2.4 on it would only notice at
    the next send, which the e2e disconnect tests would catch) but never closes the iterator: a
    generator caught at a ``yield``, or never started, would hold the turn's chat lock and model
    run until garbage collection. Closing both here cancels the model run now.
    """

    media_type = "text/event-stream"

    def __init__(
        self, content: AsyncGenerator[str, None], turn: TurnStream, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(content, headers={**STREAM_HEADERS, **(headers or {})})
        self._content = content
        self._turn = turn

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            try:
                await self._content.aclose()
            finally:
                await self._turn.aclose()


def chat_response(chat_id: str, text: str, calls: list[ToolCallRecord], usage: TurnUsage) -> ChatResponse:
    last = calls[-1] if calls else None
    return ChatResponse(
        session_id=chat_id,
        response=text,
        tool_name=last.name if last else None,
        tool_input=last.args if last else None,
        error=None,
        tool_calls=[ToolCallOut.of(call) for call in calls],
        usage=UsageOut.of(usage),
    )


@router.post("/chat", response_model=ChatResponse)
async def chat(body: ChatRequest, principal: CurrentUser, container: ContainerDep) -> ChatResponse:
    reply = await container.chat.process_chat(
        principal.user_id, body.agent_name, body.session_id, body.message
    )
    return chat_response(reply.chat_id, reply.response, reply.tool_calls, reply.usage)


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "token, tool_call, tool_result, then done or error events",
        }
    },
)
async def chat_stream(body: ChatRequest, principal: CurrentUser, container: ContainerDep) -> EventStream:
    turn = await container.chat.stream_chat(principal.user_id, body.agent_name, body.session_id, body.message)
    return EventStream(sse_events(body.session_id, turn), turn)


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json_text(data)}\n\n"


async def sse_events(chat_id: str, events: TurnStream) -> AsyncGenerator[str, None]:
    try:
        async with aclosing(events):
            async for event in events:
                yield _encode(chat_id, event)
    except ChatServerError as error:
        _status, code = status_and_code(error)
        yield sse("error", {"detail": error.detail, "code": code})
    except Exception:
        # The 200 is already sent: report the failure as an event rather than cut the stream.
        log.exception("streamed turn failed", extra={"chat_id": chat_id})
        yield sse("error", {"detail": "internal server error", "code": "internal_error"})


def _encode(chat_id: str, event: StreamEvent) -> str:
    if isinstance(event, TokenEvent):
        return sse("token", {"delta": event.delta})
    if isinstance(event, ToolCallEvent):
        return sse("tool_call", {"name": event.name, "args": event.args})
    if isinstance(event, ToolResultEvent):
        return sse("tool_result", {"name": event.name, "result": event.result})
    result = event.result
    done = chat_response(chat_id, result.output, result.tool_calls, result.usage)
    return sse("done", done.model_dump(mode="json"))
