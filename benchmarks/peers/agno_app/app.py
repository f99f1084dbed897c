"""Agno's AgentOS configured like chatserver's benchmark: runs inside Agno's own virtualenv.

One agent (``echo``) whose model answers like chatserver's ``echo`` model, one tool, history in
PostgreSQL through Agno's async Postgres db, the last 50 runs added to the model's context, and
per-user JWT authorization (HS256, ``sub`` is the user, sessions isolated per user).

Settings come from the environment the benchmark sets: ``AGNO_BENCH_DATABASE_URL``,
``AGNO_BENCH_LATENCY_MS``, ``AGNO_BENCH_JWT_SECRET``, ``AGNO_BENCH_HISTORY_RUNS``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, cast

from agno.agent import Agent
from agno.db.postgres import AsyncPostgresDb
from agno.models.base import Model
from agno.models.message import Message
from agno.models.response import ModelResponse
from agno.os import AgentOS
from agno.os.authz import Authorization


def word_count(text: str) -> int:
    """How many words ``text`` has (the agent's one tool)."""
    return len(text.split())


def _text(message: Message) -> str:
    if isinstance(message.content, str):
        return message.content
    return "".join(item for item in message.content or [] if isinstance(item, str))


def reply(messages: list[Message]) -> ModelResponse:
    """chatserver's ``echo`` rules: ``echo: <newest user message>``; ``/recall`` lists the earlier
    user messages in context; ``/tool NAME {json}`` calls a tool and then describes its result."""
    if messages and messages[-1].role == "tool":
        results = [m for m in messages if m.role == "tool" and m.tool_call_id]
        last = results[-1]
        return ModelResponse(role="assistant", content=f"tool {last.tool_name} returned: {_text(last)}")
    prompts = [_text(m) for m in messages if m.role == "user"]
    current = prompts[-1] if prompts else ""
    if current == "/recall":
        return ModelResponse(role="assistant", content="recall: " + " | ".join(prompts[:-1]))
    if current.startswith("/tool "):
        name, _, raw = current[len("/tool ") :].partition(" ")
        call = {
            "id": f"echo_{uuid.uuid4().hex}",
            "type": "function",
            "function": {"name": name, "arguments": raw or "{}"},
        }
        return ModelResponse(role="assistant", tool_calls=[call])
    return ModelResponse(role="assistant", content=f"echo: {current}")


@dataclass
class EchoModel(Model):
    """A custom Agno model (no provider, no network) that sleeps ``latency_ms`` before each reply."""

    id: str = "echo"
    name: str = "EchoModel"
    provider: str = "echo"
    latency_ms: int = 0

    async def ainvoke(self, messages: list[Message], assistant_message: Message, **_: Any) -> ModelResponse:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        return reply(messages)

    def invoke(self, messages: list[Message], assistant_message: Message, **_: Any) -> ModelResponse:
        return reply(messages)

    # Agno declares it a coroutine returning an async iterator; an async generator is what it calls.
    async def ainvoke_stream(  # type: ignore[override]
        self, messages: list[Message], assistant_message: Message, **_: Any
    ) -> AsyncIterator[ModelResponse]:
        yield await self.ainvoke(messages, assistant_message)

    def invoke_stream(
        self, messages: list[Message], assistant_message: Message, **_: Any
    ) -> Iterator[ModelResponse]:
        yield reply(messages)

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return cast(ModelResponse, response)

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return cast(ModelResponse, response)


def _async_url(url: str) -> str:
    """Agno's async db on psycopg 3 (the URL the benchmark hands over has no driver)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg_async://{rest}" if scheme in {"postgresql", "postgres"} else url


def build() -> AgentOS:
    db = AsyncPostgresDb(db_url=_async_url(os.environ["AGNO_BENCH_DATABASE_URL"]))
    agent = Agent(
        id="echo",
        name="echo",
        model=EchoModel(latency_ms=int(os.environ.get("AGNO_BENCH_LATENCY_MS", "0"))),
        tools=[word_count],
        db=db,
        add_history_to_context=True,
        num_history_runs=int(os.environ.get("AGNO_BENCH_HISTORY_RUNS", "50")),
        telemetry=False,
    )
    authorization = Authorization(
        verification_keys=[os.environ["AGNO_BENCH_JWT_SECRET"]],
        algorithm="HS256",
        verify_audience=True,
        audience="authenticated",
    )
    return AgentOS(
        id="chatserver-bench",
        agents=[agent],
        db=db,
        authorization=authorization,
        user_isolation=True,
        telemetry=False,
    )


agent_os = build()
app = agent_os.get_app()
