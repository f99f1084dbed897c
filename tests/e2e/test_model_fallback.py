"""Fallback models over real HTTP: a provider (a fake OpenAI-compatible server) that fails, answers
429 or hangs hands the same turn to the agent's next model, plain and streamed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import DATABASES, live_server
from tests.e2e.harness import LiveServer
from tests.e2e.streams import stream_turn
from tests.support.fake_openai import Behaviour, FakeOpenAI, fake_openai_server

FAILURES: list[Behaviour] = ["error_500", "rate_limited", "hang"]


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with fake_openai_server() as fake:
        yield fake


@pytest.fixture(scope="module", params=DATABASES)
def fallback_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("fallback")
    with live_server(
        request.param,
        directory,
        openai_base_url=fake_openai.url,
        model_retries=0,
        model_attempt_timeout_seconds=0.5,
    ) as server:
        yield server


@pytest.fixture
def failing(fake_openai: FakeOpenAI, request: pytest.FixtureRequest) -> Iterator[Behaviour]:
    fake_openai.behaviour = request.param
    try:
        yield request.param
    finally:
        fake_openai.behaviour = "answer"


async def agent_with_fallback(server: LiveServer) -> str:
    name = f"fallback-{uuid.uuid4().hex[:8]}"
    body = {
        "name": name,
        "model": "openai:fake-model",
        "system_prompt": "Be brief.",
        "tools": [],
        "fallback_models": ["echo"],
    }
    async with server.client("e2e-admin", admin=True) as admin:
        created = await admin.post("/api/admin/agents", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["fallback_models"] == ["echo"]
    return name


def chat_body(agent: str, message: str) -> dict[str, Any]:
    return {"agent_name": agent, "message": message, "session_id": f"c-{uuid.uuid4().hex[:8]}"}


async def fallback_events(server: LiveServer, user: str) -> list[dict[str, Any]]:
    async with server.client("e2e-admin", admin=True) as admin:
        page = await admin.get("/api/admin/events", params={"type": "model.fallback", "user_id": user})
    assert page.status_code == 200, page.text
    return [event["data"] for event in page.json()["items"]]


@pytest.mark.parametrize("failing", FAILURES, indirect=True)
async def test_a_failing_provider_hands_the_turn_to_the_next_model(
    fallback_live: LiveServer, failing: Behaviour
) -> None:
    agent, user = await agent_with_fallback(fallback_live), f"u-{uuid.uuid4().hex[:8]}"
    body = chat_body(agent, "hello there")
    async with fallback_live.client(user) as client:
        reply = await client.post("/api/chat", json=body)
        stored = (await client.get(f"/api/chats/{body['session_id']}/messages")).json()["items"]
        usage = (await client.get("/api/usage", params={"group_by": "model"})).json()["items"]
        [run] = (await client.get(f"/api/chats/{body['session_id']}/runs")).json()["items"]
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"] == "echo: hello there" and reply.json()["model"] == "echo"
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "hello there"),
        ("assistant", "echo: hello there"),
    ]
    assert [(line["key"], line["requests"]) for line in usage] == [("echo", 1)]
    assert run["model"] == "echo"
    [event] = await fallback_events(fallback_live, user)
    assert event["model"] == "openai:fake-model" and event["answered_by"] == "echo"


@pytest.mark.parametrize("failing", FAILURES, indirect=True)
async def test_a_streamed_turn_falls_back_without_a_token_of_the_failed_attempt(
    fallback_live: LiveServer, failing: Behaviour
) -> None:
    agent, user = await agent_with_fallback(fallback_live), f"s-{uuid.uuid4().hex[:8]}"
    async with fallback_live.client(user) as client:
        response, events = await stream_turn(client, chat_body(agent, "stream me"))
    assert response.status_code == 200
    tokens = "".join(event.data["delta"] for event in events if event.name == "token")
    [done] = [event.data for event in events if event.name == "done"]
    assert tokens == done["response"] == "echo: stream me"
    assert done["model"] == "echo"
    assert len(await fallback_events(fallback_live, user)) == 1


async def test_a_healthy_provider_answers_itself_and_no_fallback_is_noted(
    fallback_live: LiveServer, fake_openai: FakeOpenAI
) -> None:
    agent, user = await agent_with_fallback(fallback_live), f"h-{uuid.uuid4().hex[:8]}"
    async with fallback_live.client(user) as client:
        reply = await client.post("/api/chat", json=chat_body(agent, "hi"))
        usage = (await client.get("/api/usage", params={"group_by": "model"})).json()["items"]
    assert reply.json()["response"] == "fake says: hi" and reply.json()["model"] == "openai:fake-model"
    # The fake model has no price in pydantic-ai's data: its cost is unknown, not zero.
    assert [(line["key"], line["cost_usd"]) for line in usage] == [("openai:fake-model", None)]
    assert await fallback_events(fallback_live, user) == []


async def test_fallback_models_that_cannot_be_served_are_refused(fallback_live: LiveServer) -> None:
    async with fallback_live.client("e2e-admin", admin=True) as admin:
        bodies = [
            {"name": "fb-bad", "model": "echo", "system_prompt": "x", "fallback_models": ["nope"]},
            {"name": "fb-twice", "model": "echo", "system_prompt": "x", "fallback_models": ["echo"]},
        ]
        answers = [await admin.post("/api/admin/agents", json=body) for body in bodies]
    assert [a.status_code for a in answers] == [422, 422]
    assert all(a.json()["detail"][0]["loc"] == ["body", "fallback_models"] for a in answers)
