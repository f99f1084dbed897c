"""POST /api/chat (seed-compatible) and POST /api/chat/stream (Server-Sent Events): runs, rendered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from chatserver.api.deps import ContainerDep, CurrentUser, IdempotencyKey, request_hash
from chatserver.api.run_streams import EventStream, answer, sse_events
from chatserver.api.schemas import ChatRequest, ChatResponse
from chatserver.domain import StartRun
from chatserver.services.runs import RunHandle

router = APIRouter(prefix="/api", tags=["chat"])


def _command(body: ChatRequest, user_id: str, key: str | None, route: str) -> StartRun:
    return StartRun(
        user_id=user_id,
        agent_name=body.agent_name,
        message=body.message,
        chat_id=body.session_id,
        busy_policy=body.busy_policy,
        edit_of=body.edit_of,
        regenerate=body.regenerate,
        idempotency_key=key,
        request_hash=request_hash(route, body) if key else None,
    )


@router.post("/chat", response_model=ChatResponse)
async def chat(
    body: ChatRequest, principal: CurrentUser, container: ContainerDep, key: IdempotencyKey = None
) -> ChatResponse:
    handle = await container.runs.start(_command(body, principal.user_id, key, "chat"))
    return answer(await handle.outcome(), body.session_id)


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "run, token, tool_call, tool_result, then done, error or cancelled events",
        }
    },
)
async def chat_stream(
    body: ChatRequest, principal: CurrentUser, container: ContainerDep, key: IdempotencyKey = None
) -> EventStream:
    handle = await container.runs.start(_command(body, principal.user_id, key, "chat"))
    on_close = _canceller(handle) if body.on_disconnect == "cancel" else None
    return EventStream(sse_events(handle.events()), on_close=on_close)


def _canceller(handle: RunHandle) -> Callable[[], Awaitable[None]]:
    async def cancel_unless_ended() -> None:
        await handle.service.cancel_if_running(handle.run)

    return cancel_unless_ended
