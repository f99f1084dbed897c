"""Conversations as trees over real HTTP: edit and resend, regenerate, branch switching, chat
management (rename, pin, archive, search, export), and the runs a chat's messages name (each
answer's model and tokens, how a turn left without an answer ended)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.e2e.harness import LiveServer
from tests.e2e.streams import events_of


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


async def _ended(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    for _ in range(200):
        run: dict[str, Any] = (await client.get(f"/api/runs/{run_id}")).json()
        if run["finished_at"] is not None:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not end")


async def test_the_streaming_route_takes_edit_of_and_regenerate_too(live: LiveServer) -> None:
    async with live.client("kurt") as client:
        chat_id = new_chat_id()
        await _say(client, chat_id, "red")
        red, answer = await _branch(client, chat_id)
        streamed = []
        for extra in ({"message": "blue", "edit_of": red["id"]}, {"regenerate": answer["id"]}):
            body = {"agent_name": "assistant", "session_id": chat_id, **extra}
            async with client.stream("POST", "/api/chat/stream", json=body) as response:
                assert response.status_code == 200
                streamed.append([event.name async for event in events_of(response)][-1])
        after = await _branch(client, chat_id)
    assert streamed == ["done", "done"]
    assert [m["content"] for m in after] == ["red", "echo: red"]
    assert after[0]["branch"]["count"] == 2 and after[1]["branch"]["count"] == 2


async def test_a_background_run_takes_edit_of_and_regenerate_and_refuses_a_message_with_regenerate(
    live: LiveServer,
) -> None:
    async with live.client("lena") as client:
        chat_id = new_chat_id()
        await _say(client, chat_id, "red")
        red, answer = await _branch(client, chat_id)
        path = f"/api/chats/{chat_id}/runs"
        regenerated = await client.post(path, json={"agent_name": "assistant", "regenerate": answer["id"]})
        await _ended(client, regenerated.json()["id"])
        both_answers = await _branch(client, chat_id)
        edited = await client.post(
            path, json={"agent_name": "assistant", "message": "blue", "edit_of": red["id"]}
        )
        await _ended(client, edited.json()["id"])
        after_edit = await _branch(client, chat_id)
        refused = await client.post(
            path, json={"agent_name": "assistant", "message": "no", "regenerate": answer["id"]}
        )
    assert (regenerated.status_code, edited.status_code, refused.status_code) == (202, 202, 422)
    assert (
        both_answers[1]["branch"]["count"] == 2 and both_answers[1]["run"]["id"] == regenerated.json()["id"]
    )
    assert [m["content"] for m in after_edit] == ["blue", "echo: blue"]
    assert after_edit[0]["branch"]["siblings"] == [red["id"], after_edit[0]["id"]]


async def test_each_answer_names_the_model_and_tokens_of_its_run(live: LiveServer) -> None:
    async with live.client("mona") as client:
        chat_id = new_chat_id()
        said = [(await _say(client, chat_id, text)).json() for text in ("one", "two three four")]
        items = await _branch(client, chat_id)
    answers = [m for m in items if m["role"] == "assistant"]
    assert [a["run"]["id"] for a in answers] == [s["run_id"] for s in said]
    assert [(a["run"]["model"], a["run"]["status"]) for a in answers] == [("echo", "completed")] * 2
    assert [a["run"]["usage"] for a in answers] == [s["usage"] for s in said]
    assert [m["run"] for m in items if m["role"] == "user"] == [None, None]


async def test_a_failed_turn_reloads_as_failed_with_its_error_now_and_after_the_chat_goes_on(
    live: LiveServer,
) -> None:
    async with live.client("nils") as client:
        chat_id = new_chat_id()
        failed = await _say(client, chat_id, "/fail")
        last = (await _branch(client, chat_id))[-1]
        await _say(client, chat_id, "and then")
        earlier = (await _branch(client, chat_id))[0]
    assert failed.status_code >= 500
    for message in (last, earlier):
        assert (message["role"], message["content"]) == ("user", "/fail")
        assert message["run"]["status"] == "failed"
        assert message["run"]["error"]["code"] == "model_error"


async def test_a_stopped_turn_reloads_as_cancelled_under_its_user_message(live: LiveServer) -> None:
    async with live.client("olga") as client:
        chat_id = new_chat_id()
        body = {"agent_name": "assistant", "message": "/sleep 3000 never"}
        started = (await client.post(f"/api/chats/{chat_id}/runs", json=body)).json()
        await asyncio.sleep(0.3)
        await client.post(f"/api/runs/{started['id']}/cancel")
        await _ended(client, started["id"])
        items = await _branch(client, chat_id)
    assert [(m["role"], m["run"]["status"], m["run"]["id"]) for m in items] == [
        ("user", "cancelled", started["id"])
    ]


async def test_another_users_runs_never_show_in_a_chat_of_the_same_id(live: LiveServer) -> None:
    chat_id = new_chat_id()
    async with live.client("pia") as pia:
        await _say(pia, chat_id, "/fail")
    async with live.client("quin") as quin:
        await _say(quin, chat_id, "mine")
        items = await _branch(quin, chat_id)
    assert [(m["content"], m["run"] and m["run"]["status"]) for m in items] == [
        ("mine", None),
        ("echo: mine", "completed"),
    ]
