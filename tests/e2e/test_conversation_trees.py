"""Conversations as trees over real HTTP: edit and resend, regenerate, branch switching, and chat
management (rename, pin, archive, search, export)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.harness import LiveServer


def new_chat_id() -> str:
    return str(uuid.uuid4())


async def _say(client: httpx.AsyncClient, chat_id: str, message: str = "", **extra: Any) -> httpx.Response:
    body = {"agent_name": "assistant", "message": message, "session_id": chat_id, **extra}
    return await client.post("/api/chat", json=body)


async def _branch(client: httpx.AsyncClient, chat_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/chats/{chat_id}/messages")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_editing_a_message_starts_a_branch_the_window_follows_and_the_old_one_stays(
    live: LiveServer,
) -> None:
    async with live.client("alice") as client:
        chat_id = new_chat_id()
        for word in ("red", "green"):
            assert (await _say(client, chat_id, word)).status_code == 200
        green = (await _branch(client, chat_id))[2]
        edited = await _say(client, chat_id, "blue", edit_of=green["id"])
        recall = await _say(client, chat_id, "/recall")
        after_edit = await _branch(client, chat_id)
        switched = await client.put(f"/api/chats/{chat_id}/branch", json={"message_id": green["id"]})
        back = await _branch(client, chat_id)
    assert edited.json()["response"] == "echo: blue"
    assert recall.json()["response"] == "recall: red | blue"
    blue = after_edit[2]
    assert (blue["content"], blue["parent_id"]) == ("blue", green["parent_id"])
    assert blue["branch"] == {"index": 2, "count": 2, "siblings": [green["id"], blue["id"]]}
    assert switched.status_code == 204
    assert [m["content"] for m in back] == ["red", "echo: red", "green", "echo: green"]
    assert back[2]["branch"]["index"] == 1


async def test_regenerating_an_answer_adds_a_sibling_answer_to_the_same_user_message(
    live: LiveServer,
) -> None:
    async with live.client("bob") as client:
        chat_id = new_chat_id()
        await _say(client, chat_id, "hello")
        first = (await _branch(client, chat_id))[1]
        again = await _say(client, chat_id, regenerate=first["id"])
        both = await _branch(client, chat_id)
        with_message = await _say(client, chat_id, "no", regenerate=first["id"])
        of_a_user_message = await _say(client, chat_id, regenerate=both[0]["id"])
    assert again.status_code == 200 and again.json()["response"] == "echo: hello"
    assert [m["role"] for m in both] == ["user", "assistant"]
    assert both[1]["parent_id"] == both[0]["id"] and both[1]["id"] != first["id"]
    assert both[1]["branch"] == {"index": 2, "count": 2, "siblings": [first["id"], both[1]["id"]]}
    assert (with_message.status_code, of_a_user_message.status_code) == (422, 422)


async def test_another_users_messages_and_chats_are_not_found(live: LiveServer) -> None:
    chat_id = new_chat_id()
    async with live.client("carol") as carol:
        await _say(carol, chat_id, "mine")
        hers = (await _branch(carol, chat_id))[0]["id"]
    async with live.client("dave") as dave:
        await _say(dave, chat_id, "also mine")
        edit = await _say(dave, chat_id, "x", edit_of=hers)
        switch = await dave.put(f"/api/chats/{chat_id}/branch", json={"message_id": hers})
    async with live.client("erin") as erin:
        patch = await erin.patch(f"/api/chats/{chat_id}", json={"title": "taken"})
        export = await erin.get(f"/api/chats/{chat_id}/export")
        switch_absent = await erin.put(f"/api/chats/{chat_id}/branch", json={"message_id": hers})
    statuses = (edit, switch, patch, export, switch_absent)
    assert [r.status_code for r in statuses] == [404] * 5


async def test_chats_are_renamed_pinned_archived_and_filtered(live: LiveServer) -> None:
    async with live.client("frank") as client:
        first, second = new_chat_id(), new_chat_id()
        await _say(client, first, "one")
        await _say(client, second, "two")
        renamed = await client.patch(f"/api/chats/{first}", json={"title": "Renamed", "pinned": True})
        await client.patch(f"/api/chats/{second}", json={"archived": True})
        pinned = (await client.get("/api/chats", params={"pinned": "true"})).json()["items"]
        live_chats = (await client.get("/api/chats", params={"archived": "false"})).json()["items"]
        blank = await client.patch(f"/api/chats/{first}", json={"title": " "})
        unknown = await client.patch(f"/api/chats/{first}", json={"colour": "red"})
    assert renamed.status_code == 200
    assert (renamed.json()["title"], renamed.json()["pinned"]) == ("Renamed", True)
    assert [c["id"] for c in pinned] == [first]
    assert [c["id"] for c in live_chats] == [first]
    assert (blank.status_code, unknown.status_code) == (422, 422)


async def test_search_finds_message_text_and_titles_of_the_callers_chats_only(live: LiveServer) -> None:
    async with live.client("gina") as gina:
        found = new_chat_id()
        await _say(gina, found, "the quick brown fox jumps")
        await _say(gina, new_chat_id(), "nothing here")
        hits = (await gina.get("/api/chats", params={"q": "brown fox"})).json()["items"]
        syntax = await gina.get("/api/chats", params={"q": 'fox" OR *'})
    async with live.client("hank") as hank:
        theirs = (await hank.get("/api/chats", params={"q": "brown fox"})).json()["items"]
    assert [h["id"] for h in hits] == [found]
    assert "brown fox" in hits[0]["snippet"]
    assert syntax.status_code == 200
    assert theirs == []


async def test_export_gives_the_active_branch_as_markdown_or_json(live: LiveServer) -> None:
    async with live.client("ivy") as client:
        chat_id = new_chat_id()
        await _say(client, chat_id, "export me")
        markdown = await client.get(f"/api/chats/{chat_id}/export", params={"format": "markdown"})
        as_json = await client.get(f"/api/chats/{chat_id}/export", params={"format": "json"})
        bad = await client.get(f"/api/chats/{chat_id}/export", params={"format": "pdf"})
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert "## User" in markdown.text and "export me" in markdown.text and "echo: export me" in markdown.text
    assert [m["content"] for m in as_json.json()["messages"]] == ["export me", "echo: export me"]
    assert bad.status_code == 422


async def test_switching_branches_while_a_run_answers_is_a_busy_chat(live: LiveServer) -> None:
    async with live.client("jill") as client:
        chat_id = new_chat_id()
        await _say(client, chat_id, "first")
        first = (await _branch(client, chat_id))[0]
        started = await client.post(
            f"/api/chats/{chat_id}/runs", json={"agent_name": "assistant", "message": "/sleep 3000 slow"}
        )
        switched = await client.put(f"/api/chats/{chat_id}/branch", json={"message_id": first["id"]})
        cancelled = await client.post(f"/api/runs/{started.json()['id']}/cancel")
    assert started.status_code == 202, started.text
    assert switched.status_code == 409 and switched.json()["code"] == "chat_busy", switched.text
    assert cancelled.status_code in (200, 202)
