"""A new chat's title: the agent's model writes it in the background after the first answer;
an echo chat's is its first message as words."""

from __future__ import annotations

import asyncio
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
def titled_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI
) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("titles")
    with live_server(request.param, directory, openai_base_url=fake_openai.url) as server:
        yield server


async def _title(live: LiveServer, user: str, chat_id: str, *, unlike: str | None = None) -> str | None:
    """The chat's title, polled (up to 5 s) until it is no longer ``unlike``."""
    async with live.client(user) as client:
        for _ in range(50):
            chats = (await client.get("/api/chats")).json()["items"]
            title = next((c["title"] for c in chats if c["id"] == chat_id), None)
            if title != unlike:
                return title
            await asyncio.sleep(0.1)
    return unlike


async def test_the_agents_model_titles_a_new_chat_after_its_first_answer(
    titled_live: LiveServer, fake_openai: FakeOpenAI
) -> None:
    await titled_live.create_agent("gpt-titles", model="openai:fake-model")
    async with titled_live.client("tina") as client:
        reply = await client.post(
            "/api/chat", json={"agent_name": "gpt-titles", "message": "hello there", "session_id": "t1"}
        )
    assert reply.status_code == 200 and reply.json()["response"] == "fake says: hello there"
    title = await _title(titled_live, "tina", "t1", unlike="hello there")
    assert title is not None and title.startswith("fake says: Write a title")
    asked = fake_openai.requests[-1]["messages"][-1]["content"]
    assert "User: hello there" in asked and "Assistant: fake says: hello there" in asked


async def test_an_echo_chat_is_titled_by_its_first_message_as_words(titled_live: LiveServer) -> None:
    async with titled_live.client("vic") as client:
        await client.post(
            "/api/chat",
            json={
                "agent_name": "assistant",
                "message": '/tool remember {"note": "milk"}',
                "session_id": "v1",
            },
        )
    assert await _title(titled_live, "vic", "v1") == "remember note: milk"
