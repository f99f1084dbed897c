"""Requests still in flight when the shutdown grace ends get an answer, not a cut connection.

On SIGTERM uvicorn lets requests finish for ``CHATSERVER_SHUTDOWN_GRACE_SECONDS``, then cancels the
tasks of those still running. Left alone, a request that has not answered yet gets uvicorn's bare
500, and a stream just stops. ``ShutdownAnswers`` catches that cancellation (the only one that
reaches the app's outermost layer: a client leaving cancels only the response inside) and answers:

* nothing sent yet: 503 ``shutting_down`` (OpenAI's error shape on ``/v1``), ``Connection: close``;
* a stream under way: its last event, ``error`` ``{detail, code: "shutting_down"}`` (on ``/v1`` a
  ``data:`` chunk holding OpenAI's error, then ``[DONE]``).

The run behind the request is not this layer's: the executor interrupts it at shutdown, keeping
the user's message and partial answer (``services/run_executor.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatserver.api.errors import error_body

log = logging.getLogger("chatserver.api")

CODE = "shutting_down"
DETAIL = "the server is shutting down; send the request again"
EVENT_STREAM = b"text/event-stream"


class ShutdownAnswers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = _Sent(send)
        try:
            await self.app(scope, receive, sent)
        except asyncio.CancelledError:
            if sent.complete:
                raise
            log.warning("request cut by the end of the shutdown grace", extra={"path": scope["path"]})
            await _answer(scope, sent)
            # Answered in full: the task ends here as uvicorn wants, without a 500 or a reset.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()


class _Sent:
    """``send``, remembering how far the response got."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.streamed = False
        self.complete = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = dict(message.get("headers", []))
            self.streamed = headers.get(b"content-type", b"").startswith(EVENT_STREAM)
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.complete = True
        await self._send(message)


async def _answer(scope: Scope, sent: _Sent) -> None:
    openai = scope["path"].startswith("/v1/")
    if not sent.started:
        body = json.dumps(error_body(Request(scope), 503, CODE, DETAIL)).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        headers.append((b"content-length", str(len(body)).encode()))
        await sent({"type": "http.response.start", "status": 503, "headers": headers})
        await sent({"type": "http.response.body", "body": body})
    elif sent.streamed:
        await sent({"type": "http.response.body", "body": _last_event(openai)})
    # A plain body half sent cannot be told anything: the connection closes.


def _last_event(openai: bool) -> bytes:
    if openai:
        error = {"error": {"message": DETAIL, "type": "api_error", "code": CODE, "param": None}}
        return f"data: {json.dumps(error)}\n\ndata: [DONE]\n\n".encode()
    return f"event: error\ndata: {json.dumps({'detail': DETAIL, 'code': CODE})}\n\n".encode()
