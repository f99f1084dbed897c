"""The real ``chatserver serve`` process killed mid-turn (SIGKILL) or stopped (SIGTERM) mid-stream.

SIGTERM during a plain turn is tests/e2e/test_lifecycle.py's; here the streamed turn, and what a
restarted server finds in the database afterwards.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DATABASES, prepared_database
from tests.e2e.harness import JWT_SECRET, mint_token
from tests.e2e.processes import ServerProcess, chatserver_serve
from tests.e2e.streams import events_of
from tests.reliability.turns import body, stored, turn
from tests.support.drain import Drain

# Importing the server takes seconds, far more on a busy machine.
STARTUP_SECONDS = 120.0
WAIT_SECONDS = 30.0


@contextmanager
def database(kind: str, directory: Path) -> Iterator[dict[str, str]]:
    """The environment of a server on a fresh database: PostgreSQL, or SQLite in ``directory``."""
    env = {"CHATSERVER_JWT_SECRET": JWT_SECRET, "CHATSERVER_LOG_LEVEL": "WARNING"}
    if kind == "sqlite":
        yield env  # serve makes ./chatserver.db in its working folder, kept across restarts
        return
    with prepared_database("postgres", directory) as settings:
        yield {**env, "CHATSERVER_DATABASE_URL": settings.database_url}


@contextmanager
def running(directory: Path, env: dict[str, str]) -> Iterator[ServerProcess]:
    with chatserver_serve(directory, **env) as server:
        assert server.process.stdout is not None
        Drain(server.process.stdout)
        server.wait_healthy(timeout=STARTUP_SECONDS)
        yield server


def client(server: ServerProcess, user: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {mint_token(user)}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=WAIT_SECONDS)


async def until_stored(http: httpx.AsyncClient, chat_id: str, count: int) -> None:
    """Until the chat holds ``count`` messages: a turn has stored its user message and is running."""
    for _ in range(int(WAIT_SECONDS / 0.05)):
        page = await http.get(f"/api/chats/{chat_id}/messages")
        if page.status_code == 200 and len(page.json()["items"]) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"chat {chat_id} never held {count} messages")


async def killed_mid_turn(server: ServerProcess, chat_id: str) -> httpx.Response | BaseException:
    """A first turn answered, then a slow one in flight when the server gets SIGKILL."""
    async with client(server, "kate") as http:
        assert (await turn(http, "first", chat_id)).status_code == 200
        doomed = asyncio.create_task(turn(http, "/sleep 10000 never answered", chat_id))
        await until_stored(http, chat_id, 3)
        server.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(server.process.wait, WAIT_SECONDS)
        results = await asyncio.gather(doomed, return_exceptions=True)
    return results[0]


async def after_restart(server: ServerProcess, user: str, chat_id: str) -> tuple[list[tuple[str, str]], str]:
    """The chat as the restarted server has it, and a next turn on it (whose answer must be 200)."""
    async with client(server, user) as http:
        before = await stored(http, chat_id)
        recall = await turn(http, "/recall", chat_id)
        assert recall.status_code == 200, recall.text
        return before, str(recall.json()["response"])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", DATABASES)
def test_a_server_killed_mid_turn_leaves_the_chat_consistent_for_the_next_one(
    kind: str, tmp_path: Path
) -> None:
    chat_id = str(uuid.uuid4())
    with database(kind, tmp_path) as env:
        with running(tmp_path, env) as first:
            cut_off = asyncio.run(killed_mid_turn(first, chat_id))
        with running(tmp_path, env) as second:
            kept, recall = asyncio.run(after_restart(second, "kate", chat_id))
    assert isinstance(cut_off, httpx.TransportError), cut_off
    assert kept == [("user", "first"), ("assistant", "echo: first"), ("user", "/sleep 10000 never answered")]
    assert recall == "recall: first | /sleep 10000 never answered"


async def streamed_through_sigterm(server: ServerProcess, chat_id: str) -> list[str]:
    """A streamed turn in flight when the server gets SIGTERM; the events it still receives."""
    async with client(server, "liam") as http:
        request = http.stream("POST", "/api/chat/stream", json=body("/sleep 1500 finish me", chat_id))
        async with request as response:
            assert response.status_code == 200
            events = events_of(response)
            names = []
            await until_stored(http, chat_id, 1)
            server.process.send_signal(signal.SIGTERM)
            async for event in events:
                names.append(event.name if event.name != "done" else f"done: {event.data['response']}")
        return names


def test_sigterm_during_a_streamed_turn_lets_it_finish_and_store_its_answer(tmp_path: Path) -> None:
    chat_id = str(uuid.uuid4())
    with database("sqlite", tmp_path) as env:
        with running(tmp_path, env) as first:
            events = asyncio.run(streamed_through_sigterm(first, chat_id))
            exit_code = first.process.wait(timeout=WAIT_SECONDS)
        with running(tmp_path, env) as second:
            kept, recall = asyncio.run(after_restart(second, "liam", chat_id))
    assert events[-1] == "done: echo: finish me" and set(events[:-1]) == {"run", "token"}
    assert exit_code == 0
    assert kept == [("user", "/sleep 1500 finish me"), ("assistant", "echo: finish me")]
    assert recall == "recall: /sleep 1500 finish me"


GRACE_SECONDS = 1


async def cut_by_the_grace(server: ServerProcess) -> tuple[httpx.Response, httpx.Response, list[Any]]:
    """A plain turn, a ``/v1`` completion and a stream, all too slow for the grace, then SIGTERM."""
    async with client(server, "mona") as http:
        plain = asyncio.create_task(turn(http, "/sleep 30000 too slow", "grace-plain"))
        completion = {"model": "assistant", "messages": [{"role": "user", "content": "/sleep 30000 no"}]}
        openai = asyncio.create_task(http.post("/v1/chat/completions", json=completion))
        request = http.stream("POST", "/api/chat/stream", json=body("/sleep 30000 slow too", "grace-stream"))
        async with request as response:
            assert response.status_code == 200
            events = events_of(response)
            first = await anext(events)
            await until_stored(http, "grace-plain", 1)
            server.process.send_signal(signal.SIGTERM)
            rest = [event async for event in events]
        return await plain, await openai, [first, *rest]


def test_past_the_shutdown_grace_turns_get_503_and_streams_an_error_event(tmp_path: Path) -> None:
    with database("sqlite", tmp_path) as env:
        env = {**env, "CHATSERVER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)}
        with running(tmp_path, env) as first:
            plain, openai, events = asyncio.run(cut_by_the_grace(first))
            exit_code = first.process.wait(timeout=WAIT_SECONDS)
        with running(tmp_path, env) as second:
            kept, _ = asyncio.run(after_restart(second, "mona", "grace-plain"))
    assert (plain.status_code, plain.json()["code"]) == (503, "shutting_down"), plain.text
    assert plain.headers["connection"] == "close"
    assert (openai.status_code, openai.json()["error"]["code"]) == (503, "shutting_down"), openai.text
    assert [event.name for event in events] == ["run", "error"]
    assert events[-1].data["code"] == "shutting_down"
    assert exit_code == 0
    assert kept == [("user", "/sleep 30000 too slow")], "the message is kept"
