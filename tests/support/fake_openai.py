"""A fake OpenAI-compatible chat completions server on loopback, for provider tests.

The provider code under test is real (pydantic-ai's OpenAI model and the ``openai`` SDK); only
the remote end is fake. Behaviour is scripted per test through ``FakeOpenAI.behaviour``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.e2e.harness import free_port

Behaviour = Literal["answer", "error_500", "rate_limited", "hang"]


@dataclass
class FakeOpenAI:
    url: str
    behaviour: Behaviour = "answer"
    requests: list[dict[str, Any]] = field(default_factory=list)

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


def _app(fake: FakeOpenAI) -> Starlette:
    async def completions(request: Request) -> Response:
        body = json.loads(await request.body())
        fake.requests.append(body)
        if fake.behaviour == "error_500":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, status_code=500)
        if fake.behaviour == "rate_limited":
            error = {"error": {"message": "slow down", "type": "rate_limit"}}
            return JSONResponse(error, status_code=429, headers={"Retry-After": "1"})
        if fake.behaviour == "hang":
            await _sleep_forever()
        return JSONResponse(fake.completion(body))

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


async def _sleep_forever() -> None:
    import asyncio

    await asyncio.Event().wait()


@contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    port = free_port()
    fake = FakeOpenAI(url=f"http://127.0.0.1:{port}/v1")
    server = uvicorn.Server(uvicorn.Config(_app(fake), host="127.0.0.1", port=port, log_level="warning"))
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
        server.should_exit = True
        thread.join(timeout=10)
