"""The per-user run limit over real HTTP, on both databases: a user with ``CHATSERVER_MAX_RUNS_PER_USER``
runs queued or running gets 429 ``too_many_runs`` on every route that starts one, while another user's
turns go on promptly, however many streams the first user holds open."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer
from tests.e2e.streams import turn

LIMIT = 4
PROMPT_SECONDS = 2.0
"""How long another user's turn may take meanwhile (it took 7-15 s before the limit)."""
READERS_PER_RUN = 10


@pytest.fixture(scope="module", params=DATABASES)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = {"max_runs_per_user": LIMIT, "model_timeout_seconds": 60.0}
    with live_server(request.param, tmp_path_factory.mktemp("run-limits"), **settings) as server:
        yield server


def chat() -> str:
    return str(uuid.uuid4())


async def start(client: httpx.AsyncClient, message: str = "/sleep 30000 hold on") -> httpx.Response:
    return await client.post(
        f"/api/chats/{chat()}/runs", json={"agent_name": "assistant", "message": message}
    )


@asynccontextmanager
async def at_the_limit(client: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """The user's ``LIMIT`` slow runs, each on its own chat; cancelled on the way out."""
    started = [await start(client) for _ in range(LIMIT)]
    assert [response.status_code for response in started] == [202] * LIMIT
    ids = [response.json()["id"] for response in started]
    try:
        yield ids
    finally:
        for run_id in ids:
            await client.post(f"/api/runs/{run_id}/cancel")


def refused_with_a_retry_hint(response: httpx.Response, code: str) -> bool:
    return (
        response.status_code == 429 and code == "too_many_runs" and int(response.headers["retry-after"]) >= 1
    )


class TestTheLimit:
    async def test_every_route_that_starts_a_run_refuses_one_past_the_limit(self, live: LiveServer) -> None:
        async with live.client("ada") as ada, at_the_limit(ada):
            plain = await ada.post("/api/chat", json=turn("one more", chat()))
            streamed = await ada.post("/api/chat/stream", json=turn("one more", chat()))
            background = await start(ada, "one more")
            messages = [{"role": "user", "content": "one more"}]
            openai = await ada.post("/v1/chat/completions", json={"model": "assistant", "messages": messages})
        assert refused_with_a_retry_hint(plain, plain.json()["code"]), plain.text
        assert refused_with_a_retry_hint(streamed, streamed.json()["code"]), streamed.text
        assert refused_with_a_retry_hint(background, background.json()["code"]), background.text
        assert refused_with_a_retry_hint(openai, openai.json()["error"]["code"]), openai.text

    async def test_a_refused_turn_stores_nothing_and_an_ended_run_makes_room(self, live: LiveServer) -> None:
        chat_id = chat()
        async with live.client("bea") as bea:
            async with at_the_limit(bea):
                refused = await bea.post("/api/chat", json=turn("not now", chat_id))
                missing = await bea.get(f"/api/chats/{chat_id}/messages")
            answered = await bea.post("/api/chat", json=turn("now", chat_id))
        assert refused.status_code == 429
        assert missing.status_code == 404, "the refused turn made no chat"
        assert answered.status_code == 200 and answered.json()["response"] == "echo: now"

    async def test_concurrent_starts_past_the_limit_admit_exactly_the_limit(self, live: LiveServer) -> None:
        async with live.client("cyd") as cyd:
            responses = await asyncio.gather(*[start(cyd) for _ in range(LIMIT + 4)])
            for response in responses:
                if response.status_code == 202:
                    await cyd.post(f"/api/runs/{response.json()['id']}/cancel")
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [202] * LIMIT + [429] * 4


class TestOtherUsers:
    async def test_another_users_turn_is_prompt_while_one_user_holds_the_limit_and_many_streams(
        self, live: LiveServer
    ) -> None:
        async with (
            live.client("dov", timeout=60) as dov,
            live.client("eve") as eve,
            at_the_limit(dov) as held,
        ):
            readers = [
                asyncio.create_task(dov.get(f"/api/runs/{run_id}/events"))
                for run_id in held
                for _ in range(READERS_PER_RUN)
            ]
            refused = [asyncio.create_task(start(dov)) for _ in range(50)]
            await asyncio.sleep(0.5)
            began = time.monotonic()
            plain = await eve.post("/api/chat", json=turn("am I slowed down?", chat()))
            took = time.monotonic() - began
            assert {response.status_code for response in await asyncio.gather(*refused)} == {429}
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        assert plain.status_code == 200 and plain.json()["response"] == "echo: am I slowed down?"
        assert took < PROMPT_SECONDS, f"another user's turn took {took:.2f}s"
