"""Where one turn's CPU goes, in process: each stage of a turn timed alone, on a real database.

    python -m benchmarks.breakdown --db postgres --turns 500

Builds the container as `chatserver serve` does (same settings, composition root and garbage
collector tuning), fills a chat's window (50 turns), then prints the CPU milliseconds per call
(`time.process_time`: this process only, not the database server) of a whole run (a turn without
HTTP: `RunService.start` and its outcome) and of the stages it is made of, each timed alone. The
last rows run a bare pydantic-ai agent on the same `echo` model (no chatserver code at all), with
the same 100-message history and with none: the agent framework's own cost per run.

With --trace the container traces as `serve` does with OTEL_EXPORTER_OTLP_ENDPOINT set (spans
batched and exported over OTLP/HTTP to a sink on loopback; the exporting thread is this process's,
so its CPU is counted).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import uvloop
from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage

from benchmarks.common import JWT_SECRET, otlp_sink, token
from benchmarks.run import database
from chatserver.agents.echo import EchoModel
from chatserver.agents.history import to_model_messages
from chatserver.agents.runner import stream_turn
from chatserver.agents.types import TurnDeps
from chatserver.bootstrap import prepare
from chatserver.config import Settings
from chatserver.container import Container, build_container
from chatserver.domain import Message, Run, StartRun
from chatserver.observability.tracing import start_tracing
from chatserver.runtime import tune_garbage_collector

WINDOW_TURNS = 50
AGENT = "assistant"

Step = Callable[[int], Awaitable[object]]


async def _timed(label: str, calls: int, step: Step) -> None:
    for i in range(min(calls, 20)):
        await step(i)
    start, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        await step(i)
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    print(f"| {label} | {1000 * cpu / calls:.3f} | {1000 * wall / calls:.3f} |", flush=True)


async def measure(url: str, calls: int, endpoint: str | None = None) -> None:
    settings = Settings(
        database_url=url, jwt_secret=JWT_SECRET, default_model="echo", otel_exporter_otlp_endpoint=endpoint
    )
    await prepare(settings)
    container = build_container(settings, tracing=start_tracing(settings))
    await container.start()
    try:
        for label, step in await _stages(container):
            await _timed(label, calls, step)
    finally:
        await container.aclose()


async def _stages(container: Container) -> list[tuple[str, Step]]:
    jwt = token("breakdown-user")
    user = (await container.identity.authenticate(jwt)).user_id

    async def whole_turn(chat_id: str = "bench-chat") -> object:
        handle = await container.runs.start(StartRun(user, AGENT, "hello", chat_id=chat_id))
        return await handle.outcome()

    for chat_id in ("bench-chat", "answered-chat"):
        for _ in range(WINDOW_TURNS):
            await whole_turn(chat_id)
    built = await container.loader.get(user, AGENT)
    window = await _window(container, user)
    history = to_model_messages(window)
    deps = TurnDeps(user, AGENT, "bench-chat", None)
    queued = Run("bench-run", user, "bench-chat", AGENT, "running", "hi", container.clock.now())

    def run(messages: list[ModelMessage]) -> Step:
        return lambda _: _drain(
            stream_turn(built, "hello", history=messages, deps=deps, timeout_seconds=30, max_requests=5)
        )

    bare = Agent(EchoModel(), output_type=str, instructions=built.system_prompt or None)
    tune_garbage_collector()
    print(f"| stage ({len(history)} history messages) | CPU ms per call | wall ms per call |")
    print("|---|---:|---:|")
    return [
        ("a whole run, without HTTP", lambda _: whole_turn()),
        ("authenticate a JWT", lambda _: container.identity.authenticate(jwt)),
        ("agent cache hit", lambda _: container.loader.get(user, AGENT)),
        ("store the message, read the window", lambda _: container.executor._open_turn(queued, built, None)),
        ("history codec", lambda _: _codec(window)),
        ("agent run (streamed, as runs are)", run(history)),
        ("bare pydantic-ai agent run, same history", lambda _: bare.run("hello", message_history=history)),
        ("bare pydantic-ai agent run, no history", lambda _: bare.run("hello")),
        ("a whole run again", lambda _: whole_turn()),
    ]


async def _drain(events: AsyncIterator[object]) -> None:
    async for _ in events:
        pass


async def _codec(window: list[Message]) -> object:
    return to_model_messages(window)


async def _window(container: Container, user: str) -> list[Message]:
    async with container.uow(user_id=user) as uow:
        chat = await uow.chats.get(user, "bench-chat")
        assert chat is not None
        return await uow.messages.window(
            user, "bench-chat", from_id=chat.active_message_id, turns=WINDOW_TURNS
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--turns", type=int, default=500, help="calls timed per stage")
    parser.add_argument("--trace", action="store_true", help="trace as serve does with an OTLP endpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(args.db, Path(tmp)) as url, otlp_sink() as sink:
        uvloop.run(measure(url, args.turns, sink if args.trace else None))


if __name__ == "__main__":
    main()
