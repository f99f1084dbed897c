"""POST /api/chat/stream over real HTTP: events, errors, and what a client that leaves stops."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from chatserver.config import Settings
from chatserver.domain import AuditEvent
from chatserver.storage.sql.engine import create_engine
from chatserver.storage.sql.uow import SqlUnitOfWorkFactory
from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer
from tests.e2e.streams import Event, events_of, first_accepted_turn, stream_turn, turn

ECHO_LATENCY_MS = 1500
RELEASE_DEADLINE_SECONDS = 1.0
"""The abandoned model would run 30 s more (and never time out): only a cancellation frees the chat."""


@pytest.fixture(scope="module", params=DATABASES)
def slow_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Every model reply takes 1.5 s, a busy chat is refused (409), and the model never times out."""
    overrides: dict[str, Any] = {
        "echo_latency_ms": ECHO_LATENCY_MS,
        "busy_chat_policy": "reject",
        "model_timeout_seconds": 60.0,
    }
    with live_server(request.param, tmp_path_factory.mktemp("slow"), **overrides) as server:
        yield server


def new_chat_id() -> str:
    return str(uuid.uuid4())


def tokens(events: list[Event]) -> str:
    return "".join(event.data["delta"] for event in events if event.name == "token")


async def stored(client: httpx.AsyncClient, chat_id: str) -> list[tuple[str, str]]:
    page = await client.get(f"/api/chats/{chat_id}/messages")
    assert page.status_code == 200, page.text
    return [(m["role"], m["content"]) for m in page.json()["items"]]


async def audit_events(settings: Settings, user_id: str, kind: str) -> list[AuditEvent]:
    engine = create_engine(settings)
    try:
        async with SqlUnitOfWorkFactory(engine)(user_id=user_id) as uow:
            return await uow.events.list(type=kind, user_id=user_id, limit=50, before=None)
    finally:
        await engine.dispose()


