"""Runs over real HTTP: they outlive their connection, are followed from any event, cancelled from
any replica, queued in order, retried idempotently, and ended when their replica is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.conftest import DATABASES, live_server, prepared_database
from tests.e2e.harness import JWT_SECRET, LiveServer, free_port, mint_token, serve_in_thread
from tests.e2e.processes import chatserver_serve
from tests.e2e.streams import Event, events_of, stream_turn, turn
from tests.support.databases import throwaway_database
from tests.support.fake_openai import fake_openai_server
from tests.support.redis import redis_prefix, redis_url
from tests.support.tcp_proxy import TcpProxy

CANCEL_DEADLINE_SECONDS = 1.0
SLOW = {"model_timeout_seconds": 60.0}


@pytest.fixture(scope="module", params=DATABASES)
def slow(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(request.param, tmp_path_factory.mktemp("runs"), **SLOW) as server:
        yield server


@pytest.fixture(scope="module")
def wordy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """An OpenAI-compatible model that streams a word every 300 ms and takes 1 s to make a first reply."""
    with fake_openai_server() as fake:
        fake.word_seconds = 0.3
        fake.first_reply_seconds = 1.0
        directory = tmp_path_factory.mktemp("wordy")
        with live_server(
            "sqlite", directory, openai_base_url=fake.url, openai_api_key="sk-test", **SLOW
        ) as server:
            yield server


@dataclass
class Replicas:
    first: LiveServer
    second: LiveServer


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Two servers, one PostgreSQL database, one Redis: events in Redis streams, cancels by pub/sub."""
    with (
        redis_prefix() as prefix,
        prepared_database(
            "postgres",
            tmp_path_factory.mktemp("replicas"),
            redis_url=redis_url(),
            redis_prefix=prefix,
            **SLOW,
        ) as settings,
    ):
        other = settings.model_copy(update={"port": free_port()})
        with serve_in_thread(settings) as first, serve_in_thread(other) as second:
            yield Replicas(first, second)


def new_chat_id() -> str:
    return str(uuid.uuid4())


