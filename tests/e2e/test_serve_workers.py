"""``chatserver serve --workers 2`` on one PostgreSQL database: two processes on one port, each a
replica, serving turns over real HTTP; a worker that dies is replaced; SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import JWT_SECRET, mint_token
from tests.e2e.processes import ServerProcess, chatserver_serve
from tests.support.databases import throwaway_database
from tests.support.drain import Drain

pytestmark = pytest.mark.postgres

CHATS = 8
TURNS_PER_CHAT = 6


def workers_of(server: ServerProcess) -> list[int]:
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    with asyncio.Runner() as runner:
        database = throwaway_database("postgres", tmp_path)
        url = runner.run(database.__aenter__())
        env = {
            "CHATSERVER_DATABASE_URL": url,
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_LOG_LEVEL": "WARNING",
        }
        try:
            with chatserver_serve(tmp_path, args=["--workers", "2"], **env) as server:
                assert server.process.stdout is not None
                drain = Drain(server.process.stdout)
                server.wait_healthy(timeout=90)
                yield server
                if server.process.poll() is None:
                    assert server.terminate() == 0, drain.finish()
        finally:
            runner.run(database.__aexit__(None, None, None))


def replacement(server: ServerProcess, *, gone: int, timeout: float = 60) -> list[int]:
    """The workers once ``gone`` has been replaced (or as they are when ``timeout`` runs out)."""
    deadline = time.monotonic() + timeout
    workers = workers_of(server)
    while time.monotonic() < deadline and (len(workers) < 2 or gone in workers):
        time.sleep(0.2)
        workers = workers_of(server)
    return workers


async def chat_turns(url: str, user: str, chat_id: str) -> list[str]:
    """One chat's turns one after another, each on a new connection (so on either worker)."""
    answers = []
    headers = {"Authorization": f"Bearer {mint_token(user)}"}
    for n in range(TURNS_PER_CHAT):
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            body = {"agent_name": "assistant", "message": f"{chat_id} {n}", "session_id": chat_id}
            response = await client.post("/api/chat", json=body)
            assert response.status_code == 200, response.text
            answers.append(response.json()["response"])
    return answers


async def stored_contents(url: str, user: str, chat_id: str) -> list[str]:
    headers = {"Authorization": f"Bearer {mint_token(user)}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        response = await client.get(f"/api/chats/{chat_id}/messages", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [message["content"] for message in response.json()["items"]]


async def test_two_workers_both_serve_and_every_turn_of_every_chat_is_stored_in_order(
    two_workers: ServerProcess,
) -> None:
    workers = workers_of(two_workers)
    before = {pid: cpu_ticks(pid) for pid in workers}
    chats = [(f"user{i % 4}", str(uuid.uuid4())) for i in range(CHATS)]
    answers = await asyncio.gather(*(chat_turns(two_workers.url, user, chat) for user, chat in chats))
    assert len(workers) == 2
    assert all(cpu_ticks(pid) > before[pid] for pid in workers), "a worker served nothing"
    for (user, chat), answered in zip(chats, answers, strict=True):
        sent = [f"{chat} {n}" for n in range(TURNS_PER_CHAT)]
        assert answered == [f"echo: {text}" for text in sent]
        expected = [content for text in sent for content in (text, f"echo: {text}")]
        assert await stored_contents(two_workers.url, user, chat) == expected


async def test_a_worker_that_dies_is_replaced_and_the_server_goes_on(two_workers: ServerProcess) -> None:
    first, second = workers_of(two_workers)
    os.kill(first, signal.SIGKILL)
    replaced = replacement(two_workers, gone=first)
    assert second in replaced and first not in replaced and len(replaced) == 2
    chat = str(uuid.uuid4())
    for _ in range(3):  # new connections, spread over both workers
        assert await chat_turns(two_workers.url, "user1", chat) == [
            f"echo: {chat} {n}" for n in range(TURNS_PER_CHAT)
        ]
        chat = str(uuid.uuid4())


def test_sigterm_stops_every_worker_and_exits_0(two_workers: ServerProcess) -> None:
    workers = workers_of(two_workers)
    assert two_workers.terminate() == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
