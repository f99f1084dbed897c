"""A second turn on a chat that is mid-turn: it waits its turn, or is refused with 409 `chat_busy`.

Both on one server and on two replicas sharing one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DATABASES, live_server, prepared_database
from tests.e2e.harness import LiveServer, free_port, serve_in_thread
from tests.e2e.streams import Event, events_of, first_accepted_turn, stream_turn, turn

SLOW_SETTINGS: dict[str, Any] = {"model_timeout_seconds": 60.0}
RELEASE_DEADLINE_SECONDS = 1.0


@dataclass
class Replicas:
    first: LiveServer
    second: LiveServer


@pytest.fixture(scope="module", params=DATABASES)
def rejecting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("reject")
    with live_server(request.param, directory, busy_chat_policy="reject", **SLOW_SETTINGS) as server:
        yield server


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("wait", marks=pytest.mark.postgres),
        pytest.param("reject", marks=pytest.mark.postgres),
    ],
)
def replicas(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Two servers on different ports, one PostgreSQL database, the same busy-chat policy."""
    directory = tmp_path_factory.mktemp("replicas")
    with prepared_database(
        "postgres", directory, busy_chat_policy=request.param, **SLOW_SETTINGS
    ) as settings:
        other = settings.model_copy(update={"port": free_port()})
        with serve_in_thread(settings) as first, serve_in_thread(other) as second:
            yield Replicas(first, second)


def new_chat_id() -> str:
    return str(uuid.uuid4())


@asynccontextmanager
async def turn_in_progress(
    server: LiveServer, user: str, chat_id: str, ms: int
) -> AsyncIterator[list[Event]]:
    """A streamed turn that has started (its chat is locked) and sleeps ``ms``; its events on exit."""
    events: list[Event] = []
    body = turn(f"/sleep {ms} first", chat_id)
    async with (
        server.client(user) as client,
        client.stream("POST", "/api/chat/stream", json=body) as response,
    ):
        assert response.status_code == 200
        yield events
        events.extend([event async for event in events_of(response)])


async def stored(client: httpx.AsyncClient, chat_id: str) -> list[tuple[str, str]]:
    page = await client.get(f"/api/chats/{chat_id}/messages")
    return [(m["role"], m["content"]) for m in page.json()["items"]]


def in_order(*words: str) -> list[tuple[str, str]]:
    """What strictly serialized turns store: each question followed by its own answer."""
    return [pair for word in words for pair in (("user", word), ("assistant", f"echo: {word}"))]


def serialized(first_ms: int, *later: str) -> list[tuple[str, str]]:
    return [("user", f"/sleep {first_ms} first"), ("assistant", "echo: first"), *in_order(*later)]


class TestWaitPolicy:
    async def test_a_second_turn_waits_until_the_first_has_stored_its_answer(self, live: LiveServer) -> None:
        chat_id = new_chat_id()
        async with live.client("hugo") as client:
            async with turn_in_progress(live, "hugo", chat_id, 800) as first:
                plain = asyncio.create_task(client.post("/api/chat", json=turn("second", chat_id)))
                await asyncio.sleep(0.2)
                assert not plain.done()
            reply = await plain
            messages = await stored(client, chat_id)
        assert first[-1].name == "done"
        assert reply.status_code == 200 and reply.json()["response"] == "echo: second"
        assert messages == serialized(800, "second")

    async def test_a_waiting_streamed_turn_starts_once_the_chat_is_free(self, live: LiveServer) -> None:
        chat_id = new_chat_id()
        async with live.client("iris") as client:
            async with turn_in_progress(live, "iris", chat_id, 500):
                waiting = asyncio.create_task(stream_turn(client, turn("second", chat_id)))
                await asyncio.sleep(0.1)
            response, events = await waiting
            messages = await stored(client, chat_id)
        assert response.status_code == 200
        assert events[-1].data["response"] == "echo: second"
        assert messages == serialized(500, "second")


class TestRejectPolicy:
    async def test_every_route_refuses_a_busy_chat_with_409_chat_busy(self, rejecting: LiveServer) -> None:
        chat_id, elsewhere = new_chat_id(), new_chat_id()
        completion = {"model": "assistant", "messages": [{"role": "user", "content": "third"}]}
        async with rejecting.client("jack") as client:
            async with turn_in_progress(rejecting, "jack", chat_id, 800) as first:
                plain = await client.post("/api/chat", json=turn("second", chat_id))
                streamed, events = await stream_turn(client, turn("second", chat_id))
                openai = await client.post(
                    "/v1/chat/completions", json=completion, headers={"X-Chat-Id": chat_id}
                )
                other_chat = await client.post("/api/chat", json=turn("fine", elsewhere))
            after = await client.post("/api/chat", json=turn("after", chat_id))
            messages = await stored(client, chat_id)
        assert (plain.status_code, plain.json()["code"]) == (409, "chat_busy")
        assert (streamed.status_code, streamed.json()["code"], events) == (409, "chat_busy", [])
        assert openai.status_code == 409
        assert openai.json()["error"]["code"] == "chat_busy"
        assert other_chat.status_code == 200
        assert first[-1].name == "done" and after.status_code == 200
        assert messages == serialized(800, "after")


class TestReplicas:
    async def test_turns_on_one_chat_are_serialized_across_replicas(self, replicas: Replicas) -> None:
        chat_id = new_chat_id()
        async with replicas.second.client("kim") as other:
            async with turn_in_progress(replicas.first, "kim", chat_id, 800) as first:
                # Waits for the first replica's turn (wait policy), or is refused at once (reject).
                reply = await other.post("/api/chat", json=turn("second", chat_id))
            if replicas.first.settings.busy_chat_policy == "reject":
                assert (reply.status_code, reply.json()["code"]) == (409, "chat_busy")
                reply = await other.post("/api/chat", json=turn("second", chat_id))
            messages = await stored(other, chat_id)
        assert first[-1].name == "done"
        assert reply.status_code == 200
        assert messages == serialized(800, "second")

    async def test_a_client_leaving_one_replica_with_on_disconnect_cancel_frees_the_chat_for_the_other(
        self, replicas: Replicas
    ) -> None:
        chat_id = new_chat_id()
        body = {**turn("/sleep 30000 never", chat_id), "on_disconnect": "cancel"}
        async with (
            replicas.first.client("lea") as leaving,
            leaving.stream("POST", "/api/chat/stream", json=body) as r,
        ):
            assert r.status_code == 200
        async with replicas.second.client("lea") as other:
            if replicas.first.settings.busy_chat_policy == "reject":
                reply, waited = await first_accepted_turn(other, turn("after", chat_id))
                assert waited < RELEASE_DEADLINE_SECONDS, f"the chat stayed locked {waited:.2f}s"
            else:
                reply = await asyncio.wait_for(other.post("/api/chat", json=turn("after", chat_id)), 10)
            messages = await stored(other, chat_id)
        assert reply.status_code == 200
        assert messages == [("user", "/sleep 30000 never"), *in_order("after")]