async def wait_for_status(
    client: httpx.AsyncClient, run_id: str, status: str, seconds: float = 10
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = (await client.get(f"/api/runs/{run_id}")).json()
        if run["status"] == status:
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not become {status}: {run}")


async def attach(client: httpx.AsyncClient, run_id: str, last_event_id: str | None = None) -> list[Event]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200
        return [event async for event in events_of(response)]


async def stored(client: httpx.AsyncClient, chat_id: str) -> list[dict[str, Any]]:
    page = await client.get(f"/api/chats/{chat_id}/messages")
    assert page.status_code == 200, page.text
    return list(page.json()["items"])


def tokens(events: list[Event]) -> str:
    return "".join(e.data["delta"] for e in events if e.name == "token")


class TestOutlivingTheConnection:
    async def test_a_client_that_disconnects_still_gets_its_answer_stored(self, slow: LiveServer) -> None:
        chat_id = new_chat_id()
        async with slow.client("ana") as client:
            body = turn("/sleep 300 still here", chat_id)
            async with client.stream("POST", "/api/chat/stream", json=body) as response:
                run = await anext(events_of(response))
            assert run.name == "run" and run.data["status"] == "running"
            ended = await wait_for_status(client, run.data["run_id"], "completed")
            messages = await stored(client, chat_id)
        assert [(m["role"], m["content"]) for m in messages] == [
            ("user", "/sleep 300 still here"),
            ("assistant", "echo: still here"),
        ]
        assert ended["model"] == "echo" and ended["usage"]["requests"] == 1 and ended["error"] is None

    async def test_reattaching_at_every_point_of_a_stream_gives_the_answer_exactly_once(
        self, slow: LiveServer
    ) -> None:
        async with slow.client("ben") as client:
            _, events = await stream_turn(client, turn("/tool current_time {}", new_chat_id()))
            run_id = events[0].data["run_id"]
            assert events[-1].name == "done", events
            answer = events[-1].data["response"]
            for i, event in enumerate(events):
                rest = await attach(client, run_id, event.id)
                assert [(e.name, e.id) for e in rest] == [(e.name, e.id) for e in events[i + 1 :]]
                assert tokens(events[: i + 1]) + tokens(rest) == answer
            assert [(e.name, e.data) for e in await attach(client, run_id)] == [
                (e.name, e.data) for e in events
            ]

    async def test_reattaching_mid_answer_follows_the_run_live_to_its_end(self, slow: LiveServer) -> None:
        async with slow.client("cleo") as client:
            body = turn("/sleep 400 slow words", new_chat_id())
            async with client.stream("POST", "/api/chat/stream", json=body) as response:
                first = await anext(events_of(response))
            rest = await attach(client, first.data["run_id"], first.id)
        assert rest[-1].name == "done" and tokens(rest) == rest[-1].data["response"] == "echo: slow words"

    async def test_a_background_run_is_accepted_and_followed(self, slow: LiveServer) -> None:
        chat_id = new_chat_id()
        async with slow.client("dan") as client:
            accepted = await client.post(
                f"/api/chats/{chat_id}/runs", json={"agent_name": "assistant", "message": "later"}
            )
            assert accepted.status_code == 202
            run = accepted.json()
            assert accepted.headers["location"] == f"/api/runs/{run['id']}"
            assert run["chat_id"] == chat_id and run["status"] in {"queued", "running"}
            events = await attach(client, run["id"])
            listed = (await client.get(f"/api/chats/{chat_id}/runs")).json()
        assert events[-1].data["response"] == "echo: later"
        assert [r["id"] for r in listed["items"]] == [run["id"]] and listed["next_before"] is None
        assert listed["items"][0]["status"] == "completed"


class TestCancel:
    async def test_cancel_stops_a_run_within_a_second_and_frees_its_chat(self, slow: LiveServer) -> None:
        chat_id = new_chat_id()
        async with slow.client("eve") as client:
            body = {"agent_name": "assistant", "message": "/sleep 30000 never"}
            run_id = (await client.post(f"/api/chats/{chat_id}/runs", json=body)).json()["id"]
            await wait_for_status(client, run_id, "running")
            started = time.monotonic()
            cancelled = await client.post(f"/api/runs/{run_id}/cancel")
            elapsed = time.monotonic() - started
            again = await client.post(f"/api/runs/{run_id}/cancel")
            follow_up = await client.post("/api/chat", json=turn("/recall", chat_id))
        assert cancelled.status_code == 200 and elapsed < CANCEL_DEADLINE_SECONDS
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"] is not None
        assert (again.status_code, again.json()["code"]) == (409, "conflict")
        assert follow_up.status_code == 200 and follow_up.json()["response"] == "recall: /sleep 30000 never"

    async def test_cancelling_a_slow_answer_stores_it_as_incomplete(self, wordy: LiveServer) -> None:
        await wordy.create_agent("wordy", model="openai:gpt-4.1-mini")
        chat_id = new_chat_id()
        async with wordy.client("fay") as client:
            body = turn("one two three four five six seven eight", chat_id, agent="wordy")
            async with client.stream("POST", "/api/chat/stream", json=body) as response:
                events = events_of(response)
                run = await anext(events)
                assert (await anext(events)).name == "token"
            cancelled = await client.post(f"/api/runs/{run.data['run_id']}/cancel")
            messages = await stored(client, chat_id)
            replay = await attach(client, run.data["run_id"])
        assert cancelled.json()["status"] == "cancelled"
        *_, answer = messages
        assert answer["role"] == "assistant" and answer["incomplete"] is True
        assert answer["content"].startswith("fake") and "eight" not in answer["content"]
        assert replay[-1].name == "cancelled" and tokens(replay) == answer["content"]

    async def test_cancel_from_a_second_replica_stops_the_run_within_a_second(
        self, replicas: Replicas
    ) -> None:
        chat_id = new_chat_id()
        async with replicas.first.client("gus") as first, replicas.second.client("gus") as second:
            accepted = await first.post(
                f"/api/chats/{chat_id}/runs",
                json={"agent_name": "assistant", "message": "/sleep 30000 never"},
            )
            run_id = accepted.json()["id"]
            await wait_for_status(second, run_id, "running")
            started = time.monotonic()
            cancelled = await second.post(f"/api/runs/{run_id}/cancel")
            ended = await wait_for_status(second, run_id, "cancelled", seconds=CANCEL_DEADLINE_SECONDS)
            elapsed = time.monotonic() - started
            events = await attach(second, run_id)
        assert cancelled.status_code == 200 and ended["finished_at"] is not None
        assert elapsed < CANCEL_DEADLINE_SECONDS
        assert [e.name for e in events] == ["run", "cancelled"]


class TestBusyChats:
    async def test_ten_runs_enqueued_on_two_replicas_run_in_arrival_order(self, replicas: Replicas) -> None:
        chat_id = new_chat_id()
        async with replicas.first.client("hal") as first, replicas.second.client("hal") as second:
            ids = []
            for i in range(10):
                client = first if i % 2 == 0 else second
                body = {"agent_name": "assistant", "message": f"/sleep 20 m{i}"}
                accepted = await client.post(f"/api/chats/{chat_id}/runs", json=body)
                assert accepted.status_code == 202, accepted.text
                ids.append(accepted.json()["id"])
            for i, run_id in enumerate(ids):
                events = await attach(first if i % 2 else second, run_id)
                assert events[-1].name == "done", events
                assert events[-1].data["response"] == f"echo: m{i}"
            messages = await stored(first, chat_id)
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        assert answers == [f"echo: m{i}" for i in range(10)]

    async def test_the_interrupt_policy_cancels_the_running_run_and_answers(self, slow: LiveServer) -> None:
        chat_id = new_chat_id()
        async with slow.client("ida") as client:
            accepted = await client.post(
                f"/api/chats/{chat_id}/runs", json={"agent_name": "assistant", "message": "/sleep 30000 old"}
            )
            await wait_for_status(client, accepted.json()["id"], "running")
            reply = await client.post("/api/chat", json={**turn("new", chat_id), "busy_policy": "interrupt"})
            old = (await client.get(f"/api/runs/{accepted.json()['id']}")).json()
        assert reply.status_code == 200 and reply.json()["response"] == "echo: new"
        assert old["status"] == "cancelled"


class TestSteering:
    async def test_a_steering_message_reaches_the_running_runs_next_model_request(
        self, wordy: LiveServer
    ) -> None:
        """The fake model calls ``current_time`` when asked the time, then answers from the last
        message: after the tool, that is the tool's result, unless a steering message came after it."""
        await wordy.create_agent("clock", model="openai:gpt-4.1-mini", tools=["current_time"])
        chat_id = new_chat_id()
        async with wordy.client("gil") as client:
            body = {"agent_name": "clock", "message": "what time is it?"}
            accepted = await client.post(f"/api/chats/{chat_id}/runs", json=body)
            run_id = accepted.json()["id"]
            await wait_for_status(client, run_id, "running")
            steer = {**turn("and the date please", chat_id, agent="clock"), "busy_policy": "steer"}
            steered = await client.post("/api/chat", json=steer)
            run = await wait_for_status(client, run_id, "completed")
            messages = await stored(client, chat_id)
        answer = "fake says: and the date please"
        assert steered.status_code == 200 and steered.json()["response"] == answer
        assert steered.json()["run_id"] == run_id
        assert run["usage"]["requests"] == 2
        assert [(m["role"], m["content"]) for m in messages][-2:] == [
            ("user", "and the date please"),
            ("assistant", answer),
        ]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "user", "assistant"]


