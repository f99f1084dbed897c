"""A run's events over HTTP: Server-Sent Events with ids, and the answer ``POST /api/chat`` gives.

A stream only reads the run's log: closing it (the client went away) stops nothing, unless the
request asked for ``on_disconnect: cancel``. Every event carries its log id as the SSE ``id``, so a
client reconnects to ``GET /api/runs/{id}/events`` with ``Last-Event-ID`` and misses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Send

from chatserver.api.errors import status_and_code
from chatserver.api.json_text import json_text
from chatserver.api.schemas import ChatResponse, ToolCallOut, UsageOut
from chatserver.domain import RunEvent
from chatserver.errors import ChatServerError
from chatserver.services.run_errors import error_of

log = logging.getLogger("chatserver.api")

CLOSE_SECONDS = 5.0
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EventStream(StreamingResponse):
    """``text/event-stream`` that closes its source as soon as the response ends, however it ends.

    On a client disconnect Starlette cancels the body iteration but never closes the iterator; a
    generator caught at a ``yield`` would keep reading the run's log until garbage collection.
    ``on_close`` runs then too (``on_disconnect: cancel`` stops the run there).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncGenerator[str, None],
        headers: dict[str, str] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(content, headers={**STREAM_HEADERS, **(headers or {})})
        self._content = content
        self._on_close = on_close

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            try:
                await self._content.aclose()
            finally:
                if self._on_close is not None:
                    # Shielded: Starlette stops a stream by cancelling its scope, which would cancel
                    # this too at its first await.
                    with anyio.move_on_after(CLOSE_SECONDS, shield=True):
                        await self._on_close()


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json_text(data)}\n\n"


def chat_response(done: dict[str, Any], *, status: str = "completed") -> ChatResponse:
    """The ``done`` event of a run as ``POST /api/chat`` answers it (seed-compatible, plus the run)."""
    calls = [ToolCallOut(**call) for call in done.get("tool_calls", [])]
    last = calls[-1] if calls else None
    usage = done.get("usage") or {"input_tokens": 0, "output_tokens": 0, "requests": 0}
    return ChatResponse(
        session_id=done.get("chat_id") or "",
        response=done.get("response"),
        tool_name=last.name if last else None,
        tool_input=last.args if last else None,
        error=None if status == "completed" else status,
        tool_calls=calls,
        usage=UsageOut(**usage),
        run_id=done.get("run_id"),
        model=done.get("model"),
        status=status,
    )


def answer(outcome: RunEvent, chat_id: str | None) -> ChatResponse:
    """A run's last event as the plain answer; a failure raises the error it stands for."""
    if outcome.kind == "done":
        return chat_response(outcome.data)
    if outcome.kind == "approval_required":
        paused = chat_response(
            {"run_id": outcome.data.get("run_id"), "chat_id": chat_id, "response": None},
            status="requires_action",
        )
        return paused.model_copy(
            update={"error": None, "pending_approvals": outcome.data.get("approvals", [])}
        )
    if outcome.kind == "cancelled":
        partial = {
            "run_id": outcome.data.get("run_id"),
            "chat_id": chat_id,
            "response": outcome.data.get("response"),
        }
        return chat_response(partial, status="cancelled")
    raise error_of(str(outcome.data.get("code", "")), str(outcome.data.get("detail", "the run failed")))


def sse_data(event: RunEvent) -> Any:
    if event.kind == "done":
        return chat_response(event.data).model_dump(mode="json")
    if event.kind == "error":
        return {"detail": event.data.get("detail"), "code": event.data.get("code")}
    return event.data


async def sse_events(events: AsyncIterator[RunEvent]) -> AsyncGenerator[str, None]:
    try:
        async for event in events:
            yield sse(event.kind, sse_data(event), event.id)
    except ChatServerError as error:
        _status, code = status_and_code(error)
        yield sse("error", {"detail": error.detail, "code": code})
    except Exception:
        # The 200 is already sent: report the failure as an event rather than cut the stream.
        log.exception("run stream failed")
        yield sse("error", {"detail": "internal server error", "code": "internal_error"})
