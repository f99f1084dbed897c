"""A fake OpenAI-compatible chat completions server on loopback, for provider tests.

The provider code under test is real (pydantic-ai's OpenAI model and the ``openai`` SDK); only
the remote end is fake. Behaviour is scripted per test through ``FakeOpenAI.behaviour`` (every
request), or ``FakeOpenAI.script`` (the next requests, one behaviour each, before ``behaviour``):

* ``answer``: a completion (streamed as ``chat.completion.chunk`` events, word by word, when the
  request asks for ``stream``);
* ``error_500``; ``rate_limited``: 429 with ``Retry-After: <FakeOpenAI.retry_after>``;
* ``hang``: never answers;
* ``drop``: starts the answer, then cuts the connection mid-body (mid-stream when streaming);
* ``cut``: sends the headers of a stream (200, ``text/event-stream``), then cuts the connection
  before any event;
* ``malformed``: answers ``FakeOpenAI.malformed`` as it is, a 200 (as the one event of a stream,
  then ``[DONE]``, when streaming).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.e2e.harness import free_port

Behaviour = Literal["answer", "error_500", "rate_limited", "hang", "drop", "cut", "malformed"]


@dataclass
class FakeOpenAI:
    url: str
    behaviour: Behaviour = "answer"
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[Behaviour] = field(default_factory=list)
    """Behaviours of the next requests, first one first; ``behaviour`` once it is empty."""
    retry_after: str = "1"
    arrivals: list[float] = field(default_factory=list)
    """``time.monotonic()`` at each request, to measure the waits between retries."""
    authorizations: list[str] = field(default_factory=list)
    """The ``Authorization`` header of each request: the API key the provider client sent."""
    word_seconds: float = 0.0
    """Pause after each streamed word: a slow model, to act mid-answer."""
    first_reply_seconds: float = 0.0
    """Pause before answering a request that holds no tool result yet: to act between two requests."""
    malformed: str = '{"choices": "nope"}'
    """What ``malformed`` answers: any text, JSON or not."""

    def next_behaviour(self) -> Behaviour:
        return self.script.pop(0) if self.script else self.behaviour

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """Call a tool when asked to and tools exist; otherwise answer from the last message."""
        last = body["messages"][-1]
        if last["role"] == "tool":
            return _message(body, content=f"the tool said {last['content']}")
        tools = [t["function"]["name"] for t in body.get("tools", [])]
        if "time" in str(last.get("content", "")) and "current_time" in tools:
            call = {
                "id": "call_1",
                "type": "function",
                "function": {"name": "current_time", "arguments": "{}"},
            }
            return _message(body, tool_calls=[call])
        return _message(body, content=f"fake says: {last['content']}")


class _DropConnection(Exception):
    """Raised mid-body: uvicorn can only abort the connection, which is the point."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from printing a traceback for each connection this fake cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DropConnection))


def _message(body: dict[str, Any], *, content: str | None = None, tool_calls: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


def _chunk(completion: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


async def _stream(
    completion: dict[str, Any], *, drop: bool, word_seconds: float = 0.0
) -> AsyncIterator[bytes]:
    """The completion as chunks: role, words (or the tool calls), finish, usage, [DONE]."""
    [choice] = completion["choices"]
    message = choice["message"]
    yield _chunk(completion, {"role": "assistant", "content": ""})
    words = (message["content"] or "").split(" ")
    for i, word in enumerate(words if message["content"] else []):
        yield _chunk(completion, {"content": word if i == len(words) - 1 else word + " "})
        await asyncio.sleep(word_seconds)
        if drop:
            raise _DropConnection
    for i, call in enumerate(message.get("tool_calls") or []):
        yield _chunk(completion, {"tool_calls": [{"index": i, **call}]})
    yield _chunk(completion, {}, choice["finish_reason"])
    usage = {**completion, "choices": [], "usage": completion["usage"], "object": "chat.completion.chunk"}
    yield f"data: {json.dumps(usage)}\n\n".encode()
    yield b"data: [DONE]\n\n"


async def _no_events() -> AsyncIterator[bytes]:
    """Starlette sends the headers before it asks for the first chunk."""
    await asyncio.sleep(0)
    raise _DropConnection
    yield b""  # pragma: no cover - makes this a generator


async def _as_events(text: str) -> AsyncIterator[bytes]:
    yield f"data: {text}\n\n".encode()
    yield b"data: [DONE]\n\n"


async def _cut_short(completion: dict[str, Any]) -> AsyncIterator[bytes]:
    body = json.dumps(completion).encode()
    yield body[: len(body) // 2]
    await asyncio.sleep(0)
    raise _DropConnection


def _app(fake: FakeOpenAI) -> Starlette:
    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        fake.requests.append(body)
        fake.arrivals.append(time.monotonic())
        fake.authorizations.append(request.headers.get("authorization", ""))
        behaviour = fake.next_behaviour()
        if behaviour == "error_500":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)
        if behaviour == "rate_limited":
            error = {"error": {"message": "slow down", "type": "rate_limit"}}
            return JSONResponse(error, status_code=429, headers={"Retry-After": fake.retry_after})
        if behaviour == "hang":
            await asyncio.Event().wait()
        if behaviour == "cut":
            return StreamingResponse(_no_events(), media_type="text/event-stream")
        if behaviour == "malformed":
            if body.get("stream"):
                return StreamingResponse(_as_events(fake.malformed), media_type="text/event-stream")
            return Response(fake.malformed, media_type="application/json")
        if not any(message["role"] == "tool" for message in body["messages"]):
            await asyncio.sleep(fake.first_reply_seconds)
        completion = fake.completion(body)
        drop = behaviour == "drop"
        if body.get("stream"):
            stream = _stream(completion, drop=drop, word_seconds=fake.word_seconds)
            return StreamingResponse(stream, media_type="text/event-stream")
        if drop:
            return StreamingResponse(_cut_short(completion), media_type="application/json")
        return JSONResponse(completion)

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    port = free_port()
    fake = FakeOpenAI(url=f"http://127.0.0.1:{port}/v1")
    server = uvicorn.Server(uvicorn.Config(_app(fake), host="127.0.0.1", port=port, log_level="warning"))
    quiet = _QuietDrops()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    thread = threading.Thread(target=server.run, name="fake-openai", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.02)
    try:
        yield fake
    finally:
        # Forced: a "hang" request never ends by itself, and a graceful stop would wait for it.
        server.should_exit = server.force_exit = True
        thread.join(timeout=10)
        logging.getLogger("uvicorn.error").removeFilter(quiet)
