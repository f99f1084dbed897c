"""A real provider client against a fake OpenAI-compatible server; no pooled connection held per turn."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer
from tests.support.fake_openai import FakeOpenAI, fake_openai_server


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with fake_openai_server() as fake:
        yield fake


@pytest.fixture(scope="module", params=DATABASES)
def openai_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("providers")
    # These tests read the turn's own requests to the provider: no title request after it.
    with live_server(request.param, directory, openai_base_url=fake_openai.url, model_titles=False) as server:
        yield server


async def test_an_openai_agent_answers_through_the_provider_client(
    openai_live: LiveServer, fake_openai: FakeOpenAI
) -> None:
    await openai_live.create_agent("gpt", model="openai:fake-model", system_prompt="Be kind.")
    async with openai_live.client("olivia") as client:
        reply = await client.post(
            "/api/chat", json={"agent_name": "gpt", "message": "hello", "session_id": "o1"}
        )
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"] == "fake says: hello"
    assert reply.json()["usage"] == {"input_tokens": 11, "output_tokens": 7, "requests": 1}
    sent = fake_openai.requests[-1]
    assert sent["model"] == "fake-model"
    assert sent["messages"][0] == {"role": "system", "content": "Be kind."}


async def test_an_openai_agent_calls_a_tool_and_reports_it(
    openai_live: LiveServer, fake_openai: FakeOpenAI
) -> None:
    await openai_live.create_agent("gpt-tools", model="openai:fake-model")
    async with openai_live.client("oscar") as client:
        reply = await client.post(
            "/api/chat", json={"agent_name": "gpt-tools", "message": "what time is it", "session_id": "o2"}
        )
    body = reply.json()
    assert reply.status_code == 200, reply.text
    assert body["tool_name"] == "current_time"
    assert body["response"] == f"the tool said {body['tool_calls'][0]['result']}"
    assert body["usage"]["requests"] == 2


async def test_a_provider_error_is_a_502_and_the_message_is_kept(
    openai_live: LiveServer, fake_openai: FakeOpenAI
) -> None:
    await openai_live.create_agent("gpt-broken", model="openai:fake-model")
    fake_openai.behaviour = "error_500"
    try:
        async with openai_live.client("otto") as client:
            failed = await client.post(
                "/api/chat", json={"agent_name": "gpt-broken", "message": "hi", "session_id": "o3"}
            )
            stored = await client.get("/api/chats/o3/messages")
    finally:
        fake_openai.behaviour = "answer"
    assert failed.status_code == 502 and failed.json()["code"] == "model_error"
    assert "boom" not in failed.text
    assert [m["content"] for m in stored.json()["items"]] == ["hi"]


@pytest.mark.postgres
def test_slow_turns_do_not_hold_pooled_connections_while_the_model_runs(tmp_path: Path) -> None:
    """With one pooled connection and a 2 s pool timeout, ten concurrent 1 s turns only all succeed
    if no turn keeps a connection while its model runs."""
    overrides = {
        "db_pool_size": 1,
        "db_max_overflow": 0,
        "db_timeout_seconds": 2.0,
        "model_timeout_seconds": 10.0,
    }

    async def ten_slow_turns(server: LiveServer) -> list[int]:
        async with server.client("patient") as client:
            replies = await asyncio.gather(
                *[
                    client.post(
                        "/api/chat",
                        json={
                            "agent_name": "assistant",
                            "message": f"/sleep 1000 n{i}",
                            "session_id": str(uuid.uuid4()),
                        },
                    )
                    for i in range(10)
                ]
            )
        return [reply.status_code for reply in replies]

    with live_server("postgres", tmp_path, **overrides) as server:
        statuses = asyncio.run(ten_slow_turns(server))
    assert statuses == [200] * 10