class TestEvents:
    async def test_tokens_arrive_in_order_and_concatenate_to_the_done_response(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with live.client("sam") as client:
            response, events = await stream_turn(client, turn("the quick brown fox", chat_id))
            messages = await stored(client, chat_id)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert [event.name for event in events] == ["run"] + ["token"] * 5 + ["done"]
        deltas = [event.data["delta"] for event in events[1:-1]]
        assert deltas == ["echo: ", "the ", "quick ", "brown ", "fox"]
        run_id = events[-1].data["run_id"]
        assert events[0].data == {"run_id": run_id, "chat_id": chat_id, "status": "running"}
        ids = [int(event.id) for event in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        done = events[-1].data
        assert tokens(events) == done["response"] == "echo: the quick brown fox"
        assert messages == [("user", "the quick brown fox"), ("assistant", "echo: the quick brown fox")]

    async def test_the_done_event_is_what_api_chat_answers(self, live: LiveServer) -> None:
        streamed_id, plain_id = new_chat_id(), new_chat_id()
        async with live.client("tara") as client:
            _, events = await stream_turn(client, turn("same words", streamed_id))
            plain = await client.post("/api/chat", json=turn("same words", plain_id))
        assert events[-1].name == "done"
        done, expected = events[-1].data, {**plain.json(), "session_id": streamed_id}
        # Token counts are the model's estimates, which differ between its streaming and plain paths.
        assert {**done, "usage": None, "run_id": None} == {**expected, "usage": None, "run_id": None}
        assert done["run_id"] != expected["run_id"]
        assert done["usage"].keys() == expected["usage"].keys() and done["usage"]["requests"] == 1
        assert done["usage"]["input_tokens"] > 0 and done["usage"]["output_tokens"] > 0

    async def test_a_tool_call_streams_its_call_and_result_before_the_answer(self, live: LiveServer) -> None:
        chat_id = new_chat_id()
        async with live.client("uma") as client:
            _, events = await stream_turn(client, turn("/tool current_time {}", chat_id))
            messages = await stored(client, chat_id)
        run, call, result, *rest = events
        assert run.name == "run"
        assert (call.name, call.data) == ("tool_call", {"name": "current_time", "args": {}})
        assert result.name == "tool_result" and result.data["name"] == "current_time"
        assert result.data["result"].endswith("+00:00")
        assert {event.name for event in rest[:-1]} == {"token"} and rest[-1].name == "done"
        done = rest[-1].data
        assert tokens(events) == done["response"] == f"tool current_time returned: {result.data['result']}"
        assert done["tool_calls"] == [{"name": "current_time", "args": {}, "result": result.data["result"]}]
        assert (done["tool_name"], done["tool_input"]) == ("current_time", {})
        assert [role for role, _ in messages] == ["user", "assistant", "tool", "assistant"]

    async def test_streamed_turns_are_the_memory_of_later_turns(self, live: LiveServer) -> None:
        chat_id = new_chat_id()
        async with live.client("vera") as client:
            await stream_turn(client, turn("apple", chat_id))
            await client.post("/api/chat", json=turn("banana", chat_id))
            _, events = await stream_turn(client, turn("/recall", chat_id))
        assert events[-1].data["response"] == "recall: apple | banana"


class TestFailures:
    async def test_a_failing_model_sends_an_error_event_and_keeps_the_users_message(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with live.client("walt") as client:
            response, events = await stream_turn(client, turn("/fail", chat_id))
            messages = await stored(client, chat_id)
            _, recall = await stream_turn(client, turn("/recall", chat_id))
        assert response.status_code == 200
        run, error = events
        assert (run.name, error.name) == ("run", "error")
        assert error.data["code"] == "model_error" and "echo" in error.data["detail"]
        assert messages == [("user", "/fail")]
        assert recall[-1].data["response"] == "recall: /fail"
        assert [e.data["code"] for e in await audit_events(live.settings, "walt", "turn.failed")] == [
            "model_error"
        ]

    async def test_a_model_slower_than_the_timeout_sends_a_timeout_error_event(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with live.client("xena") as client:
            _, events = await stream_turn(client, turn("/sleep 600000 late", chat_id))
            messages = await stored(client, chat_id)
        assert [(e.name, e.data.get("code")) for e in events] == [("run", None), ("error", "model_timeout")]
        assert messages == [("user", "/sleep 600000 late")]

    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            (turn("hi", "s1", agent="ghost"), 404, "not_found"),
            ({"agent_name": "assistant", "message": "hi"}, 422, "validation_error"),
            (turn("   ", "s2"), 422, "validation_error"),
            (turn("x" * 40_000, "s3"), 413, "payload_too_large"),
        ],
    )
    async def test_errors_before_the_model_starts_are_plain_http_errors(
        self, live: LiveServer, body: dict[str, Any], status: int, code: str
    ) -> None:
        async with live.client("yuri") as client:
            response, events = await stream_turn(client, body)
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert response.headers["content-type"] == "application/json"
        assert events == []

    async def test_a_missing_token_is_a_401(self, live: LiveServer) -> None:
        async with live.raw_client() as client:
            response, _ = await stream_turn(client, turn("hi", new_chat_id()))
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized")

    async def test_another_users_chat_id_streams_into_a_new_chat_of_the_callers_own(
        self, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with live.client("zoe") as owner, live.client("mallory") as intruder:
            await owner.post("/api/chat", json=turn("private", chat_id))
            response, events = await stream_turn(intruder, turn("/recall", chat_id))
            messages = await stored(owner, chat_id)
            theirs = await stored(intruder, chat_id)
        assert response.status_code == 200
        assert [e.name for e in events][-1] == "done"
        assert messages == [("user", "private"), ("assistant", "echo: private")]
        assert theirs == [("user", "/recall"), ("assistant", "recall: ")]


class TestLiveDelivery:
    async def test_events_reach_the_client_while_the_model_is_still_working(
        self, slow_live: LiveServer
    ) -> None:
        """The tool's result arrives while the model's second reply is still 1.5 s away."""
        chat_id = new_chat_id()
        async with slow_live.client("abe") as client:
            seen_before_done: list[tuple[str, str]] = []
            names: list[str] = []
            async with client.stream(
                "POST", "/api/chat/stream", json=turn("/tool current_time {}", chat_id)
            ) as r:
                async for event in events_of(r):
                    names.append(event.name)
                    if event.name == "tool_result":
                        seen_before_done = await stored(client, chat_id)
            assert seen_before_done == [("user", "/tool current_time {}")]
            assert names[:3] == ["run", "tool_call", "tool_result"] and names[-1] == "done"
            assert [role for role, _ in await stored(client, chat_id)] == [
                "user",
                "assistant",
                "tool",
                "assistant",
            ]


class TestDisconnect:
    async def test_a_client_that_leaves_with_on_disconnect_cancel_frees_the_chat_at_once(
        self, slow_live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        body = {**turn("/sleep 30000 never", chat_id), "on_disconnect": "cancel"}
        async with slow_live.client("bea") as client:
            # The leaving client has its own connection, closed as it leaves.
            async with (
                slow_live.client("bea") as leaving,
                leaving.stream("POST", "/api/chat/stream", json=body) as r,
            ):
                assert r.status_code == 200  # the turn has started: its chat is locked
                busy = await client.post("/api/chat", json=turn("too early", chat_id))
                assert (busy.status_code, busy.json()["code"]) == (409, "chat_busy")
            left = time.monotonic()
            follow_up, waited = await first_accepted_turn(client, turn("after", chat_id))
            messages = await stored(client, chat_id)
        assert follow_up.status_code == 200, follow_up.text
        assert waited < RELEASE_DEADLINE_SECONDS, (
            f"the chat stayed locked {waited:.2f}s after the client left"
        )
        assert time.monotonic() - left < 30
        assert messages == [("user", "/sleep 30000 never"), ("user", "after"), ("assistant", "echo: after")]
        cancelled = await audit_events(slow_live.settings, "bea", "turn.cancelled")
        assert [(e.chat_id, e.data["turn"]) for e in cancelled] == [(chat_id, 1)]

    async def test_a_run_cancelled_before_its_answer_began_keeps_only_the_users_message(
        self, slow_live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        async with slow_live.client("cid") as client:
            async with slow_live.client("cid") as leaving:
                body = {**turn("/tool current_time {}", chat_id), "on_disconnect": "cancel"}
                async with leaving.stream("POST", "/api/chat/stream", json=body) as r:
                    async for event in events_of(r):
                        if event.name == "tool_result":
                            break  # leave while the model writes its answer
            follow_up, _ = await first_accepted_turn(client, turn("/recall", chat_id))
            messages = await stored(client, chat_id)
        assert follow_up.json()["response"] == "recall: /tool current_time {}"
        assert [role for role, _ in messages] == ["user", "user", "assistant"]