class TestIdempotency:
    async def test_concurrent_retries_with_one_key_store_one_message_and_get_one_answer(
        self, slow: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        headers = {"Idempotency-Key": f"retry-{chat_id}"}
        async with slow.client("jon") as client:
            replies = await asyncio.gather(
                *[
                    client.post("/api/chat", json=turn("/sleep 100 once", chat_id), headers=headers)
                    for _ in range(5)
                ]
            )
            messages = await stored(client, chat_id)
            reused = await client.post("/api/chat", json=turn("another body", chat_id), headers=headers)
        ok = [r.json() for r in replies if r.status_code == 200]
        assert ok and all(r.status_code in {200, 409} for r in replies)
        assert {r["run_id"] for r in ok} == {ok[0]["run_id"]} and {r["response"] for r in ok} == {
            "echo: once"
        }
        assert [m["content"] for m in messages] == ["/sleep 100 once", "echo: once"]
        assert (reused.status_code, reused.json()["code"]) == (409, "conflict")

    async def test_a_retried_stream_replays_the_run_from_its_start(self, slow: LiveServer) -> None:
        chat_id = new_chat_id()
        headers = {"Idempotency-Key": "stream-once"}
        async with slow.client("kay") as client:
            async with client.stream(
                "POST", "/api/chat/stream", json=turn("hello", chat_id), headers=headers
            ) as r:
                first = [event async for event in events_of(r)]
            async with client.stream(
                "POST", "/api/chat/stream", json=turn("hello", chat_id), headers=headers
            ) as r:
                second = [event async for event in events_of(r)]
            messages = await stored(client, chat_id)
        assert [(e.name, e.data) for e in first] == [(e.name, e.data) for e in second]
        assert len(messages) == 2

    @pytest.mark.parametrize("key", ["", "k" * 256, "clé", "tab\there"])
    async def test_a_malformed_idempotency_key_is_a_422(self, slow: LiveServer, key: str) -> None:
        async with slow.client("lou") as client:
            reply = await client.post(
                "/api/chat",
                json=turn("hi", new_chat_id()),
                headers={"Idempotency-Key": key.encode()},
            )
        assert (reply.status_code, reply.json()["code"]) == (422, "validation_error")


class TestRefusals:
    async def test_another_users_run_is_a_404_on_every_route(self, slow: LiveServer) -> None:
        chat_id = new_chat_id()
        async with slow.client("max") as owner, slow.client("mallory") as other:
            reply = await owner.post("/api/chat", json=turn("mine", chat_id))
            run_id = reply.json()["run_id"]
            answers = [
                await other.get(f"/api/runs/{run_id}"),
                await other.get(f"/api/runs/{run_id}/events"),
                await other.post(f"/api/runs/{run_id}/cancel"),
                await other.get(f"/api/chats/{chat_id}/runs"),
            ]
        assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 4

    async def test_an_unknown_run_is_a_404_and_a_bad_last_event_id_a_422(self, slow: LiveServer) -> None:
        async with slow.client("ned") as client:
            reply = await client.post("/api/chat", json=turn("hi", new_chat_id()))
            unknown = await client.get(f"/api/runs/{uuid.uuid4()}/events")
            bad = await client.get(
                f"/api/runs/{reply.json()['run_id']}/events", headers={"Last-Event-ID": "zzz"}
            )
        assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
        assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")


@pytest.mark.postgres
def test_a_killed_replicas_run_is_interrupted_and_its_chat_goes_on(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """SIGKILL leaves no chance to clean up: the lease runs out and the other replica ends the run."""
    lease = 1.0
    with asyncio.Runner() as runner:
        database = throwaway_database("postgres", tmp_path_factory.mktemp("pg"))
        url = runner.run(database.__aenter__())
        env = {
            "CHATSERVER_DATABASE_URL": url,
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_RUN_LEASE_SECONDS": str(lease),
            "CHATSERVER_MODEL_TIMEOUT_SECONDS": "60",
            "CHATSERVER_LOG_LEVEL": "WARNING",
        }
        try:
            with chatserver_serve(tmp_path_factory.mktemp("a"), **env) as a:
                a.wait_healthy(timeout=90)
                with chatserver_serve(tmp_path_factory.mktemp("b"), **env) as b:
                    b.wait_healthy(timeout=90)
                    runner.run(_kill_mid_run(a.url, b.url, a.process.pid, lease))
        finally:
            runner.run(database.__aexit__(None, None, None))


async def _kill_mid_run(a: str, b: str, pid: int, lease: float) -> None:
    headers = {"Authorization": f"Bearer {mint_token('ola')}"}
    chat_id = new_chat_id()
    async with (
        httpx.AsyncClient(base_url=a, headers=headers) as on_a,
        httpx.AsyncClient(base_url=b, headers=headers) as on_b,
    ):
        accepted = await on_a.post(
            f"/api/chats/{chat_id}/runs", json={"agent_name": "assistant", "message": "/sleep 60000 lost"}
        )
        run_id = accepted.json()["id"]
        await wait_for_status(on_b, run_id, "running")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        ended = await wait_for_status(on_b, run_id, "interrupted", seconds=10 * lease)
        within = time.monotonic() - killed
        after = await on_b.post("/api/chat", json=turn("after", chat_id))
        messages = await stored(on_b, chat_id)
    assert ended["error"]["code"] == "server_restarted"
    assert within < 3 * lease, f"interrupted after {within:.1f}s"
    assert after.status_code == 200 and after.json()["response"] == "echo: after"
    assert [m["content"] for m in messages] == ["/sleep 60000 lost", "after", "echo: after"]


@pytest.mark.postgres
def test_a_replica_cut_from_the_database_mid_run_stops_it_while_the_other_takes_the_chat_on(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A's PostgreSQL link is cut mid-run: B ends the run and starts the chat's queued one, and A,
    unable to renew its lease, stops its own run before B could be running the chat beside it."""
    lease = 1.5
    with asyncio.Runner() as runner:
        database = throwaway_database("postgres", tmp_path_factory.mktemp("pg"))
        url = runner.run(database.__aenter__())
        env = {
            "CHATSERVER_JWT_SECRET": JWT_SECRET,
            "CHATSERVER_RUN_LEASE_SECONDS": str(lease),
            "CHATSERVER_MODEL_TIMEOUT_SECONDS": "60",
            "CHATSERVER_DB_TIMEOUT_SECONDS": "1",
            "CHATSERVER_LOG_LEVEL": "WARNING",
        }
        direct = make_url(url)
        try:
            with TcpProxy(direct.host or "127.0.0.1", direct.port or 5432) as proxy:
                through = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
                with chatserver_serve(
                    tmp_path_factory.mktemp("a"), CHATSERVER_DATABASE_URL=through, **env
                ) as a:
                    a.wait_healthy(timeout=90)
                    with chatserver_serve(
                        tmp_path_factory.mktemp("b"), CHATSERVER_DATABASE_URL=url, **env
                    ) as b:
                        b.wait_healthy(timeout=90)
                        runner.run(_cut_mid_run(a.url, b.url, proxy, lease))
        finally:
            runner.run(database.__aexit__(None, None, None))


async def _cut_mid_run(a: str, b: str, proxy: TcpProxy, lease: float) -> None:
    headers = {"Authorization": f"Bearer {mint_token('cutoff')}"}
    chat_id = new_chat_id()
    async with (
        httpx.AsyncClient(base_url=a, headers=headers, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b, headers=headers, timeout=30) as on_b,
    ):
        first = await on_a.post(
            f"/api/chats/{chat_id}/runs", json={"agent_name": "assistant", "message": "/sleep 60000 cut off"}
        )
        first_id = first.json()["id"]
        await wait_for_status(on_b, first_id, "running")
        second = await on_b.post(
            f"/api/chats/{chat_id}/runs", json={"agent_name": "assistant", "message": "next"}
        )
        assert second.json()["status"] == "queued"
        await asyncio.to_thread(proxy.cut)
        cut_at = time.monotonic()
        stopped = await _counted(on_a, 'outcome="lease_lost"', seconds=10 * lease)
        stopped_after = time.monotonic() - cut_at
        interrupted = await wait_for_status(on_b, first_id, "interrupted", seconds=10 * lease)
        await wait_for_status(on_b, second.json()["id"], "completed", seconds=10 * lease)
        await asyncio.to_thread(proxy.restore)
        after = await on_a.post("/api/chat", json=turn("after", chat_id))
        messages = await stored(on_b, chat_id)
    assert stopped == 1 and stopped_after < 3 * lease, f"A stopped its run {stopped_after:.1f}s after the cut"
    assert interrupted["error"]["code"] == "server_restarted"
    assert after.status_code == 200 and after.json()["response"] == "echo: after"
    assert [m["content"] for m in messages] == [
        "/sleep 60000 cut off",
        "next",
        "echo: next",
        "after",
        "echo: after",
    ]


async def _counted(client: httpx.AsyncClient, label: str, *, seconds: float) -> float:
    """The value of the turns counter with ``label`` in ``/metrics``, once it is above zero."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = (await client.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith("chatserver_chat_turns_total{") and label in line:
                return float(line.rsplit(" ", 1)[1])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no turn counted with {label} within {seconds}s")
