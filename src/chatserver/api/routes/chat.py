"""POST /api/chat (seed-compatible) and POST /api/chat/stream (Server-Sent Events)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from chatserver.agents.types import StreamEvent, TokenEvent, ToolCallEvent, ToolResultEvent
from chatserver.api.deps import ContainerDep, CurrentUser
from chatserver.api.errors import status_and_code
from chatserver.api.schemas import ChatRequest, ChatResponse, ToolCallOut, UsageOut
from chatserver.domain import ToolCallRecord, TurnUsage
from chatserver.errors import ChatServerError

router = APIRouter(prefix="/api", tags=["chat"])


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
            "description": "token, tool_call, tool_result, done or error events",
        }
    },
)
async def chat_stream(
    body: ChatRequest, principal: CurrentUser, container: ContainerDep
) -> StreamingResponse:
    events = await container.chat.stream_chat(
        principal.user_id, body.agent_name, body.session_id, body.message
    )
    return StreamingResponse(
        sse_events(body.session_id, events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


async def sse_events(chat_id: str, events: AsyncIterator[StreamEvent]) -> AsyncIterator[str]:
    try:
        async for event in events:
            yield _encode(chat_id, event)
    except ChatServerError as error:
        _status, code = status_and_code(error)
        yield sse("error", {"detail": error.detail, "code": code})


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
