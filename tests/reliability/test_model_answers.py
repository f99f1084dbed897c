"""A provider that answers 200 with something that is not a completion: a 502 ``model_error``.

Whatever the shape (``choices`` not a list, empty, fields missing, not JSON at all), the turn is a
model failure like any other: the run ends ``failed`` with ``model_error``, a ``turn.failed`` event
is recorded and counted, the user's message stays stored, and the client's keep-alive connection
stays open (an unexpected error would make the HTTP server drop it after its 500).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import LiveServer, mint_token
from tests.e2e.streams import stream_turn
from tests.reliability.conftest import AGENT
from tests.reliability.turns import body, new_chat, stored, turn
from tests.support.fake_openai import FakeOpenAI

HEAD = '"id": "x", "object": "chat.completion", "created": 1, "model": "m"'
MALFORMED = {
    "choices_not_a_list": f'{{{HEAD}, "choices": "nope"}}',
    "no_choices": f'{{{HEAD}, "choices": []}}',
    "fields_missing": '{"choices": [{"index": 0}]}',
    "a_bare_number": "42",
    "not_json": "<html>bad gateway</html>",
}


@pytest.fixture(params=list(MALFORMED))
def malformed(request: pytest.FixtureRequest, fake: FakeOpenAI) -> FakeOpenAI:
    fake.behaviour, fake.malformed = "malformed", MALFORMED[request.param]
    return fake


async def failed_turns(server: LiveServer) -> float:
    async with server.raw_client() as client:
        text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "chatserver_chat_turns_total" and sample.labels == {
                "agent": AGENT,
                "outcome": "model_error",
            }:
                return sample.value
    return 0.0


async def failures_recorded(server: LiveServer, user: str, chat_id: str) -> list[dict[str, Any]]:
    async with server.client("auditor", admin=True) as admin:
        page = await admin.get("/api/admin/events", params={"type": "turn.failed", "user_id": user})
    assert page.status_code == 200, page.text
    return [event["data"] for event in page.json()["items"] if event["chat_id"] == chat_id]


async def runs_of(client: httpx.AsyncClient, chat_id: str) -> list[tuple[str, str | None]]:
    page = await client.get(f"/api/chats/{chat_id}/runs")
    assert page.status_code == 200, page.text
    return [(run["status"], (run["error"] or {}).get("code")) for run in page.json()["items"]]


class TestPlainTurns:
    async def test_an_unexpected_answer_is_a_502_model_error_with_the_run_failed_recorded_and_counted(
        self, model_server: LiveServer, malformed: FakeOpenAI
    ) -> None:
        chat = new_chat()
        counted = await failed_turns(model_server)
        async with model_server.client("ola") as client:
            reply = await turn(client, "what now?", chat, AGENT)
            kept = await stored(client, chat)
            runs = await runs_of(client, chat)
        assert (reply.status_code, reply.json()["code"]) == (502, "model_error"), reply.text
        assert reply.json()["detail"].startswith("model ")
        assert malformed.malformed not in reply.text, "the provider's answer is never repeated"
        assert kept == [("user", "what now?")]
        assert runs == [("failed", "model_error")]
        recorded = await failures_recorded(model_server, "ola", chat)
        assert [data["code"] for data in recorded] == ["model_error"]
        assert await failed_turns(model_server) == counted + 1

    async def test_an_unexpected_answer_on_v1_is_a_502_in_openais_shape(
        self, model_server: LiveServer, malformed: FakeOpenAI
    ) -> None:
        request = {"model": AGENT, "messages": [{"role": "user", "content": "hi"}]}
        async with model_server.client("pia") as client:
            reply = await client.post("/v1/chat/completions", json=request)
        assert reply.status_code == 502, reply.text
        assert reply.json()["error"]["code"] == "model_error"


class TestStreamedTurns:
    async def test_an_unexpected_answer_ends_the_stream_with_a_model_error_event(
        self, model_server: LiveServer, malformed: FakeOpenAI
    ) -> None:
        chat = new_chat()
        async with model_server.client("quin") as client:
            response, events = await stream_turn(client, body("go on", chat, AGENT))
            kept = await stored(client, chat)
            runs = await runs_of(client, chat)
        assert response.status_code == 200
        assert [event.name for event in events] == ["run", "error"]
        assert events[-1].data["code"] == "model_error"
        assert kept == [("user", "go on")]
        assert runs == [("failed", "model_error")]


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, payload: dict[str, Any], user: str
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on an open connection; its status and the headers' ``Connection``."""
    data = json.dumps(payload).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {mint_token(user)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lines = head.lower().split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:"))
    await reader.readexactly(length)
    return status, head.lower()


class TestConnections:
    @pytest.mark.parametrize(
        ("path", "payload"),
        [
            ("/api/chat", {"agent_name": AGENT, "message": "again?", "session_id": "keep-alive-chat"}),
            ("/v1/chat/completions", {"model": AGENT, "messages": [{"role": "user", "content": "again?"}]}),
        ],
    )
    async def test_the_connection_that_got_the_502_serves_the_next_request(
        self, model_server: LiveServer, malformed: FakeOpenAI, path: str, payload: dict[str, Any]
    ) -> None:
        url = httpx.URL(model_server.url)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            first, head = await exchange(reader, writer, path, payload, "rae")
            second, _ = await exchange(reader, writer, path, payload, "rae")
        finally:
            writer.close()
        assert (first, second) == (502, 502)
        assert b"connection: close" not in head
