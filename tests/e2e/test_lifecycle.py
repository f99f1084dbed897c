"""The real ``chatserver serve`` process: a graceful stop during a turn, and two replicas on one
PostgreSQL database sharing sessions and sweeping once per interval."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from chatserver.domain import AuditEvent
from chatserver.storage.sql import SqlUnitOfWorkFactory, create_engine
from tests.e2e.conftest import prepared_database
from tests.e2e.harness import JWT_SECRET, mint_token
from tests.e2e.processes import ServerProcess, chatserver_serve
from tests.support.databases import settings_for

T = TypeVar("T")
WAIT_SECONDS = 60.0
# Importing the server takes seconds, far more on a busy machine with two replicas starting at once.
STARTUP_SECONDS = 120.0


def eventually(check: Callable[[], T], what: str, *, every: float = 0.1) -> T:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


class Output:
    """Reads a server's output on a thread, so a chatty server never blocks on a full pipe."""

    def __init__(self, server: ServerProcess) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(server,), daemon=True)
        self._reader.start()

    def _read(self, server: ServerProcess) -> None:
        assert server.process.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # the pipe closed under us: the test is over
            for line in server.process.stdout:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()

    def wait_for(self, matches: Callable[[str], bool], what: str, *, timeout: float = WAIT_SECONDS) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if matches(line)), None)

        with self._changed:
            line = self._changed.wait_for(found, timeout=timeout)
        if line is None:
            raise AssertionError(f"{what} never printed; output: {self.lines}")
        return line

    def until_closed(self) -> str:
        self._reader.join(timeout=WAIT_SECONDS)
        return "\n".join(self.lines)


@pytest.mark.timeout(300)
def test_sigterm_during_a_turn_lets_it_finish_refuses_new_requests_and_exits_0(tmp_path: Path) -> None:
    chat_id = str(uuid.uuid4())
    with chatserver_serve(tmp_path) as server:
        output = Output(server)
        key = output.wait_for(
            lambda line: line.startswith("cs_"), "the API key", timeout=STARTUP_SECONDS
        ).strip()
        server.wait_healthy(timeout=STARTUP_SECONDS)
        auth = {"Authorization": f"Bearer {key}"}
        replies: list[httpx.Response] = []
        body = {"agent_name": "assistant", "message": "/sleep 2000 still here", "session_id": chat_id}
        in_flight = threading.Thread(
            target=lambda: replies.append(
                httpx.post(f"{server.url}/api/chat", json=body, headers=auth, timeout=30)
            )
        )
        in_flight.start()

        def turn_started() -> bool:
            # The user's message is stored before the model runs: from then on the turn is in flight.
            page = httpx.get(f"{server.url}/api/chats/{chat_id}/messages", headers=auth, timeout=10)
            assert page.status_code in (200, 404), page.text
            return page.status_code == 200 and len(page.json()["items"]) == 1

        eventually(turn_started, "the turn to start")
        server.process.send_signal(signal.SIGTERM)
        output.wait_for(lambda line: "Waiting for connections to close" in line, "uvicorn's drain notice")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/healthz", timeout=5)
        in_flight.join(timeout=30)
        exit_code = server.process.wait(timeout=30)
        printed = output.until_closed()
    [reply] = replies
    assert reply.status_code == 200 and reply.json()["response"] == "echo: still here"
    assert exit_code == 0
    assert printed.index("Waiting for connections to close") < printed.index("background tasks stopped")


# Two replicas on one PostgreSQL database

INTERVAL = 1.0
TTL = 6.0


def read_events(database_url: str, type: str) -> list[AuditEvent]:
    """Oldest first."""

    async def read() -> list[AuditEvent]:
        engine = create_engine(settings_for(database_url))
        try:
            async with SqlUnitOfWorkFactory(engine)() as uow:
                return await uow.events.list(type=type, user_id=None, limit=10_000, before=None)
        finally:
            await engine.dispose()

    return list(reversed(asyncio.run(read())))


