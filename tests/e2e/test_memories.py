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


async def notes(client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    """The caller's notes on one page of ``GET /api/memories``."""
    response = await client.get("/api/memories", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_a_note_remembered_in_one_chat_is_recalled_in_another(
    live: LiveServer, memo_agent: str
) -> None:
    async with live.client("mia") as mia:
        saved = await say(mia, '/tool remember {"note": "Mia prefers short answers"}')
        recalled = await say(mia, '/tool recall_memories {"query": "short"}')
        listed = await notes(mia, agent_name=AGENT)
    assert saved["tool_calls"][0]["name"] == "remember"
    assert saved["response"].startswith("tool remember returned: remembered")
    assert recalled["response"] == 'tool recall_memories returned: ["Mia prefers short answers"]'
    assert [(m["agent_name"], m["content"]) for m in listed] == [(AGENT, "Mia prefers short answers")]


async def test_notes_are_private_to_their_user(live: LiveServer, memo_agent: str) -> None:
    async with live.client("owen") as owen, live.client("ivy") as ivy:
        await say(owen, '/tool remember {"note": "Owen owns a boat"}')
        [note] = await notes(owen, agent_name=AGENT)
        recalled = await say(ivy, '/tool recall_memories {"query": "boat"}')
        listed = await notes(ivy)
        delete = await ivy.delete(f"/api/memories/{note['id']}")
        erase = await ivy.delete("/api/memories", params={"agent_name": AGENT})
        still = await notes(owen, agent_name=AGENT)
    assert recalled["response"] == "tool recall_memories returned: no notes found"
    assert listed == []
    assert (delete.status_code, delete.json()["code"]) == (404, "not_found")
    assert erase.json() == {"deleted": 0}
    assert [m["id"] for m in still] == [note["id"]]


async def test_a_user_deletes_one_note_or_erases_all_of_an_agents(live: LiveServer, memo_agent: str) -> None:
    async with live.client("eve") as eve:
        for note in ("first", "second", "third"):
            await say(eve, f'/tool remember {{"note": "{note}"}}')
        listed = await notes(eve, agent_name=AGENT)
        one = await eve.delete(f"/api/memories/{listed[1]['id']}")
        after_one = await notes(eve, agent_name=AGENT)
        erased = await eve.delete("/api/memories", params={"agent_name": AGENT})
        after_all = await notes(eve)
        recalled = await say(eve, "/tool recall_memories {}")
    assert [m["content"] for m in listed] == ["third", "second", "first"]
    assert one.status_code == 204
    assert [m["content"] for m in after_one] == ["third", "first"]
    assert erased.json() == {"deleted": 2} and after_all == []
    assert recalled["response"] == "tool recall_memories returned: no notes found"


async def test_notes_are_listed_in_pages_newest_first(live: LiveServer, memo_agent: str) -> None:
    async with live.client("paula") as paula:
        for note in ("one", "two", "three"):
            await say(paula, f'/tool remember {{"note": "{note}"}}')
        first = (await paula.get("/api/memories", params={"agent_name": AGENT, "limit": 2})).json()
        params = {"agent_name": AGENT, "limit": "2", "before": first["next_before"]}
        second = (await paula.get("/api/memories", params=params)).json()
        everything = (await paula.get("/api/memories")).json()
    assert [m["content"] for m in first["items"]] == ["three", "two"] and first["next_before"]
    assert ([m["content"] for m in second["items"]], second["next_before"]) == (["one"], None)
    assert [m["content"] for m in everything["items"]] == ["three", "two", "one"]
    assert everything["next_before"] is None


async def test_notes_are_searched_on_the_server_for_every_word_of_the_callers_own(
    live: LiveServer, memo_agent: str
) -> None:
    async with live.client("quentin") as quentin:
        for note in ("likes green tea", "lives in Oslo", "Tea at 5_pm"):
            await say(quentin, f'/tool remember {{"note": "{note}"}}')
        found = (await quentin.get("/api/memories", params={"q": "TEA"})).json()
        both = (await quentin.get("/api/memories", params={"q": "tea green"})).json()
        literal = (await quentin.get("/api/memories", params={"q": "5_"})).json()
        wildcard = (await quentin.get("/api/memories", params={"q": "%"})).json()
    async with live.client("rita") as rita:
        theirs = (await rita.get("/api/memories", params={"q": "tea"})).json()
    assert [m["content"] for m in found["items"]] == ["Tea at 5_pm", "likes green tea"]
    assert [m["content"] for m in both["items"]] == ["likes green tea"]
    assert [m["content"] for m in literal["items"]] == ["Tea at 5_pm"]
    assert (wildcard["items"], theirs["items"]) == ([], [])


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("DELETE", "/api/memories", {}),
        ("DELETE", "/api/memories/not-a-number", {}),
        ("GET", "/api/memories", {"limit": 0}),
        ("GET", "/api/memories", {"agent_name": ""}),
        ("GET", "/api/memories", {"before": "not-a-cursor"}),
        ("GET", "/api/memories", {"q": "x" * 201}),
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
    await live.create_agent("no-memory", tools=["current_time"])
    async with live.client("nora") as nora:
        response = await nora.post(
            "/api/chat",
            json={
                "agent_name": "no-memory",
                "message": '/tool remember {"note": "x"}',
                "session_id": "nora-1",
            },
        )
        listed = await notes(nora)
    assert response.json()["response"] == "unknown tool: remember"
    assert listed == []
