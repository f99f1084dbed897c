"""PostgreSQL lost under load, through a TCP proxy between the server and the database.

``cut`` drops every connection and refuses new ones; ``stall`` keeps them open but forwards nothing
(only timeouts end a wait). Either way: 503 ``database_unavailable`` while it lasts, never a 500,
no request held much past the database timeout, ``/readyz`` says so, and once the database is back
the same process serves again, with every answered turn stored whole.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.conftest import prepared_database
from tests.e2e.harness import LiveServer, serve_in_thread
from tests.reliability.turns import stored, turn
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

DB_TIMEOUT = 1.0
LATENCY_BOUND = 4 * DB_TIMEOUT + 4
"""A request touches the database a few times, each step bounded by the database timeout; the rest
is room for the scheduling stalls of a loaded two-core machine (seen: near 3 s)."""
OUTAGE_SECONDS = LATENCY_BOUND + 2
"""Longer than the bound: a request that waited for the database to come back would break it."""
WORKERS = 8
WAIT_SECONDS = 30.0
MAX_TURNS_PER_WORKER = 2000


@dataclass(frozen=True)
class Outcome:
    message: str
    started: float
    seconds: float
    status: int | str
    """The HTTP status, or the transport error's name."""
    code: str | None


@dataclass
class Load:
    """Workers, each on its own chat, sending turns one after another until told to stop."""

    client: httpx.AsyncClient
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def worker(self, n: int) -> None:
        for i in range(MAX_TURNS_PER_WORKER):
            if self.stop.is_set():
                return
            message = f"w{n}-turn{i}"
            started = time.monotonic()
            try:
                response = await turn(self.client, message, f"load-chat-{n}")
                code = None if response.status_code == 200 else response.json().get("code")
                status: int | str = response.status_code
            except httpx.HTTPError as error:
                status, code = type(error).__name__, None
            self.outcomes.append(Outcome(message, started, time.monotonic() - started, status, code))
            await asyncio.sleep(0.02)

    def since(self, moment: float) -> list[Outcome]:
        return [o for o in self.outcomes if o.started >= moment]

    async def until(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.summary()}"
            await asyncio.sleep(0.05)

    def every_worker(self, moment: float, status: int, count: int) -> Callable[[], bool]:
        def done() -> bool:
            seen = Counter(o.message.split("-")[0] for o in self.since(moment) if o.status == status)
            return len(seen) == WORKERS and min(seen.values()) >= count

        return done

    def summary(self) -> Counter[tuple[int | str, str | None]]:
        return Counter((o.status, o.code) for o in self.outcomes)


async def readiness(client: httpx.AsyncClient, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = await client.get("/readyz")
        if response.status_code == status:
            return dict(response.json())
        assert time.monotonic() < deadline, f"/readyz stayed {response.status_code}"
        await asyncio.sleep(0.1)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    with prepared_database("postgres", tmp_path, db_timeout_seconds=DB_TIMEOUT) as settings:
        url = make_url(settings.database_url)
        with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            with serve_in_thread(settings.model_copy(update={"database_url": through})) as server:
                yield server, proxy


@pytest.mark.timeout(240)
@pytest.mark.parametrize("fault", ["cut", "stall"])
async def test_a_database_outage_mid_load_is_503_while_it_lasts_and_heals_without_a_restart(
    proxied: tuple[LiveServer, TcpProxy], fault: str
) -> None:
    server, proxy = proxied
    async with server.client("loader", timeout=60) as client, server.raw_client() as raw:
        load = Load(client)
        workers = [asyncio.create_task(load.worker(n)) for n in range(WORKERS)]
        try:
            await load.until("turns before the fault", load.every_worker(0.0, 200, 2))
            down_at = time.monotonic()
            await asyncio.to_thread(proxy.cut if fault == "cut" else proxy.stall)
            down = await readiness(raw, 503)
            await load.until("503s during the fault", load.every_worker(down_at, 503, 1))
            alive = await raw.get("/healthz")
            await asyncio.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
            await asyncio.to_thread(proxy.restore)
            up_at = time.monotonic()
            up = await readiness(raw, 200)
            await load.until("turns after the fault", load.every_worker(up_at, 200, 3))
        finally:
            load.stop.set()
            await asyncio.gather(*workers)
        chats = {n: await stored(client, f"load-chat-{n}") for n in range(WORKERS)}
    outcomes = load.outcomes
    assert {(o.status, o.code) for o in outcomes} <= {(200, None), (503, "database_unavailable")}, (
        load.summary()
    )
    slowest = max(outcomes, key=lambda o: o.seconds)
    assert slowest.seconds <= LATENCY_BOUND, slowest
    assert down["checks"]["database"] == "failing" and "database" in down["failing"]
    assert alive.status_code == 200, "liveness needs no database"
    assert up["failing"] == []
    for n, messages in chats.items():
        answered = [o.message for o in outcomes if o.status == 200 and o.message.startswith(f"w{n}-")]
        assert_consistent(messages, answered)


def assert_consistent(messages: list[tuple[str, str]], answered: list[str]) -> None:
    """Each answered turn is stored whole, in order; nothing is doubled; no answer lacks its question."""
    users = [content for role, content in messages if role == "user"]
    assert len(users) == len(set(users)), "a user message was stored twice"
    for message in answered:
        at = messages.index(("user", message))
        assert messages[at + 1] == ("assistant", f"echo: {message}")
    for earlier, later in pairwise(messages):
        if later[0] == "assistant":
            assert earlier == ("user", later[1].removeprefix("echo: ")), (earlier, later)
    assert users == sorted(users, key=lambda m: int(m.rsplit("turn", 1)[1])), "stored out of order"


READINESS_TIMEOUT = 0.5


@pytest.fixture
def stallable(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    """Database steps bounded at 2 s each, readiness as a whole at 0.5 s."""
    overrides = {"db_timeout_seconds": 2.0, "readiness_timeout_seconds": READINESS_TIMEOUT}
    with prepared_database("postgres", tmp_path, **overrides) as settings:
        url = make_url(settings.database_url)
        with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            with serve_in_thread(settings.model_copy(update={"database_url": through})) as server:
                yield server, proxy


async def test_readiness_answers_503_within_its_bound_while_the_database_stalls(
    stallable: tuple[LiveServer, TcpProxy],
) -> None:
    server, proxy = stallable
    async with server.raw_client() as raw:
        await readiness(raw, 200)
        await asyncio.to_thread(proxy.stall)
        timings = []
        for _ in range(3):
            started = time.monotonic()
            answer = await raw.get("/readyz")
            timings.append((answer.status_code, time.monotonic() - started, answer.json()))
        await asyncio.to_thread(proxy.restore)
        recovered = await readiness(raw, 200)
    for status, seconds, body in timings:
        assert status == 503 and seconds < READINESS_TIMEOUT + 0.5, (status, seconds)
        assert body["code"] == "database_unavailable" and "database" in body["failing"]
        assert "row_level_security" not in body["checks"]
    assert recovered["failing"] == []