class Replica:
    def __init__(self, server: ServerProcess, user: str) -> None:
        self.server = server
        self.client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {mint_token(user)}"}, timeout=30
        )

    def turn(self, chat_id: str, message: str) -> str:
        body = {"agent_name": "assistant", "message": message, "session_id": chat_id}
        response = self.client.post("/api/chat", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["response"])

    def open(self, chat_id: str | None = None) -> dict[str, Any]:
        response = self.client.post(
            "/api/chat_sessions", json={"agent_name": "assistant", "chat_id": chat_id}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def session(self, session_id: str) -> dict[str, Any]:
        [found] = [s for s in self.client.get("/api/chat_sessions").json() if s["id"] == session_id]
        return dict(found)


class Heartbeats:
    """Heartbeats one session every ``every`` seconds on a thread, until stopped."""

    def __init__(self, replica: Replica, session_id: str, every: float = 0.5) -> None:
        self.statuses: list[int] = []
        self._stop = threading.Event()
        url = f"/api/chat_sessions/{session_id}/heartbeat"

        def beat() -> None:
            while not self._stop.wait(every):
                self.statuses.append(replica.client.post(url).status_code)

        self._thread = threading.Thread(target=beat, daemon=True)
        self._thread.start()

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(timeout=WAIT_SECONDS)
        return self.statuses


def replica_env(database_url: str) -> dict[str, str]:
    return {
        "CHATSERVER_DATABASE_URL": database_url,
        "CHATSERVER_JWT_SECRET": JWT_SECRET,
        "CHATSERVER_CLEANUP_INTERVAL_SECONDS": str(INTERVAL),
        "CHATSERVER_SESSION_TTL_SECONDS": str(TTL),
        "CHATSERVER_LOG_LEVEL": "WARNING",
    }


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_two_replicas_share_sessions_serve_turns_and_sweep_once_per_interval(tmp_path: Path) -> None:
    with prepared_database("postgres", tmp_path, default_model="echo") as settings:
        env = replica_env(settings.database_url)
        with chatserver_serve(tmp_path, **env) as a, chatserver_serve(tmp_path, **env) as b:
            outputs = (Output(a), Output(b))
            a.wait_healthy(timeout=STARTUP_SECONDS)
            b.wait_healthy(timeout=STARTUP_SECONDS)
            first, second = Replica(a, "rita"), Replica(b, "rita")
            chat_id = str(uuid.uuid4())
            answers = [
                first.turn(chat_id, "one"),
                second.turn(chat_id, "two"),
                first.turn(chat_id, "/recall"),
            ]
            kept, silent = first.open(chat_id), second.open()
            beats = Heartbeats(second, kept["id"])
            started = time.monotonic()

            def silent_swept_after_a_few_intervals() -> bool:
                return (
                    time.monotonic() - started > TTL + 4 * INTERVAL
                    and not first.session(silent["id"])["is_active"]
                )

            eventually(silent_swept_after_a_few_intervals, "the sweep", every=0.5)
            kept_now = first.session(kept["id"])
            statuses = beats.stop()
            exits = (a.terminate(), b.terminate())
            printed = [output.until_closed() for output in outputs]
        sweeps = read_events(settings.database_url, "sweep.completed")
        deactivated = read_events(settings.database_url, "session.deactivated")
    assert answers == ["echo: one", "echo: two", "recall: one | two"]
    assert set(statuses) == {200} and kept_now["is_active"] is True
    assert [e.data["session_id"] for e in deactivated] == [silent["id"]]
    gaps = [later.created_at - earlier.created_at for earlier, later in pairwise(sweeps)]
    assert all(gap >= timedelta(seconds=0.9 * INTERVAL) for gap in gaps), gaps
    assert len(sweeps) >= 3
    assert {e.data["replica"].rsplit(":", 1)[1] for e in sweeps} <= {str(a.process.pid), str(b.process.pid)}
    assert exits == (0, 0), printed
