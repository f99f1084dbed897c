"""Long-term memory over real HTTP: echo's /tool saves and recalls notes; users see and erase theirs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.harness import LiveServer

AGENT = "memo"


@pytest.fixture
async def memo_agent(live: LiveServer) -> str:
    """The module's agent with the memory tools (created by the first test that needs it)."""
    body = {"name": AGENT, "model": "echo", "system_prompt": "", "tools": ["remember", "recall_memories"]}
    async with live.client("e2e-admin", admin=True) as admin:
        response = await admin.post("/api/admin/agents", json=body)
    assert response.status_code in (201, 409), response.text
    return AGENT


async def say(client: httpx.AsyncClient, message: str, chat_id: str | None = None) -> dict[str, Any]:
    body = {"agent_name": AGENT, "message": message, "session_id": chat_id or str(uuid.uuid4())}
    response = await client.post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_note_remembered_in_one_chat_is_recalled_in_another(
    live: LiveServer, memo_agent: str
) -> None:
    async with live.client("mia") as mia:
        saved = await say(mia, '/tool remember {"note": "Mia prefers short answers"}')
        recalled = await say(mia, '/tool recall_memories {"query": "short"}')
        listed = (await mia.get("/api/memories", params={"agent_name": AGENT})).json()
    assert saved["tool_calls"][0]["name"] == "remember"
    assert saved["response"].startswith("tool remember returned: remembered")
    assert recalled["response"] == 'tool recall_memories returned: ["Mia prefers short answers"]'
    assert [(m["agent_name"], m["content"]) for m in listed] == [(AGENT, "Mia prefers short answers")]


async def test_notes_are_private_to_their_user(live: LiveServer, memo_agent: str) -> None:
    async with live.client("owen") as owen, live.client("ivy") as ivy:
        await say(owen, '/tool remember {"note": "Owen owns a boat"}')
        [note] = (await owen.get("/api/memories", params={"agent_name": AGENT})).json()
        recalled = await say(ivy, '/tool recall_memories {"query": "boat"}')
        listed = (await ivy.get("/api/memories")).json()
        delete = await ivy.delete(f"/api/memories/{note['id']}")
        erase = await ivy.delete("/api/memories", params={"agent_name": AGENT})
        still = (await owen.get("/api/memories", params={"agent_name": AGENT})).json()
    assert recalled["response"] == "tool recall_memories returned: no notes found"
    assert listed == []
    assert (delete.status_code, delete.json()["code"]) == (404, "not_found")
    assert erase.json() == {"deleted": 0}
    assert [m["id"] for m in still] == [note["id"]]


async def test_a_user_deletes_one_note_or_erases_all_of_an_agents(live: LiveServer, memo_agent: str) -> None:
    async with live.client("eve") as eve:
        for note in ("first", "second", "third"):
            await say(eve, f'/tool remember {{"note": "{note}"}}')
        listed = (await eve.get("/api/memories", params={"agent_name": AGENT})).json()
        one = await eve.delete(f"/api/memories/{listed[1]['id']}")
        after_one = (await eve.get("/api/memories", params={"agent_name": AGENT})).json()
        erased = await eve.delete("/api/memories", params={"agent_name": AGENT})
        after_all = (await eve.get("/api/memories")).json()
        recalled = await say(eve, "/tool recall_memories {}")
    assert [m["content"] for m in listed] == ["third", "second", "first"]
    assert one.status_code == 204
    assert [m["content"] for m in after_one] == ["third", "first"]
    assert erased.json() == {"deleted": 2} and after_all == []
    assert recalled["response"] == "tool recall_memories returned: no notes found"


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("DELETE", "/api/memories", {}),
        ("DELETE", "/api/memories/not-a-number", {}),
        ("GET", "/api/memories", {"limit": 0}),
        ("GET", "/api/memories", {"agent_name": ""}),
    ],
)
async def test_bad_requests_are_clear_422s(
    live: LiveServer, method: str, path: str, params: dict[str, Any]
) -> None:
    async with live.client("bad-input") as client:
        response = await client.request(method, path, params=params)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


async def test_memories_need_a_token(live: LiveServer) -> None:
    async with live.raw_client() as anonymous:
        response = await anonymous.get("/api/memories")
    assert response.status_code == 401


async def test_an_agent_without_the_memory_tools_cannot_call_them(live: LiveServer) -> None:
    async with live.client("nora") as nora:
        response = await nora.post(
            "/api/chat",
            json={
                "agent_name": "assistant",
                "message": '/tool remember {"note": "x"}',
                "session_id": "nora-1",
            },
        )
        listed = (await nora.get("/api/memories")).json()
    assert response.json()["response"] == "unknown tool: remember"
    assert listed == []
